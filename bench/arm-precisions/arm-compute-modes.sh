#!/usr/bin/env bash
# What each compute mode costs and changes on a Pi 5 class core (cortex-a76,
# f16 arithmetic and dot products), under qemu-user, for one f32 bundle
# (calibrated or not): guest instructions per text with the counting plugin on
# a sample of the split, and accuracy on the whole split, for full depth and
# the bundle's own policy, in f32, f16-products (the products in f16, the
# rest in f32), mixed-f16 (all but layer norm, softmax, GELU and reductions in
# f16) and f16 (every op). BOARD_BIN overrides the board binary (e.g. the
# KEEP_SYMBOLS=1 build, same code).
#
#   bench/arm-precisions/arm-compute-modes.sh F32_BUNDLE TEST.jsonl OUT_DIR [COUNT_N] [EVERY]
#
# COUNT_N texts are counted (default 102), every EVERY-th of TEST.jsonl
# (default 17). Runs the board binary (targets/build.sh aarch64) on the
# bundle's NNEF twin; writes OUT_DIR/summary.{json,md} (arm_compute_modes.py).
# MODES="f32 mixed-f16" picks the modes (the first is the reference; default
# all four); NO_ACCURACY="f16 ..." counts those modes without emulating the
# whole split (qemu emulates f16 arithmetic in software: hours per mode).
. "$(dirname "$0")/../common/preamble.sh"
usage="usage: bench/arm-precisions/arm-compute-modes.sh F32_BUNDLE TEST.jsonl OUT_DIR [COUNT_N] [EVERY]"
bundle="${1:?$usage}"; data="${2:?$usage}"; out="${3:?$usage}"; n="${4:-102}"; every="${5:-17}"
[ -f "$bundle/manifest.json" ] || { echo "arm-compute-modes: $bundle: no manifest.json" >&2; exit 2; }
[ -f "$data" ] || { echo "arm-compute-modes: $data: no such file" >&2; exit 2; }
# Checked before the builds below.
for v in "COUNT_N=$n" "EVERY=$every"; do
  [[ "${v#*=}" =~ ^[1-9][0-9]*$ ]] || { echo "arm-compute-modes: $v: give a positive whole number" >&2; exit 2; }
done
for m in ${MODES:-} ${NO_ACCURACY:-}; do
  case "$m" in f32|f16-products|mixed-f16|f16) ;; *)
    echo "arm-compute-modes: compute mode \"$m\" (MODES/NO_ACCURACY): give f32, f16-products, mixed-f16 or f16" >&2; exit 2 ;;
  esac
done
release_bins "$E"
board="${BOARD_BIN:-$root/targets/out/aarch64-unknown-linux-gnu/edge-runtime}"
[ -x "$board" ] || "$root/targets/build.sh" aarch64
mkdir -p "$out"
[ -f "$out/twin/manifest.json" ] || "$E" to-nnef --bundle "$bundle" --out "$out/twin"
python3 "$here/arm_compute_modes.py" "$board" "$out/twin" "$data" "$out" --count-n "$n" --every "$every" \
  $(for m in ${MODES:-}; do printf -- '--compute %s ' "$m"; done) \
  $(for m in ${NO_ACCURACY:-}; do printf -- '--no-accuracy %s ' "$m"; done) | tee "$out/run.log"

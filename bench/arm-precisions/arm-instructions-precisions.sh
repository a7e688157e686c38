#!/usr/bin/env bash
# What each precision costs on aarch64, counted in guest instructions per text
# at full depth under qemu-user (qemu timings mean nothing, counts do
# not depend on the host). One bundle, as f32, f16 (computing in f16) and the
# int8 forms, on a Pi 4 class core (cortex-a72: NEON, i32 8x8 kernel) and a
# Pi 5 class core (cortex-a76: + fp16 arithmetic and dot-product kernels;
# TRACT_CPU_ISA=+fp16 because qemu shows the host's /proc/cpuinfo).
#
#   bench/arm-precisions/arm-instructions-precisions.sh F32_BUNDLE TEST.jsonl OUT_DIR [N_TEXTS]
#
# Counts with targets/count_instructions.py; OUT_DIR/summary.md is
# summarize_arm_precisions.py's table.
. "$(dirname "$0")/../common/preamble.sh"
usage="usage: bench/arm-precisions/arm-instructions-precisions.sh F32_BUNDLE TEST.jsonl OUT_DIR [N_TEXTS]"
f32="${1:?$usage}"; test_="${2:?$usage}"; out="${3:?$usage}"; n="${4:-5}"
a64="$target/aarch64-unknown-linux-gnu/release/edge-runtime"
[ -x "$a64" ] || (cd "$root" && "$root/targets/setup.sh" aarch64 && cargo build --release -p edge-runtime --bin edge-runtime --target aarch64-unknown-linux-gnu)
mkdir -p "$out"
[ -f "$out/f16/manifest.json" ] || "$target/release/quantize" --bundle "$f32" --to f16 --out "$out/f16" > /dev/null
for form in weight-only dynamic-i8; do
  [ -f "$out/int8-$form/manifest.json" ] || "$target/release/quantize" --bundle "$f32" --to int8 --int8-form "$form" --out "$out/int8-$form" > /dev/null
done
texts "$test_" "$n" > "$out/texts.txt"
count() { # cpu name bundle compute
  local f="$out/$1-$2.json"
  [ -f "$f" ] && return
  TRACT_CPU_ISA=$([ "$1" = cortex-a76 ] && echo +fp16 || true) python3 "$root/targets/count_instructions.py" \
    "$a64" "$3" "$out/texts.txt" --n "$n" --qemu-cpu "$1" --compute "$4" --full-only | tail -1 > "$f.tmp"
  mv "$f.tmp" "$f"
}
# Most telling first (each count takes minutes): the Pi 5 core with each
# arithmetic, then the Pi 4 core. Weight-only int8 computes in f32 (its weights
# are widened at load), so it is counted only if COUNT_WEIGHT_ONLY=1.
count cortex-a76 f32 "$f32" f32
count cortex-a76 f16 "$out/f16" f16
count cortex-a76 int8-dynamic-i8 "$out/int8-dynamic-i8" f32
count cortex-a72 f32 "$f32" f32
count cortex-a72 int8-dynamic-i8 "$out/int8-dynamic-i8" f32
if [ "${COUNT_WEIGHT_ONLY:-0}" = 1 ]; then
  count cortex-a76 int8-weight-only "$out/int8-weight-only" f32
fi
python3 "$here/summarize_arm_precisions.py" "$out" | tee "$out/summary.md"

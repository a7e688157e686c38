#!/usr/bin/env bash
# Our board binary against onnxruntime's official aarch64 build, side by side,
# in guest instructions under qemu-user on an emulated Cortex-A72 (Pi 4) and
# Cortex-A76 (Pi 5): per text at every exit layer, full depth and the load.
#
#   targets/arm-vs-onnxruntime.sh BUNDLE DATA.jsonl OUT_DIR [N]
#
# BUNDLE: an f32 ONNX bundle (`trainer export`); DATA.jsonl: texts (the first N,
# default 50). Ours: the board binary (targets/build.sh aarch64) on the
# bundle's NNEF twin, one thread. onnxruntime: the bundle merged into one graph
# (bench/common/merge_bundle_onnx.py: what a user without early exit runs), one
# session on one thread with every graph optimization, the same token ids, run
# by Debian's aarch64 CPython (targets/aarch64-python.sh). Each program sees
# the emulated core's /proc/cpuinfo (targets/aarch64-run.sh); instructions are
# counted by a TCG plugin (targets/insn-count/). Nothing is installed on the
# host. Writes OUT_DIR/summary.json and summary.md (targets/arm_vs_onnxruntime.py), and
# the cold start to the first answer, OUT_DIR/first-answer.{json,md}. A
# calibrated bundle (`edge-runtime calibrate`) is also counted under its own policy.
#
#   EVERY=K        take every K-th text of DATA.jsonl (the first N such) instead
#                  of the first N: a sample of the split's lengths and exits
#   EXIT_LAYERS=L  the fixed exit layers to count: all (default), none, or 1,2,6
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
case "${1:-}" in -h|--help|"") sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; [ -n "${1:-}" ]; exit $? ;; esac
bundle="$1"; data="$2"; out="$3"; n="${4:-50}"
[ -f "$bundle/manifest.json" ] || { echo "arm-vs-onnxruntime: $bundle: no manifest.json (give an f32 ONNX bundle)" >&2; exit 2; }
[ -f "$data" ] || { echo "arm-vs-onnxruntime: $data: no such file" >&2; exit 2; }
# Checked before any of the set-up below (builds, sysroots: minutes on a fresh machine).
every="${EVERY:-1}"
[[ "$every" =~ ^[1-9][0-9]*$ ]] || { echo "arm-vs-onnxruntime: EVERY=$every: give a positive whole number" >&2; exit 2; }
[[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "arm-vs-onnxruntime: N=$n: give a positive whole number of texts" >&2; exit 2; }
exit_layers="${EXIT_LAYERS:-all}"
[[ "$exit_layers" =~ ^(all|none|[1-9][0-9]*(,[1-9][0-9]*)*)$ ]] ||
  { echo "arm-vs-onnxruntime: EXIT_LAYERS=$exit_layers: give all, none or layers such as 1,2,6" >&2; exit 2; }
cd "$root"
E="${CARGO_TARGET_DIR:-target}/release/edge-runtime"
[ -x "$E" ] || cargo build --release -p edge-runtime
board=targets/out/aarch64-unknown-linux-gnu/edge-runtime
[ -x "$board" ] || targets/build.sh aarch64
[ -x .venv-tools/bin/python ] || scripts/setup-test-env.sh
targets/aarch64-python.sh >/dev/null
targets/insn-count/setup.sh >/dev/null
mkdir -p "$out/inputs"
"$E" to-nnef --bundle "$bundle" --out "$out/inputs/twin"
.venv-tools/bin/python bench/common/merge_bundle_onnx.py "$bundle" "$out/inputs/merged.onnx"
awk -v k="$every" '(NR - 1) % k == 0' "$data" | head -n "$n" > "$out/inputs/texts.jsonl"
.venv-tools/bin/python -c 'import json,sys; [print(json.loads(l)["text"]) for l in open(sys.argv[1]) if l.strip()]' \
  "$out/inputs/texts.jsonl" > "$out/inputs/texts.txt"
"$E" tokenize --bundle "$bundle" --data "$out/inputs/texts.jsonl" > "$out/inputs/ids.jsonl"
python3 targets/arm_vs_onnxruntime.py "$board" "$out/inputs/twin" "$out/inputs/merged.onnx" \
  "$out/inputs/texts.txt" "$out/inputs/ids.jsonl" "$out" --n "$n" --exit-layers "$exit_layers" --first-answer | tee "$out/run.log"

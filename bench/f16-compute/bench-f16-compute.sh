#!/usr/bin/env bash
# f16 arithmetic: what computing in f16 does to accuracy and exit
# decisions. (What it saves on an aarch64 core with FEAT_FP16:
# bench/arm-precisions/arm-instructions-precisions.sh.)
#
#   bench/f16-compute/bench-f16-compute.sh BUNDLE DEV.jsonl TEST.jsonl OUT_DIR
#
# 1. quantize --to f16 with DEV as calibration: the report compares f32 weights
#    vs f16 weights, once computing in f32 and once in f16 (exit changes too);
# 2. edge-runtime bench on TEST: the f32 bundle in f32, the f16 bundle in f16.
#    This x86 CPU has no f16 arithmetic, so tract emulates it: the accuracy is
#    what f16 hardware computes, the latency is not.
# Writes OUT_DIR/summary.{json,md} (summarize_f16_compute.py).
. "$(dirname "$0")/../common/preamble.sh"
usage="usage: bench/f16-compute/bench-f16-compute.sh BUNDLE DEV.jsonl TEST.jsonl OUT_DIR"
bundle="${1:?$usage}"; dev="${2:?$usage}"; test_="${3:?$usage}"; out="${4:?$usage}"
bin="$target/release"
release_bins "$bin/quantize"
mkdir -p "$out"
"$bin/quantize" --bundle "$bundle" --to f16 --out "$out/f16" --calibration "$dev" | tee "$out/quantize-f16.log"
policies=(--speeds 0.1,0.3,0.5,0.8 --patience 1,2)
"$bin/edge-runtime" --compute f32 bench --bundle "$bundle" --data "$test_" "${policies[@]}" --out "$out/bench-f32" > /dev/null
"$bin/edge-runtime" --compute f16 bench --bundle "$out/f16" --data "$test_" "${policies[@]}" --out "$out/bench-f16-compute" > /dev/null
python3 "$here/summarize_f16_compute.py" "$out"

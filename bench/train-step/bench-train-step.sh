#!/usr/bin/env bash
# Side-by-side timing of one BERT training step: PyTorch (HF transformers,
# bench/train-step/bench_train_step.py) vs our candle trainer (`trainer bench-step`),
# same model size, batch, sequence length and thread count.
#
# Usage: bench/train-step/bench-train-step.sh [--layers N] [--hidden H] [--heads A]
#          [--intermediate I] [--vocab-size V] [--max-len L] [--batch-size B]
#          [--threads T] [--steps N] [--warmup W] [--rounds R] [--out FILE]
#          [--no-build] [--trainer PATH]...
# Every flag can also be given as an env var: LAYERS HIDDEN HEADS INTERMEDIATE
# VOCAB_SIZE MAX_LEN BATCH_SIZE THREADS STEPS WARMUP ROUNDS OUT NO_BUILD=1
# TRAINERS="PATH PATH".
# --trainer (repeatable) times the given trainer builds instead of this
# checkout's, each in every round (e.g. a saved copy of an older build beside
# the new one); it implies --no-build.
# Flags win over env vars. Defaults are the "small-12" config.
#
# Needs python3 (>= 3.9) and PyPI access the first time (torch + transformers
# go into .venv-bench, which is git-ignored; torch's default Linux wheel pulls
# in CUDA libraries, several GB, but only PyPI is reachable so we take it).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"

LAYERS="${LAYERS:-12}"
HIDDEN="${HIDDEN:-128}"
HEADS="${HEADS:-2}"
INTERMEDIATE="${INTERMEDIATE:-512}"
VOCAB_SIZE="${VOCAB_SIZE:-6000}"
MAX_LEN="${MAX_LEN:-64}"
BATCH_SIZE="${BATCH_SIZE:-32}"
THREADS="${THREADS:-2}"
STEPS="${STEPS:-10}"
WARMUP="${WARMUP:-2}"
ROUNDS="${ROUNDS:-2}"
OUT="${OUT:-runs/bench-train-step/results.jsonl}"
NO_BUILD="${NO_BUILD:-0}"
read -r -a trainers <<< "${TRAINERS:-}"

usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --layers) LAYERS="$2"; shift 2 ;;
    --hidden) HIDDEN="$2"; shift 2 ;;
    --heads) HEADS="$2"; shift 2 ;;
    --intermediate) INTERMEDIATE="$2"; shift 2 ;;
    --vocab-size) VOCAB_SIZE="$2"; shift 2 ;;
    --max-len) MAX_LEN="$2"; shift 2 ;;
    --batch-size) BATCH_SIZE="$2"; shift 2 ;;
    --threads) THREADS="$2"; shift 2 ;;
    --steps) STEPS="$2"; shift 2 ;;
    --warmup) WARMUP="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --no-build) NO_BUILD=1; shift ;;
    --trainer) trainers+=("$2"); NO_BUILD=1; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench-train-step: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done

# --- PyTorch venv -------------------------------------------------------------
venv="$root/.venv-bench"
py="$venv/bin/python"
if [ ! -x "$py" ]; then
  echo "bench-train-step: creating $venv" >&2
  python3 -m venv "$venv"
fi
# Only hit PyPI when something is missing, so reruns work offline.
if ! "$py" -c 'import torch, transformers' >/dev/null 2>&1; then
  echo "bench-train-step: installing torch + transformers into $venv (large download)" >&2
  "$py" -m pip install --quiet --upgrade pip
  "$py" -m pip install torch transformers
fi

# --- Rust trainer -------------------------------------------------------------
trainer="${CARGO_TARGET_DIR:-$root/target}/release/trainer"
if [ "${#trainers[@]}" -eq 0 ]; then trainers=("$trainer"); fi
if [ "$NO_BUILD" != 1 ]; then
  # Always (re)build so we never time a stale binary; a no-op when up to date.
  if ! command -v cargo >/dev/null 2>&1; then
    echo "bench-train-step: cargo not found; install Rust or pass --no-build" \
         "with a prebuilt $trainer" >&2
    exit 1
  fi
  cargo build --release -p trainer
fi
for t in "${trainers[@]}"; do
  if [ ! -x "$t" ]; then
    echo "bench-train-step: $t does not exist;" \
         "build it with: cargo build --release -p trainer" >&2
    exit 1
  fi
done

# --- Alternate the two implementations ---------------------------------------
# Same configuration for both. (--labels is left at its default of 2 because
# `trainer bench-step` always uses two labels.)
model_args=(--layers "$LAYERS" --hidden "$HIDDEN" --heads "$HEADS"
  --intermediate "$INTERMEDIATE" --vocab-size "$VOCAB_SIZE" --max-len "$MAX_LEN"
  --batch-size "$BATCH_SIZE" --steps "$STEPS" --warmup "$WARMUP")

mkdir -p "$(dirname "$OUT")"
: > "$OUT"  # overwrite: one file = one comparison run

# Keeps only the last line of stdout that looks like a JSON object, so stray
# log output cannot corrupt the JSONL; fails loudly if there is none.
append_json() { # name
  local line
  line="$(grep '^{' | tail -n1 || true)"
  if [ -z "$line" ]; then
    echo "bench-train-step: $1 printed no JSON result" >&2
    exit 1
  fi
  echo "$line" | tee -a "$OUT"
}

# torch, candle, torch, candle, ...: interleaving spreads machine noise
# (thermal throttling, other jobs) over both instead of biasing one.
for round in $(seq 1 "$ROUNDS"); do
  echo "bench-train-step: round $round/$ROUNDS: pytorch" >&2
  # OMP/MKL vars cap the thread pools torch creates at import time, in
  # addition to torch.set_num_threads in the script.
  OMP_NUM_THREADS="$THREADS" MKL_NUM_THREADS="$THREADS" \
    "$py" bench/train-step/bench_train_step.py "${model_args[@]}" --threads "$THREADS" \
    | append_json pytorch
  for t in "${trainers[@]}"; do
    echo "bench-train-step: round $round/$ROUNDS: candle ($t)" >&2
    # candle's CPU ops run on rayon's global pool.
    RAYON_NUM_THREADS="$THREADS" "$t" bench-step "${model_args[@]}" --json \
      | sed "s|^{|{\"build\": \"$t\", |" | append_json candle
  done
done

# --- Summary table ------------------------------------------------------------
"$py" - "$OUT" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {}
builds = list(dict.fromkeys(r.get("build") for r in rows if r["impl"] == "candle"))
for r in rows:
    name = r["impl"] if r["impl"] != "candle" or len(builds) < 2 else f"candle {r['build']}"
    by.setdefault(name, []).append(r)
c = rows[0]
print(f"\nconfig: layers {c['layers']}, hidden {c['hidden']}, batch {c['batch_size']}, "
      f"max_len {c['max_len']}, threads {c['threads']}, {c['steps']} timed steps/round\n")
print("| impl | version | rounds | median step ms (per round) | median step ms | min step ms |")
print("|---|---|---|---|---|---|")
med = {}
for impl in by:
    rs = by.get(impl, [])
    if not rs:
        continue
    per = [r["step_ms_median"] for r in rs]
    med[impl] = statistics.median(per)
    ver = rs[0].get("torch") or rs[0].get("candle") or "?"
    print(f"| {impl} | {ver} | {len(rs)} | {', '.join(f'{x:.1f}' for x in per)} "
          f"| {med[impl]:.1f} | {min(r['step_ms_min'] for r in rs):.1f} |")
threads = {r["threads"] for r in rows}
if len(threads) > 1:
    print(f"\nWARNING: implementations ran with different thread counts: {sorted(threads)}")
for impl in med:
    if impl != "pytorch" and "pytorch" in med:
        print(f"\n{impl}/pytorch median step time ratio: {med[impl] / med['pytorch']:.2f}x "
              "(< 1 means candle is faster)")
EOF
echo "bench-train-step: results in $OUT" >&2

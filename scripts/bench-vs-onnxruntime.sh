#!/usr/bin/env bash
# Our runtime next to onnxruntime on the same bundle graphs, the same texts,
# batch 1, in one run: full depth in both (1 and 2 threads), plus our early-exit
# policies. Rounds alternate the two runtimes so machine noise hits both.
#
#   scripts/bench-vs-onnxruntime.sh BUNDLE DATA.jsonl OUT_DIR [ROUNDS]
#
# Writes OUT_DIR/ort-tT-rR.json, OUT_DIR/ours-tT-rR/report.{json,md,svg} and
# OUT_DIR/summary.{json,md}. Needs .venv-tools (scripts/setup-test-env.sh).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bundle="$1"; data="$2"; out="$3"; rounds="${4:-2}"
E="${EDGE_RUNTIME_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/edge-runtime}"
PY="$root/.venv-tools/bin/python"
[ -x "$E" ] || (cd "$root" && cargo build --release --workspace)
[ -x "$PY" ] || "$root/scripts/setup-test-env.sh"
mkdir -p "$out"
"$E" tokenize --bundle "$bundle" --data "$data" > "$out/ids.jsonl"
for r in $(seq 1 "$rounds"); do
  for t in 1 2; do
    echo "round $r, $t thread(s): onnxruntime" >&2
    "$PY" "$root/scripts/ort_bench.py" "$bundle" "$out/ids.jsonl" --threads "$t" > "$out/ort-t$t-r$r.json"
    echo "round $r, $t thread(s): edge-runtime" >&2
    "$E" --threads "$t" bench --bundle "$bundle" --data "$data" --out "$out/ours-t$t-r$r" > /dev/null
  done
done
"$PY" "$root/scripts/summarize_vs_ort.py" "$out" "$rounds"

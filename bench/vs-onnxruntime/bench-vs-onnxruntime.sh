#!/usr/bin/env bash
# Our runtime next to onnxruntime on the same model, the same texts, in one
# run: onnxruntime on the bundle merged into one full-depth graph (its
# strongest setup: it optimizes and fuses across the whole model) and segment
# by segment, both at full depth; ours at full depth and under each
# early-exit policy. At batch 1 with 1 and 2 threads, and at batch 8 with 1
# thread. Rounds alternate the runtimes so machine noise hits all of them.
#
#   bench/vs-onnxruntime/bench-vs-onnxruntime.sh BUNDLE DATA.jsonl OUT_DIR [ROUNDS]
#
# Also converts the bundle to its NNEF twin (OUT_DIR/nnef, `edge-runtime
# to-nnef`), checks it gives the same logits, and times its load and full
# depth at batch 1, 1 thread, in the same rounds.
# Writes OUT_DIR/merged.onnx (checked to give our logits), the per-run JSON,
# and OUT_DIR/summary.{json,md} (summarize_vs_ort.py). Needs .venv-tools
# (scripts/setup-test-env.sh; made here if missing). onnxruntime runs through
# bench/common/ort_bench.py on the graph bench/common/merge_bundle_onnx.py writes.
. "$(dirname "$0")/../common/preamble.sh"
usage="usage: bench/vs-onnxruntime/bench-vs-onnxruntime.sh BUNDLE DATA.jsonl OUT_DIR [ROUNDS]"
bundle="${1:?$usage}"; data="${2:?$usage}"; out="${3:?$usage}"; rounds="${4:-2}"
release_bins "$E"
tools_venv
mkdir -p "$out"
"$E" tokenize --bundle "$bundle" --data "$data" > "$out/ids.jsonl"
"$PY" "$common/merge_bundle_onnx.py" "$bundle" "$out/merged.onnx"
# The merged graph must compute what we compute.
"$PY" "$common/ort_bench.py" "$bundle" "$out/ids.jsonl" --one-graph "$out/merged.onnx" --logits "$out/merged-logits.jsonl" > /dev/null
texts "$data" | "$E" classify --bundle "$bundle" --full --with-logits > "$out/ours-logits.jsonl"
"$E" to-nnef --bundle "$bundle" --out "$out/nnef"
texts "$data" | "$E" classify --bundle "$out/nnef" --full --with-logits > "$out/nnef-logits.jsonl"
"$PY" - "$out" <<'PY'
import json, sys
out = sys.argv[1]
a = [json.loads(l) for l in open(f"{out}/merged-logits.jsonl")]
b = [json.loads(l)["logits"] for l in open(f"{out}/ours-logits.jsonl")]
n = [json.loads(l)["logits"] for l in open(f"{out}/nnef-logits.jsonl")]
d = max(abs(x - y) for r, s in zip(a, b) for x, y in zip(r, s))
dn = max(abs(x - y) for r, s in zip(n, b) for x, y in zip(r, s))
json.dump({"texts": len(a), "max_abs_logit_difference": d, "nnef_twin_max_abs_logit_difference": dn}, open(f"{out}/merged-parity.json", "w"))
print(f"merged graph vs edge-runtime: {len(a)} texts, max |Δlogit| {d:.2e}; NNEF twin {dn:.2e}", file=sys.stderr)
assert len(a) == len(b) and d < 1e-4, "the merged graph does not compute the bundle's logits"
assert len(n) == len(b) and dn == 0, "the NNEF twin does not compute the bundle's logits"
PY
for r in $(seq 1 "$rounds"); do
  for cfg in "1 1" "2 1" "1 8"; do
    set -- $cfg; t=$1; b=$2
    echo "round $r, $t thread(s), batch $b" >&2
    "$PY" "$common/ort_bench.py" "$bundle" "$out/ids.jsonl" --threads "$t" --batch "$b" --one-graph "$out/merged.onnx" > "$out/ort-one-t$t-b$b-r$r.json"
    "$PY" "$common/ort_bench.py" "$bundle" "$out/ids.jsonl" --threads "$t" --batch "$b" > "$out/ort-seg-t$t-b$b-r$r.json"
    "$E" --threads "$t" bench --bundle "$bundle" --data "$data" --batch-size "$b" --out "$out/ours-t$t-b$b-r$r" > /dev/null
    if [ "$t$b" = 11 ]; then
      "$E" --threads 1 bench --bundle "$out/nnef" --data "$data" --full-only --out "$out/nnef-t1-b1-r$r" > /dev/null
    fi
  done
done
"$PY" "$here/summarize_vs_ort.py" "$out" "$rounds"

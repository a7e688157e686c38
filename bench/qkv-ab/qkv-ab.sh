#!/usr/bin/env bash
# One matrix product for the query, key and value projections (as
# onnxruntime's fused attention does), measured: writes a copy of BUNDLE with
# each layer's three products fused (fuse_qkv.py, beside this script), checks
# it gives the same labels and logits on DATA at full depth, then times both
# bundles with the release binary, rounds alternating (bench/common/ab_bench.py).
#
#   bench/qkv-ab/qkv-ab.sh BUNDLE DATA.jsonl OUT_DIR [ROUNDS]
#
# Needs .venv-tools (scripts/setup-test-env.sh) for the onnx package.
# Writes OUT_DIR/parity.json, OUT_DIR/timing.json and OUT_DIR/summary.md.
. "$(dirname "$0")/../common/preamble.sh"
cd "$root"
usage="usage: bench/qkv-ab/qkv-ab.sh BUNDLE DATA.jsonl OUT_DIR [ROUNDS]"
bundle="${1:?$usage}"; data="${2:?$usage}"; out="${3:?$usage}"; rounds="${4:-3}"
bin="$target/release/edge-runtime"
release_bins "$bin"
mkdir -p "$out"
rm -rf "$out/qkv-bundle"   # a leftover of an interrupted run
"$PY" "$here/fuse_qkv.py" "$bundle" "$out/qkv-bundle"
texts="$out/texts.txt"
texts "$data" > "$texts"
"$bin" classify --bundle "$bundle" --full --with-logits < "$texts" > "$out/separate.jsonl"
"$bin" classify --bundle "$out/qkv-bundle" --full --with-logits < "$texts" > "$out/qkv.jsonl"
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
a = [json.loads(l) for l in open(f"{out}/separate.jsonl")]
b = [json.loads(l) for l in open(f"{out}/qkv.jsonl")]
diff = max(abs(p - q) for x, y in zip(a, b) for p, q in zip(x["logits"], y["logits"]))
same = sum(x["label"] == y["label"] for x, y in zip(a, b))
assert len(a) == len(b) and same == len(a) and diff <= 1e-5, (len(a), len(b), same, diff)
json.dump({"texts": len(a), "same_labels": same, "logits_max_abs_diff": diff}, open(f"{out}/parity.json", "w"))
print(f"fused Q/K/V: same labels on {len(a)} texts, logits within {diff:.1e}")
PY
python3 "$common/ab_bench.py" --setup "separate=$bin:$bundle" --setup "qkv=$bin:$out/qkv-bundle" \
  --data "$data" --out "$out" --rounds "$rounds"
rm -r "$out/qkv-bundle" "$out"/*.jsonl "$texts"

#!/usr/bin/env bash
# The edge runtime's allocator, measured side by side: builds the release
# binary with mimalloc (the default) and with the C library's malloc (the
# same features without `mimalloc`), then times both on BUNDLE over DATA at
# full depth and under the bundle's policy, batch 1 and 8, one thread, rounds
# alternating, with each bench's load time and peak resident memory
# (bench/common/ab_bench.py).
#
#   bench/allocator-ab/allocator-ab.sh BUNDLE DATA.jsonl OUT_DIR [ROUNDS]
#
# Only edge-runtime rebuilds between the two (tract's features are the same).
# Writes OUT_DIR/timing.json and OUT_DIR/summary.md.
. "$(dirname "$0")/../common/preamble.sh"
cd "$root"
usage="usage: bench/allocator-ab/allocator-ab.sh BUNDLE DATA.jsonl OUT_DIR [ROUNDS]"
bundle="${1:?$usage}"; data="${2:?$usage}"; out="${3:?$usage}"; rounds="${4:-5}"
tgt="$target"
mkdir -p "$out/bin"
cargo build --release -p edge-runtime --bin edge-runtime --no-default-features --features onnx,cli,tools,plots,multithread
cp "$tgt/release/edge-runtime" "$out/bin/edge-runtime-system"
cargo build --release -p edge-runtime --bin edge-runtime
cp "$tgt/release/edge-runtime" "$out/bin/edge-runtime-mimalloc"
for a in system mimalloc; do
  "$out/bin/edge-runtime-$a" --version --verbose | grep -qx "allocator: $a"
done
python3 "$common/ab_bench.py" --setup "system=$out/bin/edge-runtime-system:$bundle" \
  --setup "mimalloc=$out/bin/edge-runtime-mimalloc:$bundle" --data "$data" --out "$out" --rounds "$rounds"
rm -r "$out/bin"

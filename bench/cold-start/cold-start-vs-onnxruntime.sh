#!/usr/bin/env bash
# Cold start side by side, rounds alternating: our load of an NNEF twin and its
# first answer (examples/load_phases: every plan at load on one thread, lazy
# plans on one thread and on all cores) and onnxruntime creating its session
# for the same model as one graph (one thread, all graph optimizations;
# bench/common/ort_bench.py --session-only).
#   bench/cold-start/cold-start-vs-onnxruntime.sh TWIN MERGED.onnx [ROUNDS] > LOG
# MERGED.onnx: bench/vs-onnxruntime/bench-vs-onnxruntime.sh writes it (OUT_DIR/merged.onnx).
. "$(dirname "$0")/../common/preamble.sh"
usage="usage: bench/cold-start/cold-start-vs-onnxruntime.sh TWIN MERGED.onnx [ROUNDS]"
twin="${1:?$usage}"; merged="${2:?$usage}"; rounds="${3:-5}"
(cd "$root" && cargo build --release -p edge-runtime --example load_phases -q)
for round in $(seq "$rounds"); do
  echo "round $round, edge-runtime: $("$root/target/release/examples/load_phases" "$twin" 1 | sed 's/^round 1: //')"
  ms="$("$PY" "$common/ort_bench.py" --one-graph "$merged" --threads 1 --session-only \
    | python3 -c 'import json, sys; print(format(json.load(sys.stdin)["session_create_ms"], ".1f"))')"
  echo "round $round, onnxruntime: one-graph session created in $ms ms"
done

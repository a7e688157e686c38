#!/usr/bin/env bash
# Cold start side by side, rounds alternating: our load of an NNEF twin and its
# first answer (examples/load_phases: every plan at load on one thread, lazy
# plans on one thread and on all cores) and onnxruntime creating its session
# for the same model as one graph (one thread, all graph optimizations).
#   scripts/cold-start-vs-onnxruntime.sh TWIN MERGED.onnx [ROUNDS] > LOG
# MERGED.onnx: scripts/bench-vs-onnxruntime.sh writes it (OUT_DIR/merged.onnx).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
twin="$1"; merged="$2"; rounds="${3:-5}"
PY="${PYTHON:-$root/.venv-tools/bin/python}"
(cd "$root" && cargo build --release -p edge-runtime --example load_phases -q)
for round in $(seq "$rounds"); do
  echo "round $round, edge-runtime: $("$root/target/release/examples/load_phases" "$twin" 1 | sed 's/^round 1: //')"
  "$PY" - "$merged" "$round" <<'PY'
import sys, time
import onnxruntime as ort
opts = ort.SessionOptions()
opts.intra_op_num_threads = 1
opts.inter_op_num_threads = 1
opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
t = time.perf_counter()
ort.InferenceSession(sys.argv[1], opts, providers=["CPUExecutionProvider"])
print(f"round {sys.argv[2]}, onnxruntime: one-graph session created in {(time.perf_counter() - t) * 1e3:.1f} ms")
PY
done

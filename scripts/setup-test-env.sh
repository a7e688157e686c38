#!/usr/bin/env bash
# Everything the test suite needs besides Rust, idempotently: the real data
# (scripts/fetch-data.sh) and a Python virtualenv `.venv-tools` with
# onnxruntime + numpy for the ONNX interop test, and onnx (graph merging) for
# the onnxruntime benchmark.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/fetch-data.sh"
venv="$root/.venv-tools"
if ! "$venv/bin/python" -c "import onnxruntime, onnx, numpy" 2>/dev/null; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "onnxruntime==1.32.0" "onnx==1.19.1" "numpy>=1.26,<3"
fi
"$venv/bin/python" -c "import onnxruntime as o; print('onnxruntime', o.__version__, 'ready in .venv-tools')"

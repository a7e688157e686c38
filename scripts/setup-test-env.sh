#!/usr/bin/env bash
# Everything the test suite needs besides Rust, idempotently: the real data
# (scripts/fetch-data.sh) and a Python virtualenv `.venv-tools` with
# onnxruntime + numpy for the ONNX interop test, onnx (graph merging) for the
# onnxruntime benchmark, and scikit-learn for the character n-gram baseline
# (bench/compression-table/baseline_ngram.py and its test), and maturin and pytest, which build
# and test the Python wheel (targets/python-wheels.sh, scripts/test-python.sh). An existing venv
# that lacks one of them, or has another scikit-learn or maturin, is made anew.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/fetch-data.sh"
venv="$root/.venv-tools"
sklearn_version=1.9.1
maturin_version=1.16.0
if ! "$venv/bin/python" -c "import onnxruntime, onnx, numpy, sklearn, pytest; assert sklearn.__version__ == '$sklearn_version'" 2>/dev/null ||
   [ "$("$venv/bin/maturin" --version 2>/dev/null)" != "maturin $maturin_version" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "onnxruntime==1.32.0" "onnx==1.19.1" "numpy>=1.26,<3" \
    "scikit-learn==$sklearn_version" "maturin==$maturin_version" "pytest==8.4.2"
fi
"$venv/bin/python" -c "import onnxruntime as o, sklearn as s; print('onnxruntime', o.__version__, 'and scikit-learn', s.__version__, 'ready in .venv-tools')"

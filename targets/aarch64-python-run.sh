#!/usr/bin/env bash
# The aarch64 CPython of targets/aarch64-python.sh under qemu-user, as an
# emulated Cortex core sees it (its /proc/cpuinfo included):
#   targets/aarch64-python-run.sh [--cpu cortex-a72|cortex-a76] [--] PYTHON_ARGS...
#   targets/aarch64-python-run.sh --cpu cortex-a76 -- -c 'import onnxruntime as ort; print(ort.__version__)'
# Same as `targets/aarch64-run.sh --python ...`; its header has the details.
exec "$(dirname "$0")/aarch64-run.sh" --python "$@"

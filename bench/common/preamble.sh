# The preamble every bench script sources first, before reading its arguments:
#
#   . "$(dirname "$0")/../common/preamble.sh"
#
# It sets `set -euo pipefail`, answers -h/--help with the script's header
# comment (its usage), and defines for the script:
#   root        the repository (two levels above bench/<name>/)
#   here        the script's own folder, bench/<name>
#   common      bench/common: the shared helpers (ab_bench.py, ort_bench.py, ...)
#   target      $CARGO_TARGET_DIR, else $root/target
#   E, Q, T     the release edge-runtime ($EDGE_RUNTIME_BIN wins), quantize and
#               trainer ($TRAINER_BIN wins)
#   PY          the tools venv's python, with onnx, onnxruntime and numpy
#               ($PYTHON wins; scripts/setup-test-env.sh makes the venv)
#   release_bins BIN...   builds the workspace's release binaries if one of
#               BIN... (e.g. "$E" "$Q") is missing
#   tools_venv     makes the tools venv if PY is missing
#   texts F.jsonl [N]   prints the text of each of F's first N lines (all without N)
set -euo pipefail
case "${1:-}" in
  -h|--help) sed -n '2,/^[^#]/{/^#/{s/^# \{0,1\}//;p}}' "$0"; exit 0 ;;
esac
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
here="$(cd "$(dirname "$0")" && pwd)"
common="$root/bench/common"
target="${CARGO_TARGET_DIR:-$root/target}"
E="${EDGE_RUNTIME_BIN:-$target/release/edge-runtime}"
Q="$target/release/quantize"
T="${TRAINER_BIN:-$target/release/trainer}"
PY="${PYTHON:-$root/.venv-tools/bin/python}"

release_bins() {
  local b
  for b in "$@"; do
    [ -x "$b" ] || { (cd "$root" && cargo build --release --workspace --bins); return; }
  done
}

tools_venv() {
  [ -x "$PY" ] || "$root/scripts/setup-test-env.sh"
}

texts() {
  python3 -c 'import itertools, json, sys
n = int(sys.argv[2]) if len(sys.argv) > 2 else None
for line in itertools.islice(open(sys.argv[1], encoding="utf-8"), n):
    print(json.loads(line)["text"])' "$@"
}

#!/usr/bin/env bash
# Makes DIR a fresh virtualenv with this machine's bert_edge wheel (from
# targets/python-wheels.sh, run first) and any further pip requirements:
#   targets/python-wheel-venv.sh DIR [REQUIREMENT...]
# Used by scripts/test-python.sh, targets/python-wheel-check.sh and
# bench/python-wheel/, so each tests the wheel as a user installs it.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
[ $# -ge 1 ] || { echo "usage: targets/python-wheel-venv.sh DIR [REQUIREMENT...]" >&2; exit 2; }
venv="$1"; shift
wheel=("$root"/targets/out/wheels/bert_edge-*-cp39-abi3-*"$(uname -m)".whl)
[ -f "${wheel[0]}" ] || { echo "no $(uname -m) wheel in targets/out/wheels: run targets/python-wheels.sh first" >&2; exit 1; }
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "${wheel[0]}" "$@"

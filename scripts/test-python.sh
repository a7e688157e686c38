#!/usr/bin/env bash
# The Python wheel's tests: builds the x86_64 wheel (targets/python-wheels.sh),
# installs it into a fresh virtualenv with pytest, and runs
# edge-runtime/python/tests against the release CLI (built by
# `cargo test --workspace --release`, or here if missing).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
[ -x target/release/edge-runtime ] || cargo build --release --workspace --bins
targets/python-wheels.sh x86_64
venv="$root/target/python-test-venv"
targets/python-wheel-venv.sh "$venv" "pytest==8.4.2"
# From outside the source tree, so the installed wheel is what is imported.
cd "$root/target" && "$venv/bin/python" -m pytest -q "$root/edge-runtime/python/tests" -p no:cacheprovider

#!/usr/bin/env bash
# Symbolic-length plan (what the runtime uses) vs a plan optimized for one
# fixed length, per length, on one encoder layer of a bundle.
#   scripts/bench-symbolic-length.sh [BUNDLE] [ITERS]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --release --example symbolic_vs_fixed -- "${1:-tests/fixtures/tiny-bundle}" "${2:-300}"

#!/usr/bin/env bash
# Symbolic-length plan (what the runtime uses) vs a plan optimized for one
# fixed length, per length, on one encoder layer of a bundle.
#   bench/symbolic-length/bench-symbolic-length.sh [BUNDLE] [ITERS]
# (edge-runtime/examples/symbolic_vs_fixed.rs; BUNDLE defaults to the tiny fixture)
. "$(dirname "$0")/../common/preamble.sh"
cd "$root"
cargo run --release --example symbolic_vs_fixed -- "${1:-tests/fixtures/tiny-bundle}" "${2:-300}"

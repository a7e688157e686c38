#!/usr/bin/env bash
# The whole test suite, as CI runs it: data and Python tools (idempotent), the
# vendored crate's provenance, the workspace's tests, the Python wheel's, then the ARM builds under
# qemu-user (aarch64: the runtime's tests and an end-to-end check against the
# x86 build; armv7: the e2e check).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
scripts/setup-test-env.sh
vendor/refresh.sh --check      # the vendored crates (tract, tokenizers) are upstream's plus our patches, nothing else
cargo test --workspace --release
scripts/test-python.sh         # the Python wheel, installed in a fresh venv, against the CLI
targets/qemu-check.sh aarch64
targets/qemu-check.sh armv7

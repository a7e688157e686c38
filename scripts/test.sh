#!/usr/bin/env bash
# The whole test suite, as CI runs it: data and Python tools (idempotent), the
# workspace's tests, then the ARM builds under qemu-user (aarch64: the runtime's
# tests and an end-to-end check against the x86 build; armv7: the e2e check).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
scripts/setup-test-env.sh
cargo test --workspace --release
targets/qemu-check.sh aarch64
targets/qemu-check.sh armv7

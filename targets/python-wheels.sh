#!/usr/bin/env bash
# Builds the `bert_edge` Python wheels (edge-runtime/python, pyo3 + maturin):
# abi3, one per platform for every CPython from 3.9 on.
#   targets/python-wheels.sh [x86_64] [aarch64] [armv7]     (default: x86_64)
#   → targets/out/wheels/bert_edge-<version>-cp39-abi3-<platform>.whl
# x86_64 is built for this machine; aarch64 and armv7 with the cross gcc of
# targets/setup.sh (the linkers in .cargo/config.toml). No target
# interpreter is needed: an abi3 module links no libpython. maturin names the
# manylinux tag from the glibc symbols the module uses and refuses a module
# that needs more than the tag allows. maturin comes from .venv-tools
# (scripts/setup-test-env.sh); MATURIN=PATH picks another.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
wanted=("$@"); [ ${#wanted[@]} -gt 0 ] || wanted=(x86_64)
maturin="${MATURIN:-$root/.venv-tools/bin/maturin}"
[ -x "$maturin" ] || scripts/setup-test-env.sh
out="$root/targets/out/wheels"
mkdir -p "$out"
for arch in "${wanted[@]}"; do
  case "$arch" in
    x86_64) target=() ;;
    aarch64) targets/setup.sh aarch64; target=(--target aarch64-unknown-linux-gnu) ;;
    armv7) targets/setup.sh armv7; target=(--target armv7-unknown-linux-gnueabihf) ;;
    *) echo "usage: targets/python-wheels.sh [x86_64] [aarch64] [armv7]" >&2; exit 2 ;;
  esac
  rm -f "$out"/bert_edge-*"$([ "$arch" = armv7 ] && echo armv7l || echo "$arch")".whl
  "$maturin" build --release --manifest-path edge-runtime/python/Cargo.toml "${target[@]}" --out "$out" --quiet
done
ls -l "$out"/bert_edge-*.whl

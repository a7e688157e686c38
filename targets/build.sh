#!/usr/bin/env bash
# Builds the stripped, size- and speed-optimised edge-runtime for a Pi class board.
#   targets/build.sh aarch64|armv7        → targets/out/<triple>/edge-runtime
# Profile `edge` (Cargo.toml): release + fat LTO, one codegen unit, stripped;
# PROFILE=edge-small also optimises the non-kernel code for size.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
case "${1:-}" in
  aarch64) triple=aarch64-unknown-linux-gnu ;;
  armv7) triple=armv7-unknown-linux-gnueabihf ;;
  *) echo "usage: targets/build.sh aarch64|armv7" >&2; exit 2 ;;
esac
"$root/targets/setup.sh" "$1"
cd "$root"
# The board binary: the CLI with bench and calibrate, without the SVG plots
# (plotters), the matrix thread pool (rayon) and the ONNX parser (it reads
# NNEF twins, `edge-runtime to-nnef`); `FEATURES` overrides, e.g.
# FEATURES=onnx,cli,tools for one that reads ONNX bundles.
profile="${PROFILE:-edge}"
# No unwind tables: the profile aborts on panic, so nothing unwinds (0.2 MB of
# the aarch64 binary, docs/results.md). Added to your flags, wherever they are:
# RUSTFLAGS replaces the config files' rustflags, a --config array adds to them.
nounwind=(-C force-unwind-tables=no)
config=()
if [ -n "${RUSTFLAGS:-}" ]; then
  export RUSTFLAGS="$RUSTFLAGS ${nounwind[*]}"
else
  config=(--config "target.$triple.rustflags=['-C', 'force-unwind-tables=no']")
fi
cargo build "${config[@]}" --profile "$profile" -p edge-runtime --bin edge-runtime --target "$triple" \
  --no-default-features --features "${FEATURES:-cli,tools}"
out="$root/targets/out/$triple"
mkdir -p "$out"
cp "${CARGO_TARGET_DIR:-$root/target}/$triple/$profile/edge-runtime" "$out/edge-runtime"
echo "$out/edge-runtime: $(stat -c %s "$out/edge-runtime") bytes ($(file -b "$out/edge-runtime" | cut -d, -f1-2))"

#!/usr/bin/env bash
# Builds the stripped, size- and speed-optimised edge-runtime for a Pi class board.
#   targets/build.sh aarch64|armv7        → targets/out/<triple>/edge-runtime
# Profile `edge` (Cargo.toml): release + fat LTO, one codegen unit, stripped;
# PROFILE=edge-small also optimises the non-kernel code for size.
# STD_FROM_SOURCE=1 builds the standard library too, with the nightly
# toolchain, and makes a panic abort at once without its message (0.85 MB
# less for aarch64; needs `rustup toolchain install nightly`, adds its rust-src).
# KEEP_SYMBOLS=1 builds the same code with its symbol table, in its own target
# dir, as targets/out/<triple>/edge-runtime.symbols (for
# targets/profile_instructions.py).
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
# NNEF twins, `edge-runtime to-nnef`), allocating with mimalloc; `FEATURES`
# overrides, e.g. FEATURES=onnx,cli,tools,mimalloc for one that reads ONNX bundles.
profile="${PROFILE:-edge}"
# No unwind tables: the profile aborts on panic, so nothing unwinds (0.2 MB of
# the aarch64 binary, docs/results/binary-size.md). Added to your flags, wherever they are:
# RUSTFLAGS replaces the config files' rustflags, a --config array adds to them.
rustflags=(-C force-unwind-tables=no)
# Linked by lld, the toolchain's own (rust-lld behind gcc's -fuse-ld=lld), with
# identical code folding: generic code instantiated per type often compiles to
# the same bytes, and --icf=all keeps one copy (0.36 MB less for aarch64, the
# same answers and instructions: docs/logs/targets/size-lld-icf.txt; Rust
# promises no distinct function addresses, so folding is sound). LINKER=gnu
# keeps the cross gcc's own linker.
gcc_ld="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin/gcc-ld"
if [ "${LINKER:-lld}" = lld ] && [ -x "$gcc_ld/ld.lld" ]; then
  rustflags+=(-C "link-arg=-B$gcc_ld" -C link-arg=-fuse-ld=lld -C link-arg=-Wl,--icf=all)
elif [ "${LINKER:-lld}" = lld ]; then
  echo "build.sh: $gcc_ld/ld.lld not found: linking with the cross gcc's own linker (no code folding)" >&2
fi
cargo=(cargo)
tgt="${CARGO_TARGET_DIR:-$root/target}"
if [ "${STD_FROM_SOURCE:-0}" = 1 ]; then
  # The standard library compiled with the program (fat LTO reaches into it),
  # and panics that abort without formatting a message: a bug then shows as
  # "Aborted" alone. Its own target dir: every crate's flags differ.
  rustup toolchain list | grep -q '^nightly' || {
    echo "STD_FROM_SOURCE=1 needs the nightly toolchain: rustup toolchain install nightly" >&2; exit 1
  }
  [[ "$(rustup component list --toolchain nightly --installed)" == *rust-src* ]] ||
    rustup component add rust-src --toolchain nightly
  cargo=(cargo +nightly -Z build-std=std,panic_abort)
  rustflags+=(-Zunstable-options -Cpanic=immediate-abort)   # nightlies since late 2025
  tgt="$tgt/std-from-source"
  export CARGO_TARGET_DIR="$tgt"
fi
name=edge-runtime
if [ "${KEEP_SYMBOLS:-0}" = 1 ]; then
  export CARGO_PROFILE_EDGE_STRIP=false CARGO_PROFILE_EDGE_SMALL_STRIP=false
  tgt="$tgt/symbols"
  export CARGO_TARGET_DIR="$tgt"
  name=edge-runtime.symbols
fi
config=()
if [ -n "${RUSTFLAGS:-}" ]; then
  export RUSTFLAGS="$RUSTFLAGS ${rustflags[*]}"
else
  flags="$(printf "'%s', " "${rustflags[@]}")"
  config=(--config "target.$triple.rustflags=[${flags%, }]")
fi
"${cargo[@]}" build "${config[@]}" --profile "$profile" -p edge-runtime --bin edge-runtime --target "$triple" \
  --no-default-features --features "${FEATURES:-cli,tools,mimalloc}"
out="$root/targets/out/$triple"
mkdir -p "$out"
cp "$tgt/$triple/$profile/edge-runtime" "$out/$name"
echo "$out/$name: $(stat -c %s "$out/$name") bytes ($(file -b "$out/$name" | cut -d, -f1-2))"

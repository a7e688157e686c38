#!/usr/bin/env bash
# Profile-guided optimization of the edge runtime, measured side by side.
# Builds edge-runtime instrumented, runs it on BUNDLE over PROFILE_DATA (use
# the dev split: never the texts it is then timed on), rebuilds it with that
# profile, then times the plain release binary and the PGO one at full depth
# on TIMED_DATA, batch 1 and 8, one thread, rounds alternating
# (bench/common/ab_bench.py).
#
#   bench/pgo-ab/pgo-ab.sh BUNDLE PROFILE_DATA.jsonl TIMED_DATA.jsonl OUT_DIR [ROUNDS]
#
# Needs llvm-profdata (`rustup component add llvm-tools`). Each of the two
# builds is a full one (its own target dir under target/: the flags differ).
# Writes OUT_DIR/timing.json and OUT_DIR/summary.md.
. "$(dirname "$0")/../common/preamble.sh"
cd "$root"
usage="usage: bench/pgo-ab/pgo-ab.sh BUNDLE PROFILE_DATA.jsonl TIMED_DATA.jsonl OUT_DIR [ROUNDS]"
bundle="${1:?$usage}"; profile_data="${2:?$usage}"; timed="${3:?$usage}"; out="${4:?$usage}"; rounds="${5:-3}"
tgt="$target"
plain="$tgt/release/edge-runtime"
release_bins "$plain"
profdata="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin/llvm-profdata"
[ -x "$profdata" ] || { echo "no llvm-profdata: rustup component add llvm-tools" >&2; exit 1; }
mkdir -p "$out"
raw="$(realpath "$out")/profraw"; rm -rf "$raw"
build() { # target dir, rustflags
  CARGO_TARGET_DIR="$1" RUSTFLAGS="$2" cargo build --release -p edge-runtime --bin edge-runtime
}
build "$tgt/pgo-gen" "-Cprofile-generate=$raw"
texts="$out/profile-texts.txt"
texts "$profile_data" > "$texts"
gen="$tgt/pgo-gen/release/edge-runtime"
"$gen" classify --bundle "$bundle" --full < "$texts" > /dev/null           # full depth
"$gen" classify --bundle "$bundle" < "$texts" > /dev/null                  # the bundle's policy
"$gen" bench --bundle "$bundle" --data "$profile_data" --batch-size 8 --limit 200 --out "$out/profile-bench" > /dev/null
"$profdata" merge -o "$out/merged.profdata" "$raw"
build "$tgt/pgo-use" "-Cprofile-use=$(realpath "$out")/merged.profdata -Cllvm-args=-pgo-warn-missing-function=false"
pgo="$tgt/pgo-use/release/edge-runtime"
python3 "$common/ab_bench.py" --setup "plain=$plain:$bundle" --setup "pgo=$pgo:$bundle" --data "$timed" --out "$out" --rounds "$rounds"

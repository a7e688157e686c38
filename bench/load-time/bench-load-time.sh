#!/usr/bin/env bash
# Bundle load time before and after a change: builds the edge runtime at
# BASE_REF (a commit before the change) beside the current tree, then times `classify` of one short text (process start, bundle
# load with all its checks, one text) with both binaries alternately, so the
# machine's noise hits them alike.
#   BASE_REF=<commit> RUNS=40 bench/load-time/bench-load-time.sh [BUNDLE ...]
# Writes docs/logs/load-time/summary.json and prints a Markdown table
# (measure_load_time.py).
. "$(dirname "$0")/../common/preamble.sh"
cd "$root"
base_ref="${BASE_REF:?set BASE_REF to the commit to compare against, e.g. BASE_REF=d507775}"
runs="${RUNS:-40}"
bundles=("$@")
[ ${#bundles[@]} -gt 0 ] || bundles=(tests/fixtures/tiny-bundle)
work="$(mktemp -d)"
trap 'git worktree remove --force "$work/base" 2>/dev/null || true; rm -rf "$work"' EXIT
git worktree add --detach "$work/base" "$base_ref" >/dev/null
# The same target directory and feature set: only the workspace's own crates rebuild.
(cd "$work/base" && CARGO_TARGET_DIR="$root/target" cargo build --release --workspace --bins -q)
cp target/release/edge-runtime "$work/edge-runtime-base"
cargo build --release --workspace --bins -q
cp target/release/edge-runtime "$work/edge-runtime-new"
python3 "$here/measure_load_time.py" --base "$work/edge-runtime-base" --new "$work/edge-runtime-new" \
  --base-ref "$(git rev-parse --short "$base_ref")" --new-ref "$(git rev-parse --short HEAD)$(git diff --quiet || echo +changes)" \
  --runs "$runs" --out docs/logs/load-time/summary.json "${bundles[@]}"

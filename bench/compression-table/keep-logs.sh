#!/usr/bin/env bash
# Keeps a compression table's runs in the repository, small enough to commit
# and complete enough that `trainer table --runs DEST` redoes the table from
# them alone: for every runs/compression/seed-S/ROW, its config.json, test
# reports, train.log and per-text predictions (gzipped; the table reads them so).
#
#   bench/compression-table/keep-logs.sh [RUNS] [DEST] [SEED-DIR/ROW]   # default runs/compression docs/logs/compression-pretrained, every run
#   target/release/trainer table --runs DEST --teacher ...  # the table again, from the kept logs
source "$(dirname "$0")/../common/preamble.sh"
cd "$root"
runs="${1:-runs/compression}"; dest="${2:-docs/logs/compression-pretrained}"
[ -d "$runs" ] || { echo "keep-logs: $runs: no such directory" >&2; exit 2; }
only="${3:-}"
kept=0
pattern=("$runs"/seed-*/*/); [ -z "$only" ] || pattern=("$runs/$only/")
for run in "${pattern[@]}"; do
  run="${run%/}"
  [ -f "$run/test-report.json" ] || ls "$run"/test-*.json >/dev/null 2>&1 || continue
  out="$dest/${run#"$runs"/}"
  mkdir -p "$out"
  for f in "$run"/config.json "$run"/train.log "$run"/test-*.json "$run"/calibrate.json; do
    [ -f "$f" ] && cp "$f" "$out/"
  done
  for p in "$run"/*.predictions.jsonl; do
    [ -f "$p" ] && gzip -9 -n -c "$p" > "$out/$(basename "$p").gz"
  done
  kept=$((kept + 1))
done
echo "kept $kept runs of $runs in $dest ($(du -sh "$dest" | cut -f1))"

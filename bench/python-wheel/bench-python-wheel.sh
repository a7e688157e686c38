#!/usr/bin/env bash
# Per-text time through the Python wheel against the Rust API, batch 1, side
# by side: edge-runtime/examples/classify_timing.rs (EdgeClassifier::classify
# in a loop) and python_timing.py (bert_edge.Classifier.classify in the same
# loop), on the same bundle and texts, alternating round by round.
#   bench/python-wheel/bench-python-wheel.sh BUNDLE DATA.jsonl OUT_DIR [ROUNDS] [PASSES]
# Policies: full depth and exit at layer 1 (the shortest call, where a fixed
# overhead weighs most). Each side loads once per round, classifies every text
# once untimed, then PASSES times timed (default 3). Builds the x86_64 wheel
# (targets/python-wheels.sh) and installs it into a fresh venv. Writes
# OUT_DIR/raw.jsonl, OUT_DIR/summary.{json,md} (per-round ratios, their
# median, the wheel sizes in targets/out/wheels).
. "$(dirname "$0")/../common/preamble.sh"
[ $# -ge 3 ] || { echo "usage: $0 BUNDLE DATA.jsonl OUT_DIR [ROUNDS] [PASSES]" >&2; exit 2; }
bundle="$1"; data="$2"; out="$3"; rounds="${4:-3}"; passes="${5:-3}"
[ -f "$bundle/manifest.json" ] || { echo "$bundle: no manifest.json (a bundle directory is expected)" >&2; exit 2; }
[ -f "$data" ] || { echo "$data: no such file" >&2; exit 2; }
mkdir -p "$out"
bundle="$(cd "$bundle" && pwd)"; out="$(cd "$out" && pwd)"
# --workspace: the workspace's features, so tract is not rebuilt for the example.
(cd "$root" && cargo build --release --workspace --examples --quiet)
"$root/targets/python-wheels.sh" x86_64 > /dev/null 2>&1
venv="$target/python-bench-venv"
"$root/targets/python-wheel-venv.sh" "$venv"
texts "$data" > "$out/texts.txt"
: > "$out/raw.jsonl"
for ((r = 1; r <= rounds; r++)); do
  for policy in full "layer 1"; do
    sides=(rust python); (( r % 2 == 0 )) && sides=(python rust)
    for side in "${sides[@]}"; do
      case "$side" in
        rust) line="$("$target/release/examples/classify_timing" "$bundle" "$out/texts.txt" "$policy" "$passes")" ;;
        python) line="$(cd "$out" && "$venv/bin/python" "$here/python_timing.py" "$bundle" "$out/texts.txt" "$policy" "$passes")" ;;
      esac
      echo "{\"round\": $r, \"policy\": \"$policy\", \"side\": \"$side\", \"result\": $line}" >> "$out/raw.jsonl"
    done
  done
done
python3 "$here/summarize_python_wheel.py" "$out" "$bundle" "$root/targets/out/wheels"

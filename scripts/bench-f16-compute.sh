#!/usr/bin/env bash
# f16 arithmetic (issue 5): what computing in f16 does to accuracy and exit
# decisions, and what it saves on an aarch64 core with FEAT_FP16.
#
#   scripts/bench-f16-compute.sh BUNDLE DEV.jsonl TEST.jsonl OUT_DIR [--no-arm]
#
# 1. quantize --to f16 with DEV as calibration: the report compares f32 weights
#    vs f16 weights, once computing in f32 and once in f16 (exit changes too);
# 2. edge-runtime bench on TEST: the f32 bundle in f32, the f16 bundle in f16.
#    This x86 CPU has no f16 arithmetic, so tract emulates it: the accuracy is
#    what f16 hardware computes, the latency is not;
# 3. unless --no-arm: guest instructions per text at full depth of the aarch64
#    build under qemu (cortex-a76, which has FEAT_FP16; TRACT_CPU_ISA=+fp16
#    because qemu shows the host's /proc/cpuinfo), f32 vs f16 compute, N_ARM texts.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bundle="$1"; dev="$2"; test_="$3"; out="$4"; arm="${5:-}"
N_ARM="${N_ARM:-5}"
bin="${CARGO_TARGET_DIR:-$root/target}/release"
[ -x "$bin/quantize" ] || (cd "$root" && cargo build --release --workspace)
mkdir -p "$out"
"$bin/quantize" --bundle "$bundle" --to f16 --out "$out/f16" --calibration "$dev" | tee "$out/quantize-f16.log"
policies=(--speeds 0.1,0.3,0.5,0.8 --patience 1,2)
"$bin/edge-runtime" --compute f32 bench --bundle "$bundle" --data "$test_" "${policies[@]}" --out "$out/bench-f32" > /dev/null
"$bin/edge-runtime" --compute f16 bench --bundle "$out/f16" --data "$test_" "${policies[@]}" --out "$out/bench-f16-compute" > /dev/null
if [ "$arm" != --no-arm ]; then
  a64="${CARGO_TARGET_DIR:-$root/target}/aarch64-unknown-linux-gnu/release/edge-runtime"
  [ -x "$a64" ] || (cd "$root" && "$root/targets/setup.sh" aarch64 && cargo build --release -p edge-runtime --bin edge-runtime --target aarch64-unknown-linux-gnu)
  python3 -c "import json,sys; [print(json.loads(l)['text']) for l in open(sys.argv[1])]" "$test_" | head -n "$N_ARM" > "$out/arm-texts.txt"
  export TRACT_CPU_ISA=+fp16
  python3 "$root/targets/count_instructions.py" "$a64" "$bundle" "$out/arm-texts.txt" --n "$N_ARM" --qemu-cpu cortex-a76 \
    --compute f32 --full-only | tail -1 > "$out/arm-f32.json"
  python3 "$root/targets/count_instructions.py" "$a64" "$out/f16" "$out/arm-texts.txt" --n "$N_ARM" --qemu-cpu cortex-a76 \
    --compute f16 --full-only | tail -1 > "$out/arm-f16.json"
fi
python3 "$root/scripts/summarize_f16_compute.py" "$out"

#!/usr/bin/env bash
# Which matrix kernel costs the fewest instructions on the board's cores: the
# board binary's build with symbols run under qemu-user on an NNEF twin, once
# per kernel (`--matmul-kernel`) and per core (Cortex-A72, Pi 4; Cortex-A76,
# Pi 5), at full depth, each profiled function by function
# (targets/profile_instructions.py: per text and for the load).
#
#   bench/arm-kernels/arm-kernels.sh TWIN TEXTS.txt OUT_DIR [N_TEXTS] [KERNEL...]
#
# TWIN: an NNEF twin (`edge-runtime to-nnef`); TEXTS.txt: one text per line
# (the first N_TEXTS, default 20). KERNELs default to tract's own choice
# ("tract") and the f32 NEON kernels that can replace it. The binary is the
# board build with its symbol table (KEEP_SYMBOLS=1 targets/build.sh aarch64:
# the same code, not stripped). Writes
# OUT_DIR/<core>-<kernel>/profile.{json,md} and OUT_DIR/summary.md
# (summarize_arm_kernels.py).
. "$(dirname "$0")/../common/preamble.sh"
usage="usage: bench/arm-kernels/arm-kernels.sh TWIN TEXTS.txt OUT_DIR [N_TEXTS] [KERNEL...]"
twin="${1:?$usage}"; texts="${2:?$usage}"; out="${3:?$usage}"; n="${4:-20}"
shift 3; [ $# -gt 0 ] && shift
kernels=("$@")
[ ${#kernels[@]} -gt 0 ] || kernels=(tract arm64simd_mmm_f32_8x8_gen arm64simd_mmm_f32_12x8_gen arm64simd_mmm_f32_16x4_gen arm64simd_mmm_f32_24x4_gen)
[ -f "$twin/manifest.json" ] || { echo "arm-kernels: $twin: no manifest.json (give an NNEF twin)" >&2; exit 2; }
[ -f "$texts" ] || { echo "arm-kernels: $texts: no such file" >&2; exit 2; }
bin="$root/targets/out/aarch64-unknown-linux-gnu/edge-runtime.symbols"
(cd "$root" && KEEP_SYMBOLS=1 targets/build.sh aarch64 >&2)
for cpu in cortex-a72 cortex-a76; do
  for kernel in "${kernels[@]}"; do
    dir="$out/$cpu-$kernel"
    [ -f "$dir/profile.json" ] && continue
    python3 "$root/targets/profile_instructions.py" "$bin" "$twin" "$texts" "$dir" --n "$n" --qemu-cpu "$cpu" \
      "--runtime-flag=--matmul-kernel=$kernel" > /dev/null
    echo "$cpu $kernel: $(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["per_text_instructions"] / 1e6, 2))' "$dir/profile.json") M instructions per text"
  done
done
python3 "$here/summarize_arm_kernels.py" "$out" | tee "$out/summary.md"

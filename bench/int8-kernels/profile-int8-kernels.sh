#!/usr/bin/env bash
# Why tract's integer matmul is slow here: profiles the f32 bundle
# and its dynamic-i8 (MatMulInteger) twin on the same texts, the latter with
# the matrix kernel tract prefers on this CPU and with TRACT_CPU_ISA edits
# that take a kernel tier away (on x86: -avx2 leaves avx_mmm_i32_8x4 in place
# of avx2_mmm_i32_8x8). Prints ms/text in the matrix products and in total.
#
#   bench/int8-kernels/profile-int8-kernels.sh F32_BUNDLE DATA.jsonl OUT_DIR [N_TEXTS] [ISA_EDIT...]
. "$(dirname "$0")/../common/preamble.sh"
usage="usage: bench/int8-kernels/profile-int8-kernels.sh F32_BUNDLE DATA.jsonl OUT_DIR [N_TEXTS] [ISA_EDIT...]"
f32="${1:?$usage}"; data="${2:?$usage}"; out="${3:?$usage}"; n="${4:-100}"; shift $(( $# >= 4 ? 4 : $# ))
edits=("$@"); [ ${#edits[@]} -gt 0 ] || edits=(-avx2)
bin="$target/release"
mkdir -p "$out"
[ -f "$out/int8-dynamic-i8/manifest.json" ] || \
  "$bin/quantize" --bundle "$f32" --to int8 --int8-form dynamic-i8 --out "$out/int8-dynamic-i8" > "$out/quantize.log"
sum() { # profile file, op-name pattern → ms/text
  awk -v pat="$2" '$0 ~ pat { s += $(NF-2) } END { printf "%.3f", s }' "$1"
}
echo "| bundle | TRACT_CPU_ISA | matrix kernels used (by time) | matmul ms/text | total ms/text |"
echo "|---|---|---|---|---|"
run() { # name bundle isa-edit
  local f="$out/profile-$1.txt"
  TRACT_CPU_ISA="$3" "$bin/edge-runtime" profile --bundle "$2" --data "$data" --limit "$n" --by-node > "$f"
  local k; k=$(grep -o 'OptMatMul [^)]*' "$f" | sed 's/OptMatMul //' | tr -d ',' | tr ' ' '\n' | awk 'NF && !seen[$0]++' | xargs)
  echo "| $1 | ${3:-(none)} | ${k:-–} | $(sum "$f" 'OptMatMul ') | $(awk '$1=="total" {print $2}' "$f") |"
}
run f32 "$f32" ""
run int8-dynamic-i8 "$out/int8-dynamic-i8" ""
for e in "${edits[@]}"; do run "int8-dynamic-i8$e" "$out/int8-dynamic-i8" "$e"; run "f32$e" "$f32" "$e"; done

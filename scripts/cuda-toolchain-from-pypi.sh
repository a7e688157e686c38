#!/usr/bin/env bash
# A CUDA 13.0 toolchain from NVIDIA's PyPI wheels, to build the trainer's
# `cuda` feature on a machine with no CUDA toolkit and no GPU (x86-64 Linux);
# the binaries run on a GPU machine whose driver supports CUDA 13.0 (R580+).
#
#   scripts/cuda-toolchain-from-pypi.sh             # set up, print the env
#   . .venv-cuda/env.sh                             # then build as usual:
#   CARGO_TARGET_DIR=/work/target-cuda cargo build --release -p trainer --features cuda
#
#   scripts/cuda-toolchain-from-pypi.sh --build BIN_DIR
#       also builds `trainer` and the CUDA test binary (trainer/tests/cuda.rs)
#       and copies them to BIN_DIR as `trainer` and `cuda-tests`, the layout
#       scripts/gpu-check.sh takes. CARGO_TARGET_DIR defaults to
#       /work/target-cuda (a separate target dir: the env changes build
#       scripts' inputs, so sharing ./target would rebuild candle each switch).
#
# What it makes (idempotent; VENV defaults to <repo>/.venv-cuda):
#   VENV/                 a Python venv holding the wheels below (nvidia/cu13)
#   VENV/cuda/            a toolkit-shaped root over them, which is what
#                         CUDA_HOME & co. point at:
#     bin, include, nvvm    -> symlinks to site-packages/nvidia/cu13/...
#     lib64/                the wheels' libraries plus the unversioned
#                           lib*.so names `-lcublas` etc. need at link time
#     lib64/stubs/libcuda.so  a stub of the driver library (see below)
#   VENV/env.sh           the environment for cargo (also printed)
#
# Versions: torch 2.11's Linux wheels (cu130) require cuda-toolkit==13.0.2,
# whose extras pin the component wheels below; taking the same ones gives the
# same sonames as the GPU machine's torch venv (libcublas.so.13,
# libcublasLt.so.13, libcurand.so.10, libnvrtc.so.13, libcudart.so.13). nvcc
# stays at 13.0: a newer one emits PTX that an R580 (CUDA 13.0) driver cannot
# JIT.
#
# libcuda: no wheel ships the driver library, nor a stub of it, and cudarc
# (dynamic-linking) links `-lcuda`. The stub defines every function cuda.h 13.0
# declares (the names a CUDA 13.0 program binds to), each returning
# CUDA_ERROR_STUB_LIBRARY (34), with soname libcuda.so.1, so the binaries
# record NEEDED libcuda.so.1 and bind to the real driver at run time. It lives
# only under lib64/stubs as libcuda.so, never as libcuda.so.1, so the loader
# can not pick it up at run time even with that dir on LD_LIBRARY_PATH.
# Since the stub holds only 13.0's API, a link that needed a newer driver entry
# point fails here rather than on the GPU machine.
#
# At run time the binaries need the CUDA 13 libraries on the loader's path,
# e.g. LD_LIBRARY_PATH=<torch venv>/lib/python3.*/site-packages/nvidia/cu13/lib
# (scripts/gpu-check.sh does this), and the driver's libcuda.so.1.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${VENV:-$root/.venv-cuda}"
python="${PYTHON:-python3}"

# Component pins of cuda-toolkit==13.0.2 (torch 2.11 cu130), exact so that a
# post release can not slip in.
wheels=(
  nvidia-cuda-nvcc==13.0.88     # nvcc, ptxas, fatbinary, nvlink, bin2c, cudafe++
  nvidia-cuda-crt==13.0.88      # nvcc's crt/ headers (host_config.h ...)
  nvidia-nvvm==13.0.88          # cicc and libdevice
  nvidia-cuda-cccl==13.0.85     # include/cccl and include/nv (cuda_fp16.h needs <nv/target>)
  nvidia-cuda-runtime==13.0.96  # cuda_runtime.h, cuda.h, cuda_bf16.h ..., libcudart.so.13
  nvidia-cublas==13.1.0.3       # libcublas.so.13, libcublasLt.so.13
  nvidia-curand==10.4.0.35      # libcurand.so.10
  nvidia-cuda-nvrtc==13.0.88    # libnvrtc.so.13
)

build_dir=""
if [ "${1:-}" = "--build" ]; then
  build_dir="${2:?usage: $0 [--build BIN_DIR]}"
elif [ $# -gt 0 ]; then
  echo "usage: $0 [--build BIN_DIR]" >&2; exit 2
fi

# 1. The venv and the wheels (skipped when the same pins are installed).
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
stamp="$venv/.cuda-wheels"
if [ "$(cat "$stamp" 2>/dev/null)" != "${wheels[*]}" ]; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${wheels[@]}"
  echo "${wheels[*]}" > "$stamp"
fi
cu13="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/nvidia/cu13"
[ -x "$cu13/bin/nvcc" ] || { echo "no nvcc at $cu13/bin/nvcc" >&2; exit 1; }

# 2. A toolkit-shaped root. nvcc.profile finds nvvm/ and include/ from ../
#    of nvcc's dir, which the symlinks provide; cudarc's build.rs adds
#    CUDA_HOME/lib64 and CUDA_HOME/lib64/stubs to the link search path.
cuda="$venv/cuda"
mkdir -p "$cuda/lib64/stubs"
for d in bin include nvvm; do ln -sfn "$cu13/$d" "$cuda/$d"; done
for f in "$cu13"/lib/lib*.so* "$cu13"/lib/*.a; do
  [ -e "$f" ] || continue
  name="$(basename "$f")"
  ln -sfn "$f" "$cuda/lib64/$name"
  case "$name" in
    *.so.*) ln -sfn "$f" "$cuda/lib64/${name%%.so.*}.so" ;;  # libcublas.so -> libcublas.so.13
  esac
done
# nvrtc's .alt variants would otherwise claim libnvrtc.alt.so etc.: harmless.

# 3. The libcuda stub, from the 13.0 headers' declarations (after the header's
#    own #define cuFoo cuFoo_v2 renames, i.e. the names the driver exports).
stub_c="$cuda/lib64/stubs/libcuda-stub.c"
if [ ! -f "$cuda/lib64/stubs/libcuda.so" ] || [ "$cu13/include/cuda.h" -nt "$cuda/lib64/stubs/libcuda.so" ] \
   || [ "$0" -nt "$cuda/lib64/stubs/libcuda.so" ]; then
  syms="$(echo '#include <cuda.h>' | cc -E -P -I"$cu13/include" - | tr -s ' \n\t' ' ' \
          | grep -oE '\bcu[A-Z][A-Za-z0-9_]*[ ]*\(' | tr -d ' (' | sort -u)"
  [ "$(echo "$syms" | wc -l)" -gt 300 ] || { echo "too few cu* symbols parsed from cuda.h" >&2; exit 1; }
  {
    echo "/* Link-time stand-in for the CUDA driver (libcuda.so.1); generated by"
    echo "   scripts/cuda-toolchain-from-pypi.sh from CUDA 13.0's cuda.h. Never loaded at"
    echo "   run time: every entry point returns CUDA_ERROR_STUB_LIBRARY (34). */"
    for s in $syms; do echo "int $s(void) { return 34; }"; done
  } > "$stub_c"
  cc -shared -fPIC -O1 -Wl,-soname,libcuda.so.1 -o "$cuda/lib64/stubs/libcuda.so" "$stub_c"
fi
rm -f "$cuda/lib64/libcuda.so.1" "$cuda/lib64/stubs/libcuda.so.1"

# 4. The environment. cudarc reads the CUDA version from `nvcc --version` and
#    the link dirs from CUDA_HOME/CUDA_PATH/CUDA_ROOT/CUDA_TOOLKIT_ROOT_DIR;
#    candle-kernels (cudaforge) takes nvcc from PATH and the target GPU from
#    CUDA_COMPUTE_CAP (90: H100/H200; kernels built for sm_90a). LIBRARY_PATH
#    repeats the link dirs for any linker invocation cudarc's -L does not reach.
cat > "$venv/env.sh" <<EOF
# Generated by scripts/cuda-toolchain-from-pypi.sh: source before cargo build --features cuda.
export CUDA_HOME="$cuda"
export CUDA_PATH="$cuda"
export CUDA_ROOT="$cuda"
export CUDA_TOOLKIT_ROOT_DIR="$cuda"
export PATH="$cuda/bin:\$PATH"
export CUDA_COMPUTE_CAP="\${CUDA_COMPUTE_CAP:-90}"
export LIBRARY_PATH="$cuda/lib64:$cuda/lib64/stubs\${LIBRARY_PATH:+:\$LIBRARY_PATH}"
EOF
echo "# source this (written to $venv/env.sh):"
cat "$venv/env.sh"
# shellcheck disable=SC1091
. "$venv/env.sh"
nvcc --version | grep -q 'release 13\.0,' || { echo "nvcc is not 13.0:" >&2; nvcc --version >&2; exit 1; }

# 5. Optionally, build and collect the binaries.
if [ -n "$build_dir" ]; then
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/target-cuda}"
  cd "$root"
  nice -n 10 cargo build --release -p trainer --features cuda
  tests_json="$(nice -n 10 cargo test --release -p trainer --features cuda --no-run --message-format=json)"
  cuda_tests="$(echo "$tests_json" | python3 -c '
import json, sys
for line in sys.stdin:
    try: m = json.loads(line)
    except ValueError: continue
    t = m.get("target") or {}
    if m.get("reason") == "compiler-artifact" and m.get("executable") and t.get("name") == "cuda" and "test" in t.get("kind", []):
        print(m["executable"])')"
  [ -n "$cuda_tests" ] || { echo "no executable for trainer/tests/cuda.rs" >&2; exit 1; }
  mkdir -p "$build_dir"
  cp "$CARGO_TARGET_DIR/release/trainer" "$build_dir/trainer"
  cp "$cuda_tests" "$build_dir/cuda-tests"
  echo "built: $build_dir/trainer $build_dir/cuda-tests (from $cuda_tests)"
  readelf -d "$build_dir/trainer" | grep NEEDED
fi

#!/usr/bin/env bash
# Runs an aarch64 program under qemu-user on this x86_64 host as if on a
# Cortex core, /proc/cpuinfo included:
#   targets/aarch64-run.sh [--cpu cortex-a72|cortex-a76] [--sysroot DIR] -- PROGRAM ARGS...
#   targets/aarch64-run.sh --cpu cortex-a72 -- targets/out/aarch64-unknown-linux-gnu/edge-runtime classify --bundle B "很好"
#   targets/aarch64-run.sh --python [--cpu ...] -- PYTHON_ARGS...   # the aarch64 CPython of targets/aarch64-python.sh
#   targets/aarch64-run.sh --python -- script.py arg1 < input      # stdin/stdout/exit status pass through
# Default core: cortex-a76 (Raspberry Pi 5); cortex-a72 is the Pi 4's. Default
# sysroot: the cross compiler's (/usr/aarch64-linux-gnu); with --python, the
# CPython sysroot (targets/.sysroot/aarch64-python). targets/aarch64-python-run.sh
# is `--python`.
# Env:
#   QEMU_AARCH64      the qemu-user binary (default qemu-aarch64-static; a dynamic
#                     qemu-aarch64 built with plugin support, for -plugin)
#   QEMU_EXTRA_ARGS   words put into qemu's command line before the program,
#                     e.g. "-plugin /path/libinsn.so -d plugin -D /tmp/qemu.log"
#   AARCH64_SYSROOT   the CPython sysroot (default targets/.sysroot/aarch64-python)
#   Everything else in the environment reaches the guest python as is
#   (PYTHONPATH, OMP_*, ...): qemu-user passes its environment through.
#
# Why the mount namespace: onnxruntime parses /proc/cpuinfo at import
# (pytorch/cpuinfo). qemu 7.2 does not emulate that file for arm guests, so the
# guest reads the host's x86 one, which the arm64 parser does not expect (it
# can abort the import). The wrapper re-executes itself in a private mount
# namespace (`unshare -m --propagation private`, needs root or user
# namespaces) and bind-mounts a generated aarch64 cpuinfo, whose CPU part and
# Features line match the emulated core, over /proc/cpuinfo there; nothing
# changes for the rest of the host. Nothing is installed on the host.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

die() { echo "aarch64-run: error: $*" >&2; exit 2; }

cpu=cortex-a76
python=0
sysroot=/usr/aarch64-linux-gnu
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu) [ $# -ge 2 ] || die "--cpu needs a value"; cpu="$2"; shift 2 ;;
    --cpu=*) cpu="${1#--cpu=}"; shift ;;
    --python) python=1; shift ;;
    --sysroot) [ $# -ge 2 ] || die "--sysroot needs a value"; sysroot="$2"; shift 2 ;;
    --) shift; break ;;
    -h|--help) awk 'NR>1 && /^#/ {sub(/^# ?/, ""); print; next} NR>1 {exit}' "$0"; exit 0 ;;
    *) break ;;
  esac
done

qemu="${QEMU_AARCH64:-qemu-aarch64-static}"
command -v "$qemu" >/dev/null || die "qemu binary '$qemu' not found (set QEMU_AARCH64)"
program=()
if [ "$python" = 1 ]; then
  sysroot="${AARCH64_SYSROOT:-$root/targets/.sysroot/aarch64-python}"
  program=("$sysroot/usr/bin/python3.11")
  [ -x "${program[0]}" ] || die "no aarch64 python at ${program[0]}: run targets/aarch64-python.sh first"
fi
[ -d "$sysroot" ] || die "no sysroot at $sysroot"
# The generated cpuinfo files live beside the other generated sysroots.
info_dir="$root/targets/.sysroot/cpuinfo"

# /proc/cpuinfo as the arm64 kernel writes it for the chosen core (one block
# per host CPU, as qemu-user shows the guest the host's CPU count).
case "$cpu" in
  cortex-a72) part=0xd08; variant=0x0; revision=3
    features="fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid" ;;
  cortex-a76) part=0xd0b; variant=0x4; revision=1
    features="fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp" ;;
  *) die "unknown --cpu '$cpu' (cortex-a72 or cortex-a76)" ;;
esac
cpuinfo="$info_dir/$cpu"
if [ ! -s "$cpuinfo" ]; then
  mkdir -p "$info_dir"
  n="$(nproc --all)"
  for ((i = 0; i < n; i++)); do
    printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: %s\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: %s\nCPU part\t: %s\nCPU revision\t: %d\n\n' \
      "$i" "$features" "$variant" "$part" "$revision"
  done > "$cpuinfo.tmp.$$"
  mv "$cpuinfo.tmp.$$" "$cpuinfo"
fi

if [ "${_AARCH64_PY_NS:-}" != "$cpuinfo" ]; then
  command -v unshare >/dev/null || die "unshare (util-linux) not found"
  again=(--cpu "$cpu" --sysroot "$sysroot")
  [ "$python" = 1 ] && again+=(--python)
  _AARCH64_PY_NS="$cpuinfo" exec unshare -m --propagation private -- "$0" "${again[@]}" -- "$@"
fi
unset _AARCH64_PY_NS
mount --bind "$cpuinfo" /proc/cpuinfo || die "cannot bind-mount $cpuinfo over /proc/cpuinfo"

# shellcheck disable=SC2206  # QEMU_EXTRA_ARGS is split into words on purpose
extra=(${QEMU_EXTRA_ARGS:-})
# Without address-space randomization (setarch -R), so that instruction counts
# repeat: with it, a run of 50 texts varied by ~9% from one run to the next
# (memory layouts change code paths), without it by ~1% (hash maps are still
# seeded at random).
norandom=()
if command -v setarch >/dev/null; then norandom=(setarch "$(uname -m)" -R); fi
exec "${norandom[@]}" "$qemu" -L "$sysroot" -cpu "$cpu" "${extra[@]}" "${program[@]}" "$@"

#!/usr/bin/env bash
# Installs what cross-compiling and emulated runs need, idempotently:
# rustup targets, Debian cross gcc + libc, qemu-user-static.
#   targets/setup.sh [aarch64] [armv7]      (default: both)
set -euo pipefail
wanted=("$@"); [ ${#wanted[@]} -gt 0 ] || wanted=(aarch64 armv7)
command -v rustup >/dev/null || {
  echo "targets/setup.sh: rustup is needed to add the ARM standard libraries (https://rustup.rs)" >&2
  exit 1
}
apt_pkgs=()
command -v qemu-aarch64-static >/dev/null || apt_pkgs+=(qemu-user-static)
for t in "${wanted[@]}"; do
  case "$t" in
    aarch64)
      rustup target list --installed | grep -qx aarch64-unknown-linux-gnu || rustup target add aarch64-unknown-linux-gnu
      command -v aarch64-linux-gnu-gcc >/dev/null || apt_pkgs+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross) ;;
    armv7)
      rustup target list --installed | grep -qx armv7-unknown-linux-gnueabihf || rustup target add armv7-unknown-linux-gnueabihf
      command -v arm-linux-gnueabihf-gcc >/dev/null || apt_pkgs+=(gcc-arm-linux-gnueabihf libc6-dev-armhf-cross) ;;
    *) echo "unknown target $t (aarch64 | armv7)" >&2; exit 2 ;;
  esac
done
if [ ${#apt_pkgs[@]} -gt 0 ]; then
  sudo_=""; [ "$(id -u)" = 0 ] || sudo_=sudo
  $sudo_ apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq --no-install-recommends "${apt_pkgs[@]}"
fi

#!/usr/bin/env bash
# The instruction counter for aarch64 programs under qemu-user: Debian's
# dynamic qemu-user build (the static one that `targets/setup.sh` relies on
# cannot load plugins) unpacked into targets/.sysroot/qemu, and the counting
# plugin (insn_count.c) built beside it. Installs nothing on the host: the
# .debs are fetched with `apt-get download` and unpacked with `dpkg-deb -x`.
#
#   targets/insn-count/setup.sh     # prints the qemu and the plugin paths
#
# Then: targets/.sysroot/qemu/run-qemu-aarch64 -plugin targets/.sysroot/qemu/libinsn_count.so,out=FILE PROGRAM ...
# (the wrapper points the loader at the unpacked libraries the host lacks).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
dir="$root/targets/.sysroot/qemu"
qemu="$dir/usr/bin/qemu-aarch64"
plugin="$dir/libinsn_count.so"
mkdir -p "$dir/debs"
if [ ! -x "$qemu" ]; then
  (cd "$dir/debs" && apt-get download qemu-user libcapstone4 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
  for deb in "$dir"/debs/*.deb; do dpkg-deb -x "$deb" "$dir"; done
fi
[ -x "$qemu" ] || { echo "insn-count: no $qemu after unpacking qemu-user (apt-get download failed?)" >&2; exit 1; }
cat > "$dir/run-qemu-aarch64" <<WRAP
#!/bin/sh
# Debian's dynamic qemu-aarch64 with the unpacked libraries the host may lack (libcapstone).
LD_LIBRARY_PATH="$dir/usr/lib/x86_64-linux-gnu\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "$qemu" "\$@"
WRAP
chmod +x "$dir/run-qemu-aarch64"
missing=$(LD_LIBRARY_PATH="$dir/usr/lib/x86_64-linux-gnu" ldd "$qemu" | grep 'not found' || true)
[ -z "$missing" ] || { echo "insn-count: $qemu needs libraries this host lacks (apt-get download them into $dir/debs):" >&2; echo "$missing" >&2; exit 1; }
if [ ! -f "$plugin" ] || [ "$root/targets/insn-count/insn_count.c" -nt "$plugin" ]; then
  cc -O2 -Wall -Wextra -Werror -shared -fPIC -fvisibility=hidden -o "$plugin" "$root/targets/insn-count/insn_count.c"
fi
echo "$dir/run-qemu-aarch64"
echo "$plugin"

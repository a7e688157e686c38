#!/usr/bin/env bash
# Re-creates vendor/tract-nnef: crates.io's tract-nnef 0.23.9 (sha256 checked,
# the checksum Cargo.lock had for it) with vendor/tract-nnef.patch applied.
#   vendor/refresh.sh            rewrite vendor/tract-nnef
#   vendor/refresh.sh --check    only check that vendor/tract-nnef is exactly that
#   vendor/refresh.sh --diff     rewrite the patch from vendor/tract-nnef (after an edit there)
# Moving to another tract: bump VERSION and SHA256 with the other tract crates,
# re-apply the changes by hand in vendor/tract-nnef, then --diff.
set -euo pipefail
VERSION=0.23.9
SHA256=3bdfc2f17d10eaf04d27f7a2d7b45e3dc41ffd0bc6c1e48d87636d7e960d441d
here="$(cd "$(dirname "$0")" && pwd)"
for tool in curl patch sha256sum; do
  command -v "$tool" >/dev/null || { echo "vendor/refresh.sh needs $tool (apt-get install curl patch coreutils)" >&2; exit 1; }
done
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
curl -sSfL "https://static.crates.io/crates/tract-nnef/tract-nnef-$VERSION.crate" -o "$work/crate.tar.gz"
echo "$SHA256  $work/crate.tar.gz" | sha256sum --check --quiet
tar -xzf "$work/crate.tar.gz" -C "$work"
if [ "${1:-}" = "--diff" ]; then
  mv "$work/tract-nnef-$VERSION" "$work/a"
  cp -r "$here/tract-nnef" "$work/b"
  (cd "$work" && diff -ru a b | grep -v '^diff -ru' | sed -E 's#^(---|\+\+\+) ([ab]/[^\t]*)\t.*#\1 \2#') > "$here/tract-nnef.patch" || true
  echo "vendor/tract-nnef.patch: $(grep -c '^+++' "$here/tract-nnef.patch") files"
  exit 0
fi
(cd "$work/tract-nnef-$VERSION" && patch --quiet -p1 < "$here/tract-nnef.patch")
if [ "${1:-}" = "--check" ]; then
  diff -r "$work/tract-nnef-$VERSION" "$here/tract-nnef" && echo "vendor/tract-nnef is tract-nnef $VERSION + tract-nnef.patch"
else
  rm -rf "$here/tract-nnef"
  mv "$work/tract-nnef-$VERSION" "$here/tract-nnef"
  echo "vendor/tract-nnef: tract-nnef $VERSION + tract-nnef.patch"
fi

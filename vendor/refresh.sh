#!/usr/bin/env bash
# Re-creates the vendored crates: each is crates.io's release (sha256 checked,
# the checksum Cargo.lock had for it) with vendor/<crate>.patch applied.
#   vendor/refresh.sh [CRATE...]            rewrite vendor/<crate> (default: every vendored crate)
#   vendor/refresh.sh --check [CRATE...]    only check that vendor/<crate> is exactly that
#   vendor/refresh.sh --diff [CRATE...]     rewrite the patch from vendor/<crate> (after an edit there)
# Moving to another release: bump its VERSION and checksum (for tract, with the
# other tract crates), re-apply the changes by hand in vendor/<crate>, then --diff.
set -euo pipefail
declare -A VERSION=([tract-nnef]=0.23.9 [tract-core]=0.23.9 [tokenizers]=0.22.2)
declare -A SHA256=(
  [tract-nnef]=3bdfc2f17d10eaf04d27f7a2d7b45e3dc41ffd0bc6c1e48d87636d7e960d441d
  [tract-core]=bb76580817f14ceb9f054d3732c1d09575940e88fa5bbfc85c3eae34482bb089
  [tokenizers]=b238e22d44a15349529690fb07bd645cf58149a1b1e44d6cb5bd1641ff1a6223
)
here="$(cd "$(dirname "$0")" && pwd)"
mode=write
case "${1:-}" in --check|--diff) mode="${1#--}"; shift ;; esac
crates=("$@")
[ ${#crates[@]} -gt 0 ] || crates=(tract-nnef tract-core tokenizers)
for tool in curl patch sha256sum; do
  command -v "$tool" >/dev/null || { echo "vendor/refresh.sh needs $tool (apt-get install curl patch coreutils)" >&2; exit 1; }
done
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for crate in "${crates[@]}"; do
  sha="${SHA256[$crate]:-}"
  [ -n "$sha" ] || { echo "vendor/refresh.sh: $crate is not vendored (${!SHA256[*]})" >&2; exit 2; }
  version="${VERSION[$crate]}"
  curl -sSfL "https://static.crates.io/crates/$crate/$crate-$version.crate" -o "$work/$crate.tar.gz"
  echo "$sha  $work/$crate.tar.gz" | sha256sum --check --quiet
  tar -xzf "$work/$crate.tar.gz" -C "$work"
  upstream="$work/$crate-$version"
  case "$mode" in
    diff)
      mv "$upstream" "$work/a"
      cp -r "$here/$crate" "$work/b"
      (cd "$work" && diff -ru a b | grep -v '^diff -ru' | sed -E 's#^(---|\+\+\+) ([ab]/[^\t]*)\t.*#\1 \2#') > "$here/$crate.patch" || true
      rm -rf "$work/a" "$work/b"
      echo "vendor/$crate.patch: $(grep -c '^+++' "$here/$crate.patch") files"
      ;;
    check)
      (cd "$upstream" && patch --quiet -p1 < "$here/$crate.patch")
      diff -r "$upstream" "$here/$crate" && echo "vendor/$crate is $crate $version + $crate.patch"
      ;;
    write)
      (cd "$upstream" && patch --quiet -p1 < "$here/$crate.patch")
      rm -rf "$here/$crate"
      mv "$upstream" "$here/$crate"
      echo "vendor/$crate: $crate $version + $crate.patch"
      ;;
  esac
done

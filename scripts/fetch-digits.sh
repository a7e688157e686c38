#!/usr/bin/env bash
# Fetches a real image set for the Hinton distillation experiment
# (trainer/examples/hinton_digits.rs): the 1,797 handwritten 8x8 digits that
# scikit-learn ships inside its wheel (UCI "Optical Recognition of Handwritten
# Digits", test part). CIFAR-10 is out of reach here; PyPI is not.
# Writes data/digits/digits.csv.gz (64 pixels 0..16, then the label 0..9 per
# line) and verifies its sha256. Idempotent: a verified file is kept.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
data="$root/data"
cache="$data/.downloads"
out="$data/digits/digits.csv.gz"
mkdir -p "$cache" "$data/digits"

# The CSV is byte-identical across wheels; pinning version, interpreter and
# platform pins the wheel's file name, so any local python3 can fetch it.
version=1.5.2
wheel="scikit_learn-$version-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
wheel_sha=f8b0ccd4a902836493e026c03256e8b206656f91fbcc4fde28c57a5b752561f1
csv_sha=09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22

verify() { # file expected-sha256
  local got
  got="$(sha256sum "$1" | cut -d' ' -f1)"
  if [ "$got" != "$2" ]; then
    echo "fetch-digits: sha256 mismatch for $1: expected $2, got $got" >&2
    return 1
  fi
}

if [ -f "$out" ] && verify "$out" "$csv_sha" 2>/dev/null; then
  echo "fetch-digits: $out present (sha256 verified)"
  exit 0
fi
if ! { [ -f "$cache/$wheel" ] && verify "$cache/$wheel" "$wheel_sha" 2>/dev/null; }; then
  python3 -m pip download --quiet --no-deps --only-binary=:all: \
    --implementation cp --python-version 3.11 --platform manylinux2014_x86_64 \
    "scikit-learn==$version" -d "$cache"
  verify "$cache/$wheel" "$wheel_sha"
fi
unzip -p "$cache/$wheel" sklearn/datasets/data/digits.csv.gz > "$out.tmp"
verify "$out.tmp" "$csv_sha"
mv "$out.tmp" "$out"
echo "fetch-digits: $out (sha256 verified)"

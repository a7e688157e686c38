#!/usr/bin/env bash
# Prepares an aarch64 CPython 3.11 (Debian bookworm's) with numpy and
# onnxruntime's official aarch64 wheels, runnable on this x86_64 host under
# qemu-user (targets/aarch64-python-run.sh runs it):
#   targets/aarch64-python.sh              # build (or check) the sysroot; offline once cached
#   targets/aarch64-python.sh --refresh    # re-read the Debian indexes and PyPI (newer security fixes)
#   targets/aarch64-python.sh --check      # also run the smoke test and a tiny-bundle inference under qemu
#   targets/aarch64-python-run.sh --cpu cortex-a76 -- -c 'import onnxruntime'
#
# Why like this: nothing is installed on the host (no apt-get install, no
# dpkg --add-architecture, no change to /etc). The arm64 .debs are resolved
# from Debian's own indexes (bookworm, bookworm-updates, bookworm-security;
# InRelease checked with gpgv against the host's debian-archive-keyring when
# present, Packages.xz and every .deb checked against the signed SHA256s) and
# unpacked with `dpkg-deb -x` into a private sysroot that qemu uses as its -L
# prefix. The wheels are fetched with the host's pip for the aarch64 platform
# and unpacked into the sysroot's dist-packages.
# onnxruntime reads /proc/cpuinfo at import (pytorch/cpuinfo); qemu 7.2 shows
# the guest the host's x86 one, which that library does not expect on arm64,
# so the run wrapper bind-mounts a generated aarch64 one in a private mount
# namespace (see targets/aarch64-run.sh).
#
# Layout (all git-ignored, under targets/.sysroot/):
#   debs/        cached .debs, debs/index/ the Debian indexes, debs/resolved.txt the lock
#   wheels/      cached aarch64 wheels
#   aarch64-python/   the sysroot (AARCH64_SYSROOT overrides the path)
# Knobs (env): ORT_VERSION (default: the version in .venv-tools, else newest),
#   NUMPY_VERSION (likewise), DEB_EXTRA="pkg ..." more packages, DEB_SKIP="pkg ..." more to skip,
#   DEBIAN_MIRROR (default http://deb.debian.org), PYTHON=host python with pip (default python3).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

die() { echo "aarch64-python: error: $*" >&2; exit 1; }
log() { echo "aarch64-python: $*" >&2; }

refresh=false
check=false
for a in "$@"; do
  case "$a" in
    --refresh) refresh=true ;;
    --check) check=true ;;
    -h|--help) awk 'NR>1 && /^#/ {sub(/^# ?/, ""); print; next} NR>1 {exit}' "$0"; exit 0 ;;
    *) die "unknown argument '$a' (try --help)" ;;
  esac
done

cache="$root/targets/.sysroot"
debs="$cache/debs"
wheels="$cache/wheels"
sysroot="${AARCH64_SYSROOT:-$cache/aarch64-python}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org}"
hostpy="${PYTHON:-python3}"

for t in dpkg-deb "$hostpy" sha256sum curl readelf; do
  command -v "$t" >/dev/null || die "'$t' not found on the host"
done
"$hostpy" -m pip --version >/dev/null 2>&1 || die "'$hostpy -m pip' does not work (set PYTHON= to a python with pip)"
mkdir -p "$debs/index" "$wheels"

# ---------------------------------------------------------------- 1. the .debs
# Roots of the dependency walk. Depends and Pre-Depends are followed
# recursively (first satisfiable alternative, Provides honoured, Recommends not);
# the skip list cuts what a python that only imports modules does not need:
# maintainer-script machinery, data packages, and libnsl2/libtirpc3/libdb5.3
# (only the deprecated nis and the dbm.ndbm modules use them; libtirpc3 drags
# Kerberos in): `import nis` and `dbm.ndbm` fail, everything else in the stdlib loads.
deb_roots="python3.11-minimal libpython3.11-minimal libpython3.11-stdlib libc6 libgcc-s1 libstdc++6
  zlib1g libexpat1 libffi8 libssl3 libbz2-1.0 liblzma5 libuuid1 libcrypt1 libsqlite3-0
  libtinfo6 libncursesw6 libreadline8 ${DEB_EXTRA:-}"
deb_skip="debconf debconf-2.0 dpkg perl-base tzdata media-types mime-support readline-common
  libnsl2 libtirpc3 libdb5.3 libc-bin install-info ${DEB_SKIP:-}"

# The lock (debs/resolved.txt) is redone when the roots or the skip list
# change (from the cached indexes, offline) or on --refresh (indexes re-fetched).
lock_key="$(echo "roots: $deb_roots skip: $deb_skip" | tr -s ' \n' ' ' | sha256sum | cut -c1-16)"
if $refresh || [ "$(head -1 "$debs/resolved.txt" 2>/dev/null)" != "# key $lock_key" ]; then
  log "resolving arm64 packages (bookworm, bookworm-updates, bookworm-security)"
  DEB_ROOTS="$deb_roots" DEB_SKIPS="$deb_skip" MIRROR="$mirror" INDEX="$debs/index" REFRESH="$refresh" \
  LOCK_KEY="$lock_key" "$hostpy" - "$debs/resolved.txt" <<'PY'
import hashlib, lzma, os, re, subprocess, sys, urllib.request

out = sys.argv[1]
mirror = os.environ["MIRROR"].rstrip("/")
index_dir = os.environ["INDEX"]
roots = os.environ["DEB_ROOTS"].split()
skips = set(os.environ["DEB_SKIPS"].split())
suites = [  # (name, archive base, dist)
    ("bookworm", mirror + "/debian", "bookworm"),
    ("bookworm-updates", mirror + "/debian", "bookworm-updates"),
    ("bookworm-security", mirror + "/debian-security", "bookworm-security"),
]
keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"

def die(msg):
    print("aarch64-python: error: " + msg, file=sys.stderr); sys.exit(1)

def get(url):
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            return r.read()
    except Exception as e:
        die(f"cannot download {url}: {e}")

# Debian version comparison (deb-version(7)).
def _order(c):
    if c == "~": return -1
    if c.isdigit(): return 0
    if c.isalpha(): return ord(c)
    return ord(c) + 256
def _cmp_part(a, b):
    while a or b:
        na = re.match(r"^[^0-9]*", a).group(0); nb = re.match(r"^[^0-9]*", b).group(0)
        a, b = a[len(na):], b[len(nb):]
        for i in range(max(len(na), len(nb))):
            oa = _order(na[i]) if i < len(na) else 0
            ob = _order(nb[i]) if i < len(nb) else 0
            if oa != ob: return -1 if oa < ob else 1
        da = re.match(r"^[0-9]*", a).group(0); db = re.match(r"^[0-9]*", b).group(0)
        a, b = a[len(da):], b[len(db):]
        ia, ib = int(da or 0), int(db or 0)
        if ia != ib: return -1 if ia < ib else 1
    return 0
def _split(v):
    e, _, rest = v.partition(":") if ":" in v else ("0", "", v)
    u, _, r = rest.rpartition("-") if "-" in rest else (rest, "", "0")
    return int(e), u, r
def vcmp(a, b):
    ea, ua, ra = _split(a); eb, ub, rb = _split(b)
    if ea != eb: return -1 if ea < eb else 1
    return _cmp_part(ua, ub) or _cmp_part(ra, rb)
def satisfies(v, op, want):
    c = vcmp(v, want)
    return {"<<": c < 0, "<=": c <= 0, "=": c == 0, ">=": c >= 0, ">>": c > 0}[op]

def parse_packages(text, base):
    for block in text.split("\n\n"):
        f, key = {}, None
        for line in block.split("\n"):
            if not line: continue
            if line[0] in " \t":
                if key: f[key] += "\n" + line.strip()
                continue
            key, _, val = line.partition(":")
            f[key] = val.strip()
        if "Package" in f:
            f["_base"] = base
            yield f

pkgs, provides = {}, {}
for name, base, dist in suites:
    rel = f"{base}/dists/{dist}"
    inrel_path = os.path.join(index_dir, f"{name}.InRelease")
    xz_path = os.path.join(index_dir, f"{name}.Packages.xz")
    online = os.environ["REFRESH"] == "true" or not (os.path.exists(inrel_path) and os.path.exists(xz_path))
    if online:
        print(f"aarch64-python: fetching {rel}/InRelease", file=sys.stderr)
        inrel = get(rel + "/InRelease")
        open(inrel_path + ".tmp", "wb").write(inrel)
        inrel_path += ".tmp"
    else:
        inrel = open(inrel_path, "rb").read()
    if os.path.exists(keyring) and subprocess.run(["sh", "-c", "command -v gpgv"], capture_output=True).returncode == 0:
        r = subprocess.run(["gpgv", "--keyring", keyring, inrel_path], capture_output=True, text=True)
        if r.returncode != 0:
            die(f"InRelease signature of {name} does not verify:\n{r.stderr}")
        print(f"aarch64-python: {name}: InRelease signature OK", file=sys.stderr)
    else:
        print(f"aarch64-python: warning: no gpgv/{keyring}: {name} InRelease not signature-checked", file=sys.stderr)
    m = re.search(r"^SHA256:\n((?: .*\n)+)", inrel.decode(), re.M)
    sums = {}
    for line in (m.group(1) if m else "").splitlines():
        h, size, path = line.split()
        sums[path] = h
    path = "main/binary-arm64/Packages.xz"
    if path not in sums:
        die(f"{name}: InRelease lists no {path}")
    xz = get(f"{rel}/{path}") if online else open(xz_path, "rb").read()
    if hashlib.sha256(xz).hexdigest() != sums[path]:
        die(f"{name}: {path} does not match the SHA256 in InRelease")
    if online:
        open(xz_path, "wb").write(xz)
        os.replace(inrel_path, inrel_path[:-4])
    n = 0
    for f in parse_packages(lzma.decompress(xz).decode("utf-8", "replace"), base):
        if f.get("Architecture") not in ("arm64", "all"): continue
        n += 1
        old = pkgs.get(f["Package"])
        if old is None or vcmp(f["Version"], old["Version"]) > 0:
            pkgs[f["Package"]] = f
    print(f"aarch64-python: {name}: {n} packages", file=sys.stderr)
for f in pkgs.values():
    for p in f.get("Provides", "").split(","):
        p = p.strip().split(" ")[0]
        if p: provides.setdefault(p, []).append(f["Package"])

dep_re = re.compile(r"^([a-z0-9][a-z0-9+.-]*)(?::[a-z0-9]+)?\s*(?:\(\s*(<<|<=|=|>=|>>)\s*([^)\s]+)\s*\))?")
chosen, why = {}, {}
queue = [(r, "root") for r in roots]
while queue:
    name, parent = queue.pop(0)
    if name in chosen or name in skips: continue
    if name not in pkgs: die(f"package {name} (needed by {parent}) is not in the arm64 indexes")
    f = pkgs[name]; chosen[name] = f; why[name] = parent
    for field in ("Pre-Depends", "Depends"):
        for clause in filter(None, (c.strip() for c in f.get(field, "").split(","))):
            alts = []
            for a in clause.split("|"):
                m = dep_re.match(a.strip())
                if not m: die(f"cannot parse dependency '{a}' of {name}")
                alts.append(m.groups())
            names = [a[0] for a in alts]
            if any(n in chosen for n in names): pick = None
            elif any(n in skips for n in names): continue
            else:
                pick = next((n for n in names if n in pkgs), None)
                if pick is None:
                    pick = next((provides[n][0] for n in names if n in provides), None)
                if pick is None: die(f"no package satisfies '{clause}' (dependency of {name})")
                queue.append((pick, name))
# Re-check version constraints now that everything is chosen.
bad = []
for name, f in chosen.items():
    for field in ("Pre-Depends", "Depends"):
        for clause in filter(None, (c.strip() for c in f.get(field, "").split(","))):
            ok, relevant = False, False
            for a in clause.split("|"):
                n, op, want = dep_re.match(a.strip()).groups()
                if n in chosen:
                    relevant = True
                    if not op or satisfies(chosen[n]["Version"], op, want): ok = True
            if relevant and not ok:
                bad.append(f"{name} {f['Version']}: '{clause}' not met by the chosen versions")
if bad: die("inconsistent package set:\n  " + "\n  ".join(bad))
with open(out + ".tmp", "w") as o:
    o.write(f"# key {os.environ['LOCK_KEY']}\n# package version sha256 size url (needed-by)\n")
    for name in sorted(chosen):
        f = chosen[name]
        o.write(f"{name} {f['Version']} {f['SHA256']} {f['Size']} {f['_base']}/{f['Filename']} {why[name]}\n")
os.replace(out + ".tmp", out)
print(f"aarch64-python: resolved {len(chosen)} packages -> {out}", file=sys.stderr)
PY
fi

# Download (cached) and verify every .deb.
deb_files=()
while read -r pkg ver sha size url _; do
  [ -n "$pkg" ] && [ "${pkg:0:1}" != "#" ] || continue
  f="$debs/$(basename "$url")"
  if [ -f "$f" ] && [ "$(sha256sum "$f" | cut -d' ' -f1)" = "$sha" ]; then
    :
  else
    log "downloading $pkg $ver"
    curl -fsSL --retry 3 -o "$f.part" "$url" || die "download of $url failed"
    got="$(sha256sum "$f.part" | cut -d' ' -f1)"
    [ "$got" = "$sha" ] || { rm -f "$f.part"; die "$url: SHA256 $got, the index says $sha"; }
    mv "$f.part" "$f"
  fi
  deb_files+=("$f")
done < "$debs/resolved.txt"
[ "${#deb_files[@]}" -gt 0 ] || die "no packages in $debs/resolved.txt"

glibc="$(awk '$1=="libc6"{print $2}' "$debs/resolved.txt" | sed -E 's/^([0-9]+\.[0-9]+).*/\1/')"
[ -n "$glibc" ] || die "libc6 missing from $debs/resolved.txt"

# ---------------------------------------------------------------- 2. the wheels
venv_ver() { [ -x "$root/.venv-tools/bin/python" ] && "$root/.venv-tools/bin/python" -c "import $1; print($1.__version__)" 2>/dev/null || true; }
ort_ver="${ORT_VERSION:-$(venv_ver onnxruntime)}"
np_ver="${NUMPY_VERSION:-$(venv_ver numpy)}"
reqs=("onnxruntime${ort_ver:+==$ort_ver}" "numpy${np_ver:+==$np_ver}")
pipflags=(--only-binary=:all: --platform manylinux2014_aarch64 --platform manylinux_2_27_aarch64
  --platform manylinux_2_28_aarch64 --python-version 3.11 --implementation cp --abi cp311 --abi abi3 --abi none)
wheel_list="$cache/wheels.txt"
# The exact set comes from a dry-run resolution against the cache (offline);
# PyPI is asked only when the cache cannot satisfy the pins, or on --refresh.
resolve_cached() {
  PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore "$hostpy" -m pip install -q --dry-run --ignore-installed \
    --target "$cache/.dry-run" --report "$wheel_list.json" --no-index --find-links "$wheels" \
    "${pipflags[@]}" "${reqs[@]}"
}
if $refresh || ! resolve_cached >/dev/null 2>&1; then
  log "downloading aarch64 wheels: ${reqs[*]}"
  PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore "$hostpy" -m pip download -q "${pipflags[@]}" -d "$wheels" "${reqs[@]}" \
    || die "pip download of ${reqs[*]} for aarch64 failed"
  resolve_cached || die "the downloaded wheels in $wheels do not resolve ${reqs[*]}"
fi
# The exact wheel files of this resolution (the cache may hold older ones),
# each checked against bookworm's glibc.
"$hostpy" - "$wheel_list.json" "$wheels" "$glibc" > "$wheel_list" <<'PY'
import json, os, re, sys
report, wdir, glibc = sys.argv[1], sys.argv[2], tuple(map(int, sys.argv[3].split(".")))
names = []
for item in json.load(open(report))["install"]:
    url = item["download_info"]["url"]
    fn = os.path.basename(url.split("#")[0])
    from urllib.parse import unquote
    fn = unquote(fn)
    if not os.path.exists(os.path.join(wdir, fn)):
        sys.exit(f"aarch64-python: error: {fn} not in {wdir}")
    plat = fn[:-4].split("-")[-1]
    need = None
    for tag in plat.split("."):
        if tag == "any": need = (0, 0); break
        m = re.match(r"manylinux_(\d+)_(\d+)_aarch64$", tag) or re.match(r"manylinux(2014)_aarch64$", tag)
        if m:
            v = (2, 17) if m.group(1) == "2014" else (int(m.group(1)), int(m.group(2)))
            need = v if need is None else min(need, v)
    if need is None:
        sys.exit(f"aarch64-python: error: {fn} is not an aarch64 manylinux wheel")
    if need > glibc:
        sys.exit(f"aarch64-python: error: {fn} needs glibc {need[0]}.{need[1]}, bookworm has {glibc[0]}.{glibc[1]}")
    print(f"aarch64-python: wheel {fn} (glibc >= {need[0]}.{need[1]}, have {glibc[0]}.{glibc[1]})", file=sys.stderr)
    names.append(fn)
print("\n".join(sorted(names)))
PY

# ---------------------------------------------------------------- 3. the sysroot
layout=1   # bump when the way the sysroot is assembled changes
stamp="$( { echo "$layout"; cat "$debs/resolved.txt" "$wheel_list"; } | sha256sum | cut -d' ' -f1)"
if [ -f "$sysroot/.stamp" ] && [ "$(cat "$sysroot/.stamp")" = "$stamp" ] && [ -x "$sysroot/usr/bin/python3.11" ]; then
  log "sysroot up to date: $sysroot"
else
  # (Re)build: unpack into a fresh directory, then swap it in.
  tmp="$sysroot.tmp.$$"
  rm -rf "$tmp"; mkdir -p "$tmp"
  trap 'rm -rf "$tmp"' EXIT
  for f in "${deb_files[@]}"; do
    dpkg-deb -x "$f" "$tmp" || die "dpkg-deb -x $f failed"
  done
  [ -e "$tmp/lib/ld-linux-aarch64.so.1" ] || die "no dynamic loader in the unpacked libc6"
  [ -x "$tmp/usr/bin/python3.11" ] || die "no usr/bin/python3.11 in the unpacked packages"
  ln -sfn python3.11 "$tmp/usr/bin/python3"
  rm -rf "$tmp/usr/share/doc" "$tmp/usr/share/man" "$tmp/usr/share/info" "$tmp/usr/share/lintian"
  site="$tmp/usr/lib/python3/dist-packages"
  mkdir -p "$site"
  wheel_paths=()
  while read -r w; do wheel_paths+=("$wheels/$w"); done < "$wheel_list"
  # --target unpacks without importing anything; the host's CPython 3.11
  # byte-compiles (same bytecode magic as bookworm's 3.11), which saves qemu time.
  PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore "$hostpy" -m pip install -q --no-deps --no-index "${pipflags[@]}" \
    --target "$site" "${wheel_paths[@]}" || die "pip install --target of the aarch64 wheels failed"
  # Every shared object the extension modules need must be in the sysroot.
  missing="$(
    find "$site" -name '*.so*' -type f | while read -r so; do
      rpath_dir="$(dirname "$so")"
      readelf -d "$so" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | while read -r lib; do
        found=false
        for d in "$tmp/lib/aarch64-linux-gnu" "$tmp/usr/lib/aarch64-linux-gnu" "$rpath_dir" \
                 "$rpath_dir"/../*.libs "$site"/*.libs; do
          [ -e "$d/$lib" ] && { found=true; break; }
        done
        $found || echo "$lib (needed by ${so#$tmp/})"
      done
    done | sort -u)"
  [ -z "$missing" ] || die "shared libraries missing from the sysroot (add their packages with DEB_EXTRA=...):
$missing"
  echo "$stamp" > "$tmp/.stamp"
  rm -rf "$sysroot"
  mv "$tmp" "$sysroot"
  trap - EXIT
  log "sysroot ready: $sysroot ($(du -sh "$sysroot" | cut -f1))"
fi

if $check; then
  run="$root/targets/aarch64-python-run.sh"
  AARCH64_SYSROOT="$sysroot" "$run" --cpu cortex-a76 -- -c \
    'import numpy, onnxruntime as ort; print(numpy.__version__, ort.__version__, ort.get_available_providers())'
  AARCH64_SYSROOT="$sysroot" "$run" --cpu cortex-a76 -- - "$root/tests/fixtures/tiny-bundle/embeddings.onnx" <<'PY'
import sys, numpy as np, onnxruntime as ort
so = ort.SessionOptions(); so.intra_op_num_threads = 1; so.inter_op_num_threads = 1
s = ort.InferenceSession(sys.argv[1], so, providers=["CPUExecutionProvider"])
name = s.get_inputs()[0].name
out = s.run(None, {name: np.array([[2, 100, 200, 3]], dtype=np.int64)})
print(name, "->", s.get_outputs()[0].name, out[0].shape, out[0].dtype, float(np.abs(out[0]).sum()))
PY
fi

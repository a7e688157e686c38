#!/usr/bin/env python3
"""Code size of a binary by crate, from its symbol table (`nm -S -C`).

Usage: targets/size_by_crate.py BINARY [BINARY2]
BINARY must keep its symbols: build it with the board profile unstripped, e.g.
  cargo build --profile edge -p edge-runtime --bin edge-runtime --no-default-features \
    --features cli,tools --config 'profile.edge.strip=false'
With two binaries, prints both columns (before -> after).

Each function is counted for the first crate its demangled name mentions
(`<tract_core::ops::X as core::fmt::Debug>::fmt` is tract_core's), so generic
code lands with the crate whose type it was instantiated for; what names no
listed crate is `other`.
"""
import collections
import re
import subprocess
import sys

CRATES = ["tract_linalg", "tract_nnef", "tract_core", "tract_data", "tokenizers", "fancy_regex",
          "regex_automata", "regex_syntax", "clap_builder", "clap", "edge_runtime", "serde_json",
          "rustfft", "ndarray", "nom", "bundle", "indicatif", "prost", "sha2", "std", "core", "alloc",
          "hashbrown"]
PATTERNS = [(c, re.compile(r"\b" + c + r"\b")) for c in CRATES]


def by_crate(binary):
    out = subprocess.run(["nm", "--size-sort", "-S", "-C", binary], capture_output=True, text=True, check=True).stdout
    sizes, total = collections.Counter(), 0
    for line in out.splitlines():
        parts = line.split(None, 3)
        if len(parts) < 4 or parts[2] not in "tTwW":
            continue
        size, name = int(parts[1], 16), parts[3]
        total += size
        hits = [(m.start(), c) for c, p in PATTERNS for m in [p.search(name)] if m]
        sizes[min(hits)[1] if hits else "other"] += size
    if total == 0:
        sys.exit(f"{binary}: no function symbols (stripped?)")
    return sizes, total


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    columns = [by_crate(b) for b in sys.argv[1:]]
    first = columns[0][0]
    names = sorted(set().union(*(c for c, _ in columns)), key=lambda k: -first[k])
    print("| crate | " + " | ".join(f"KB ({b})" for b in sys.argv[1:]) + " |")
    print("|---|" + "---|" * len(columns))
    for name in names:
        print(f"| {name} | " + " | ".join(f"{c[name] / 1024:,.0f}" for c, _ in columns) + " |")
    print("| **functions, total** | " + " | ".join(f"**{t / 1024:,.0f}**" for _, t in columns) + " |")


if __name__ == "__main__":
    main()

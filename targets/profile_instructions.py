#!/usr/bin/env python3
"""Where an aarch64 edge-runtime's instructions go under qemu-user: guest
instructions per text and for the load, function by function, and grouped by
what the function does (matrix kernels, element-wise, normalization, ...).

  targets/profile_instructions.py BIN BUNDLE TEXTS.txt OUT_DIR [--n 20] [--qemu-cpu cortex-a76] [--policy=--full]

BIN must keep its symbols: the board binary's build without stripping,
  CARGO_PROFILE_EDGE_STRIP=false CARGO_TARGET_DIR=target/symbols targets/build.sh aarch64
(the same code as the shipped binary: stripping only drops the symbol table).
Method: the counting plugin of targets/count_instructions.py, with its
per-block breakdown (`blocks=`), on one run that loads the bundle and
classifies no text and one that classifies N texts; qemu's memory map says
where the program was loaded; each block goes to the function whose symbol
starts at or before it (checked first on targets/insn-count/known_loop.c,
whose loop must put exactly 6 instructions per iteration in `main`). Per text = (run with N texts - run without) / N, per
function. Writes OUT_DIR/profile.json and OUT_DIR/profile.md.
"""
import argparse
import bisect
import collections
import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from count_instructions import ROOT, count, read_lines, runner  # noqa: E402

OUTSIDE = "(outside the program: libc, the loader)"
# What a function does, from its (demangled) name; the first match wins.
GROUPS = [
    ("matrix products (kernels and packing)", r"_mmm_|mmm::|MatMatMul|mmv_|packed_packed|pack::|Packer"),
    ("element-wise kernels (tract-linalg)", r"tract_linalg::(frame::(element_wise|by_scalar|unicast|reduce)|generic|arm64)|arm64simd_|arm64fp16_|sigmoid|tanh|exp2|softmax|erf|gelu"),
    ("tract-core ops (layer norm, softmax, gather, ...)", r"tract_core::ops|tract_nnef|tract_transformers|tract_extra"),
    ("tract plans and tensors", r"tract_core|tract_data|ndarray"),
    ("tokenizer", r"tokenizers|onig|regex|aho_corasick|unicode_normalization|esaxx"),
    ("allocator and memory (mimalloc, memcpy)", r"mi_|mimalloc|memcpy|memmove|memset|alloc::|__rust_alloc|__rust_dealloc|__rdl_"),
    ("bundle checks (sha256, json)", r"sha2|serde|edge_bundle|bundle::"),
    ("runtime", r"edge_runtime"),
    ("standard library", r"^(std|core|alloc)::|^<(std|core|alloc)::"),
]


def symbols(binary, at_least=100):
    """(addresses, names) of the binary's functions, sorted, names demangled without their hash."""
    nm = os.environ.get("NM", "aarch64-linux-gnu-nm")
    out = subprocess.run([nm, "-n", "-C", "--defined-only", binary], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{nm} {binary}: {out.stderr.strip()}")
    addrs, names = [], []
    function = "?"
    for line in out.stdout.splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[1] in "tTwW" and parts[0]:
            name = re.sub(r"::h[0-9a-f]{16}$", "", parts[2])
            # tract-linalg's assembly kernels keep their local labels
            # (".packed_packed_loop_1"): named after the kernel they are in.
            if name.startswith("."):
                name = f"{function} {name}"
            else:
                function = name
            addrs.append(int(parts[0], 16))
            names.append(name)
    if len(addrs) < at_least:
        sys.exit(f"{binary}: only {len(addrs)} function symbols: give a build that keeps them "
                 "(CARGO_PROFILE_EDGE_STRIP=false, see --help)")
    return addrs, names


def load_base(pages_file):
    """Where qemu-user put the program: the first mapping of its first memory map."""
    for line in open(pages_file):
        m = re.match(r"([0-9a-f]{16})-([0-9a-f]{16}) ", line)
        if m:
            return int(m.group(1), 16)
    sys.exit(f"{pages_file}: no memory map in qemu's page log")


def by_function(blocks_file, base, addrs, names, end):
    """Instructions executed, per function name."""
    per = collections.Counter()
    for line in open(blocks_file):
        vaddr, insns, execs = line.split()
        vaddr = int(vaddr, 16) - base
        n = int(insns) * int(execs)
        i = bisect.bisect_right(addrs, vaddr) - 1
        per[names[i] if 0 <= i and vaddr < end else OUTSIDE] += n
    return per


def group_of(name):
    if name == OUTSIDE:
        return OUTSIDE
    for group, pattern in GROUPS:
        if re.search(pattern, name):
            return group
    return "other"


def by_group(per_function):
    """Instructions per group (GROUPS) from instructions per function."""
    groups = collections.Counter()
    for name, n in per_function.items():
        groups[group_of(name)] += n
    return groups


def profiled_run(cmd, stdin_text, cpu, prefix, binary_syms, end):
    with tempfile.TemporaryDirectory() as d:
        total, out = count(cmd, stdin_text, cpu, prefix=prefix, blocks_dir=d)
        per = by_function(os.path.join(d, "blocks"), load_base(os.path.join(d, "pages")), *binary_syms, end)
    # Equal for a single-threaded guest; where a helper thread runs beside the
    # main one, racing (non-atomic) adds lose a few, more of them on the one
    # shared total than on the per-block counts: up to 0.04% seen.
    if abs(sum(per.values()) - total) > 1e-3 * total:
        sys.exit(f"the blocks add up to {sum(per.values())} instructions, the counter says {total}")
    return sum(per.values()), per, out


def check_attribution(cpu, prefix):
    """The method on a program whose counts are known (targets/insn-count/known_loop.c:
    6 instructions per iteration, all in `main`): N iterations must add 6 N
    instructions to `main` and nothing elsewhere beyond a trace."""
    cc = os.environ.get("CC_AARCH64", "aarch64-linux-gnu-gcc")
    with tempfile.TemporaryDirectory() as d:
        loop = os.path.join(d, "known_loop")
        built = subprocess.run([cc, "-O1", "-o", loop, os.path.join(ROOT, "targets", "insn-count", "known_loop.c")],
                               capture_output=True, text=True)
        if built.returncode != 0:
            sys.exit(f"{cc} known_loop.c: {built.stderr.strip()}")
        syms = symbols(loop, at_least=5)
        n = 100_000
        _, none, _ = profiled_run([loop, "0"], "", cpu, prefix, syms, 1 << 40)
        _, many, _ = profiled_run([loop, str(n)], "", cpu, prefix, syms, 1 << 40)
    in_main = many["main"] - none["main"]
    elsewhere = sum(many.values()) - sum(none.values()) - in_main
    # (a few instructions of set-up around the loop, and printf formatting a longer number)
    if abs(in_main - 6 * n) > 16 or abs(elsewhere) > 0.01 * n:
        sys.exit(f"attribution check failed: {n} iterations of known_loop put {in_main} instructions in main "
                 f"(expected {6 * n}) and {elsewhere} elsewhere")


def table(rows, total, title, top):
    lines = [f"| {title} | M instructions | share |", "|---|---|---|"]
    for name, n in rows[:top]:
        lines.append(f"| `{name[:110]}` | {n / 1e6:.3f} | {100 * n / total:.1f}% |")
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("bin", help="the aarch64 edge-runtime, with its symbols")
    ap.add_argument("bundle", help="the bundle (an NNEF twin for the board binary)")
    ap.add_argument("texts", help="one text per line")
    ap.add_argument("out", help="where profile.json and profile.md go")
    ap.add_argument("--n", type=int, default=20, help="texts to classify (default 20)")
    ap.add_argument("--qemu-cpu", default="cortex-a76", choices=["cortex-a72", "cortex-a76"])
    ap.add_argument("--policy", default="--full", help="the classify policy flag(s), e.g. '--exit-layer 2' (default --full)")
    ap.add_argument("--runtime-flag", action="append", default=[], help="a global edge-runtime flag (repeatable)")
    ap.add_argument("--top", type=int, default=30, help="functions in the Markdown table (default 30)")
    a = ap.parse_args()
    texts = read_lines(a.texts, a.n)
    if not texts:
        sys.exit(f"{a.texts}: no texts")
    prefix = runner(a.qemu_cpu)
    check_attribution(a.qemu_cpu, prefix)
    syms = symbols(a.bin)
    size = subprocess.run([os.environ.get("SIZE", "aarch64-linux-gnu-size"), "-A", a.bin], capture_output=True, text=True)
    end = max((int(p[2]) + int(p[1]) for p in (l.split() for l in size.stdout.splitlines())
               if len(p) == 3 and p[0].startswith(".") and p[1].isdigit() and p[2].isdigit()), default=1 << 40)
    run = [a.bin, "--load-threads", "1", *a.runtime_flag, "classify", "--bundle", a.bundle]
    load_total, load, _ = profiled_run(run, "", a.qemu_cpu, prefix, syms, end)
    total, texts_run, out = profiled_run([*run, *a.policy.split()], "\n".join(texts) + "\n", a.qemu_cpu, prefix, syms, end)
    exits = [json.loads(l)["exit_layer"] for l in out.splitlines()]
    n = len(texts)
    per_text = {k: (texts_run[k] - load.get(k, 0)) / n for k in texts_run}
    per_text_total = (total - load_total) / n
    groups, load_groups = by_group(per_text), by_group(load)
    os.makedirs(a.out, exist_ok=True)
    funcs = sorted(per_text.items(), key=lambda kv: -kv[1])
    report = {"bin": a.bin, "bundle": a.bundle, "qemu_cpu": a.qemu_cpu, "policy": a.policy, "runtime_flags": a.runtime_flag,
              "texts": n, "mean_exit_layer": sum(exits) / n, "per_text_instructions": per_text_total,
              "load_instructions": load_total,
              "per_text_by_group": dict(groups.most_common()), "load_by_group": dict(load_groups.most_common()),
              "per_text_by_function": {k: v for k, v in funcs if abs(v) >= 1},
              "load_by_function": {k: v for k, v in load.most_common() if v >= 1000}}
    with open(os.path.join(a.out, "profile.json"), "w") as f:
        json.dump(report, f, indent=1, ensure_ascii=False)
    md = [f"# Instructions by function: `{os.path.basename(a.bin)}` on {a.qemu_cpu}", "",
          f"Bundle `{a.bundle}`, policy `{a.policy}`{' ' + ' '.join(a.runtime_flag) if a.runtime_flag else ''}, "
          f"{n} texts (mean exit layer {report['mean_exit_layer']:.2f}): **{per_text_total / 1e6:.2f} M instructions "
          f"per text**; the load (no text): {load_total / 1e6:.1f} M.", "",
          "Command: `targets/profile_instructions.py " + " ".join(sys.argv[1:]) + "`", "",
          "## Per text, by group", ""]
    md += table(groups.most_common(), per_text_total, "group", len(groups))
    md += ["", f"## Per text, the top {a.top} functions", ""]
    md += table(funcs, per_text_total, "function", a.top)
    md += ["", "## The load, by group", ""]
    md += table(load_groups.most_common(), load_total, "group", len(load_groups))
    md += ["", f"## The load, the top {a.top} functions", ""]
    md += table(load.most_common(), load_total, "function", a.top)
    with open(os.path.join(a.out, "profile.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md[:8 + len(groups) + 2]))


if __name__ == "__main__":
    main()

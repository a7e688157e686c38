#!/usr/bin/env python3
"""What each runtime lever changes, side by side on one bundle: the fused
residual-add + LayerNorm op (`--no-fused-norm` turns it off), the row softmax
(`--no-row-softmax`), padding batches to a multiple of tokens
(`--pad-to-multiple`), parallel loading (`--load-threads`), and tract's
matrix kernels: on a CPU with AVX-512, tract's cost model picks its avx512
kernels; `TRACT_CPU_ISA=-avx512f` leaves it the AVX2+FMA ones.

  bench/runtime-levers/runtime_levers.py BUNDLE TEXTS.jsonl OUT_DIR [--n 100] [--n-counted 20] [--rounds 3]

Two measures:
- x86 instructions (valgrind cachegrind, no cache simulation): per text at
  full depth, batch 1, as (run with N texts - run with none) / N, and for the
  load. They do not depend on what else the machine runs, so they are the
  measure on a shared machine; they are not time (memory stalls don't count).
- wall time: `edge-runtime bench --full-only`, the configurations alternating
  round by round, ratios per round; and load time with 1 thread vs all cores
  (each run timed by bench/common/ab_bench.py's `bench`).

Writes OUT_DIR/instructions.json, OUT_DIR/timing.json and OUT_DIR/summary.md
(`--phase count|time` runs one of the two; the summary shows what exists).
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from ab_bench import bench, full_depth_ms  # noqa: E402  the side-by-side timer's bench run

# name -> (flags, environment)
CONFIGS = {
    "tract's ops": (["--no-fused-norm", "--no-row-softmax"], {}),
    "fused LayerNorm": (["--no-row-softmax"], {}),
    "fused LayerNorm + row softmax": ([], {}),
    "both, pad to 4": (["--pad-to-multiple", "4"], {}),
    # valgrind's CPU has no AVX-512, so this row is timed only (counted, it is the row above).
    "both, AVX2+FMA kernels only": ([], {"TRACT_CPU_ISA": "-avx512f"}),
}
BASE = "tract's ops"


def instructions(cmd, stdin_path, env):
    with open(stdin_path, "rb") as stdin:
        out = subprocess.run(["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null", *cmd],
                             stdin=stdin, capture_output=True, env={**os.environ, **env})
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed: {out.stderr.decode()[-2000:]}")
    m = re.search(r"I\s+refs:\s+([\d,]+)", out.stderr.decode())
    return int(m.group(1).replace(",", ""))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle")
    ap.add_argument("texts", help="labelled JSONL; the first --n texts are used")
    ap.add_argument("out")
    ap.add_argument("--n", type=int, default=100, help="texts timed")
    ap.add_argument("--n-counted", type=int, default=20, help="texts whose instructions are counted (valgrind is ~50x slower)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--bin", default="target/release/edge-runtime")
    ap.add_argument("--phase", choices=["all", "count", "time"], default="all",
                    help="count instructions, time, or both (timing wants a quiet machine; counting does not)")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    texts = [json.loads(l)["text"].replace("\n", " ") for l in open(a.texts, encoding="utf-8") if l.strip()][: a.n]
    plain = os.path.join(a.out, "texts.txt")
    counted = texts[: a.n_counted]
    open(plain, "w", encoding="utf-8").write("\n".join(counted) + "\n")
    subset = os.path.join(a.out, "texts.jsonl")
    with open(a.texts, encoding="utf-8") as f, open(subset, "w", encoding="utf-8") as g:
        g.writelines([l for l in f if l.strip()][: a.n])

    counts_path, timing_path = os.path.join(a.out, "instructions.json"), os.path.join(a.out, "timing.json")
    if a.phase in ("all", "count"):
        counts = {}
        for name, (flags, env) in CONFIGS.items():
            if env:  # a CPU setting valgrind's CPU cannot show
                continue
            run = [a.bin, "--load-threads", "1", *flags, "classify", "--bundle", a.bundle, "--full"]
            load = instructions(run, "/dev/null", env)
            total = instructions(run, plain, env)
            counts[name] = {"load_instructions": load, "instructions_per_text": (total - load) / len(counted)}
            print(name, counts[name], flush=True)
        json.dump({"texts": len(counted), "rows": counts}, open(counts_path, "w"), indent=1)

    if a.phase in ("all", "time"):
        # Every configuration once per round, in turn, so drift hits them alike.
        timing = {name: [] for name in CONFIGS}
        load_ms = {t: [] for t in (1, os.cpu_count())}
        for r in range(a.rounds):
            for name, (flags, env) in CONFIGS.items():
                out = os.path.join(a.out, f"bench-{r}-{name.replace(' ', '_').replace(',', '').replace('+', '')}")
                timing[name].append(full_depth_ms(bench(a.bin, a.bundle, subset, 1, out, flags=flags, env=env)))
            for threads in load_ms:
                out = os.path.join(a.out, f"load-{r}-{threads}")
                rep = bench(a.bin, a.bundle, subset, 1, out, flags=["--load-threads", str(threads)], warmup=0, limit=1)
                load_ms[threads].append(rep["load_ms"])
        json.dump({"texts": len(texts), "ms_per_text": timing, "load_ms": load_ms}, open(timing_path, "w"), indent=1)

    summarize(a.out, counts_path, timing_path)


def summarize(out, counts_path, timing_path):
    counts = json.load(open(counts_path))["rows"] if os.path.exists(counts_path) else None
    timing = json.load(open(timing_path)) if os.path.exists(timing_path) else None
    lines = ["| configuration | instructions / text | vs tract's ops | load instructions | ms / text (per round) | time vs tract's ops (per round) |",
             "|---|---|---|---|---|---|"]
    for name in CONFIGS:
        cells = [name]
        if counts and name in counts:  # a summary of an earlier run may lack a configuration
            c, base = counts[name], counts[BASE]
            cells += [f"{c['instructions_per_text'] / 1e6:.2f} M", f"{c['instructions_per_text'] / base['instructions_per_text']:.3f}",
                      f"{c['load_instructions'] / 1e6:.0f} M"]
        else:
            cells += ["", "", ""]
        if timing and name in timing["ms_per_text"]:
            ms, base = timing["ms_per_text"][name], timing["ms_per_text"][BASE]
            ratios = [m / b for m, b in zip(ms, base)]
            cells += [", ".join(f"{m:.2f}" for m in ms), f"{statistics.mean(ratios):.3f} ({', '.join(f'{x:.3f}' for x in ratios)})"]
        else:
            cells += ["", ""]
        lines.append("| " + " | ".join(cells) + " |")
    if timing:
        lines.append("")
        for threads, ms in timing["load_ms"].items():
            lines.append(f"load with {threads} thread(s): {statistics.mean(ms):.0f} ms ({', '.join(f'{m:.0f}' for m in ms)})")
    open(os.path.join(out, "summary.md"), "w").write("\n".join(lines) + "\n")
    print("\n".join(lines))

if __name__ == "__main__":
    main()

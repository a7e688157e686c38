#!/usr/bin/env python3
"""What each runtime lever changes, side by side on one bundle: the fused
residual-add + LayerNorm op (`--no-fused-norm` turns it off), padding batches
to a multiple of tokens (`--pad-to-multiple`), and parallel loading
(`--load-threads`).

  scripts/runtime_levers.py BUNDLE TEXTS.jsonl OUT_DIR [--n 100] [--rounds 3]

Two measures:
- x86 instructions (valgrind cachegrind, no cache simulation): per text at
  full depth, batch 1, as (run with N texts - run with none) / N, and for the
  load. They do not depend on what else the machine runs, so they are the
  measure on a shared machine; they are not time (memory stalls don't count).
- wall time: `edge-runtime bench --full-only`, the configurations alternating
  round by round, ratios per round; and load time with 1 thread vs all cores.

Writes OUT_DIR/summary.json and summary.md.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys

CONFIGS = {
    "stock LayerNorm": ["--no-fused-norm"],
    "fused LayerNorm": [],
    "fused, pad to 4": ["--pad-to-multiple", "4"],
    "fused, pad to 8": ["--pad-to-multiple", "8"],
}


def instructions(cmd, stdin_path):
    with open(stdin_path, "rb") as stdin:
        out = subprocess.run(["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null", *cmd],
                             stdin=stdin, capture_output=True)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed: {out.stderr.decode()[-2000:]}")
    m = re.search(r"I\s+refs:\s+([\d,]+)", out.stderr.decode())
    return int(m.group(1).replace(",", ""))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle")
    ap.add_argument("texts", help="labelled JSONL; the first --n texts are used")
    ap.add_argument("out")
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--bin", default="target/release/edge-runtime")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    texts = [json.loads(l)["text"].replace("\n", " ") for l in open(a.texts, encoding="utf-8") if l.strip()][: a.n]
    plain = os.path.join(a.out, "texts.txt")
    open(plain, "w", encoding="utf-8").write("\n".join(texts) + "\n")
    subset = os.path.join(a.out, "texts.jsonl")
    with open(a.texts, encoding="utf-8") as f, open(subset, "w", encoding="utf-8") as g:
        g.writelines([l for l in f if l.strip()][: a.n])

    rows = {name: {"flags": flags} for name, flags in CONFIGS.items()}
    for name, flags in CONFIGS.items():
        run = [a.bin, "--load-threads", "1", *flags, "classify", "--bundle", a.bundle, "--full"]
        load = instructions(run, "/dev/null")
        total = instructions(run, plain)
        rows[name].update(load_instructions=load, instructions_per_text=(total - load) / len(texts))
        print(name, rows[name], flush=True)

    # Wall time: every configuration once per round, in turn.
    for r in range(a.rounds):
        for name, flags in CONFIGS.items():
            out = os.path.join(a.out, f"bench-{r}-{name.replace(' ', '_').replace(',', '')}")
            subprocess.run([a.bin, *flags, "bench", "--bundle", a.bundle, "--data", subset, "--full-only",
                            "--warmup", "10", "--out", out], check=True, capture_output=True)
            rep = json.load(open(os.path.join(out, "report.json")))
            full = next(p for p in rep["policies"] if p["name"] == "full")
            rows[name].setdefault("ms_per_text", []).append(full["latency"]["mean_ms"])
        for threads in (1, os.cpu_count()):
            out = os.path.join(a.out, f"load-{r}-{threads}")
            subprocess.run([a.bin, "--load-threads", str(threads), "bench", "--bundle", a.bundle, "--data", subset,
                            "--full-only", "--limit", "1", "--warmup", "0", "--out", out], check=True, capture_output=True)
            rows.setdefault(f"load, {threads} thread(s)", {}).setdefault("load_ms", []).append(
                json.load(open(os.path.join(out, "report.json")))["load_ms"])

    base = rows["stock LayerNorm"]
    lines = ["| configuration | instructions / text | vs stock | load instructions | ms / text (per round) | time vs stock (per round) |",
             "|---|---|---|---|---|---|"]
    for name in CONFIGS:
        row = rows[name]
        ratios = [m / b for m, b in zip(row["ms_per_text"], base["ms_per_text"])]
        row["time_vs_stock"] = ratios
        lines.append(f"| {name} | {row['instructions_per_text'] / 1e6:.2f} M | {row['instructions_per_text'] / base['instructions_per_text']:.3f} "
                     f"| {row['load_instructions'] / 1e6:.0f} M | {', '.join(f'{m:.2f}' for m in row['ms_per_text'])} "
                     f"| {statistics.mean(ratios):.3f} ({', '.join(f'{x:.3f}' for x in ratios)}) |")
    lines.append("")
    for threads in (1, os.cpu_count()):
        ms = rows[f"load, {threads} thread(s)"]["load_ms"]
        lines.append(f"load with {threads} thread(s): {statistics.mean(ms):.0f} ms ({', '.join(f'{m:.0f}' for m in ms)})")
    json.dump({"bundle": a.bundle, "texts": len(texts), "rows": rows}, open(os.path.join(a.out, "summary.json"), "w"), indent=1)
    open(os.path.join(a.out, "summary.md"), "w").write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Accuracy of the f16 compute modes on a whole labelled split, with the products
accumulating in f16 as on a Pi 5's core, computed on this machine.

  f16_accumulation_accuracy.py BUNDLE DATA.jsonl OUT_DIR [--compute mixed-f16 ...]

Why not the board binary under qemu: qemu emulates f16 arithmetic in software,
hours per mode over a 1.7 k split. Why not the x86 build as it runs: tract's x86
kernels read f16 operands into f32 registers and accumulate in f32, which
rounds less than the A76's FP16 kernel (FMLA on f16 lanes, an f16 accumulator).
So each f16 mode runs twice on x86: with tract's choice (f32 accumulation), and
with `--matmul-kernel generic_f16_4x4`, tract's portable f16 kernel, whose
accumulator is f16 (every product and sum rounded to f16, one rounding more per
step than a fused multiply-add). The element-wise ops between products run in
f16 in both, as on the board. The reference is f32 with tract's choice.

Every mode and kernel at full depth and under the bundle's own policy (that one
first: it is what a calibrated bundle runs, and 4x cheaper). The generic kernel
is slow (about 3 s per 128-token text at full depth here): answers are kept in
OUT_DIR/answers/, 100 texts at a time, and a rerun skips what is there. Writes OUT_DIR/summary.json
and summary.md after every run.
"""
import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "targets"))
sys.path.insert(0, os.path.join(ROOT, "bench", "common"))
from count_instructions import bundle_policy  # noqa: E402
from splits import DataError, read_split, wilson95  # noqa: E402

F16_ACCUMULATOR = "generic_f16_4x4"


CHUNK = 100


def answers(a, compute, kernel, flags, texts, path):
    """The runtime's answers, one JSON object per text, kept in `path`; built from
    chunks of CHUNK texts, each kept as it finishes (path.N), so that a stopped
    run goes on where it was."""
    if not path.exists():
        cmd = [a.x86_bin, "--threads", "1", "--compute", compute, "--matmul-kernel", kernel,
               "classify", "--bundle", a.bundle, *flags]
        parts = []
        for start in range(0, len(texts), CHUNK):
            part = path.with_name(f"{path.name}.{start // CHUNK}")
            if not part.exists():
                out = subprocess.run(cmd, input="\n".join(texts[start:start + CHUNK]) + "\n", capture_output=True, text=True)
                if out.returncode != 0:
                    sys.exit(f"{' '.join(cmd)} failed: {out.stderr[-2000:]}")
                tmp = part.with_suffix(".tmp")
                tmp.write_text(out.stdout)
                tmp.replace(part)
            parts.append(part)
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(p.read_text() for p in parts))
        tmp.replace(path)
        for p in parts:
            p.unlink()
    rows = [json.loads(l) for l in path.read_text().splitlines()]
    if len(rows) != len(texts):
        sys.exit(f"{path}: {len(rows)} answers for {len(texts)} texts (a text with a line break?)")
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("bundle")
    ap.add_argument("data")
    ap.add_argument("out")
    ap.add_argument("--compute", action="append", choices=["f16-products", "mixed-f16", "f16"], help="f16 modes to judge (default: mixed-f16)")
    ap.add_argument("--x86-bin", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "edge-runtime"))
    a = ap.parse_args()
    if not os.path.isfile(os.path.join(a.bundle, "manifest.json")):
        sys.exit(f"f16_accumulation_accuracy: {a.bundle}: no manifest.json")
    try:
        texts, gold = read_split(Path(a.data))
    except DataError as e:
        sys.exit(f"f16_accumulation_accuracy: {e}")
    modes = a.compute or ["mixed-f16"]
    own = bundle_policy(a.bundle)
    policies = ([(own, [])] if own else []) + [("full", ["--full"])]
    kept = Path(a.out) / "answers"
    kept.mkdir(parents=True, exist_ok=True)

    runs = [("f32", "tract", "f32, tract's kernels (reference)")]
    for m in modes:
        runs += [(m, "tract", f"{m}, tract's x86 kernels (f32 accumulator)"),
                 (m, F16_ACCUMULATOR, f"{m}, {F16_ACCUMULATOR} (f16 accumulator, as the A76's FP16 kernel)")]
    rows = []
    for policy, flags in policies:
        ref = None
        for compute, kernel, what in runs:
            got = answers(a, compute, kernel, flags, texts, kept / f"{compute}-{kernel}-{policy.replace(' ', '_')}.jsonl")
            ref = ref or got
            correct = sum(x["label"] == g for x, g in zip(got, gold))
            rows.append({"policy": policy, "compute": compute, "kernel": kernel, "what": what,
                         "accuracy": 100 * correct / len(texts), "ci95": [100 * x for x in wilson95(correct, len(texts))],
                         "delta_pts": 100 * (correct - sum(x["label"] == g for x, g in zip(ref, gold))) / len(texts),
                         "labels_changed": sum(x["label"] != r["label"] for x, r in zip(got, ref)),
                         "exits_changed": sum(x["exit_layer"] != r["exit_layer"] for x, r in zip(got, ref)),
                         "max_prob_diff": max(abs(x["prob"] - r["prob"]) for x, r in zip(got, ref)),
                         "mean_exit_layer": sum(x["exit_layer"] for x in got) / len(got)})
            print(json.dumps(rows[-1]), flush=True)
            write_summary(a, len(texts), rows)


def write_summary(a, n, rows):
    with open(os.path.join(a.out, "summary.json"), "w") as f:
        json.dump({"bundle": a.bundle, "data": a.data, "texts": n, "rows": rows}, f, indent=1)
    md = [f"`{a.bundle}` on all {n} texts of `{a.data}` (x86; answers against f32 under the same policy).", "",
          "| policy | compute, kernel | accuracy % [95% CI] | Δ pts | labels changed | exits changed | max Δ prob | mean exit layer |",
          "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        md.append(f"| {r['policy']} | {r['what']} | {r['accuracy']:.2f} [{r['ci95'][0]:.2f}, {r['ci95'][1]:.2f}] | "
                  f"{r['delta_pts']:+.2f} | {r['labels_changed']} | {r['exits_changed']} | {r['max_prob_diff']:.2g} | {r['mean_exit_layer']:.2f} |")
    with open(os.path.join(a.out, "summary.md"), "w") as f:
        f.write("\n".join(md) + "\n")


if __name__ == "__main__":
    main()

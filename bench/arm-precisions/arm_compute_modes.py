#!/usr/bin/env python3
"""What each compute mode costs and changes on a Pi 5 class core, under qemu-user:
guest instructions per text (the counting plugin) and accuracy on a whole
labelled split (plain qemu), for full depth and the bundle's own policy.

  arm_compute_modes.py BIN TWIN DATA.jsonl OUT_DIR [--count-n N] [--every K]
                       [--compute f32 --compute f16-products ...] [--cpu cortex-a76]

BIN: the aarch64 board binary; TWIN: an f32 bundle's NNEF twin (calibrated or
not); DATA.jsonl: labelled texts (the test split). Counts: every K-th text of
DATA, the first N such, after a run that only loads. Accuracy: every text of
DATA, each mode's labels against the gold ones and against the first mode's
(the reference). f32 answers are taken from this machine's x86 binary (X86_BIN,
default target/release/edge-runtime): the board's f32 answers are the same
(labels and exits; logits within 6e-8, targets/qemu-check.sh), and emulating
the whole split at full depth takes hours on two shared cores. Other modes run
under qemu as the core. Writes OUT_DIR/summary.json and summary.md.
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
from count_instructions import bundle_policy, count, runner  # noqa: E402
from splits import DataError, read_split, wilson95  # noqa: E402


MODES = ["f32", "f16-products", "mixed-f16", "f16"]


def classify(a, compute, policy, texts):
    """Answers, one JSON object per text: f32 from the x86 binary, other modes
    from the board binary under plain qemu (no plugin)."""
    board = compute != "f32"
    cmd = (runner(a.cpu) + [a.bin] if board else [a.x86_bin]) + ["--threads", "1", "--compute", compute, "classify", "--bundle", a.twin, *policy]
    out = subprocess.run(cmd, input="\n".join(texts) + "\n", capture_output=True, text=True, env=dict(os.environ, QEMU_CPU=a.cpu))
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed: {out.stderr[-2000:]}")
    answers = [json.loads(l) for l in out.stdout.splitlines()]
    if len(answers) != len(texts):
        sys.exit(f"{compute} {policy}: {len(answers)} answers for {len(texts)} texts")
    return answers


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name in ("bin", "twin", "data", "out"):
        ap.add_argument(name)
    ap.add_argument("--count-n", type=int, default=100, help="texts counted per mode and policy")
    ap.add_argument("--every", type=int, default=17, help="count every K-th text of DATA")
    ap.add_argument("--compute", action="append", choices=MODES, help="modes, the first the reference (default: f32, f16-products, mixed-f16, f16)")
    ap.add_argument("--cpu", default="cortex-a76", choices=["cortex-a72", "cortex-a76"])
    ap.add_argument("--x86-bin", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "edge-runtime"),
                    help="this machine's edge-runtime, for the f32 answers")
    ap.add_argument("--no-accuracy", action="append", default=[], choices=MODES, metavar="MODE",
                    help="count MODE but do not emulate the whole split with it (repeatable): qemu emulates "
                         "f16 arithmetic in software, so an f16 mode takes hours over a split of 1.7 k texts")
    a = ap.parse_args()
    if a.count_n < 1 or a.every < 1:
        sys.exit("--count-n and --every must be at least 1")
    modes = a.compute or MODES
    default = bundle_policy(a.twin)
    policies = [("full", ["--full"])]
    if default:
        policies.append((default, []))  # no flag: the bundle's own
    try:
        texts, gold = read_split(Path(a.data))
    except DataError as e:
        sys.exit(f"arm_compute_modes: {e}")
    sample = texts[:: a.every][: a.count_n]
    os.makedirs(a.out, exist_ok=True)

    results = []
    reference, sample_reference = {}, {}
    for mode in modes:
        base = [a.bin, "--threads", "1", "--load-threads", "1", "--compute", mode, "classify", "--bundle", a.twin]
        load, _ = count(base, "", a.cpu, prefix=runner(a.cpu))
        for name, flags in policies:
            total, out = count([*base, *flags], "\n".join(sample) + "\n", a.cpu, prefix=runner(a.cpu))
            counted = [json.loads(l) for l in out.splitlines()]
            counted_exits = [x["exit_layer"] for x in counted]
            counted_labels = [x["label"] for x in counted]
            if name not in sample_reference:
                sample_reference[name] = counted_labels
            row = {"compute": mode, "policy": name, "per_text": (total - load) / len(sample), "load": load,
                   "mean_exit_layer_counted": sum(counted_exits) / len(counted_exits),
                   # On the board, as emulated: free, since the count classified them.
                   "counted_labels_changed_vs_reference": sum(l != r for l, r in zip(counted_labels, sample_reference[name]))}
            if mode not in a.no_accuracy:
                answers = classify(a, mode, flags, texts)
                labels = [x["label"] for x in answers]
                correct = sum(l == g for l, g in zip(labels, gold))
                if name not in reference:
                    reference[name] = labels
                row.update({"accuracy": 100 * correct / len(texts), "ci95": [100 * x for x in wilson95(correct, len(texts))],
                            "answers_from": "board under qemu" if mode != "f32" else "x86 binary (the board's f32 answers are the same)",
                            "mean_exit_layer": sum(x["exit_layer"] for x in answers) / len(answers),
                            "labels_changed_vs_reference": sum(l != r for l, r in zip(labels, reference[name])) if name in reference else None})
            print(json.dumps(row), flush=True)
            results.append(row)
    summary = {"bin": a.bin, "twin": a.twin, "data": a.data, "texts": len(texts), "counted": len(sample),
               "every": a.every, "cpu": a.cpu, "reference": modes[0], "rows": results}
    with open(os.path.join(a.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    ref = {r["policy"]: r for r in results if r["compute"] == modes[0]}
    md = [f"{a.cpu}, `{a.twin}`: instructions per text on {len(sample)} texts (every {a.every}th of `{a.data}`), "
          f"accuracy on all {len(texts)} texts.", "",
          "| compute | policy | M instructions per text | vs " + modes[0] + " | accuracy % [95% CI] | Δ pts | labels changed | labels changed, counted texts | mean exit layer (counted texts) | load, M |",
          "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        b = ref[r["policy"]]
        if "accuracy" in r:
            acc = (f"{r['accuracy']:.2f} [{r['ci95'][0]:.2f}, {r['ci95'][1]:.2f}]",
                   f"{r['accuracy'] - b['accuracy']:+.2f}" if "accuracy" in b else "–", str(r["labels_changed_vs_reference"]),
                   f"{r['mean_exit_layer']:.2f} ({r['mean_exit_layer_counted']:.2f})")
        else:
            acc = ("not run", "–", "–", f"– ({r['mean_exit_layer_counted']:.2f})")
        acc = (*acc[:3], str(r["counted_labels_changed_vs_reference"]), acc[3])
        md.append(f"| {r['compute']} | {r['policy']} | {r['per_text'] / 1e6:.2f} | {r['per_text'] / b['per_text']:.3f}× | "
                  + " | ".join(acc) + f" | {r['load'] / 1e6:.0f} |")
    with open(os.path.join(a.out, "summary.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()

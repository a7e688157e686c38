"""Summarizes bench-python-wheel.sh: per policy and round the mean
microseconds per text of each side and their ratio (Python / Rust), the
median of the per-round ratios, that both sides exited alike, and the
wheels' sizes.

    python summarize_python_wheel.py OUT_DIR BUNDLE WHEELS_DIR"""

import json
import os
import statistics
import sys


def main(out, bundle, wheels_dir):
    raw = [json.loads(line) for line in open(os.path.join(out, "raw.jsonl"))]
    policies = sorted({r["policy"] for r in raw}, key=lambda p: (p != "full", p))
    summary = {"bundle": bundle, "policies": {}, "wheels": {}}
    for policy in policies:
        rows = [r for r in raw if r["policy"] == policy]
        rounds = sorted({r["round"] for r in rows})
        per_round = []
        for n in rounds:
            side = {r["side"]: r["result"] for r in rows if r["round"] == n}
            assert side["rust"]["exit_layers"] == side["python"]["exit_layers"], f"{policy} round {n}: the two sides exited differently"
            per_round.append({
                "round": n,
                "rust_us": side["rust"]["us_per_text_mean"],
                "python_us": side["python"]["us_per_text_mean"],
                "rust_median_us": side["rust"]["us_per_text_median"],
                "python_median_us": side["python"]["us_per_text_median"],
                "ratio": side["python"]["us_per_text_mean"] / side["rust"]["us_per_text_mean"],
            })
        calls = rows[0]["result"]["calls"]
        summary["policies"][policy] = {
            "texts": rows[0]["result"]["texts"],
            "calls_per_side_per_round": calls,
            "rounds": per_round,
            "median_ratio": statistics.median(r["ratio"] for r in per_round),
            "median_overhead_us": statistics.median(r["python_us"] - r["rust_us"] for r in per_round),
        }
    for name in sorted(os.listdir(wheels_dir)):
        if name.endswith(".whl"):
            summary["wheels"][name] = os.path.getsize(os.path.join(wheels_dir, name))
    json.dump(summary, open(os.path.join(out, "summary.json"), "w"), indent=2)
    lines = [f"Bundle `{bundle}`, batch 1, one thread; mean µs per text (every text, every pass) per round.", "",
             "| policy | round | Rust API | Python wheel | Python / Rust |", "|---|---|---|---|---|"]
    for policy, s in summary["policies"].items():
        for r in s["rounds"]:
            lines.append(f"| {policy} | {r['round']} | {r['rust_us']:.1f} | {r['python_us']:.1f} | {r['ratio']:.3f} |")
        lines.append(f"| **{policy}** | median | | | **{s['median_ratio']:.3f}** ({s['median_overhead_us']:+.1f} µs) |")
    lines += ["", "| wheel | bytes |", "|---|---|"] + [f"| {n} | {b:,} |" for n, b in summary["wheels"].items()]
    open(os.path.join(out, "summary.md"), "w").write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(*sys.argv[1:])

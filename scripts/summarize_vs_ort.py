#!/usr/bin/env python3
"""Summary of scripts/bench-vs-onnxruntime.sh: per thread count, the latency
ratio ours/onnxruntime at full depth (per round, then the mean), and every
early-exit policy's speed-up over onnxruntime's full depth."""
import json
import sys
from pathlib import Path

out, rounds = Path(sys.argv[1]), int(sys.argv[2])
rows, md = [], ["| threads | policy | accuracy % | Δ pts | mean layers | ours mean ms | onnxruntime full ms | ours / ORT full | speed-up vs ORT full |",
                "|---|---|---|---|---|---|---|---|---|"]
for t in (1, 2):
    per_policy = {}
    for r in range(1, rounds + 1):
        ort = json.loads((out / f"ort-t{t}-r{r}.json").read_text())
        ours = json.loads((out / f"ours-t{t}-r{r}" / "report.json").read_text())
        for p in ours["policies"]:
            d = per_policy.setdefault(p["name"], {"ratios": [], "ms": [], "ort_ms": [], "p": p})
            d["ratios"].append(p["latency"]["mean_ms"] / ort["mean_ms"])
            d["ms"].append(p["latency"]["mean_ms"])
            d["ort_ms"].append(ort["mean_ms"])
    for name, d in per_policy.items():
        mean = lambda v: sum(v) / len(v)
        p = d["p"]
        row = {"threads": t, "policy": name, "accuracy": p["accuracy"], "accuracy_change_pts": p["accuracy_change_pts"],
               "mean_layers": p["mean_layers"], "ours_ms": mean(d["ms"]), "ort_full_ms": mean(d["ort_ms"]),
               "ratio_per_round": d["ratios"], "ratio": mean(d["ratios"])}
        rows.append(row)
        md.append(f"| {t} | {name} | {p['accuracy']*100:.2f} | {p['accuracy_change_pts']:+.2f} | {p['mean_layers']:.2f} | "
                  f"{row['ours_ms']:.3f} | {row['ort_full_ms']:.3f} | {row['ratio']:.2f}× | {1/row['ratio']:.2f}× |")
(out / "summary.json").write_text(json.dumps(rows, indent=1) + "\n")
(out / "summary.md").write_text("\n".join(md) + "\n")
print("\n".join(md))

#!/usr/bin/env python3
"""Summary of bench-vs-onnxruntime.sh: per configuration (threads,
batch), each of our policies' latency against onnxruntime's full depth on the
merged one-graph model (the reference) and segment by segment, as ratios per
round and their mean. At batch N every runtime's figure is a batch's wall
time / N (ours reports each text's batch time, so it is divided by N here;
under early exit that is the batch's time until its last text left, / N)."""
import json
import sys
from pathlib import Path

out, rounds = Path(sys.argv[1]), int(sys.argv[2])
mean = lambda v: sum(v) / len(v)
rows = []
md = ["| threads | batch | policy | accuracy % | Δ pts | mean layers | ours ms | ORT one-graph ms | ORT per-segment ms | ours / ORT one-graph | speed-up vs ORT one-graph |",
      "|---|---|---|---|---|---|---|---|---|---|---|"]
for t, b in ((1, 1), (2, 1), (1, 8)):
    per_policy = {}
    for r in range(1, rounds + 1):
        one = json.loads((out / f"ort-one-t{t}-b{b}-r{r}.json").read_text())
        seg = json.loads((out / f"ort-seg-t{t}-b{b}-r{r}.json").read_text())
        ours = json.loads((out / f"ours-t{t}-b{b}-r{r}" / "report.json").read_text())
        for p in ours["policies"]:
            d = per_policy.setdefault(p["name"], {"ratios": [], "ms": [], "one": [], "seg": [], "p": p})
            ours_ms = p["latency"]["mean_ms"] / b
            d["ratios"].append(ours_ms / one["mean_ms"])
            d["ms"].append(ours_ms)
            d["one"].append(one["mean_ms"])
            d["seg"].append(seg["mean_ms"])
    for name, d in per_policy.items():
        p = d["p"]
        row = {"threads": t, "batch": b, "policy": name, "accuracy": p["accuracy"], "accuracy_change_pts": p["accuracy_change_pts"],
               "mean_layers": p["mean_layers"], "ours_ms": mean(d["ms"]), "ort_one_graph_ms": mean(d["one"]),
               "ort_per_segment_ms": mean(d["seg"]), "ratio_vs_one_graph_per_round": d["ratios"], "ratio_vs_one_graph": mean(d["ratios"])}
        rows.append(row)
        md.append(f"| {t} | {b} | {name} | {p['accuracy']*100:.2f} | {p['accuracy_change_pts']:+.2f} | {p['mean_layers']:.2f} | "
                  f"{row['ours_ms']:.3f} | {row['ort_one_graph_ms']:.3f} | {row['ort_per_segment_ms']:.3f} | "
                  f"{row['ratio_vs_one_graph']:.2f}× | {1/row['ratio_vs_one_graph']:.2f}× |")
# Cold start: our bundle load (read, verify, parse, check, optimize) against
# onnxruntime's session creation for the merged graph and for the segments.
report = lambda name, r: json.loads((out / f"{name}-t1-b1-r{r}" / "report.json").read_text())
load = {"edge_runtime_load_ms": mean([report("ours", r)["load_ms"] for r in range(1, rounds + 1)]),
        "edge_runtime_nnef_twin_load_ms": mean([report("nnef", r)["load_ms"] for r in range(1, rounds + 1)]),
        "ort_one_graph_session_ms": mean([json.loads((out / f"ort-one-t1-b1-r{r}.json").read_text())["session_create_ms"] for r in range(1, rounds + 1)]),
        "ort_per_segment_sessions_ms": mean([json.loads((out / f"ort-seg-t1-b1-r{r}.json").read_text())["session_create_ms"] for r in range(1, rounds + 1)])}
# The NNEF twin at full depth, batch 1, 1 thread: the same plan, so the same time.
full = lambda name, r: next(p for p in report(name, r)["policies"] if p["name"] == "full")["latency"]["mean_ms"]
load["nnef_twin_full_depth_ms_over_onnx_bundle"] = mean([full("nnef", r) / full("ours", r) for r in range(1, rounds + 1)])
md += ["", "| load | ms |", "|---|---|"] + [f"| {k} | {v:.1f} |" for k, v in load.items() if k.endswith("_ms")]
md += ["", f"NNEF twin, full depth, batch 1, 1 thread: {load['nnef_twin_full_depth_ms_over_onnx_bundle']:.3f}× the ONNX bundle's time"]
rows.append({"load": load})
(out / "summary.json").write_text(json.dumps(rows, indent=1) + "\n")
(out / "summary.md").write_text("\n".join(md) + "\n")
print("\n".join(md))

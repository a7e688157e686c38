#!/usr/bin/env python3
"""Summary of bench/precisions/bench-precisions.sh (means over rounds)."""
import json
import sys
from pathlib import Path

bundle, out, rounds = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
load = lambda p: json.loads(Path(p).read_text())
size = lambda d: sum(f.stat().st_size for f in Path(d).iterdir() if f.name != "quantize-report.json")
graphs = lambda d: sum(f.stat().st_size for f in Path(d).iterdir() if f.suffix == ".onnx")
f32_size, f32_graphs = size(bundle), graphs(bundle)
rows, md = [], []
md.append("| precision | bundle bytes | % of f32 (graphs only) | policy | test accuracy % | Δ pts vs f32 | mean layers | mean ms | × vs f32 | dev: exit layer changed |")
md.append("|---|---|---|---|---|---|---|---|---|---|")
base = {}
for p in ["f32", "f16", "int8-weight-only"]:
    d = bundle if p == "f32" else out / p
    reports = [load(out / f"bench-{p}-r{r}" / "report.json") for r in range(1, rounds + 1)]
    qr = None if p == "f32" else load(out / p / "quantize-report.json")
    changed = dict(map(tuple, qr["comparison"]["exit_layer_changed"])) if qr and qr["comparison"] else {}
    for i, pol in enumerate(reports[0]["policies"]):
        ms = sum(r["policies"][i]["latency"]["mean_ms"] for r in reports) / rounds
        if p == "f32":
            base[pol["name"]] = (pol["accuracy"], ms)
        acc0, ms0 = base[pol["name"]]
        row = {"precision": p, "bytes": size(d), "size_ratio": size(d) / f32_size, "graph_ratio": graphs(d) / f32_graphs,
               "policy": pol["name"], "accuracy": pol["accuracy"], "accuracy_change_pts": (pol["accuracy"] - acc0) * 100,
               "mean_layers": pol["mean_layers"], "mean_ms": ms, "speedup_vs_f32": ms0 / ms,
               "cost_to_exit_after_layer_ms": reports[0]["cost_to_exit_after_layer_ms"],
               "dev_exit_layer_changed": changed.get(pol["name"])}
        rows.append(row)
        ch = "–" if row["dev_exit_layer_changed"] is None else f"{row['dev_exit_layer_changed']*100:.2f}%"
        md.append(f"| {p} | {row['bytes']:,} | {row['size_ratio']*100:.1f}% ({row['graph_ratio']*100:.1f}%) | {pol['name']} | "
                  f"{pol['accuracy']*100:.2f} | {row['accuracy_change_pts']:+.2f} | {pol['mean_layers']:.2f} | {ms:.3f} | {row['speedup_vs_f32']:.2f}× | {ch} |")
md.append("")
md.append("Cost to exit after layer k (ms, round 1): " + "; ".join(
    f"{r['precision']}: " + ", ".join(f"{v:.2f}" for v in r["cost_to_exit_after_layer_ms"]) for r in rows if r["policy"] == "full"))
md.append("")
md.append("| int8 form (full depth, same texts) | mean ms | × vs f32 |")
md.append("|---|---|---|")
f32_ms = load(out / "forms-f32" / "report.json")["policies"][0]["latency"]["mean_ms"]
forms = {}
for p in ["f32", "int8-weight-only", "int8-dynamic-u8", "int8-dynamic-i8"]:
    ms = load(out / f"forms-{p}" / "report.json")["policies"][0]["latency"]["mean_ms"]
    forms[p] = ms
    md.append(f"| {p} | {ms:.3f} | {f32_ms / ms:.3f}× |")
(out / "summary.json").write_text(json.dumps({"rows": rows, "int8_forms_full_ms": forms}, indent=1) + "\n")
(out / "summary.md").write_text("\n".join(md) + "\n")
print("\n".join(md))

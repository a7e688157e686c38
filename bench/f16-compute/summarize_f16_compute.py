#!/usr/bin/env python3
"""Summary of bench/f16-compute/bench-f16-compute.sh: OUT/summary.{json,md}."""
import json
import sys
from pathlib import Path

out = Path(sys.argv[1])
load = lambda p: json.loads(Path(p).read_text())
f32, f16 = load(out / "bench-f32/report.json"), load(out / "bench-f16-compute/report.json")
q = load(out / "f16/quantize-report.json")
md = [f"Test split `{f32['data']}` ({f32['n']} texts), bundle `{f32['bundle']}`.", "",
      "| policy | f32 accuracy % [95% CI] | f16-compute accuracy % [95% CI] | Δ pts | f32 mean layers | f16 mean layers |",
      "|---|---|---|---|---|---|"]
rows = []
for a, b in zip(f32["policies"], f16["policies"]):
    assert a["name"] == b["name"], (a["name"], b["name"])
    ci = lambda p: f"{p['accuracy']*100:.2f} [{p['accuracy_ci95'][0]*100:.1f}, {p['accuracy_ci95'][1]*100:.1f}]"
    d = (b["accuracy"] - a["accuracy"]) * 100
    rows.append({"policy": a["name"], "f32_accuracy": a["accuracy"], "f16_accuracy": b["accuracy"], "delta_pts": d,
                 "f32_mean_layers": a["mean_layers"], "f16_mean_layers": b["mean_layers"]})
    md.append(f"| {a['name']} | {ci(a)} | {ci(b)} | {d:+.2f} | {a['mean_layers']:.2f} | {b['mean_layers']:.2f} |")
md.append("")
for key, how in [("comparison", "f16 weights, f32 compute"), ("comparison_f16_compute", "f16 weights, f16 compute")]:
    c = q.get(key)
    if not c:
        continue
    worst = min(e["label_agreement"] for e in c["exits"])
    err = max(e["logits_max_abs_error"] for e in c["exits"])
    ch = ", ".join(f"{p} {v*100:.2f}%" for p, v in c["exit_layer_changed"]) or "–"
    md.append(f"- dev ({c['n']} texts), {how}: accuracy {c['accuracy_before']*100:.2f}% → {c['accuracy_after']*100:.2f}%; "
              f"worst exit label agreement {worst*100:.2f}%, logits max-abs error {err:.2e}; exit layer changed: {ch}")
(out / "summary.json").write_text(json.dumps({"rows": rows, "quantize_report": str(out / "f16/quantize-report.json")}, indent=1) + "\n")
(out / "summary.md").write_text("\n".join(md) + "\n")
print("\n".join(md))

#!/usr/bin/env python3
"""Summary of scripts/bench-max-len.sh: per exit layer k, what exiting after
layer k costs at each token limit (the bench's cost_to_exit_after_layer_ms:
embeddings + layers 1..k with their branch classifiers, mean ms per text at
batch 1) and full depth, with the ratio to the first limit per round and its
mean; plus the token counts the limits give the same texts.

  summarize_max_len.py OUT_DIR ROUNDS MODEL_DIR DATA LIMIT L1 L2 ...

Reads OUT_DIR/tokens-L.jsonl and OUT_DIR/rounds/bench-LL-b1-rR/report.json;
writes OUT_DIR/summary.json and OUT_DIR/summary.md and prints the table."""
import json
import statistics
import sys
from pathlib import Path

out, rounds, model, data, limit = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
lengths = [int(x) for x in sys.argv[6:]]
ref = lengths[0]
mean = statistics.mean

tokens = {}
for L in lengths:
    rows = [json.loads(line) for line in open(out / f"tokens-{L}.jsonl")]
    n = [len(r["ids"]) for r in rows]
    tokens[L] = {"texts": len(rows), "mean_tokens": mean(n), "median_tokens": statistics.median(n), "max_tokens": max(n),
                 "truncated": sum(r["truncated"] for r in rows), "truncated_share": sum(r["truncated"] for r in rows) / len(rows),
                 "at_limit": sum(x == L for x in n)}

reports = {L: [json.loads((out / "rounds" / f"bench-L{L}-b1-r{r}" / "report.json").read_text()) for r in range(rounds)] for L in lengths}
first = reports[ref][0]
num_layers = first["num_layers"]
for L in lengths:
    for rep in reports[L]:
        assert rep["batch_size"] == 1 and rep["threads"] == 1 and rep["num_layers"] == num_layers and rep["n"] == first["n"]
        assert rep["truncated"] == tokens[L]["truncated"], (L, rep["truncated"], tokens[L]["truncated"])

full = lambda rep: next(p for p in rep["policies"] if p["name"] == "full")
per_length = {}
for L in lengths:
    reps = reports[L]
    per_length[L] = {
        "full_depth_ms_per_round": [full(r)["latency"]["mean_ms"] for r in reps],
        "full_depth_round1": full(reps[0])["latency"],
        "cost_to_exit_after_layer_ms_per_round": [r["cost_to_exit_after_layer_ms"] for r in reps],
        "embeddings_ms_per_round": [r["segment_latency"][0]["mean_ms"] for r in reps],
        "layer_with_branch_ms_per_round": [[s["mean_ms"] for s in r["segment_latency"][1:]] for r in reps],
        "load_ms_per_round": [r.get("load_ms") for r in reps],
    }


def compare(get):
    """Mean ms per length over the rounds, and each length's ratio to the reference, per round and mean."""
    ms = {L: mean(get(L, r) for r in range(rounds)) for L in lengths}
    ratios = {L: [get(L, r) / get(ref, r) for r in range(rounds)] for L in lengths if L != ref}
    return {"ms": {str(L): v for L, v in ms.items()}, "ratio_per_round": {str(L): v for L, v in ratios.items()},
            "ratio": {str(L): mean(v) for L, v in ratios.items()}}


layers = [dict(exit_layer=k + 1, **compare(lambda L, r, k=k: per_length[L]["cost_to_exit_after_layer_ms_per_round"][r][k])) for k in range(num_layers)]
full_depth = compare(lambda L, r: per_length[L]["full_depth_ms_per_round"][r])
embeddings = compare(lambda L, r: per_length[L]["embeddings_ms_per_round"][r])
per_layer = compare(lambda L, r: mean(per_length[L]["layer_with_branch_ms_per_round"][r]))

summary = {
    "model": model, "data": data, "limit": int(limit) if limit else None, "texts": first["n"], "rounds": rounds,
    "batch_size": 1, "threads": 1, "machine": first["machine"], "runtime": first["runtime"], "compute": first["compute"],
    "precision": first["precision"], "lengths": lengths, "reference_length": ref,
    "what": "cost to exit after layer k = embeddings + layers 1..k each with its branch classifier (a pass running every exit), "
            "mean ms per text; full depth = embeddings + all layers + the last exit only; tokenization excluded",
    "tokens": {str(L): v for L, v in tokens.items()},
    "full_depth": full_depth, "cost_to_exit_after_layer": layers,
    "embeddings": embeddings, "mean_layer_with_branch": per_layer,
    "per_length_raw": {str(L): v for L, v in per_length.items()},
}
pause = out / "pause.json"
if pause.exists():
    summary["pause"] = json.loads(pause.read_text())
(out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")

others = [L for L in lengths if L != ref]
fmt = lambda v: ", ".join(f"{x:.2f}" for x in v)
head = "| exit layer k | " + " | ".join(f"ms at {L}" for L in lengths) + " | " + " | ".join(f"{L} / {ref} (per round)" for L in others) + " |"
md = [head, "|" + "---|" * (1 + len(lengths) + len(others))]


def row(name, c, bold=False):
    cells = [f"{c['ms'][str(L)]:.3f}" for L in lengths] + [f"{c['ratio'][str(L)]:.2f}× ({fmt(c['ratio_per_round'][str(L)])})" for L in others]
    b = "**" if bold else ""
    return f"| {b}{name}{b} | " + " | ".join(cells) + " |"


for c in layers:
    md.append(row(str(c["exit_layer"]), c))
md.append(row("full depth (last exit only)", full_depth, bold=True))
md += ["", "| | " + " | ".join(f"max-len {L}" for L in lengths) + " |", "|" + "---|" * (1 + len(lengths))]
md.append("| mean tokens per text ([CLS], [SEP] included) | " + " | ".join(f"{tokens[L]['mean_tokens']:.1f}" for L in lengths) + " |")
md.append("| median / max tokens | " + " | ".join(f"{tokens[L]['median_tokens']:.0f} / {tokens[L]['max_tokens']}" for L in lengths) + " |")
md.append("| texts truncated | " + " | ".join(f"{tokens[L]['truncated']} of {tokens[L]['texts']} ({tokens[L]['truncated_share']*100:.1f}%)" for L in lengths) + " |")
md.append("| embeddings, ms | " + " | ".join(f"{embeddings['ms'][str(L)]:.3f}" for L in lengths) + " |")
md.append("| one layer with its branch, ms (mean of the 12) | " + " | ".join(f"{per_layer['ms'][str(L)]:.3f}" for L in lengths) + " |")
md.append("| full depth p50 / p90 / p99 ms (round 1) | " + " | ".join(
    "{p50_ms:.2f} / {p90_ms:.2f} / {p99_ms:.2f}".format(**per_length[L]["full_depth_round1"]) for L in lengths) + " |")
md.append("| bundle load, ms (median of rounds) | " + " | ".join(
    f"{statistics.median(x for x in per_length[L]['load_ms_per_round'] if x is not None):.0f}" for L in lengths) + " |")
for L in others:
    md.append(f"\nToken ratio {L} / {ref}: {tokens[L]['mean_tokens'] / tokens[ref]['mean_tokens']:.2f}× (mean tokens per text).")
md.append(f"\n{first['n']} texts of `{data}`{f' (first {limit})' if limit else ''}, batch 1, 1 thread, {rounds} rounds alternating the limits; "
          f"{first['machine']}; {first['runtime']}. Ratios per round, then averaged; ms are means over the rounds.")
(out / "summary.md").write_text("\n".join(md) + "\n")
print("\n".join(md))

#!/usr/bin/env python3
"""Summary of bench/max-len/bench-max-len.sh: per exit layer k, what exiting after
layer k costs at each token limit (the bench's cost_to_exit_after_layer_ms:
embeddings + layers 1..k with their branch classifiers, mean ms per text at
batch 1) and full depth, with the ratio to the first limit per round and its
mean; plus the token counts the limits give the same texts.

  summarize_max_len.py OUT_DIR ROUNDS MODEL_DIR DATA LIMIT L1 L2 ...

Reads OUT_DIR/tokens-L.jsonl, OUT_DIR/rounds/bench-LL-b1-rR/report.json and,
when there, OUT_DIR/rounds-long/ (the same for the texts the first limit
truncates, timed on their own) and OUT_DIR/pause.json; writes
OUT_DIR/summary.json and OUT_DIR/summary.md and prints the tables."""
import json
import statistics
import sys
from pathlib import Path

out, rounds, model, data, limit = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
lengths = [int(x) for x in sys.argv[6:]]
ref = lengths[0]
mean = statistics.mean

token_rows = {L: [json.loads(line) for line in open(out / f"tokens-{L}.jsonl")] for L in lengths}
# Texts the shortest limit does not cut get the same ids under every limit.
for L in lengths[1:]:
    same = all(a["ids"] == b["ids"] for a, b in zip(token_rows[ref], token_rows[L]) if not a["truncated"])
    assert same, f"a text max-len {ref} does not cut has other ids at max-len {L}"
long_mask = [r["truncated"] for r in token_rows[ref]]


def token_stats(rows, L):
    n = [len(r["ids"]) for r in rows]
    return {"texts": len(rows), "mean_tokens": mean(n), "median_tokens": statistics.median(n), "max_tokens": max(n),
            "truncated": sum(r["truncated"] for r in rows), "truncated_share": sum(r["truncated"] for r in rows) / len(rows),
            "at_limit": sum(x == L for x in n)}


full = lambda rep: next(p for p in rep["policies"] if p["name"] == "full")


def summarize(rounds_dir, rows_of):
    """The bench reports of one text set, every length and round, compared with the reference length."""
    tokens = {L: token_stats(rows_of(L), L) for L in lengths}
    reports = {L: [json.loads((rounds_dir / f"bench-L{L}-b1-r{r}" / "report.json").read_text()) for r in range(rounds)] for L in lengths}
    first = reports[ref][0]
    num_layers = first["num_layers"]
    for L in lengths:
        for rep in reports[L]:
            assert rep["batch_size"] == 1 and rep["threads"] == 1 and rep["num_layers"] == num_layers and rep["n"] == tokens[L]["texts"]
            assert rep["truncated"] == tokens[L]["truncated"], (L, rep["truncated"], tokens[L]["truncated"])
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

    return {
        "texts": first["n"], "data": first["data"], "machine": first["machine"], "runtime": first["runtime"],
        "compute": first["compute"], "precision": first["precision"], "num_layers": num_layers,
        "tokens": {str(L): v for L, v in tokens.items()},
        "full_depth": compare(lambda L, r: per_length[L]["full_depth_ms_per_round"][r]),
        "cost_to_exit_after_layer": [dict(exit_layer=k + 1, **compare(lambda L, r, k=k: per_length[L]["cost_to_exit_after_layer_ms_per_round"][r][k]))
                                     for k in range(num_layers)],
        "embeddings": compare(lambda L, r: per_length[L]["embeddings_ms_per_round"][r]),
        "mean_layer_with_branch": compare(lambda L, r: mean(per_length[L]["layer_with_branch_ms_per_round"][r])),
        "per_length_raw": {str(L): v for L, v in per_length.items()},
    }


sets = {"all": summarize(out / "rounds", lambda L: token_rows[L])}
if (out / "rounds-long" / f"bench-L{ref}-b1-r0" / "report.json").exists():
    sets[f"truncated_at_{ref}"] = summarize(out / "rounds-long", lambda L: [r for r, c in zip(token_rows[L], long_mask) if c])
main = sets["all"]
summary = {
    "model": model, "data": data, "limit": int(limit) if limit else None, "rounds": rounds,
    "batch_size": 1, "threads": 1, "machine": main["machine"], "runtime": main["runtime"], "lengths": lengths, "reference_length": ref,
    "what": "cost to exit after layer k = embeddings + layers 1..k each with its branch classifier (a pass running every exit), "
            "mean ms per text; full depth = embeddings + all layers + the last exit only; tokenization excluded. "
            f"'all': every text; 'truncated_at_{ref}': only the texts max-len {ref} cuts (the others get the same tokens at every limit), timed on their own",
    "sets": sets,
}
pause = out / "pause.json"
if pause.exists():
    summary["pause"] = json.loads(pause.read_text())
(out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")

others = [L for L in lengths if L != ref]
fmt = lambda v: ", ".join(f"{x:.2f}" for x in v)
long = sets.get(f"truncated_at_{ref}")
cols = lambda tag: [f"{tag}ms at {L}" for L in lengths] + [f"{tag}{L} / {ref} (per round)" for L in others]
head = ["exit layer k"] + cols("") + (cols(f"long texts: ") if long else [])
md = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]


def cells(c):
    return [f"{c['ms'][str(L)]:.3f}" for L in lengths] + [f"{c['ratio'][str(L)]:.2f}× ({fmt(c['ratio_per_round'][str(L)])})" for L in others]


def row(name, pick, bold=False):
    b = "**" if bold else ""
    cs = cells(pick(main)) + (cells(pick(long)) if long else [])
    return f"| {b}{name}{b} | " + " | ".join(cs) + " |"


for k in range(main["num_layers"]):
    md.append(row(str(k + 1), lambda s, k=k: s["cost_to_exit_after_layer"][k]))
md.append(row("full depth (last exit only)", lambda s: s["full_depth"], bold=True))
for name, st in sets.items():
    tok, raw = st["tokens"], st["per_length_raw"]
    title = "all texts" if name == "all" else f"the texts max-len {ref} truncates"
    md += ["", f"| {title} (n = {st['texts']}) | " + " | ".join(f"max-len {L}" for L in lengths) + " |", "|" + "---|" * (1 + len(lengths))]
    md.append("| mean tokens per text ([CLS], [SEP] included) | " + " | ".join(f"{tok[str(L)]['mean_tokens']:.1f}" for L in lengths) + " |")
    md.append("| median / max tokens | " + " | ".join(f"{tok[str(L)]['median_tokens']:.0f} / {tok[str(L)]['max_tokens']}" for L in lengths) + " |")
    md.append("| texts truncated | " + " | ".join(f"{tok[str(L)]['truncated']} of {tok[str(L)]['texts']} ({tok[str(L)]['truncated_share']*100:.1f}%)" for L in lengths) + " |")
    md.append("| embeddings, ms | " + " | ".join(f"{st['embeddings']['ms'][str(L)]:.3f}" for L in lengths) + " |")
    md.append(f"| one layer with its branch, ms (mean of the {st['num_layers']}) | " + " | ".join(f"{st['mean_layer_with_branch']['ms'][str(L)]:.3f}" for L in lengths) + " |")
    md.append("| full depth p50 / p90 / p99 ms (round 1) | " + " | ".join(
        "{p50_ms:.2f} / {p90_ms:.2f} / {p99_ms:.2f}".format(**raw[str(L)]["full_depth_round1"]) for L in lengths) + " |")
    md.append("| bundle load, ms (median of rounds) | " + " | ".join(
        f"{statistics.median(x for x in raw[str(L)]['load_ms_per_round'] if x is not None):.0f}" for L in lengths) + " |")
    for L in others:
        md.append(f"| token ratio {L} / {ref} (mean tokens) | {tok[str(L)]['mean_tokens'] / tok[str(ref)]['mean_tokens']:.2f}× | |")
n_all = main["texts"]
md.append(f"\n{n_all} texts of `{data}`{f' (first {limit})' if limit else ''}, batch 1, 1 thread, {rounds} rounds alternating the limits; "
          f"{main['machine']}; {main['runtime']}. Ratios per round, then averaged; ms are means over the rounds."
          + (f" Long texts: the {long['texts']} texts max-len {ref} truncates, timed on their own in the same way." if long else ""))
if "pause" in summary:
    p = summary["pause"]
    md.append(f"Background training paused during the rounds ({p['timed_rounds_wall_s']} s; {len(p['paused_processes'])} processes); "
              f"load average at the start / end of the pause: {p['loadavg_at_pause_start']} / {p['loadavg_at_pause_end']}"
              + (f"; CPUs {p['cpu_busy_share_during_rounds']:.0%} busy during the rounds (the bench alone: ~{1 / p['cpus']:.0%})" if "cpu_busy_share_during_rounds" in p else "")
              + (f"; the bench ran under `{p['rounds_run_under']}`" if p.get("rounds_run_under", "default niceness") != "default niceness" else "") + ".")
(out / "summary.md").write_text("\n".join(md) + "\n")
print("\n".join(md))

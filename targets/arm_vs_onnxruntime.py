#!/usr/bin/env python3
"""Our board binary against onnxruntime's aarch64 build, counted the same way:
guest instructions under qemu-user with the counting plugin, on an emulated
Cortex-A72 (Pi 4) and Cortex-A76 (Pi 5), each program seeing that core's
/proc/cpuinfo (targets/aarch64-run.sh).

  arm_vs_onnxruntime.py BIN TWIN MERGED.onnx TEXTS.txt IDS.jsonl OUT_DIR [--n N] [--cpu CORE]...

BIN: our aarch64 board binary; TWIN: the bundle's NNEF twin; MERGED.onnx: the
same bundle merged into one graph; TEXTS.txt / IDS.jsonl: the same texts and
their token ids. Ours: `classify` with no text (the load), then N texts at
every `--exit-layer k`, `--full` and, when the twin's manifest has a default
policy other than full (`edge-runtime calibrate` wrote one), under that
policy with no flag, as a user runs it; onnxruntime (targets/ort_count_run.py,
run by the aarch64 CPython): imports only, then session and two warm-up
texts (its load), then N texts. Per text = (run with N texts - run without) / N.
Writes OUT_DIR/summary.json and summary.md.
"""
import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from count_instructions import bundle_policy, count, read_lines, runner  # noqa: E402


def first_answer(a, cpus):
    """Instructions from the process's start to its first answer, per core."""
    text = open(a.texts, encoding="utf-8").read().splitlines()[0] + "\n"
    rows = []
    for cpu in cpus:
        row = {"cpu": cpu}
        for lazy in ([], ["--lazy-plans"]):
            for pol in (["--full"], ["--exit-layer", "1"]):
                cmd = [a.bin, "--threads", "1", "--load-threads", "1", *lazy, "classify", "--bundle", a.twin, *pol]
                row[f"ours{' lazy' if lazy else ''} {' '.join(pol)}"] = count(cmd, text, cpu, prefix=runner(cpu))[0]
        ort = [os.path.join(HERE, "ort_count_run.py"), a.merged, a.ids, "--stop-after"]
        imports, _ = count(ort + ["imports"], "", cpu, prefix=runner(cpu, "--python"))
        first, _ = count(ort + ["first"], "", cpu, prefix=runner(cpu, "--python"))
        row["onnxruntime session and first text"] = first - imports
        row["onnxruntime imports"] = imports
        print(json.dumps(row), flush=True)
        rows.append(row)
    with open(os.path.join(a.out, "first-answer.json"), "w") as f:
        json.dump({"bin": a.bin, "twin": a.twin, "merged": a.merged, "rows": rows}, f, indent=1)
    keys = [k for k in rows[0] if k != "cpu"]
    md = ["| M instructions to the first answer | " + " | ".join(r["cpu"] for r in rows) + " |", "|---|" + "---|" * len(rows)]
    md += [f"| {k} | " + " | ".join(f"{r[k] / 1e6:.0f}" for r in rows) + " |" for k in keys]
    with open(os.path.join(a.out, "first-answer.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md))


def exit_layers(spec, layers):
    """`--exit-layers`: all (1..layers-1), none, or a comma list within that range."""
    if spec == "all":
        return list(range(1, layers))
    if spec == "none":
        return []
    try:
        ks = [int(k) for k in spec.split(",")]
    except ValueError:
        sys.exit(f"--exit-layers {spec}: give all, none, or layer numbers like 1,2,6")
    bad = [k for k in ks if not 1 <= k < layers]
    if bad:
        sys.exit(f"--exit-layers {spec}: {bad} outside 1..{layers - 1} (layer {layers} is --full)")
    return ks


def main() -> None:
    ap = argparse.ArgumentParser()
    for name in ("bin", "twin", "merged", "texts", "ids", "out"):
        ap.add_argument(name)
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--cpu", action="append", help="qemu core (default: cortex-a72 and cortex-a76)")
    ap.add_argument("--exit-layers", default="all", help="fixed exit layers to count: all, none, or a list like 1,2,6")
    ap.add_argument("--first-answer", action="store_true", help="also count the cold start to the first answer")
    ap.add_argument("--first-answer-only", action="store_true", help="count only the cold start to the first answer")
    a = ap.parse_args()
    cpus = a.cpu or ["cortex-a72", "cortex-a76"]
    os.makedirs(a.out, exist_ok=True)
    if a.first_answer_only:
        first_answer(a, cpus)
        return
    texts = read_lines(a.texts, a.n)
    n = len(texts)
    manifest = json.load(open(os.path.join(a.twin, "manifest.json")))
    layers = manifest["num_layers"]
    policies = [("--exit-layer", str(k)) for k in exit_layers(a.exit_layers, layers)] + [("--full",)]
    full_at = len(policies) - 1  # index of --full in each core's rows
    default = bundle_policy(a.twin)
    if default:
        policies.append(())  # no flag: the bundle's own (calibrated) policy
    results = []
    for cpu in cpus:
        # Each program sees the emulated core's /proc/cpuinfo (tract and onnxruntime both read it).
        # One thread for the load too: the plugin's counter is not atomic. (A load's count still
        # varies by ~0.5% from run to run: hash maps are seeded at random.)
        ours_cmd = [a.bin, "--threads", "1", "--load-threads", "1", "classify", "--bundle", a.twin]
        ours_prefix = runner(cpu)
        load, _ = count(ours_cmd, "", cpu, prefix=ours_prefix)
        ours = []
        for pol in policies:
            total, out = count([*ours_cmd, *pol], "\n".join(texts) + "\n", cpu, prefix=ours_prefix)
            exits = [json.loads(l)["exit_layer"] for l in out.splitlines()]
            name = " ".join(pol) or "the bundle's policy: " + default
            ours.append({"policy": name, "mean_exit_layer": sum(exits) / len(exits), "per_text": (total - load) / n})
            print(json.dumps({"cpu": cpu, "ours": ours[-1]}), flush=True)
        ort_cmd = [os.path.join(HERE, "ort_count_run.py"), a.merged, a.ids, "--stop-after"]
        ort_prefix = runner(cpu, "--python")
        imports, _ = count(ort_cmd + ["imports"], "", cpu, prefix=ort_prefix)
        ort_load, _ = count(ort_cmd + ["load"], "", cpu, prefix=ort_prefix)
        ort_n, out = count(ort_cmd + [str(n)], "", cpu, prefix=ort_prefix)
        ort = {"load": ort_load - imports, "per_text": (ort_n - ort_load) / n, "imports": imports,
               "texts": json.loads(out.splitlines()[-1])["texts"]}
        print(json.dumps({"cpu": cpu, "onnxruntime": ort}), flush=True)
        results.append({"cpu": cpu, "ours_load": load, "ours": ours, "onnxruntime": ort})
    summary = {"default_policy": manifest.get("default_policy", {"policy": "full"}), "bin": a.bin, "twin": a.twin, "merged": a.merged, "texts": n, "results": results}
    with open(os.path.join(a.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    # Beside full depth, the headline's second policy: the bundle's own when
    # it has one, else the first fixed exit counted.
    early_at = len(policies) - 1 if policies[-1] == () else (0 if full_at > 0 else None)
    early = f"ours, {results[0]['ours'][early_at]['policy']}" if early_at is not None else None
    head = ["core", "ours, full depth"] + ([early] if early else []) + ["onnxruntime, one graph", "ours / onnxruntime: full depth"] \
        + ([early.removeprefix("ours, ")] if early else []) + ["load: ours", "load: onnxruntime (session + 2 texts)"]
    md = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        full, o = r["ours"][full_at]["per_text"], r["onnxruntime"]["per_text"]
        cells = [r["cpu"], f"{full / 1e6:.2f} M"]
        if early:
            e = r["ours"][early_at]["per_text"]
            cells.append(f"{e / 1e6:.2f} M")
        cells += [f"{o / 1e6:.2f} M", f"{full / o:.3f}"] + ([f"{e / o:.3f} ({o / e:.2f}× fewer)"] if early else [])
        cells += [f"{r['ours_load'] / 1e6:.0f} M", f"{r['onnxruntime']['load'] / 1e6:.0f} M"]
        md.append("| " + " | ".join(cells) + " |")
    md.append("")
    md.append("Per exit layer (ours, instructions per text):")
    md.append("")
    md.append("| policy | mean exit layer | " + " | ".join(r["cpu"] for r in results)
              + " | " + " | ".join(f"vs onnxruntime, {r['cpu']}" for r in results) + " |")
    md.append("|---|---|" + "---|" * 2 * len(results))
    for i, row in enumerate(results[0]["ours"]):
        md.append(f"| {row['policy']} | {row['mean_exit_layer']:.2f} | "
                  + " | ".join(f"{r['ours'][i]['per_text'] / 1e6:.2f} M" for r in results) + " | "
                  + " | ".join(f"{r['ours'][i]['per_text'] / r['onnxruntime']['per_text']:.3f}×" for r in results) + " |")
    with open(os.path.join(a.out, "summary.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md))
    if a.first_answer:
        first_answer(a, cpus)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Our board binary against onnxruntime's aarch64 build, counted the same way:
guest instructions under qemu-user with the counting plugin, on an emulated
Cortex-A72 (Pi 4) and Cortex-A76 (Pi 5), each program seeing that core's
/proc/cpuinfo (targets/aarch64-run.sh).

  arm_vs_onnxruntime.py BIN TWIN MERGED.onnx TEXTS.txt IDS.jsonl OUT_DIR [--n N] [--cpu CORE]...

BIN: our aarch64 board binary; TWIN: the bundle's NNEF twin; MERGED.onnx: the
same bundle merged into one graph; TEXTS.txt / IDS.jsonl: the same texts and
their token ids. Ours: `classify` with no text (the load), then N texts at
every `--exit-layer k` and `--full`; onnxruntime (targets/ort_count_run.py,
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
from count_instructions import count, read_lines, runner  # noqa: E402


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


def main() -> None:
    ap = argparse.ArgumentParser()
    for name in ("bin", "twin", "merged", "texts", "ids", "out"):
        ap.add_argument(name)
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--cpu", action="append", help="qemu core (default: cortex-a72 and cortex-a76)")
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
    layers = json.load(open(os.path.join(a.twin, "manifest.json")))["num_layers"]
    results = []
    for cpu in cpus:
        # Each program sees the emulated core's /proc/cpuinfo (tract and onnxruntime both read it).
        # One thread for the load too: the plugin's counter is not atomic. (A load's count still
        # varies by ~0.5% from run to run: hash maps are seeded at random.)
        ours_cmd = [a.bin, "--threads", "1", "--load-threads", "1", "classify", "--bundle", a.twin]
        ours_prefix = runner(cpu)
        load, _ = count(ours_cmd, "", cpu, prefix=ours_prefix)
        ours = []
        for pol in [("--exit-layer", str(k)) for k in range(1, layers)] + [("--full",)]:
            total, out = count([*ours_cmd, *pol], "\n".join(texts) + "\n", cpu, prefix=ours_prefix)
            exits = [json.loads(l)["exit_layer"] for l in out.splitlines()]
            ours.append({"policy": " ".join(pol), "mean_exit_layer": sum(exits) / len(exits), "per_text": (total - load) / n})
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
    summary = {"bin": a.bin, "twin": a.twin, "merged": a.merged, "texts": n, "results": results}
    with open(os.path.join(a.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    md = ["| core | ours, full depth | ours, exit at layer 1 | onnxruntime, one graph | ours / onnxruntime (full, layer 1) | load: ours | load: onnxruntime (session + 2 texts) |",
          "|---|---|---|---|---|---|---|"]
    for r in results:
        full, first = r["ours"][-1]["per_text"], r["ours"][0]["per_text"]
        o = r["onnxruntime"]["per_text"]
        md.append(f"| {r['cpu']} | {full / 1e6:.2f} M | {first / 1e6:.2f} M | {o / 1e6:.2f} M | {full / o:.2f} ({first / o:.2f}) "
                  f"| {r['ours_load'] / 1e6:.0f} M | {r['onnxruntime']['load'] / 1e6:.0f} M |")
    md.append("")
    md.append("Per exit layer (ours, instructions per text):")
    md.append("")
    md.append("| policy | " + " | ".join(r["cpu"] for r in results) + " |")
    md.append("|---|" + "---|" * len(results))
    for i, row in enumerate(results[0]["ours"]):
        md.append(f"| {row['policy']} | " + " | ".join(f"{r['ours'][i]['per_text'] / 1e6:.2f} M" for r in results) + " |")
    with open(os.path.join(a.out, "summary.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md))
    if a.first_answer:
        first_answer(a, cpus)


if __name__ == "__main__":
    main()

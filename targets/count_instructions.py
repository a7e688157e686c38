#!/usr/bin/env python3
"""Guest instructions executed by an aarch64 edge-runtime under qemu-user,
per inference and per exit layer (`--exit-layer K`), so a user can estimate board latency from
their board's instructions per second. Timings under qemu mean nothing; the
instruction count of the emulated program does not depend on the host.

  targets/count_instructions.py BIN BUNDLE TEXTS.txt [--qemu-cpu cortex-a72] [--compute f16] [--full-only]

qemu-user shows the host's /proc/cpuinfo, where tract looks for `asimdhp`: to
let it use the f16 kernels of an emulated cortex-a76, run with TRACT_CPU_ISA=+fp16.

Method: qemu's `-d in_asm,exec,nochain` log gives each translated block's
instruction count and every block execution; streamed through a FIFO and
summed. One run loads the bundle and classifies no text; one per exit layer k
loads it and classifies N texts with `--exit-layer k` (`--full` for the last);
(run_k - run_0) / N is the count per text.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
from collections import Counter

TB_RE = re.compile(r"^0x([0-9a-f]+):")
EXEC_RE = re.compile(r"^Trace \d+: 0x[0-9a-f]+ \[[0-9a-f]+/([0-9a-f]+)/")


def count(cmd, stdin_text, cpu):
    with tempfile.TemporaryDirectory() as d:
        fifo = os.path.join(d, "log")
        os.mkfifo(fifo)
        sizes, execs = {}, Counter()
        result = {}

        def reader():
            cur, n = None, 0
            with open(fifo, "r", errors="replace") as f:
                for line in f:
                    if line.startswith("Trace"):
                        m = EXEC_RE.match(line)
                        if m:
                            execs[int(m.group(1), 16)] += 1
                    elif line.startswith("IN:"):
                        cur, n = None, 0
                    elif line.startswith("0x"):
                        m = TB_RE.match(line)
                        if m:
                            if cur is None:
                                cur = int(m.group(1), 16)
                            n += 1
                            sizes[cur] = n
            result["n"] = sum(sizes.get(pc, 0) * k for pc, k in execs.items())

        t = threading.Thread(target=reader)
        t.start()
        env = dict(os.environ, QEMU_CPU=cpu)
        out = subprocess.run(["qemu-aarch64-static", "-L", "/usr/aarch64-linux-gnu", "-d", "in_asm,exec,nochain", "-D", fifo] + cmd,
                             input=stdin_text.encode(), capture_output=True, env=env)
        t.join()
        if out.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed: {out.stderr.decode()[-2000:]}")
        return result["n"], out.stdout.decode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bin")
    ap.add_argument("bundle")
    ap.add_argument("texts")
    ap.add_argument("--n", type=int, default=5)
    ap.add_argument("--qemu-cpu", default="cortex-a72")
    ap.add_argument("--compute", default="auto", choices=["auto", "f32", "f16"])
    ap.add_argument("--full-only", action="store_true", help="count full depth only")
    ap.add_argument("--runtime-flag", action="append", default=[],
                    help="a global edge-runtime flag, e.g. --runtime-flag=--no-fused-norm (repeatable)")
    a = ap.parse_args()
    texts = [l for l in open(a.texts, encoding="utf-8").read().splitlines() if l.strip()][: a.n]
    layers = json.load(open(os.path.join(a.bundle, "manifest.json")))["num_layers"]
    policies = [] if a.full_only else [("--exit-layer", str(k)) for k in range(1, layers)]
    policies.append(("--full",))
    run = [a.bin, "--compute", a.compute, *a.runtime_flag, "classify", "--bundle", a.bundle]
    base, _ = count(run, "", a.qemu_cpu)
    rows = []
    for pol in policies:
        total, out = count([*run, *pol], "\n".join(texts) + "\n", a.qemu_cpu)
        exits = [json.loads(l)["exit_layer"] for l in out.splitlines()]
        rows.append({"policy": " ".join(pol), "exit_layers": exits, "mean_exit_layer": sum(exits) / len(exits),
                     "instructions_per_text": (total - base) / len(texts)})
        print(json.dumps(rows[-1]), flush=True)
    print(json.dumps({"bundle": a.bundle, "qemu_cpu": a.qemu_cpu, "compute": a.compute, "runtime_flags": a.runtime_flag,
                      "tract_cpu_isa": os.environ.get("TRACT_CPU_ISA"), "texts": len(texts), "load_instructions": base, "rows": rows}))


if __name__ == "__main__":
    main()

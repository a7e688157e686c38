#!/usr/bin/env python3
"""Guest instructions executed by an aarch64 edge-runtime under qemu-user,
per inference and per exit layer (`--exit-layer K`), so a user can estimate board latency from
their board's instructions per second. Timings under qemu mean nothing; the
instruction count of the emulated program does not depend on the host.

  targets/count_instructions.py BIN BUNDLE TEXTS.txt [--qemu-cpu cortex-a72] [--compute f16] [--full-only]

The program runs through targets/aarch64-run.sh, so it sees the emulated
core's /proc/cpuinfo (its CPU part and features, `asimdhp` for a cortex-a76's
f16 kernels among them) as it would on the board.

Method: a TCG plugin (targets/insn-count/insn_count.c, built with Debian's
dynamic qemu-user by targets/insn-count/setup.sh) adds each translated block's
instruction count every time the block executes. One run loads the bundle and
classifies no text; one per exit layer k loads it and classifies N texts with
`--exit-layer k` (`--full` for the last); (run_k - run_0) / N is the count per
text. (The plugin agrees with the older method, qemu's `-d in_asm,exec,nochain`
log summed block by block, to 12 instructions in 6 million, and is ten
times faster: docs/logs/targets/insn-count-agreement.txt.)
"""
import argparse
import functools
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@functools.cache
def counter():
    """The qemu wrapper and the plugin, set up once per process (targets/insn-count/setup.sh)."""
    out = subprocess.run([os.path.join(ROOT, "targets", "insn-count", "setup.sh")], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"targets/insn-count/setup.sh failed:\n{out.stderr}")
    qemu, plugin = out.stdout.split()[-2:]
    return qemu, plugin


def runner(cpu, *pre):
    """What launches a program under qemu as `cpu` sees it, /proc/cpuinfo included
    (targets/aarch64-run.sh; `pre`: its own options, e.g. --python)."""
    return [os.path.join(ROOT, "targets", "aarch64-run.sh"), "--cpu", cpu, *pre, "--"]


def read_lines(path, n=None):
    """The first `n` non-blank lines of a text file (all without `n`)."""
    return [l for l in open(path, encoding="utf-8").read().splitlines() if l.strip()][:n]


def bundle_policy(bundle):
    """The default policy in `bundle`'s manifest, as the runtime names it (`entropy 0.76`,
    `patience 2`, `layer 3`), or None when it is full depth (a bundle never calibrated):
    what `classify` with no policy flag runs."""
    policy = json.load(open(os.path.join(bundle, "manifest.json"))).get("default_policy", {"policy": "full"})
    if policy.get("policy") == "full":
        return None
    return " ".join([policy["policy"], *(str(v) for k, v in policy.items() if k != "policy")])


def count(cmd, stdin_text, cpu, prefix=None, env=None, blocks_dir=None):
    """Guest instructions `cmd` executes under qemu-aarch64 (as `cpu`), and its stdout.
    `prefix`: what launches the program under qemu (default: the plugin-capable
    qemu with the cross sysroot); the plugin and the core go in through qemu's
    environment (QEMU_PLUGIN, QEMU_CPU), and QEMU_AARCH64 names that qemu for
    wrappers such as targets/aarch64-run.sh. With `blocks_dir`, the plugin also
    writes blocks_dir/blocks (each translated block's address, size and
    executions) and qemu its memory map, blocks_dir/pages (where the program
    was loaded): targets/profile_instructions.py reads both."""
    qemu, plugin = counter()
    with tempfile.TemporaryDirectory() as d:
        out_file = os.path.join(d, "count")
        run = (prefix or [qemu, "-L", "/usr/aarch64-linux-gnu"]) + cmd
        plugin_args = f"{plugin},out={out_file}"
        env = dict(env or os.environ, QEMU_CPU=cpu, QEMU_AARCH64=qemu)
        if blocks_dir:
            plugin_args += f",blocks={os.path.join(blocks_dir, 'blocks')}"
            env.update(QEMU_LOG="page", QEMU_LOG_FILENAME=os.path.join(blocks_dir, "pages"))
        env["QEMU_PLUGIN"] = plugin_args
        out = subprocess.run(run, input=stdin_text.encode(), capture_output=True, env=env)
        if out.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed: {out.stderr.decode()[-2000:]}")
        with open(out_file) as f:
            return int(f.read()), out.stdout.decode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bin")
    ap.add_argument("bundle")
    ap.add_argument("texts")
    ap.add_argument("--n", type=int, default=5)
    ap.add_argument("--qemu-cpu", default="cortex-a72", choices=["cortex-a72", "cortex-a76"])
    ap.add_argument("--compute", default="auto", choices=["auto", "f32", "f16", "f16-products", "mixed-f16"])
    ap.add_argument("--full-only", action="store_true", help="count full depth only")
    ap.add_argument("--runtime-flag", action="append", default=[],
                    help="a global edge-runtime flag, e.g. --runtime-flag=--no-fused-norm (repeatable)")
    a = ap.parse_args()
    texts = read_lines(a.texts, a.n)
    layers = json.load(open(os.path.join(a.bundle, "manifest.json")))["num_layers"]
    policies = [] if a.full_only else [("--exit-layer", str(k)) for k in range(1, layers)]
    policies.append(("--full",))
    # One thread for the load too: the plugin's counter is not atomic.
    run = [a.bin, "--load-threads", "1", "--compute", a.compute, *a.runtime_flag, "classify", "--bundle", a.bundle]
    # The program sees the emulated core's /proc/cpuinfo, as on the board (tract reads it).
    prefix = runner(a.qemu_cpu)
    base, _ = count(run, "", a.qemu_cpu, prefix=prefix)
    rows = []
    for pol in policies:
        total, out = count([*run, *pol], "\n".join(texts) + "\n", a.qemu_cpu, prefix=prefix)
        exits = [json.loads(l)["exit_layer"] for l in out.splitlines()]
        rows.append({"policy": " ".join(pol), "exit_layers": exits, "mean_exit_layer": sum(exits) / len(exits),
                     "instructions_per_text": (total - base) / len(texts)})
        print(json.dumps(rows[-1]), flush=True)
    print(json.dumps({"bundle": a.bundle, "qemu_cpu": a.qemu_cpu, "compute": a.compute, "runtime_flags": a.runtime_flag,
                      "tract_cpu_isa": os.environ.get("TRACT_CPU_ISA"), "texts": len(texts), "load_instructions": base, "rows": rows}))


if __name__ == "__main__":
    main()

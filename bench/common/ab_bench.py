"""Times edge-runtime set-ups side by side: each set-up is a binary and a
bundle, and each round runs every set-up once per batch size, in turn, so the
machine's noise hits them alike. Reports per-text latency at full depth and
under the bundle's default exit policy (the bench's --full-only), the bench's
bundle load time, the peak resident memory of the bench process, and each
set-up's ratio to the first one, round by round.

  python3 bench/common/ab_bench.py --setup plain=BIN:BUNDLE --setup other=BIN2:BUNDLE2 \
      --data runs/test-400.jsonl --out OUT_DIR [--rounds 3] [--batch 1 --batch 8]

Writes OUT_DIR/timing.json and OUT_DIR/summary.md, and prints the summary.
The one side-by-side timer of bench/: scripts that vary flags or the
environment rather than the binary (bench/runtime-levers) import `bench`."""
import argparse, json, os, statistics, subprocess


def setup(s):
    name, _, rest = s.partition("=")
    binary, _, bundle = rest.partition(":")
    if not (name and binary and bundle):
        raise argparse.ArgumentTypeError(f"{s!r}: expected NAME=BINARY:BUNDLE")
    return name, binary, bundle


def bench(binary, bundle, data, batch, out, flags=(), env=None, warmup=10, limit=None):
    """One `edge-runtime bench --full-only` run (global `flags` before the
    command, `env` added to the environment); its report.json, with the
    process's peak resident memory added as peak_rss_mb."""
    cmd = [binary, *flags, "bench", "--bundle", bundle, "--data", data, "--full-only", "--batch-size", str(batch),
           "--warmup", str(warmup), "--out", out]
    if limit is not None:
        cmd += ["--limit", str(limit)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, **(env or {})})
    err = proc.stderr.read()
    # wait4 rather than wait: it also gives this child's own peak memory
    _, status, usage = os.wait4(proc.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({code}):\n{err.decode(errors='replace')}")
    rep = json.load(open(os.path.join(out, "report.json")))
    rep["peak_rss_mb"] = usage.ru_maxrss / 1024  # Linux reports KiB
    return rep


def full_depth_ms(rep):
    """A bench report's mean latency per call at full depth."""
    return next(p for p in rep["policies"] if p["name"] == "full")["latency"]["mean_ms"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--setup", type=setup, action="append", required=True, help="NAME=BINARY:BUNDLE (the first is the reference)")
    ap.add_argument("--data", required=True, help="JSONL with a text field (the texts timed)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, action="append", help="batch sizes (default 1 and 8)")
    a = ap.parse_args()
    if len(a.setup) < 2:
        ap.error("give at least two --setup")
    batches = a.batch or [1, 8]
    os.makedirs(a.out, exist_ok=True)
    rows = {}  # (policy label, batch, setup) -> per-round ms per text
    loads = {name: [] for name, _, _ in a.setup}
    rss = {name: [] for name, _, _ in a.setup}
    for r in range(a.rounds):
        for batch in batches:
            for name, binary, bundle in a.setup:
                rep = bench(binary, bundle, a.data, batch, os.path.join(a.out, f"bench-{name}-b{batch}-r{r}"))
                for p in rep["policies"]:
                    # full depth, then the bundle's default policy (named by its value, which
                    # set-ups with different bundles may not share).
                    label = "full" if p["name"] == "full" else "default"
                    # The report's latency is per call, a whole batch: per text is that over the batch.
                    rows.setdefault((label, batch, name), []).append(p["latency"]["mean_ms"] / batch)
                rss[name].append(rep["peak_rss_mb"])
                if rep.get("load_ms") is not None:
                    loads[name].append(rep["load_ms"])
    ref = a.setup[0][0]
    timing = {"rounds": a.rounds, "data": a.data, "setups": {n: {"binary": b, "bundle": u} for n, b, u in a.setup},
              "ms_per_text": {f"{n} {l} b{b}": v for (l, b, n), v in rows.items()}, "load_ms": loads, "peak_rss_mb": rss}
    json.dump(timing, open(os.path.join(a.out, "timing.json"), "w"), indent=1)
    fmt = lambda xs, f="{:.3f}": ", ".join(f.format(x) for x in xs)
    lines = ["| policy | batch | set-up | ms / text (per round) | ratio to " + ref + " (per round) |", "|---|---|---|---|---|"]
    for (label, batch, name), v in rows.items():
        base = rows.get((label, batch, ref))
        if base is None:
            continue
        ratios = [x / y for x, y in zip(v, base)]
        lines.append(f"| {label} | {batch} | {name} | {fmt(v)} | {statistics.mean(ratios):.3f} ({fmt(ratios)}) |")
    lines += ["", "| set-up | bundle load, ms (each bench run) | median | peak RSS, MB (max of the runs) |", "|---|---|---|---|"]
    for name, v in loads.items():
        lines.append(f"| {name} | {fmt(v, '{:.0f}')} | {statistics.median(v):.0f} | {max(rss[name]):.1f} |")
    open(os.path.join(a.out, "summary.md"), "w").write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

"""Times `edge-runtime classify --bundle B --full 很好` with two binaries,
alternating run by run, and summarises the load-time ratio per bundle.
Called by bench/load-time/bench-load-time.sh."""
import argparse, json, os, platform, statistics, subprocess, time


def timed(binary, bundle):
    t = time.perf_counter()
    subprocess.run([binary, "classify", "--bundle", bundle, "--full", "很好"], check=True, stdout=subprocess.DEVNULL)
    return (time.perf_counter() - t) * 1e3


def bootstrap_ratio_ci(base, new, n=2000, seed=0):
    import random
    rng = random.Random(seed)
    ratios = []
    for _ in range(n):
        b = [rng.choice(base) for _ in base]
        w = [rng.choice(new) for _ in new]
        ratios.append(statistics.median(w) / statistics.median(b))
    ratios.sort()
    return [ratios[int(0.025 * n)], ratios[int(0.975 * n) - 1]]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--new", required=True)
    ap.add_argument("--base-ref", default="base")
    ap.add_argument("--new-ref", default="new")
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--out", required=True)
    ap.add_argument("bundles", nargs="+")
    a = ap.parse_args()
    rows = []
    for bundle in a.bundles:
        for binary in (a.base, a.new):  # warm the page cache
            timed(binary, bundle)
        base, new = [], []
        for i in range(a.runs):
            pair = [(a.base, base), (a.new, new)]
            for binary, into in pair if i % 2 == 0 else pair[::-1]:
                into.append(timed(binary, bundle))
        size = sum(os.path.getsize(os.path.join(bundle, f)) for f in os.listdir(bundle))
        rows.append({
            "bundle": bundle,
            "bundle_bytes": size,
            "runs": a.runs,
            "base_median_ms": statistics.median(base),
            "new_median_ms": statistics.median(new),
            "ratio_new_over_base": statistics.median(new) / statistics.median(base),
            "ratio_ci95": bootstrap_ratio_ci(base, new),
        })
    summary = {
        "what": "wall time of `edge-runtime classify --bundle B --full 很好`: process start, bundle load, one text",
        "base": a.base_ref,
        "new": a.new_ref,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "rows": rows,
    }
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")
    print(f"| bundle | bytes | {a.base_ref} median ms | {a.new_ref} median ms | ratio (95% CI) |")
    print("|---|---|---|---|---|")
    for r in rows:
        lo, hi = r["ratio_ci95"]
        print(f"| {r['bundle']} | {r['bundle_bytes']} | {r['base_median_ms']:.1f} | {r['new_median_ms']:.1f} | "
              f"{r['ratio_new_over_base']:.3f} ({lo:.3f}–{hi:.3f}) |")


if __name__ == "__main__":
    main()

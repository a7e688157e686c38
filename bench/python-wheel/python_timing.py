"""The Python side of bench-python-wheel.sh: the same loop as
edge-runtime/examples/classify_timing.rs, through the `bert_edge` wheel.

    python python_timing.py BUNDLE TEXTS.txt POLICY [PASSES]

Loads the bundle, classifies every line once untimed, then PASSES times
timing each call (time.perf_counter_ns around `clf.classify(text)`); prints
the same JSON line as the Rust example."""

import json
import statistics
import sys
import time

from bert_edge import Classifier


def main(bundle, texts_path, policy, passes="3"):
    kwargs = {"full": {"full": True}, "default": {}}.get(policy)
    if kwargs is None:
        word, k = policy.split()
        assert word == "layer", policy
        kwargs = {"exit_layer": int(k)}
    clf = Classifier(bundle, **kwargs)
    with open(texts_path, encoding="utf-8") as f:
        texts = f.read().splitlines()
    for text in texts:
        clf.classify(text)
    micros, exits = [], []
    clock = time.perf_counter_ns
    for p in range(int(passes)):
        for text in texts:
            start = clock()
            answer = clf.classify(text)
            micros.append((clock() - start) / 1e3)
            if p + 1 == int(passes):
                exits.append(answer.exit_layer)
    print(json.dumps({"texts": len(texts), "calls": len(micros), "us_per_text_mean": sum(micros) / len(micros),
                      "us_per_text_median": statistics.median_low(micros), "exit_layers": exits}))


if __name__ == "__main__":
    main(*sys.argv[1:])

"""Prints the `bert_edge` wheel's answers on texts, one JSON line per text:
    python targets/python_answers.py BUNDLE TEXTS.txt POLICY BATCH_SIZE
POLICY: full | default | speed S | exit_layer K. Used by
targets/python-wheel-check.sh to hold the ARM wheel to the x86 one; prints
the platform first, so the log shows which interpreter ran it."""

import json
import platform
import sys

import bert_edge


def main(bundle, texts_path, policy, batch_size):
    words = policy.split()
    kwargs = {"full": {"full": True}, "default": {}}.get(words[0])
    if kwargs is None:
        kwargs = {words[0]: float(words[1]) if words[0] == "speed" else int(words[1])}
    clf = bert_edge.Classifier(bundle, **kwargs)
    with open(texts_path, encoding="utf-8") as f:
        texts = f.read().splitlines()
    print(json.dumps({"machine": platform.machine(), "python": platform.python_version(), "bert_edge": bert_edge.__version__,
                      "policy": clf.policy, "digest": clf.digest}))
    for p in clf.classify_batch(texts, batch_size=int(batch_size)):
        print(json.dumps(p.as_dict()))


if __name__ == "__main__":
    main(*sys.argv[1:])

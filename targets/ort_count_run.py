#!/usr/bin/env python3
"""The onnxruntime side of the aarch64 side-by-side, run by an aarch64 CPython
under qemu-user (targets/aarch64-python-run.sh) while the counting plugin
counts: the bundle merged into one graph (bench/common/merge_bundle_onnx.py),
one session on one thread with every graph optimization (bench/common/ort_bench.py's),
the same token ids as our runtime (`edge-runtime tokenize`), batch 1.

  ort_count_run.py MERGED.onnx IDS.jsonl --stop-after imports|first|load|N

`imports`: stop once numpy and onnxruntime are imported; `first`: also create
the session and answer the first text (a cold start); `load`: create the
session and run the first two texts as warm-up; N: then run the first N
texts. Differences between the counts of these runs give the load (session
and warm-up) and the instructions per text.
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench", "common"))
from ort_bench import padded, run, session  # noqa: E402  (numpy and onnxruntime come with it)


def main() -> None:
    merged, ids_path = sys.argv[1], sys.argv[2]
    if sys.argv[3:5] != ["--stop-after", sys.argv[4] if len(sys.argv) > 4 else ""] or len(sys.argv) != 5:
        sys.exit(__doc__)
    stop = sys.argv[4]
    if stop == "imports":
        return
    rows = [json.loads(l)["ids"] for l in open(ids_path) if l.strip()]
    s = session(merged, 1)
    if stop == "first":
        print(json.dumps({"texts": 1, "logits": [run(s, list(padded(rows[:1])))[0].tolist()]}))
        return
    for r in rows[:2]:
        run(s, list(padded([r])))
    n = 0 if stop == "load" else int(stop)
    out = [run(s, list(padded([r])))[0].tolist() for r in rows[:n]]
    print(json.dumps({"texts": n, "logits": out}))


if __name__ == "__main__":
    main()

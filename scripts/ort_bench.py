#!/usr/bin/env python3
"""Latency of a bundle at full depth in onnxruntime, batch 1: embeddings ->
every layer -> the last exit, the same graphs and token ids the edge runtime
runs. Prints one JSON object (per-text wall times summarised in ms).

  ort_bench.py BUNDLE IDS.jsonl --threads 1 [--warmup 20]

IDS.jsonl comes from `edge-runtime tokenize --bundle BUNDLE --data F.jsonl`.
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle", type=Path)
    ap.add_argument("ids", type=Path)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=20)
    a = ap.parse_args()
    m = json.loads((a.bundle / "manifest.json").read_text())
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = a.threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL

    def load(f):
        s = ort.InferenceSession(str(a.bundle / f), opts, providers=["CPUExecutionProvider"])
        return s, [i.name for i in s.get_inputs()]

    emb = load(m["embeddings"])
    layers = [load(f) for f in m["layers"]]
    last = load(m["exits"][-1])
    rows = [json.loads(l)["ids"] for l in a.ids.read_text().splitlines() if l.strip()]

    def run(s, feeds):
        return s[0].run(None, dict(zip(s[1], feeds)))[0]

    def classify(r):
        ids = np.asarray([r], dtype=np.int64)
        mask = np.ones_like(ids)
        h = run(emb, [ids])
        for l in layers:
            h = run(l, [h, mask])
        return run(last, [h, mask])

    for r in rows[: a.warmup]:
        classify(r)
    ms = []
    for r in rows:
        t = time.perf_counter()
        classify(r)
        ms.append((time.perf_counter() - t) * 1e3)
    s = sorted(ms)
    pick = lambda p: s[min(len(s), max(1, int(np.ceil(p / 100 * len(s))))) - 1]
    print(json.dumps({"runtime": f"onnxruntime {ort.__version__}", "threads": a.threads, "n": len(ms),
                      "mean_ms": float(np.mean(ms)), "p50_ms": pick(50), "p90_ms": pick(90), "p99_ms": pick(99)}))


if __name__ == "__main__":
    main()

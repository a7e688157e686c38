#!/usr/bin/env python3
"""Latency of a bundle at full depth in onnxruntime: embeddings -> every
layer -> the last exit, the same graphs and token ids the edge runtime runs,
either segment by segment (a session per graph) or, with --one-graph, as one
merged graph (merge_bundle_onnx.py), which onnxruntime optimizes as a
whole — what a user who exports the full model gets. Prints one JSON object
(per-text wall times summarised in ms; at --batch N, a batch's time / N).

  ort_bench.py BUNDLE IDS.jsonl --threads 1 [--batch 8] [--one-graph MERGED.onnx] [--warmup 20]
  ort_bench.py --one-graph MERGED.onnx --session-only    # the session's creation only

IDS.jsonl comes from `edge-runtime tokenize --bundle BUNDLE --data F.jsonl`.
The one onnxruntime runner of bench/: `session` and `padded` are also what
ort_run_bundle.py (the ONNX interop test's runner) uses.
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort


def session(path, threads: int = 1):
    """An onnxruntime CPU session on `threads` threads with every graph
    optimization, its input names, and the seconds its creation took."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    t = time.perf_counter()
    s = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return s, [i.name for i in s.get_inputs()], time.perf_counter() - t


def run(s, feeds):
    """The first output of session `s` (as `session` returns it) on `feeds`, in input order."""
    return s[0].run(None, dict(zip(s[1], feeds)))[0]


def padded(rows):
    """Token id lists as one batch: ids padded with 0 and the attention mask (int64)."""
    width = max(len(r) for r in rows)
    ids = np.zeros((len(rows), width), dtype=np.int64)
    mask = np.zeros_like(ids)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = r
        mask[i, : len(r)] = 1
    return ids, mask


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle", type=Path, nargs="?")
    ap.add_argument("ids", type=Path, nargs="?")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--one-graph", type=Path, help="the bundle merged into one graph")
    ap.add_argument("--session-only", action="store_true",
                    help="only create the --one-graph session and print its creation time (cold start)")
    ap.add_argument("--logits", type=Path, help="also write each text's logits (JSON lines) here")
    a = ap.parse_args()
    if a.session_only:
        if not a.one_graph:
            ap.error("--session-only needs --one-graph")
        print(json.dumps({"runtime": f"onnxruntime {ort.__version__}", "threads": a.threads,
                          "session_create_ms": session(a.one_graph, a.threads)[2] * 1e3}))
        return
    if a.bundle is None or a.ids is None:
        ap.error("give BUNDLE and IDS.jsonl")
    m = json.loads((a.bundle / "manifest.json").read_text())
    load = lambda path: session(path, a.threads)

    if a.one_graph:
        whole = load(a.one_graph)
        session_ms = whole[2] * 1e3

        def forward(ids, mask):
            return run(whole, [ids, mask])
    else:
        emb = load(a.bundle / m["embeddings"])
        layers = [load(a.bundle / f) for f in m["layers"]]
        last = load(a.bundle / m["exits"][-1])
        session_ms = (emb[2] + sum(l[2] for l in layers) + last[2]) * 1e3

        def forward(ids, mask):
            h = run(emb, [ids])
            for l in layers:
                h = run(l, [h, mask])
            return run(last, [h, mask])

    rows = [json.loads(l)["ids"] for l in a.ids.read_text().splitlines() if l.strip()]
    batches = [rows[i : i + a.batch] for i in range(0, len(rows), a.batch)]

    def classify(batch):
        return forward(*padded(batch))

    for b in batches[: max(1, a.warmup // a.batch)]:
        classify(b)
    ms, logits = [], []
    for b in batches:
        t = time.perf_counter()
        out = classify(b)
        dt = (time.perf_counter() - t) * 1e3
        ms.extend([dt / len(b)] * len(b))
        logits.extend(out.tolist())
    if a.logits:
        a.logits.write_text("".join(json.dumps(l) + "\n" for l in logits))
    s = sorted(ms)
    pick = lambda p: s[min(len(s), max(1, int(np.ceil(p / 100 * len(s))))) - 1]
    print(json.dumps({"runtime": f"onnxruntime {ort.__version__}", "threads": a.threads, "batch": a.batch,
                      "graph": "one merged graph" if a.one_graph else "one session per segment",
                      "session_create_ms": session_ms, "n": len(ms),
                      "mean_ms": float(np.mean(ms)), "p50_ms": pick(50), "p90_ms": pick(90), "p99_ms": pick(99)}))


if __name__ == "__main__":
    main()

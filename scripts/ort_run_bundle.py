#!/usr/bin/env python3
"""Runs a bundle's ONNX graphs in onnxruntime, segment by segment, the way the
edge runtime chains them (embeddings -> layer k -> exit k), at full depth.

  ort_run_bundle.py BUNDLE CASES.json       # prints {"logits": [[layer][sample][label] | null]}

CASES.json: {"ids": [[token ids], ...]} (one padded batch is built from them).
Used by tests/onnx_interop.rs to check that every exported graph loads and runs
in onnxruntime with the same outputs as tract; needs `pip install onnxruntime numpy`.
"""
import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort


def session(path: Path) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def main() -> None:
    bundle, cases = Path(sys.argv[1]), json.loads(Path(sys.argv[2]).read_text())
    manifest = json.loads((bundle / "manifest.json").read_text())
    rows = cases["ids"]
    width = max(len(r) for r in rows)
    ids = np.zeros((len(rows), width), dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = r
        mask[i, : len(r)] = 1

    def run(file: str, feeds: list) -> np.ndarray:
        s = session(bundle / file)
        names = [i.name for i in s.get_inputs()]
        return s.run(None, dict(zip(names, feeds)))[0]

    hidden = run(manifest["embeddings"], [ids])
    out = []
    for layer, exit_file in zip(manifest["layers"], manifest["exits"]):
        hidden = run(layer, [hidden, mask])
        out.append(None if exit_file is None else run(exit_file, [hidden, mask]).tolist())
    print(json.dumps({"onnxruntime": ort.__version__, "logits": out}))


if __name__ == "__main__":
    main()

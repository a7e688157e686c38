#!/usr/bin/env python3
"""Runs a bundle's ONNX graphs in onnxruntime, segment by segment, the way the
edge runtime chains them (embeddings -> layer k -> exit k), at full depth.

  ort_run_bundle.py BUNDLE CASES.json       # prints {"logits": [[layer][sample][label] | null]}

CASES.json: {"ids": [[token ids], ...]} (one padded batch is built from them).
Used by tests/onnx_interop.rs to check that every exported graph loads and runs
in onnxruntime with the same outputs as tract; needs `pip install onnxruntime numpy`.
Sessions, padding and runs are ort_bench.py's (one thread, every graph optimization).
"""
import json
import sys
from pathlib import Path

from ort_bench import ort, padded, run, session


def main() -> None:
    bundle, cases = Path(sys.argv[1]), json.loads(Path(sys.argv[2]).read_text())
    manifest = json.loads((bundle / "manifest.json").read_text())
    ids, mask = padded(cases["ids"])
    graph = lambda file, feeds: run(session(bundle / file), feeds)

    hidden = graph(manifest["embeddings"], [ids])
    out = []
    for layer, exit_file in zip(manifest["layers"], manifest["exits"]):
        hidden = graph(layer, [hidden, mask])
        out.append(None if exit_file is None else graph(exit_file, [hidden, mask]).tolist())
    print(json.dumps({"onnxruntime": ort.__version__, "logits": out}))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""A bundle's segments merged into one full-depth ONNX graph — embeddings,
every layer, the last exit classifier — as a user who does not use early
exit would export the model (HF Optimum style), for onnxruntime to optimize
as one whole: input_ids, attention_mask → logits.

  merge_bundle_onnx.py BUNDLE OUT.onnx

Each segment's names get a prefix so that they cannot collide; the hidden
state flows from each segment's output into the next one's first input, and
every layer reads the one shared attention_mask.
"""
import json
import sys
from pathlib import Path

import onnx
from onnx import helper


def prefixed(model: onnx.ModelProto, prefix: str, keep: dict) -> onnx.GraphProto:
    """The graph with every value, node and initializer renamed `prefix/name`,
    except the names in `keep`, which are mapped to their given names."""
    g = model.graph
    rename = lambda n: keep.get(n, f"{prefix}/{n}") if n else n
    for node in g.node:
        node.name = f"{prefix}/{node.name}"
        node.input[:] = [rename(n) for n in node.input]
        node.output[:] = [rename(n) for n in node.output]
    for t in g.initializer:
        t.name = rename(t.name)
    for v in list(g.input) + list(g.output) + list(g.value_info):
        v.name = rename(v.name)
    return g


def main() -> None:
    bundle, out = Path(sys.argv[1]), Path(sys.argv[2])
    m = json.loads((bundle / "manifest.json").read_text())
    files = [m["embeddings"], *m["layers"], m["exits"][-1]]
    nodes, inits, opsets = [], [], {}
    hidden = None
    inputs = outputs = None
    for k, f in enumerate(files):
        model = onnx.load(str(bundle / f))
        for o in model.opset_import:
            opsets[o.domain] = max(opsets.get(o.domain, 0), o.version)
        g = model.graph
        keep = {}
        if k == 0:
            keep[g.input[0].name] = "input_ids"
        else:
            keep[g.input[0].name] = hidden
            keep[g.input[1].name] = "attention_mask"
        last = k == len(files) - 1
        keep[g.output[0].name] = "logits" if last else f"hidden_{k}"
        g = prefixed(model, f"s{k}", keep)
        if k == 0:
            inputs = [g.input[0]]
        elif k == 1:
            inputs.append(g.input[1])
        hidden = g.output[0].name
        nodes.extend(g.node)
        inits.extend(g.initializer)
        if last:
            outputs = [g.output[0]]
    graph = helper.make_graph(nodes, "bundle_full_depth", inputs, outputs, inits)
    merged = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets.items()])
    merged.ir_version = onnx.load(str(bundle / files[0])).ir_version
    onnx.checker.check_model(merged)
    onnx.save(merged, str(out))
    print(f"{len(files)} segments, {len(nodes)} nodes → {out}", file=sys.stderr)


if __name__ == "__main__":
    main()

"""An experiment on the export: a copy of BUNDLE whose encoder layers compute
the query, key and value projections as one matrix product (weights
concatenated to H x 3H, one bias Add, a Split), as onnxruntime's fused
attention does, with the manifest's hashes updated. Same answers; time it
beside the original with bench/common/ab_bench.py (bench/qkv-ab/qkv-ab.sh does
both; docs/results/runtime-speed.md has the measurement).

  .venv-tools/bin/python bench/qkv-ab/fuse_qkv.py BUNDLE OUT_BUNDLE"""
import json, hashlib, os, shutil, sys
import numpy as np, onnx
from onnx import helper, numpy_helper
if len(sys.argv) != 3:
    sys.exit("usage: fuse_qkv.py BUNDLE OUT_BUNDLE")
src, dst = sys.argv[1:3]
if os.path.exists(dst):
    sys.exit(f"{dst} exists: give a new directory")
shutil.copytree(src, dst)
m = json.load(open(f"{dst}/manifest.json"))
for f in m["layers"]:
    g = onnx.load(f"{dst}/{f}")
    init = {i.name: i for i in g.graph.initializer}
    nodes = list(g.graph.node)
    # The three projections as the exporter writes them: MatMul(x, W) then Add(·, b), in Q, K, V order.
    products = [n for n in nodes if n.op_type == "MatMul" and n.input[1].endswith((".query.weight", ".key.weight", ".value.weight"))]
    assert [p.input[1].rsplit(".", 2)[1] for p in products] == ["query", "key", "value"], f"{f}: unexpected projections"
    assert len({p.input[0] for p in products}) == 1, f"{f}: the projections read different inputs"
    biases = [next(a for a in nodes if a.op_type == "Add" and a.input[0] == p.output[0]) for p in products]
    weight = np.concatenate([numpy_helper.to_array(init[p.input[1]]) for p in products], axis=1)  # H x 3H
    bias = np.concatenate([numpy_helper.to_array(init[a.input[1]]) for a in biases])
    prefix = products[0].input[1].rsplit(".query.weight", 1)[0]
    for p, a in zip(products, biases):
        g.graph.initializer.remove(init[p.input[1]])
        g.graph.initializer.remove(init[a.input[1]])
    g.graph.initializer.extend([
        numpy_helper.from_array(weight, f"{prefix}.qkv.weight"),
        numpy_helper.from_array(bias, f"{prefix}.qkv.bias"),
        numpy_helper.from_array(np.array([weight.shape[1] // 3] * 3, dtype=np.int64), "qkv_split"),
    ])
    at = nodes.index(products[0])
    fused = [helper.make_node("MatMul", [products[0].input[0], f"{prefix}.qkv.weight"], ["qkv_product"]),
             helper.make_node("Add", ["qkv_product", f"{prefix}.qkv.bias"], ["qkv"]),
             # the three outputs keep the old Adds' names, so the rest of the graph reads them unchanged
             helper.make_node("Split", ["qkv", "qkv_split"], [a.output[0] for a in biases], axis=-1)]
    for n in products + biases:
        g.graph.node.remove(n)
    for k, n in enumerate(fused):
        g.graph.node.insert(at + k, n)
    onnx.checker.check_model(g)
    onnx.save(g, f"{dst}/{f}")
    m["sha256"][f] = hashlib.sha256(open(f"{dst}/{f}", "rb").read()).hexdigest()
with open(f"{dst}/manifest.json", "w") as out:
    json.dump(m, out, indent=2)

#!/usr/bin/env python3
"""Table of bench/arm-precisions/arm-instructions-precisions.sh: instructions per text per core and precision."""
import json
import sys
from pathlib import Path

out = Path(sys.argv[1])
print("| core | bundle | arithmetic in the matrix products | M instructions per text (full depth) | vs f32 | bundle load, M instructions |")
print("|---|---|---|---|---|---|")
arith = {"f32": "f32", "f16": "f16", "int8-weight-only": "f32 (weights widened at load)", "int8-dynamic-i8": "i8 × i8 → i32"}
for cpu in ["cortex-a76", "cortex-a72"]:
    base = None
    for p in ["f32", "f16", "int8-weight-only", "int8-dynamic-i8"]:
        f = out / f"{cpu}-{p}.json"
        if not f.exists():
            continue
        r = json.loads(f.read_text())
        per = r["rows"][-1]["instructions_per_text"]
        base = base or per
        print(f"| {cpu} | {p} | {arith[p]} | {per/1e6:.2f} | {per/base:.2f}× | {r['load_instructions']/1e6:.0f} |")

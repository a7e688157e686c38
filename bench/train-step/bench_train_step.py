#!/usr/bin/env python3
"""PyTorch reference timing of one BERT training step on random data.

Requirements: pip install torch transformers
(bench/train-step/bench-train-step.sh sets up .venv-bench with both and runs this next
to `trainer bench-step`; the two print JSON lines with the same keys.)

A "step" is exactly what trainer/src/bench.rs times: zero_grad, forward with
labels (cross-entropy loss), backward, clip_grad_norm_(1.0), AdamW step
(lr 1e-4, weight_decay 0.01). The model is BertForSequenceClassification in
train mode with HF's default dropout 0.1, so dropout costs are included on
both sides.
"""
import argparse
import json
import sys
import time


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # Defaults: the "small-12" config, identical to `trainer bench-step`'s.
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--heads", type=int, default=2)
    ap.add_argument("--intermediate", type=int, default=512)
    ap.add_argument("--vocab-size", type=int, default=6000)
    ap.add_argument("--max-len", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--labels", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu", help="cpu or cuda:N, as `trainer bench-step --device`")
    a = ap.parse_args()
    if a.steps < 1 or a.warmup < 0:
        ap.error("--steps must be >= 1 and --warmup >= 0")
    if a.vocab_size <= 5:
        ap.error("--vocab-size must be > 5 (ids are drawn from [5, vocab))")
    if a.hidden % a.heads:
        ap.error("--hidden must be divisible by --heads")
    return a


def main():
    a = parse_args()
    # Import after arg parsing so --help is instant (torch import takes seconds).
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    # Set before building the model so every op, init included, uses T threads.
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)

    cfg = BertConfig(
        vocab_size=a.vocab_size,
        hidden_size=a.hidden,
        num_hidden_layers=a.layers,
        num_attention_heads=a.heads,
        intermediate_size=a.intermediate,
        # Same rule as the Rust bench: position table never smaller than BERT's.
        max_position_embeddings=max(512, a.max_len),
        hidden_act="gelu",
        num_labels=a.labels,
        # hidden/attention dropout stay at the HF default of 0.1.
    )
    device = torch.device(a.device)
    model = BertForSequenceClassification(cfg).to(device)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)

    # Fixed random batch reused every step: we time compute, not data loading.
    ids = torch.randint(5, a.vocab_size, (a.batch_size, a.max_len)).to(device)
    mask = torch.ones_like(ids)
    labels = torch.randint(0, a.labels, (a.batch_size,)).to(device)

    def sync():
        # CUDA runs the step asynchronously: wait for it, as the Rust bench does.
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sync()
        return loss

    for _ in range(a.warmup):
        step()
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        step()
        times.append((time.perf_counter() - t0) * 1e3)

    s = sorted(times)
    print(json.dumps({
        "impl": "pytorch",
        "torch": torch.__version__,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "batch_size": a.batch_size,
        "max_len": a.max_len,
        "layers": a.layers,
        "hidden": a.hidden,
        # sorted[n // 2]: the same median definition as trainer/src/bench.rs,
        # so the two numbers are comparable for even step counts too.
        "step_ms_median": round(s[len(s) // 2], 3),
        "step_ms_mean": round(sum(times) / len(times), 3),
        "step_ms_min": round(s[0], 3),
        "steps": a.steps,
    }))
    sys.stdout.flush()


if __name__ == "__main__":
    main()

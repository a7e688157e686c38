#!/usr/bin/env bash
# Profile-guided optimization of the edge runtime, measured side by side.
# Builds edge-runtime instrumented, runs it on BUNDLE over PROFILE_DATA (use
# the dev split: never the texts it is then timed on), rebuilds it with that
# profile, then times the plain release binary and the PGO one at full depth
# on TIMED_DATA, batch 1 and 8, one thread, rounds alternating.
#
#   scripts/pgo-ab.sh BUNDLE PROFILE_DATA.jsonl TIMED_DATA.jsonl OUT_DIR [ROUNDS]
#
# Needs llvm-profdata (`rustup component add llvm-tools`). Each of the two
# builds is a full one (its own target dir under target/: the flags differ).
# Writes OUT_DIR/timing.json and OUT_DIR/summary.md.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
usage="usage: scripts/pgo-ab.sh BUNDLE PROFILE_DATA.jsonl TIMED_DATA.jsonl OUT_DIR [ROUNDS]"
bundle="${1:?$usage}"; profile_data="${2:?$usage}"; timed="${3:?$usage}"; out="${4:?$usage}"; rounds="${5:-3}"
tgt="${CARGO_TARGET_DIR:-$root/target}"
plain="$tgt/release/edge-runtime"
[ -x "$plain" ] || cargo build --release --workspace
profdata="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin/llvm-profdata"
[ -x "$profdata" ] || { echo "no llvm-profdata: rustup component add llvm-tools" >&2; exit 1; }
mkdir -p "$out"
raw="$(realpath "$out")/profraw"; rm -rf "$raw"
build() { # target dir, rustflags
  CARGO_TARGET_DIR="$1" RUSTFLAGS="$2" cargo build --release -p edge-runtime --bin edge-runtime
}
build "$tgt/pgo-gen" "-Cprofile-generate=$raw"
texts="$out/profile-texts.txt"
python3 -c "import json,sys; [print(json.loads(l)['text']) for l in open(sys.argv[1])]" "$profile_data" > "$texts"
gen="$tgt/pgo-gen/release/edge-runtime"
"$gen" classify --bundle "$bundle" --full < "$texts" > /dev/null           # full depth
"$gen" classify --bundle "$bundle" < "$texts" > /dev/null                  # the bundle's policy
"$gen" bench --bundle "$bundle" --data "$profile_data" --batch-size 8 --limit 200 --out "$out/profile-bench" > /dev/null
"$profdata" merge -o "$out/merged.profdata" "$raw"
build "$tgt/pgo-use" "-Cprofile-use=$(realpath "$out")/merged.profdata -Cllvm-args=-pgo-warn-missing-function=false"
pgo="$tgt/pgo-use/release/edge-runtime"
python3 - "$plain" "$pgo" "$bundle" "$timed" "$out" "$rounds" <<'PY'
import json, os, statistics, subprocess, sys
plain, pgo, bundle, timed, out, rounds = sys.argv[1:6] + [int(sys.argv[6])]
bins = {"plain": plain, "pgo": pgo}
rows = {(b, name): [] for b in (1, 8) for name in bins}
for r in range(rounds):
    for batch in (1, 8):
        for name, exe in bins.items():
            d = os.path.join(out, f"bench-{name}-b{batch}-r{r}")
            subprocess.run([exe, "bench", "--bundle", bundle, "--data", timed, "--full-only", "--batch-size", str(batch),
                            "--warmup", "10", "--out", d], check=True, capture_output=True)
            rep = json.load(open(os.path.join(d, "report.json")))
            # the report's latency is per call, a whole batch: per text is that over the batch
            rows[(batch, name)].append(next(p for p in rep["policies"] if p["name"] == "full")["latency"]["mean_ms"] / batch)
json.dump({f"{name} b{b}": v for (b, name), v in rows.items()}, open(os.path.join(out, "timing.json"), "w"), indent=1)
lines = ["| batch | plain ms / text (per round) | PGO ms / text (per round) | PGO / plain (per round) |", "|---|---|---|---|"]
for b in (1, 8):
    p, g = rows[(b, "plain")], rows[(b, "pgo")]
    ratios = [y / x for x, y in zip(p, g)]
    lines.append(f"| {b} | {', '.join(f'{x:.2f}' for x in p)} | {', '.join(f'{x:.2f}' for x in g)} | "
                 f"{statistics.mean(ratios):.3f} ({', '.join(f'{x:.3f}' for x in ratios)}) |")
open(os.path.join(out, "summary.md"), "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY

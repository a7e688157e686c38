//! Seeded mutations of the tiny bundle — truncations, byte flips, manifest
//! field edits, file swaps and removals, each either left as it is (the
//! checksums no longer match) or resealed with fresh checksums so that it
//! reaches the parsers and the load checks. For every one: no panic, and
//! either a clear error that names the bundle or a model that classifies
//! without panicking. An unsealed damaged bundle never answers.
//!
//! The same for the bundle's NNEF twin (`to-nnef`), whose archives reach
//! tract's NNEF reader instead of its ONNX parser.
//!
//! `BUNDLE_MUTATIONS` sets the count (default 600 for the ONNX bundle, half
//! that for the twin; the qemu runs use fewer), `BUNDLE_MUTATION_SEED` the seed.

use bundle::manifest::sha256_hex;
use bundle::ExitPolicy;
use edge_runtime::EdgeClassifier;
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// SplitMix64: a seeded generator, so a failing mutation can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny-bundle")
}

/// The bundle as editable parts: the manifest as JSON, the files as bytes.
#[derive(Clone)]
struct Parts {
    manifest: serde_json::Value,
    files: BTreeMap<String, Vec<u8>>,
}

impl Parts {
    fn read(dir: &Path) -> Self {
        let manifest = serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
        let files = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n != "manifest.json")
            .map(|n| (n.clone(), std::fs::read(dir.join(&n)).unwrap()))
            .collect();
        Self { manifest, files }
    }

    /// Fresh checksums for every file the manifest lists that still exists.
    fn reseal(&mut self) {
        let Some(sums) = self.manifest.get_mut("sha256").and_then(|s| s.as_object_mut()) else { return };
        for (name, sum) in sums.iter_mut() {
            if let Some(bytes) = self.files.get(name) {
                *sum = sha256_hex(bytes).into();
            }
        }
    }

    fn write(&self, dir: &Path, manifest_bytes: Option<Vec<u8>>) {
        std::fs::create_dir_all(dir).unwrap();
        let m = manifest_bytes.unwrap_or_else(|| serde_json::to_vec_pretty(&self.manifest).unwrap());
        std::fs::write(dir.join("manifest.json"), m).unwrap();
        for (name, bytes) in &self.files {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
}

const FIELDS: [&str; 13] = [
    "format_version", "labels", "num_layers", "hidden_size", "max_seq_len", "tokenizer", "precision",
    "default_policy", "embeddings", "layers", "exits", "sha256", "provenance",
];

fn odd_value(rng: &mut Rng) -> serde_json::Value {
    use serde_json::json;
    let pool = [
        json!(0), json!(-1), json!(1), json!(2), json!(3), json!(65), json!(1_000_000_000u64), json!(18_446_744_073_709_551_615u64),
        json!(1.5), json!(""), json!("../escape.onnx"), json!("/etc/passwd"), json!("layer_00.onnx"), json!("exit_01.onnx"),
        json!(null), json!([]), json!({}), json!(true), json!(["neg", "neg"]), json!(["a", "b", "c"]),
        json!([null, null]), json!(["layer_00.onnx", "layer_00.onnx"]), json!({"policy": "entropy", "speed": 7.0}),
        json!({"policy": "layer", "k": 9}), json!("f16"), json!("int8"), json!("x".repeat(5000)),
    ];
    pool[rng.below(pool.len())].clone()
}

/// One mutation, described for the failure message. Returns the manifest
/// bytes to write when the mutation is of the manifest's bytes themselves.
fn mutate(parts: &mut Parts, rng: &mut Rng) -> (String, Option<Vec<u8>>) {
    let names: Vec<String> = parts.files.keys().cloned().collect();
    let pick = |rng: &mut Rng| names[rng.below(names.len())].clone();
    match rng.below(7) {
        0 => {
            let f = pick(rng);
            let bytes = parts.files.get_mut(&f).unwrap();
            let len = rng.below(bytes.len());
            bytes.truncate(len);
            (format!("truncate {f} to {len} bytes"), None)
        }
        1 => {
            let f = pick(rng);
            let bytes = parts.files.get_mut(&f).unwrap();
            let flips = 1 + rng.below(16);
            for _ in 0..flips {
                let at = rng.below(bytes.len());
                bytes[at] ^= 1 << rng.below(8);
            }
            (format!("flip {flips} bits of {f}"), None)
        }
        2 => {
            let field = FIELDS[rng.below(FIELDS.len())];
            let value = odd_value(rng);
            let described = format!("manifest {field} = {}", value.to_string().chars().take(40).collect::<String>());
            parts.manifest[field] = value;
            (described, None)
        }
        3 => {
            let (a, b) = (pick(rng), pick(rng));
            let (x, y) = (parts.files[&a].clone(), parts.files[&b].clone());
            parts.files.insert(a.clone(), y);
            parts.files.insert(b.clone(), x);
            (format!("swap {a} and {b}"), None)
        }
        4 => {
            let f = pick(rng);
            parts.files.remove(&f);
            (format!("remove {f}"), None)
        }
        5 => {
            let mut m = serde_json::to_vec_pretty(&parts.manifest).unwrap();
            let at = rng.below(m.len());
            if rng.below(2) == 0 {
                m.truncate(at);
                (format!("truncate manifest.json to {at} bytes"), Some(m))
            } else {
                m[at] = rng.below(256) as u8;
                (format!("set byte {at} of manifest.json"), Some(m))
            }
        }
        _ => {
            // Arrays of the manifest edited in place: one layer, exit or label.
            let field = ["layers", "exits", "labels"][rng.below(3)];
            let value = odd_value(rng);
            let described = format!("manifest {field}[0] = {}", value.to_string().chars().take(40).collect::<String>());
            if let Some(first) = parts.manifest[field].get_mut(0) {
                *first = value;
            }
            (described, None)
        }
    }
}

enum Outcome {
    Refused,
    Answered,
}

fn mutation_count(default: usize) -> usize {
    std::env::var("BUNDLE_MUTATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
fn no_mutation_of_the_bundle_panics_and_no_damaged_bundle_answers() {
    no_mutation_panics_or_answers_damaged(&fixture(), mutation_count(600));
}

#[cfg(feature = "onnx")]
#[test]
fn no_mutation_of_the_nnef_twin_panics_and_no_damaged_twin_answers() {
    let tmp = tempfile::tempdir().unwrap();
    let twin = tmp.path().join("nnef");
    let onnx = bundle::BundleFiles::read(&fixture()).unwrap();
    edge_runtime::nnef::convert_bundle(&onnx, &twin, &edge_runtime::LoadOptions::default()).unwrap();
    no_mutation_panics_or_answers_damaged(&twin, mutation_count(600) / 2);
}

fn no_mutation_panics_or_answers_damaged(source: &Path, count: usize) {
    let original = Parts::read(source);
    let seed = std::env::var("BUNDLE_MUTATION_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0x5eed_b0d1e);
    let mut rng = Rng(seed);
    let tmp = tempfile::tempdir().unwrap();
    let (mut refused, mut answered, mut unchanged) = (0, 0, 0);
    let mut failures = Vec::new();
    for i in 0..count {
        let mut parts = original.clone();
        let (what, manifest_bytes) = mutate(&mut parts, &mut rng);
        let resealed = rng.below(2) == 0 && manifest_bytes.is_none();
        if resealed {
            parts.reseal();
        }
        let dir = tmp.path().join(format!("m{i}"));
        parts.write(&dir, manifest_bytes.clone());
        let damaged_unsealed = !resealed && (parts.files != original.files || manifest_bytes.is_some() || parts.manifest != original.manifest);
        if !damaged_unsealed && !resealed {
            unchanged += 1;
        }
        let dir_text = dir.display().to_string();
        let run = catch_unwind(AssertUnwindSafe(|| match EdgeClassifier::load(&dir) {
            Err(e) => (Outcome::Refused, e.to_string()),
            Ok(model) => {
                for policy in [ExitPolicy::Full, model.manifest.default_policy, ExitPolicy::Entropy { speed: 0.5 }] {
                    let _ = model.classify("房间很干净，服务也好", policy);
                }
                let _ = model.classify_texts(&["很好", "", "太差了"], ExitPolicy::Patience { n: 1 });
                (Outcome::Answered, String::new())
            }
        }));
        let what = format!("mutation {i} ({}): {what}", if resealed { "resealed" } else { "as is" });
        match run {
            Err(_) => failures.push(format!("{what}: PANIC")),
            Ok((Outcome::Refused, message)) => {
                refused += 1;
                if !message.contains(&dir_text) {
                    failures.push(format!("{what}: the error does not name the bundle: {message}"));
                }
            }
            Ok((Outcome::Answered, _)) => {
                answered += 1;
                if damaged_unsealed && parts.files.iter().any(|(n, b)| original.files.get(n) != Some(b)) {
                    failures.push(format!("{what}: a damaged bundle answered"));
                }
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
    eprintln!("{count} mutations: {refused} refused, {answered} loaded and classified ({unchanged} left the bundle as it was)");
    assert!(failures.is_empty(), "{} of {count} mutations failed:\n{}", failures.len(), failures.join("\n"));
    assert!(refused > count / 2, "most mutations damage the bundle");
}

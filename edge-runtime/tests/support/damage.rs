//! Damaged copies of a bundle, shared by the runtime's tests and quantize's
//! (`#[path]`-included there), so both stages meet the same damage:
//! seeded mutations (truncations, byte flips, manifest field edits, file
//! swaps and removals) and a catalogue of bundles whose checksums are right
//! but whose parts do not fit together.
#![allow(dead_code)] // each test crate uses its part

use bundle::manifest::sha256_hex;
use std::collections::BTreeMap;
use std::path::Path;

/// SplitMix64: a seeded generator, so a failing mutation can be replayed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// The bundle as editable parts: the manifest as JSON, the files as bytes.
#[derive(Clone)]
pub struct Parts {
    pub manifest: serde_json::Value,
    pub files: BTreeMap<String, Vec<u8>>,
}

impl Parts {
    pub fn read(dir: &Path) -> Self {
        let manifest = serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
        let files = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n != "manifest.json")
            .map(|n| (n.clone(), std::fs::read(dir.join(&n)).unwrap()))
            .collect();
        Self { manifest, files }
    }

    /// Fresh checksums for every file the manifest lists that still exists.
    pub fn reseal(&mut self) {
        let Some(sums) = self.manifest.get_mut("sha256").and_then(|s| s.as_object_mut()) else { return };
        for (name, sum) in sums.iter_mut() {
            if let Some(bytes) = self.files.get(name) {
                *sum = sha256_hex(bytes).into();
            }
        }
    }

    pub fn write(&self, dir: &Path, manifest_bytes: Option<Vec<u8>>) {
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
pub fn mutate(parts: &mut Parts, rng: &mut Rng) -> (String, Option<Vec<u8>>) {
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

/// An edit of a bundle's parts.
pub type Edit = fn(&mut Parts);

/// Edits that leave every checksum right (the copy is resealed) but make the
/// parts contradict each other, as the runtime's bad-bundle tests do; some
/// stay self-consistent (two layer files swapped in the manifest) and load.
pub fn hostile_edits() -> Vec<(&'static str, Edit)> {
    fn replace_file(p: &mut Parts, name: &str, with: &str) {
        let bytes = p.files[with].clone();
        p.files.insert(name.into(), bytes);
    }
    vec![
        ("a label the exits do not give", |p| p.manifest["labels"].as_array_mut().unwrap().push("neutral".into())),
        ("a hidden_size the graphs do not have", |p| p.manifest["hidden_size"] = 16.into()),
        ("a max_seq_len past the position table", |p| p.manifest["max_seq_len"] = 129.into()),
        ("a precision the weights do not have", |p| p.manifest["precision"] = "f16".into()),
        ("a tokenizer with ids past the embedding table", |p| {
            let mut t: serde_json::Value = serde_json::from_slice(&p.files["tokenizer.json"]).unwrap();
            t["model"]["vocab"]["超出"] = 99_999.into();
            p.files.insert("tokenizer.json".into(), t.to_string().into_bytes());
        }),
        ("a tokenizer that does not load", |p| {
            p.files.insert("tokenizer.json".into(), br#"{"model": {"type": "WordPiece"}}"#.to_vec());
        }),
        ("embeddings.onnx replaced by a layer graph", |p| replace_file(p, "embeddings.onnx", "layer_00.onnx")),
        ("a layer graph replaced by an exit graph", |p| replace_file(p, "layer_01.onnx", "exit_01.onnx")),
        ("an exit graph replaced by a layer graph", |p| replace_file(p, "exit_02.onnx", "layer_00.onnx")),
        ("the embeddings replaced by vocab.txt", |p| replace_file(p, "embeddings.onnx", "vocab.txt")),
        ("the two layer files swapped in the manifest (self-consistent)", |p| p.manifest["layers"].as_array_mut().unwrap().reverse()),
        ("the two labels swapped (self-consistent)", |p| p.manifest["labels"].as_array_mut().unwrap().reverse()),
    ]
}

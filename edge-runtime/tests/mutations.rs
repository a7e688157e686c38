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
//! that for the twin; the qemu runs use fewer), `BUNDLE_MUTATION_SEED` the seed,
//! `BUNDLE_MUTATION_SOURCE` another bundle to mutate in place of the tiny one
//! (e.g. an int8 bundle's twin, whose reader has the quantization ops).

#[path = "support/damage.rs"]
mod damage;

use bundle::ExitPolicy;
use damage::{mutate, Parts, Rng};
use edge_runtime::EdgeClassifier;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn fixture() -> PathBuf {
    match std::env::var_os("BUNDLE_MUTATION_SOURCE") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny-bundle"),
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
    let source = bundle::BundleFiles::read(&fixture()).unwrap();
    if source.manifest.graph_format() == bundle::GraphFormat::Nnef {
        return; // a twin given as BUNDLE_MUTATION_SOURCE: the test above mutates it
    }
    edge_runtime::nnef::convert_bundle(&source, &twin, &edge_runtime::LoadOptions::default()).unwrap();
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

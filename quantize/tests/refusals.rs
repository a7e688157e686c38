//! quantize refuses every bundle the runtime refuses, with the runtime's own
//! message, leaving no output — and panics on none. The damaged copies are the
//! runtime's: its catalogue of bundles whose parts contradict each other and
//! its seeded mutations (`edge-runtime/tests/support/damage.rs`).

#[path = "../../edge-runtime/tests/support/damage.rs"]
mod damage;

use damage::{hostile_edits, mutate, Parts, Rng};
use edge_runtime::EdgeClassifier;
use prost::Message;
use quantize::{quantize_bundle, Int8Form, Options, Target};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::Command;
use tract_onnx::pb::ModelProto;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny-bundle")
}

fn runtime_error(dir: &Path) -> Option<String> {
    EdgeClassifier::load(dir).err().map(|e| e.to_string())
}

/// The quantize binary on `dir`: (exit status success, stderr).
fn quantize_cli(dir: &Path, out: &Path) -> (bool, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_quantize"))
        .args(["--bundle", dir.to_str().unwrap(), "--to", "int8", "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    (o.status.success(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// One damaged copy through both stages: wherever the runtime refuses it,
/// quantize exits non-zero with the runtime's message and writes nothing.
fn check(what: &str, dir: &Path, failures: &mut Vec<String>) {
    let out = dir.with_extension("int8");
    let refused = runtime_error(dir);
    let (ok, stderr) = quantize_cli(dir, &out);
    if stderr.contains("panicked") {
        failures.push(format!("{what}: quantize panicked: {stderr}"));
    }
    match refused {
        Some(message) => {
            // The file and what is wrong with it, as the runtime says them (the
            // detail of a parser's message can vary from run to run).
            let head: String = message.splitn(3, ": ").take(2).collect::<Vec<_>>().join(": ");
            if ok || !stderr.contains(&head) {
                failures.push(format!("{what}: the runtime refuses it ({message}) but quantize {}", if ok { "wrote a bundle".to_string() } else { format!("said: {stderr}") }));
            }
            if out.exists() {
                failures.push(format!("{what}: quantize refused it but left {}", out.display()));
            }
        }
        // Self-consistent edits load in both; quantize's bundle must load too.
        None if ok => {
            if let Some(e) = runtime_error(&out) {
                failures.push(format!("{what}: quantize wrote a bundle the runtime refuses: {e}"));
            }
        }
        None => {}
    }
}

#[test]
fn every_bundle_the_runtime_refuses_quantize_refuses_with_its_message() {
    let original = Parts::read(&fixture());
    let tmp = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    let edits = hostile_edits();
    let mut refused = 0;
    for (i, (what, edit)) in edits.iter().enumerate() {
        let mut parts = original.clone();
        edit(&mut parts);
        parts.reseal();
        let dir = tmp.path().join(format!("hostile-{i}"));
        parts.write(&dir, None);
        refused += runtime_error(&dir).is_some() as usize;
        check(what, &dir, &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(refused >= edits.len() - 2, "all but the self-consistent edits are refused ({refused} of {})", edits.len());
}

#[test]
fn a_position_table_whose_dims_disagree_with_its_data_is_refused_not_a_panic() {
    let mut parts = Parts::read(&fixture());
    let mut model = ModelProto::decode(parts.files["embeddings.onnx"].as_slice()).unwrap();
    let graph = model.graph.as_mut().unwrap();
    let table = graph.initializer.iter_mut().find(|t| t.dims == [128, 32]).expect("the position table (128 × 32)");
    table.dims = vec![4, 32];
    parts.files.insert("embeddings.onnx".into(), model.encode_to_vec());
    parts.reseal();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("positions");
    parts.write(&dir, None);
    let mut failures = Vec::new();
    check("position table dims [4, 32]", &dir, &mut failures);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let (ok, stderr) = quantize_cli(&dir, &tmp.path().join("out"));
    assert!(!ok && stderr.contains("embeddings.onnx"), "{stderr}");
}

#[test]
fn no_seeded_mutation_makes_quantize_panic_or_pass_what_the_runtime_refuses() {
    let count = std::env::var("BUNDLE_MUTATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let original = Parts::read(&fixture());
    let mut rng = Rng(std::env::var("BUNDLE_MUTATION_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0x5eed_b0d1e));
    let tmp = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    let forms = [Target::Int8 { form: Int8Form::WeightOnly }, Target::Int8 { form: Int8Form::DynamicI8 }, Target::F16];
    for i in 0..count {
        let mut parts = original.clone();
        let (what, manifest_bytes) = mutate(&mut parts, &mut rng);
        if rng.below(2) == 0 && manifest_bytes.is_none() {
            parts.reseal();
        }
        let dir = tmp.path().join(format!("m{i}"));
        let out = tmp.path().join(format!("m{i}.out"));
        parts.write(&dir, manifest_bytes);
        let opts = Options { target: forms[i % forms.len()], keep_f32: vec![], calibration: None };
        let what = format!("mutation {i}: {what}");
        let refused = runtime_error(&dir);
        match catch_unwind(AssertUnwindSafe(|| quantize_bundle(&dir, &out, &opts))) {
            Err(_) => failures.push(format!("{what}: quantize panicked")),
            Ok(Ok(_)) if refused.is_some() => failures.push(format!("{what}: the runtime refuses it ({}) but quantize wrote a bundle", refused.unwrap())),
            Ok(Err(e)) => {
                let e = format!("{e:#}");
                if !e.contains(&dir.display().to_string()) {
                    failures.push(format!("{what}: the error does not name the bundle: {e}"));
                }
                if out.exists() {
                    failures.push(format!("{what}: refused but left {}", out.display()));
                }
            }
            Ok(Ok(_)) => {}
        }
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(&out);
    }
    assert!(failures.is_empty(), "{} of {count} mutations failed:\n{}", failures.len(), failures.join("\n"));
}

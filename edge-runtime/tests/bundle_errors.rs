//! Broken bundles are refused with an error that names the file; nothing panics.

use bundle::manifest::{write_bundle, BundleError, Manifest, Precision, FORMAT_VERSION};
use bundle::ExitPolicy;
use edge_runtime::EdgeClassifier;
use std::collections::BTreeMap;
use std::path::Path;

fn manifest() -> Manifest {
    Manifest {
        format_version: FORMAT_VERSION,
        labels: vec!["neg".into(), "pos".into()],
        num_layers: 1,
        hidden_size: 4,
        max_seq_len: 8,
        tokenizer: "tokenizer.json".into(),
        precision: Precision::F32,
        default_policy: ExitPolicy::Full,
        embeddings: "embeddings.onnx".into(),
        layers: vec!["layer_00.onnx".into()],
        exits: vec![Some("exit_01.onnx".into())],
        sha256: BTreeMap::new(),
        provenance: BTreeMap::new(),
    }
}

/// A bundle whose files are placeholders: enough for the manifest checks.
fn bundle(dir: &Path) {
    let files: Vec<(String, Vec<u8>)> = ["embeddings.onnx", "layer_00.onnx", "exit_01.onnx", "tokenizer.json"]
        .iter()
        .map(|f| (f.to_string(), format!("contents of {f}").into_bytes()))
        .collect();
    write_bundle(dir, manifest(), &files).unwrap();
}

fn edit_manifest(dir: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("manifest.json");
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(path, v.to_string()).unwrap();
}

#[test]
fn a_well_formed_manifest_loads_with_its_checksums() {
    let tmp = tempfile::tempdir().unwrap();
    bundle(&tmp.path().join("b"));
    let m = Manifest::load(&tmp.path().join("b")).unwrap();
    assert_eq!(m.sha256.len(), 4);
}

#[test]
fn missing_file_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let b = tmp.path().join("b");
    bundle(&b);
    std::fs::remove_file(b.join("layer_00.onnx")).unwrap();
    let e = Manifest::load(&b).unwrap_err().to_string();
    assert!(e.contains("layer_00.onnx"), "{e}");
}

#[test]
fn checksum_mismatch_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let b = tmp.path().join("b");
    bundle(&b);
    std::fs::write(b.join("exit_01.onnx"), b"tampered").unwrap();
    let e = Manifest::load(&b).unwrap_err();
    assert!(matches!(e, BundleError::Checksum { .. }), "{e}");
    assert!(e.to_string().contains("exit_01.onnx"));
}

#[test]
fn other_format_version_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let b = tmp.path().join("b");
    bundle(&b);
    edit_manifest(&b, |v| v["format_version"] = 99.into());
    let e = Manifest::load(&b).unwrap_err().to_string();
    assert!(e.contains("format version 99"), "{e}");
}

#[test]
fn exits_inconsistent_with_layers_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let b = tmp.path().join("b");
    bundle(&b);
    edit_manifest(&b, |v| v["exits"] = serde_json::json!([null]));
    let e = Manifest::load(&b).unwrap_err().to_string();
    assert!(e.contains("last layer has no exit"), "{e}");
    edit_manifest(&b, |v| v["num_layers"] = 2.into());
    let e = Manifest::load(&b).unwrap_err().to_string();
    assert!(e.contains("num_layers 2"), "{e}");
}

#[test]
fn truncated_onnx_is_a_load_error_naming_the_graph() {
    let tmp = tempfile::tempdir().unwrap();
    let b = tmp.path().join("b");
    // Checksums match, but the graph bytes are not a valid ONNX model.
    let files: Vec<(String, Vec<u8>)> = vec![
        ("tokenizer.json".into(), include_bytes!("../../tests/fixtures/tokenizer-mini.json").to_vec()),
        ("embeddings.onnx".into(), vec![0x08, 0x08, 0x12]),
        ("layer_00.onnx".into(), vec![0x08]),
        ("exit_01.onnx".into(), vec![0x08]),
    ];
    write_bundle(&b, manifest(), &files).unwrap();
    let e = match EdgeClassifier::load(&b) {
        Ok(_) => panic!("a truncated graph must not load"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("embeddings.onnx"), "{e}");
}

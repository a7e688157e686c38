//! A bundle is untrusted input: what the contract refuses before any graph
//! is parsed — names that escape the directory, links, special and oversized
//! files, unchecksummed files, and manifest values no model has.

use bundle::manifest::{limits, write_bundle, BundleError, Manifest, Precision, FORMAT_VERSION};
use bundle::{BundleFiles, ExitPolicy};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn manifest() -> Manifest {
    Manifest {
        format_version: FORMAT_VERSION,
        labels: vec!["neg".into(), "pos".into()],
        num_layers: 2,
        hidden_size: 4,
        max_seq_len: 8,
        tokenizer: "tokenizer.json".into(),
        precision: Precision::F32,
        default_policy: ExitPolicy::Full,
        embeddings: "embeddings.onnx".into(),
        layers: vec!["layer_00.onnx".into(), "layer_01.onnx".into()],
        exits: vec![None, Some("exit_02.onnx".into())],
        sha256: BTreeMap::new(),
        provenance: BTreeMap::new(),
    }
}

const FILES: [&str; 6] = ["embeddings.onnx", "layer_00.onnx", "layer_01.onnx", "exit_02.onnx", "tokenizer.json", "vocab.txt"];

/// A bundle whose files are placeholders: enough for the contract's checks.
fn bundle(parent: &Path) -> PathBuf {
    let dir = parent.join("b");
    let files: Vec<(String, Vec<u8>)> = FILES.iter().map(|f| (f.to_string(), format!("contents of {f}").into_bytes())).collect();
    write_bundle(&dir, manifest(), &files).unwrap();
    dir
}

fn edit_manifest(dir: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("manifest.json");
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(path, v.to_string()).unwrap();
}

fn load_err(dir: &Path) -> String {
    match BundleFiles::read(dir) {
        Ok(_) => panic!("{} must be refused", dir.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_well_formed_bundle_is_read_once_with_every_file_verified() {
    let tmp = tempfile::tempdir().unwrap();
    let b = bundle(tmp.path());
    let read = BundleFiles::read(&b).unwrap();
    assert_eq!(read.bytes("vocab.txt"), Some(&b"contents of vocab.txt"[..]));
    // What was verified is what is used: a later change on disk is not seen.
    std::fs::write(b.join("layer_00.onnx"), "swapped after the load").unwrap();
    assert_eq!(read.bytes("layer_00.onnx"), Some(&b"contents of layer_00.onnx"[..]));
    // The same bundle from memory passes the same checks.
    let files = FILES.iter().map(|f| (f.to_string(), format!("contents of {f}").into_bytes())).collect();
    let manifest = std::fs::read(b.join("manifest.json")).unwrap();
    let mem = BundleFiles::from_memory(&manifest, files, Path::new("download")).unwrap();
    assert_eq!(mem.manifest, read.manifest);
}

#[test]
fn every_checksummed_file_is_verified_vocab_txt_included() {
    let tmp = tempfile::tempdir().unwrap();
    let b = bundle(tmp.path());
    std::fs::write(b.join("vocab.txt"), "tampered").unwrap();
    let e = BundleFiles::read(&b).unwrap_err();
    assert!(matches!(e, BundleError::Checksum { .. }) && e.to_string().contains("vocab.txt"), "{e}");
}

#[test]
fn a_named_file_without_a_checksum_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let b = bundle(tmp.path());
    edit_manifest(&b, |v| {
        v["sha256"].as_object_mut().unwrap().remove("tokenizer.json");
    });
    assert!(load_err(&b).contains("no sha256 for tokenizer.json"));
}

#[test]
fn file_names_that_leave_the_directory_are_refused() {
    for name in ["../outside.onnx", "/etc/passwd", "sub/layer.onnx", "..\\win.onnx", ".hidden", "", "manifest.json", "a\u{0}b"] {
        let tmp = tempfile::tempdir().unwrap();
        let b = bundle(tmp.path());
        edit_manifest(&b, |v| {
            let hash = v["sha256"]["layer_00.onnx"].clone();
            v["layers"][0] = name.into();
            v["sha256"][name] = hash;
        });
        let e = load_err(&b);
        assert!(e.contains("file name") && e.contains("manifest.json"), "{name:?}: {e}");
    }
}

#[cfg(unix)]
#[test]
fn links_may_stay_inside_the_bundle_but_not_leave_it() {
    let tmp = tempfile::tempdir().unwrap();
    let b = bundle(tmp.path());
    // Inside: the real file under another name.
    std::fs::rename(b.join("vocab.txt"), b.join("vocab.real")).unwrap();
    std::os::unix::fs::symlink("vocab.real", b.join("vocab.txt")).unwrap();
    BundleFiles::read(&b).unwrap();
    // Outside: same bytes, so only the link itself can be the reason.
    std::fs::rename(b.join("vocab.real"), tmp.path().join("vocab.outside")).unwrap();
    std::fs::remove_file(b.join("vocab.txt")).unwrap();
    std::os::unix::fs::symlink("../vocab.outside", b.join("vocab.txt")).unwrap();
    let e = load_err(&b);
    assert!(e.contains("vocab.txt") && e.contains("outside the bundle"), "{e}");
    std::fs::remove_file(b.join("vocab.txt")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", b.join("vocab.txt")).unwrap();
    assert!(load_err(&b).contains("outside the bundle"));
}

#[cfg(unix)]
#[test]
fn special_files_are_refused_without_blocking() {
    let tmp = tempfile::tempdir().unwrap();
    let b = bundle(tmp.path());
    std::fs::remove_file(b.join("layer_01.onnx")).unwrap();
    // A FIFO with no writer: opening it for reading would wait for ever.
    let status = std::process::Command::new("mkfifo").arg(b.join("layer_01.onnx")).status().unwrap();
    assert!(status.success());
    let e = load_err(&b);
    assert!(e.contains("layer_01.onnx") && e.contains("not a regular file"), "{e}");
    std::fs::remove_file(b.join("layer_01.onnx")).unwrap();
    std::fs::create_dir(b.join("layer_01.onnx")).unwrap();
    assert!(load_err(&b).contains("not a regular file"));
}

#[test]
fn an_oversized_file_is_refused_before_it_is_read() {
    let tmp = tempfile::tempdir().unwrap();
    let b = bundle(tmp.path());
    // Sparse: costs no disk, and reading it would cost 1 GiB of memory.
    let f = std::fs::OpenOptions::new().write(true).open(b.join("embeddings.onnx")).unwrap();
    f.set_len(limits::FILE_BYTES + 1).unwrap();
    // Refused from its size: the message gives the size the file claims.
    let e = load_err(&b);
    assert!(e.contains("embeddings.onnx") && e.contains(&format!("{} bytes, over the", limits::FILE_BYTES + 1)), "{e}");
    let big_manifest = vec![b' '; limits::MANIFEST_BYTES as usize + 1];
    std::fs::write(b.join("manifest.json"), big_manifest).unwrap();
    assert!(load_err(&b).contains("manifest.json"));
}

#[test]
fn manifest_values_no_model_has_are_refused_with_the_field_named() {
    let cases: Vec<(&str, serde_json::Value, &str)> = vec![
        ("hidden_size", 0.into(), "hidden_size 0 is outside"),
        ("hidden_size", 1_000_000_000u64.into(), "hidden_size 1000000000 is outside"),
        ("max_seq_len", 0.into(), "max_seq_len 0 is outside"),
        ("max_seq_len", 2.into(), "max_seq_len 2 is outside"),
        ("max_seq_len", 1_000_000.into(), "max_seq_len 1000000 is outside"),
        ("labels", serde_json::json!([]), "0 labels"),
        ("labels", serde_json::json!(["pos", "pos"]), "label \"pos\" appears twice"),
        ("labels", serde_json::json!(["", "pos"]), "label \"\" is empty"),
        ("num_layers", 0.into(), "num_layers 0 is outside"),
        ("num_layers", 3.into(), "num_layers 3 but 2 layer graphs"),
        ("format_version", 4_294_967_297u64.into(), "format version 4294967297, this runtime reads version 1"),
        ("format_version", "1".into(), "format version \"1\""),
        ("default_policy", serde_json::json!({"policy": "patience", "n": 0}), "default_policy: patience 0"),
        ("default_policy", serde_json::json!({"policy": "layer", "k": 2}), "default_policy: exit layer 2 is outside 1..=1"),
        ("precision", "int4".into(), "unknown variant `int4`"),
    ];
    for (field, value, want) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let b = bundle(tmp.path());
        edit_manifest(&b, |v| v[field] = value.clone());
        let e = load_err(&b);
        assert!(e.contains(want) && e.contains("manifest.json"), "{field} = {value}: {e}");
    }
}

#[test]
fn a_file_named_many_times_is_refused_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let b = bundle(tmp.path());
    edit_manifest(&b, |v| {
        v["num_layers"] = 3000.into();
        v["layers"] = serde_json::json!(vec!["layer_00.onnx"; 3000]);
        v["exits"] = serde_json::json!((0..3000).map(|i| if i == 2999 { Some("exit_02.onnx") } else { None }).collect::<Vec<_>>());
    });
    let e = load_err(&b);
    assert!(e.contains("num_layers 3000 is outside"), "{e}");
    edit_manifest(&b, |v| {
        v["num_layers"] = 2.into();
        v["layers"] = serde_json::json!(["layer_00.onnx", "layer_00.onnx"]);
        v["exits"] = serde_json::json!([null, "exit_02.onnx"]);
    });
    assert!(load_err(&b).contains("\"layer_00.onnx\" is named twice"));
}

#[test]
fn graphs_are_onnx_or_nnef_archives_never_a_mix() {
    let tmp = tempfile::tempdir().unwrap();
    let b = bundle(tmp.path());
    assert_eq!(BundleFiles::read(&b).unwrap().manifest.graph_format(), bundle::GraphFormat::Onnx);
    let rename = |v: &mut serde_json::Value, from: &str, to: &str| {
        let hash = v["sha256"][from].take();
        v["sha256"].as_object_mut().unwrap().remove(from);
        v["sha256"][to] = hash;
        std::fs::rename(b.join(from), b.join(to)).unwrap();
    };
    edit_manifest(&b, |v| {
        v["layers"][1] = "layer_01.nnef.tar".into();
        rename(v, "layer_01.onnx", "layer_01.nnef.tar");
    });
    let e = load_err(&b);
    assert!(e.contains("graph \"layer_01.nnef.tar\" is not stored like the embeddings graph") && e.contains("manifest.json"), "{e}");
    edit_manifest(&b, |v| {
        v["embeddings"] = "embeddings.pb".into();
        rename(v, "embeddings.onnx", "embeddings.pb");
    });
    assert!(load_err(&b).contains("graph \"embeddings.pb\" is neither .onnx nor .nnef.tar"));
}

#[test]
fn a_bundle_with_a_bad_name_is_never_written() {
    let tmp = tempfile::tempdir().unwrap();
    let mut m = manifest();
    m.layers[0] = "../escape.onnx".into();
    let files: Vec<(String, Vec<u8>)> = ["embeddings.onnx", "../escape.onnx", "layer_01.onnx", "exit_02.onnx", "tokenizer.json"]
        .iter()
        .map(|f| (f.to_string(), b"x".to_vec()))
        .collect();
    let e = write_bundle(&tmp.path().join("out"), m, &files).unwrap_err();
    assert!(e.to_string().contains("file name \"../escape.onnx\""), "{e}");
    assert!(!tmp.path().join("escape.onnx").exists() && !tmp.path().join("out").exists());
}

#[test]
fn set_default_policy_rewrites_the_bundle_whole_with_its_report() {
    let tmp = tempfile::tempdir().unwrap();
    let b = bundle(tmp.path());
    std::fs::write(b.join("quantize-report.json"), "{}").unwrap();
    let policy = ExitPolicy::Entropy { speed: 0.3 };
    let m = bundle::files::set_default_policy(&b, policy, "test", |_| vec![("calibration-report.json".into(), b"{\"n\": 1}".to_vec())]).unwrap().0;
    assert_eq!(m.default_policy, policy);
    assert_eq!(BundleFiles::read(&b).unwrap().manifest.default_policy, policy);
    assert_eq!(std::fs::read_to_string(b.join("calibration-report.json")).unwrap(), "{\"n\": 1}");
    assert_eq!(std::fs::read_to_string(b.join("quantize-report.json")).unwrap(), "{}", "earlier reports are kept");
    let bad = bundle::files::set_default_policy(&b, ExitPolicy::Patience { n: 5 }, "test", |_| Vec::new()).unwrap_err();
    assert!(bad.to_string().contains("patience 5 is outside"), "{bad}");
    let mut left: Vec<String> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    left.sort();
    assert_eq!(left, ["b"], "no temporary directory is left beside the bundle");
}

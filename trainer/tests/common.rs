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

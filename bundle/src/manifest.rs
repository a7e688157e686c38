//! The bundle: the one contract between the stages. A directory with
//! `manifest.json`, the tokenizer and one graph per segment (ONNX, or the
//! edge runtime's NNEF variant), written whole or not at all.

use crate::atomic::{self, FileError};
use crate::exit::ExitPolicy;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const FORMAT_VERSION: u32 = 1;
pub const MANIFEST: &str = "manifest.json";
/// Every graph is ONNX IR version 8 with opset 20 (LayerNormalization, Gelu):
/// what both tract and onnxruntime read.
pub const IR_VERSION: i64 = 8;
pub const OPSET: i64 = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    F32,
    F16,
    Int8,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    pub labels: Vec<String>,
    pub num_layers: usize,
    pub hidden_size: usize,
    pub max_seq_len: usize,
    pub tokenizer: String,
    pub precision: Precision,
    pub default_policy: ExitPolicy,
    /// Graph files: embeddings, one per layer, and the exits.
    pub embeddings: String,
    pub layers: Vec<String>,
    /// `exits[i]`: the exit classifier after layer i+1, if there is one.
    pub exits: Vec<Option<String>>,
    /// sha256 of every file in the bundle but the manifest.
    pub sha256: BTreeMap<String, String>,
    pub provenance: BTreeMap<String, String>,
}

/// Bounds on what a manifest may ask for: a bundle is untrusted input, and
/// these keep a hostile one from costing minutes or gigabytes at load. They
/// are far above any BERT a board runs (BERT-large: 24 layers, 1024 wide).
pub mod limits {
    pub const MANIFEST_BYTES: u64 = 1 << 20;
    /// Per file; BERT-base's embeddings are ~94 MB in f32.
    pub const FILE_BYTES: u64 = 1 << 30;
    pub const LAYERS: usize = 64;
    pub const HIDDEN_SIZE: usize = 8192;
    pub const MAX_SEQ_LEN: usize = 8192;
    pub const LABELS: usize = 4096;
    pub const LABEL_BYTES: usize = 256;
    pub const FILE_NAME_BYTES: usize = 255;
    /// Checksummed files beyond the graphs and the tokenizer (vocab.txt, ...).
    pub const EXTRA_FILES: usize = 16;
}

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{path}: {error}")]
    Io { path: PathBuf, error: std::io::Error },
    #[error(transparent)]
    Write(#[from] FileError),
    #[error("{path}: invalid manifest: {error}")]
    Manifest { path: PathBuf, error: serde_json::Error },
    #[error("{path}: format version {found}, this runtime reads version {FORMAT_VERSION}")]
    Version { path: PathBuf, found: serde_json::Value },
    #[error("{path}: checksum mismatch (manifest {expected}, file {found})")]
    Checksum { path: PathBuf, expected: String, found: String },
    #[error("{path}: inconsistent manifest: {what}")]
    Inconsistent { path: PathBuf, what: String },
    #[error("{path}: refused: {what}")]
    Unsafe { path: PathBuf, what: String },
    #[error("{path}: not the expected bundle: its digest is {found}, expected {expected}")]
    Digest { path: PathBuf, expected: String, found: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BundleError + '_ {
    move |error| BundleError::Io { path: path.to_path_buf(), error }
}

/// How a bundle's graphs are stored, told by their file names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphFormat {
    /// `*.onnx`: what the trainer exports and any ONNX tool opens.
    Onnx,
    /// `*.nnef.tar`: tract's NNEF archive of the typed graph (`edge-runtime
    /// to-nnef`), which a board binary built without the ONNX parser loads.
    Nnef,
}

impl GraphFormat {
    pub fn of(name: &str) -> Option<Self> {
        if name.ends_with(".onnx") {
            Some(Self::Onnx)
        } else if name.ends_with(".nnef.tar") {
            Some(Self::Nnef)
        } else {
            None
        }
    }

    /// The file name of a graph `stem` in this format.
    pub fn file_name(self, stem: &str) -> String {
        match self {
            Self::Onnx => format!("{stem}.onnx"),
            Self::Nnef => format!("{stem}.nnef.tar"),
        }
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Whether `name` is a plain file name that stays inside the bundle directory:
/// no separator, no `..`, no hidden or temporary name, not the manifest.
pub fn check_file_name(name: &str) -> Result<(), String> {
    let why = if name.is_empty() {
        "is empty"
    } else if name.len() > limits::FILE_NAME_BYTES {
        "is too long"
    } else if name.contains(['/', '\\', '\0']) {
        "is a path, not a plain file name"
    } else if name.starts_with('.') {
        "starts with '.' (a hidden or parent name)"
    } else if name == MANIFEST {
        "is the manifest itself"
    } else if name.chars().any(char::is_control) {
        "contains control characters"
    } else {
        return Ok(());
    };
    Err(format!("file name {name:?} {why}"))
}

impl Manifest {
    /// The graph files in the order a sample runs through them: embeddings,
    /// then each layer followed by its exit where it has one.
    pub fn graphs(&self) -> Vec<&str> {
        let mut g = vec![self.embeddings.as_str()];
        for (layer, exit) in self.layers.iter().zip(&self.exits) {
            g.push(layer);
            g.extend(exit.as_deref());
        }
        g
    }

    /// The format of every graph ([`Manifest::validate`] checks they share one).
    pub fn graph_format(&self) -> GraphFormat {
        GraphFormat::of(&self.embeddings).unwrap_or(GraphFormat::Onnx)
    }

    /// Every file the manifest names.
    pub fn files(&self) -> Vec<&str> {
        let mut f = self.graphs();
        f.push(&self.tokenizer);
        f
    }

    /// How many exit classifiers the bundle has.
    pub fn exit_count(&self) -> usize {
        self.exits.iter().flatten().count()
    }

    // `Manifest::load` reads and checks the files it lists too: it sits with
    // them in `files.rs`.

    /// Parses manifest bytes (read from `path`, named in errors) and checks
    /// every field: the version, the bounds in [`limits`], the file names,
    /// the labels and the default policy.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Self, BundleError> {
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|error| BundleError::Manifest { path: path.to_path_buf(), error })?;
        match value.get("format_version") {
            Some(v) if v.as_u64() == Some(FORMAT_VERSION as u64) => {}
            Some(v) => return Err(BundleError::Version { path: path.to_path_buf(), found: v.clone() }),
            None => {}
        }
        let m: Manifest = serde_json::from_value(value).map_err(|error| BundleError::Manifest { path: path.to_path_buf(), error })?;
        m.validate().map_err(|what| BundleError::Inconsistent { path: path.to_path_buf(), what })?;
        Ok(m)
    }

    /// Every check that needs nothing but the manifest itself.
    pub fn validate(&self) -> Result<(), String> {
        let n = self.num_layers;
        if n == 0 || n > limits::LAYERS {
            return Err(format!("num_layers {n} is outside 1..={}", limits::LAYERS));
        }
        if self.layers.len() != n || self.exits.len() != n {
            return Err(format!("num_layers {n} but {} layer graphs and {} exit slots", self.layers.len(), self.exits.len()));
        }
        if self.exits.last().is_none_or(|e| e.is_none()) {
            return Err("the last layer has no exit classifier".into());
        }
        if self.hidden_size == 0 || self.hidden_size > limits::HIDDEN_SIZE {
            return Err(format!("hidden_size {} is outside 1..={}", self.hidden_size, limits::HIDDEN_SIZE));
        }
        // [CLS], one token, [SEP]: anything shorter cuts every text to nothing.
        if self.max_seq_len < 3 || self.max_seq_len > limits::MAX_SEQ_LEN {
            return Err(format!("max_seq_len {} is outside 3..={}", self.max_seq_len, limits::MAX_SEQ_LEN));
        }
        self.validate_labels()?;
        self.validate_files()?;
        self.validate_graph_format()?;
        self.default_policy.check(self.exit_count()).map_err(|e| format!("default_policy: {e}"))
    }

    fn validate_labels(&self) -> Result<(), String> {
        let labels = &self.labels;
        if labels.len() < 2 || labels.len() > limits::LABELS {
            return Err(format!("{} labels; a classifier needs 2..={}", labels.len(), limits::LABELS));
        }
        let mut seen = std::collections::BTreeSet::new();
        for label in labels {
            if label.trim().is_empty() || label.len() > limits::LABEL_BYTES || label.chars().any(char::is_control) {
                return Err(format!("label {label:?} is empty, too long or has control characters"));
            }
            if !seen.insert(label) {
                return Err(format!("label {label:?} appears twice"));
            }
        }
        Ok(())
    }

    fn validate_graph_format(&self) -> Result<(), String> {
        let format = GraphFormat::of(&self.embeddings)
            .ok_or_else(|| format!("graph {:?} is neither .onnx nor .nnef.tar", self.embeddings))?;
        match self.graphs().into_iter().find(|g| GraphFormat::of(g) != Some(format)) {
            Some(g) => Err(format!("graph {g:?} is not stored like the embeddings graph {:?} ({format:?})", self.embeddings)),
            None => Ok(()),
        }
    }

    fn validate_files(&self) -> Result<(), String> {
        let named = self.files();
        let mut seen = std::collections::BTreeSet::new();
        for name in &named {
            check_file_name(name)?;
            if !seen.insert(*name) {
                return Err(format!("file {name:?} is named twice"));
            }
            if !self.sha256.contains_key(*name) {
                return Err(format!("no sha256 for {name}"));
            }
        }
        if self.sha256.len() > named.len() + limits::EXTRA_FILES {
            return Err(format!("{} checksummed files; at most {} beyond the graphs and tokenizer", self.sha256.len(), limits::EXTRA_FILES));
        }
        for (name, hash) in &self.sha256 {
            check_file_name(name)?;
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
                return Err(format!("sha256 of {name} is not 64 lowercase hex digits"));
            }
        }
        Ok(())
    }
}

/// Writes a bundle: `files` (name → bytes) and the manifest (checksums filled
/// in here), replacing `dir` whole.
/// The manifest is checked first, so no stage can write a bundle the runtime
/// would refuse, nor a file outside `dir`.
pub fn write_bundle(dir: &Path, manifest: Manifest, files: &[(String, Vec<u8>)]) -> Result<Manifest, BundleError> {
    write_bundle_with(dir, manifest, files, |_| Ok(()))
}

/// [`write_bundle`], with `extra` writing more files (reports) into the new
/// directory before it replaces `dir`: a failure anywhere leaves `dir` as it was.
pub fn write_bundle_with<E: From<BundleError> + From<FileError>>(
    dir: &Path,
    mut manifest: Manifest,
    files: &[(impl AsRef<str>, impl AsRef<[u8]>)],
    extra: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<Manifest, E> {
    manifest.sha256 = files.iter().map(|(file, bytes)| (file.as_ref().to_string(), sha256_hex(bytes.as_ref()))).collect();
    let path = dir.join(MANIFEST);
    manifest.validate().map_err(|what| BundleError::Inconsistent { path, what })?;
    atomic::replace_dir(dir, |tmp| -> Result<(), E> {
        for (file, bytes) in files {
            let path = tmp.join(file.as_ref());
            std::fs::write(&path, bytes).map_err(io(&path))?;
        }
        atomic::write_json(&tmp.join(MANIFEST), &manifest)?;
        extra(tmp)
    })?;
    Ok(manifest)
}

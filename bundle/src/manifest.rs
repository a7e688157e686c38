//! The bundle: the one contract between the stages. A directory with
//! `manifest.json`, the tokenizer and one ONNX graph per segment, written
//! whole or not at all.

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

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{path}: {error}")]
    Io { path: PathBuf, error: std::io::Error },
    #[error(transparent)]
    Write(#[from] FileError),
    #[error("{path}: invalid manifest: {error}")]
    Manifest { path: PathBuf, error: serde_json::Error },
    #[error("{path}: format version {found}, this runtime reads version {FORMAT_VERSION}")]
    Version { path: PathBuf, found: u32 },
    #[error("{path}: checksum mismatch (manifest {expected}, file {found})")]
    Checksum { path: PathBuf, expected: String, found: String },
    #[error("{path}: inconsistent manifest: {what}")]
    Inconsistent { path: PathBuf, what: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BundleError + '_ {
    move |error| BundleError::Io { path: path.to_path_buf(), error }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
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

    /// Every file the manifest names.
    pub fn files(&self) -> Vec<&str> {
        let mut f = self.graphs();
        f.push(&self.tokenizer);
        f
    }

    /// Reads and checks a bundle's manifest: version, consistency, and the
    /// sha256 of every file it names.
    pub fn load(dir: &Path) -> Result<Self, BundleError> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path).map_err(io(&path))?;
        let version: serde_json::Value =
            serde_json::from_str(&text).map_err(|error| BundleError::Manifest { path: path.clone(), error })?;
        if let Some(found) = version["format_version"].as_u64().filter(|&v| v != FORMAT_VERSION as u64) {
            return Err(BundleError::Version { path, found: found as u32 });
        }
        let m: Manifest = serde_json::from_value(version).map_err(|error| BundleError::Manifest { path: path.clone(), error })?;
        let bad = |what: String| BundleError::Inconsistent { path: path.clone(), what };
        if m.layers.len() != m.num_layers || m.exits.len() != m.num_layers {
            return Err(bad(format!(
                "num_layers {} but {} layer graphs and {} exit slots",
                m.num_layers,
                m.layers.len(),
                m.exits.len()
            )));
        }
        if m.exits.last().is_none_or(|e| e.is_none()) {
            return Err(bad("the last layer has no exit classifier".into()));
        }
        if m.labels.len() < 2 {
            return Err(bad(format!("needs at least two labels, has {:?}", m.labels)));
        }
        for f in m.files() {
            let file = dir.join(f);
            let bytes = std::fs::read(&file).map_err(io(&file))?;
            let expected = m.sha256.get(f).ok_or_else(|| bad(format!("no sha256 for {f}")))?;
            let found = sha256_hex(&bytes);
            if &found != expected {
                return Err(BundleError::Checksum { path: file, expected: expected.clone(), found });
            }
        }
        Ok(m)
    }
}

/// Writes a bundle: `files` (name → bytes) and the manifest (checksums filled
/// in here), replacing `dir` whole.
pub fn write_bundle(dir: &Path, mut manifest: Manifest, files: &[(String, Vec<u8>)]) -> Result<Manifest, BundleError> {
    manifest.sha256 = files.iter().map(|(file, bytes)| (file.clone(), sha256_hex(bytes))).collect();
    atomic::replace_dir(dir, |tmp| -> Result<(), BundleError> {
        for (file, bytes) in files {
            let path = tmp.join(file);
            std::fs::write(&path, bytes).map_err(io(&path))?;
        }
        Ok(atomic::write_json(&tmp.join(MANIFEST), &manifest)?)
    })?;
    Ok(manifest)
}

/// Replaces the bundle's default exit policy (what `classify` uses without a
/// policy flag), recording why in the provenance; the manifest is rewritten
/// atomically and the graphs are untouched.
pub fn set_default_policy(dir: &Path, policy: ExitPolicy, why: &str) -> Result<Manifest, BundleError> {
    let mut m = Manifest::load(dir)?;
    m.default_policy = policy;
    m.provenance.insert("default_policy".into(), why.to_string());
    atomic::write_json(&dir.join(MANIFEST), &m)?;
    Ok(m)
}

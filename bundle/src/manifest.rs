//! The bundle: the one contract between the stages. A directory with
//! `manifest.json`, the tokenizer and one ONNX graph per segment, written
//! atomically (a temporary directory renamed into place).

use crate::exit::ExitPolicy;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const FORMAT_VERSION: u32 = 1;
pub const MANIFEST: &str = "manifest.json";

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
    /// Every file the manifest names.
    pub fn files(&self) -> Vec<&str> {
        let mut f = vec![self.embeddings.as_str(), self.tokenizer.as_str()];
        f.extend(self.layers.iter().map(String::as_str));
        f.extend(self.exits.iter().flatten().map(String::as_str));
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
/// in here) into a temporary sibling directory, then renames it to `dir`.
pub fn write_bundle(dir: &Path, mut manifest: Manifest, files: &[(String, Vec<u8>)]) -> Result<Manifest, BundleError> {
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io(parent))?;
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "bundle".into());
    let tmp = parent.join(format!(".{name}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    manifest.sha256.clear();
    for (file, bytes) in files {
        let path = tmp.join(file);
        std::fs::write(&path, bytes).map_err(io(&path))?;
        manifest.sha256.insert(file.clone(), sha256_hex(bytes));
    }
    let text = serde_json::to_string_pretty(&manifest).expect("manifest serialises");
    let mpath = tmp.join(MANIFEST);
    std::fs::write(&mpath, text + "\n").map_err(io(&mpath))?;
    // Swap by renames so a crash leaves the old bundle or the new one whole.
    let old = parent.join(format!(".{name}.{}.old", std::process::id()));
    if dir.exists() {
        std::fs::rename(dir, &old).map_err(io(dir))?;
    }
    std::fs::rename(&tmp, dir).map_err(io(dir))?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(manifest)
}

/// Writes `bytes` to a temporary sibling of `path`, then renames it over
/// `path`, so a reader sees the old file or the new one, never half of one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), BundleError> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// Replaces the bundle's default exit policy (what `classify` uses without a
/// policy flag), recording why in the provenance; the manifest is rewritten
/// atomically and the graphs are untouched.
pub fn set_default_policy(dir: &Path, policy: ExitPolicy, why: &str) -> Result<Manifest, BundleError> {
    let mut m = Manifest::load(dir)?;
    m.default_policy = policy;
    m.provenance.insert("default_policy".into(), why.to_string());
    let text = serde_json::to_string_pretty(&m).expect("manifest serialises") + "\n";
    write_atomic(&dir.join(MANIFEST), text.as_bytes())?;
    Ok(m)
}

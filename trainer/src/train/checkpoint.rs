//! Resumable training checkpoints: `OUT/checkpoint/` holds the weights, the
//! optimizer moments and a JSON state, and is replaced as a whole.

use crate::optim::AdamW;
use anyhow::{Context, Result};
use bundle::atomic;
use candle_nn::VarMap;
use serde::{de::DeserializeOwned, Serialize};
use std::path::{Path, PathBuf};

pub const CHECKPOINT: &str = "checkpoint";

/// Replaces `out/checkpoint` with a new one, whole: a crash leaves the old
/// checkpoint or the new one.
pub fn save_checkpoint<S: Serialize>(out: &Path, varmap: &VarMap, opt: &AdamW, state: &S) -> Result<()> {
    atomic::replace_dir(&out.join(CHECKPOINT), |dir| -> Result<()> {
        let weights = dir.join("model.safetensors");
        varmap.save(&weights).with_context(|| format!("cannot write {}", weights.display()))?;
        opt.save(&dir.join("optimizer.safetensors"))?;
        Ok(atomic::write_json(&dir.join("state.json"), state)?)
    })
}

/// The checkpoint to resume from: the current one, or the previous one when a
/// crash interrupted the swap.
pub fn existing_checkpoint(out: &Path) -> Option<PathBuf> {
    atomic::last_whole_dir(&out.join(CHECKPOINT)).filter(|dir| dir.join("state.json").exists())
}

pub fn read_state<S: DeserializeOwned>(checkpoint: &Path) -> Result<S> {
    let path = checkpoint.join("state.json");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: invalid training state", path.display()))
}

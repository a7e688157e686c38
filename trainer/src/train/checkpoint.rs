//! Resumable training checkpoints: `OUT/checkpoint/` holds the weights, the
//! optimizer moments and a JSON state; it is replaced as a whole (temp
//! directory, then renames), so a crash leaves the old or the new one intact.

use crate::optim::AdamW;
use anyhow::{Context, Result};
use candle_nn::VarMap;
use serde::{de::DeserializeOwned, Serialize};
use std::path::{Path, PathBuf};

pub const CHECKPOINT: &str = "checkpoint";

/// Replaces `out/checkpoint` with a new one: written to a temporary directory,
/// then swapped in by renames, so a crash leaves the old or the new one whole.
pub fn save_checkpoint<S: Serialize>(out: &Path, varmap: &VarMap, opt: &AdamW, state: &S) -> Result<()> {
    let tmp = out.join(format!("{CHECKPOINT}.tmp"));
    let old = out.join(format!("{CHECKPOINT}.old"));
    let cur = out.join(CHECKPOINT);
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)?;
    let weights = tmp.join("model.safetensors");
    crate::io::write_atomic_with(&weights, |t| varmap.save(t).with_context(|| format!("cannot write {}", t.display())))?;
    opt.save(&tmp.join("optimizer.safetensors"))?;
    crate::io::write_json_atomic(&tmp.join("state.json"), state)?;
    let _ = std::fs::remove_dir_all(&old);
    if cur.exists() {
        std::fs::rename(&cur, &old)?;
    }
    std::fs::rename(&tmp, &cur)?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

/// The checkpoint to resume from: the current one, or the previous one when a
/// crash interrupted the swap.
pub fn existing_checkpoint(out: &Path) -> Option<PathBuf> {
    [CHECKPOINT, "checkpoint.old"]
        .iter()
        .map(|n| out.join(n))
        .find(|p| p.join("state.json").exists())
}

pub fn read_state<S: DeserializeOwned>(checkpoint: &Path) -> Result<S> {
    let path = checkpoint.join("state.json");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: invalid training state", path.display()))
}

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

/// The checkpoint a run continues from (`--resume`), or `None` for a fresh
/// start. Refuses to resume nothing, and to start over a checkpoint it would
/// overwrite.
pub fn resume_or_fresh(out: &Path, resume: bool) -> Result<Option<PathBuf>> {
    match (existing_checkpoint(out), resume) {
        (Some(ckpt), true) => Ok(Some(ckpt)),
        (None, true) => anyhow::bail!("{}: nothing to resume (no checkpoint/state.json)", out.display()),
        (Some(ckpt), false) => anyhow::bail!(
            "{} already holds a training checkpoint; pass --resume to continue it or choose another --out",
            ckpt.display()
        ),
        (None, false) => Ok(None),
    }
}

pub fn read_state<S: DeserializeOwned>(checkpoint: &Path) -> Result<S> {
    let path = checkpoint.join("state.json");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: invalid training state", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_resumes_only_a_checkpoint_and_never_starts_over_one() {
        let out = tempfile::tempdir().unwrap();
        assert_eq!(resume_or_fresh(out.path(), false).unwrap(), None);
        let e = resume_or_fresh(out.path(), true).unwrap_err().to_string();
        assert!(e.contains("nothing to resume"), "{e}");
        let ckpt = out.path().join(CHECKPOINT);
        std::fs::create_dir_all(&ckpt).unwrap();
        std::fs::write(ckpt.join("state.json"), "{}").unwrap();
        assert_eq!(resume_or_fresh(out.path(), true).unwrap(), Some(ckpt));
        let e = resume_or_fresh(out.path(), false).unwrap_err().to_string();
        assert!(e.contains("already holds a training checkpoint") && e.contains("--resume"), "{e}");
    }
}

//! What every training loop shares: the learning-rate schedule, one clipped
//! AdamW step with the NaN stop, and the progress bar.

use crate::optim::AdamW;
use anyhow::{bail, Result};
use candle_core::Tensor;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::Path;

/// Linear warm-up to `peak` over `warmup` steps, then linear decay to zero.
pub fn lr_at(step: usize, total: usize, warmup: usize, peak: f64) -> f64 {
    if step < warmup {
        peak * (step + 1) as f64 / warmup as f64
    } else {
        peak * (total.saturating_sub(step)) as f64 / (total - warmup).max(1) as f64
    }
}

/// One optimisation step on the loss that `loss` computes. Returns the loss
/// before the update.
pub fn train_step(opt: &mut AdamW, loss: impl FnOnce() -> Result<Tensor>, lr: f64, max_grad_norm: f64) -> Result<f32> {
    let loss = loss()?;
    let loss_value = loss.to_scalar::<f32>()?;
    if !loss_value.is_finite() {
        bail!("non-finite training loss ({loss_value}) at step {}", opt.step + 1);
    }
    clipped_update(opt, &loss.backward()?, lr, max_grad_norm)?;
    Ok(loss_value)
}

/// The update both steps end with: the gradient norm checked, clipped to
/// `max_grad_norm`, then one AdamW step.
fn clipped_update(opt: &mut AdamW, grads: &candle_core::backprop::GradStore, lr: f64, max_grad_norm: f64) -> Result<()> {
    let norm = opt.grad_norm(grads)?;
    if !norm.is_finite() {
        bail!("non-finite gradient norm at step {}", opt.step + 1);
    }
    let scale = if norm > max_grad_norm { max_grad_norm / (norm + 1e-6) } else { 1.0 };
    opt.step(grads, lr, scale)
}

/// One part of a batch for [`train_step_sharded`]: the number of terms its
/// loss averages over (examples, or masked tokens) and the closure that
/// computes that mean on the shard's thread.
pub struct Shard<'a> {
    pub terms: usize,
    pub loss: Box<dyn FnOnce() -> Result<Tensor> + Send + 'a>,
}

/// One optimisation step on a batch cut into shards, each computed and
/// back-propagated on a thread of its own (data parallelism in one process:
/// element-wise work runs on one thread per shard, and the small matrix
/// products of these models split poorly over cores). The batch's mean is
/// Σ_k (n_k / n) · mean_k, so each shard's loss is scaled by its share before
/// its backward pass; the gradients are summed, then one clipped update.
/// Dropout draws from each thread's generator, seeded per shard.
pub fn train_step_sharded(opt: &mut AdamW, shards: Vec<Shard<'_>>, lr: f64, max_grad_norm: f64, (seed, step): (u64, usize)) -> Result<f32> {
    let total: usize = shards.iter().map(|s| s.terms).sum();
    if total == 0 {
        bail!("step {}: the batch has nothing to learn from", opt.step + 1);
    }
    let results: Vec<Result<(f32, candle_core::backprop::GradStore)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = shards
            .into_iter()
            .enumerate()
            .map(|(k, shard)| {
                scope.spawn(move || -> Result<(f32, candle_core::backprop::GradStore)> {
                    crate::model::dropout::seed_shard(seed, step, k);
                    let share = shard.terms as f64 / total as f64;
                    let loss = (shard.loss)()?;
                    let value = loss.to_scalar::<f32>()?;
                    Ok((value * share as f32, (loss * share)?.backward()?))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a shard's thread panicked")))).collect()
    });
    let mut value = 0f32;
    let mut stores = Vec::with_capacity(results.len());
    for r in results {
        let (v, grads) = r?;
        value += v;
        stores.push(grads);
    }
    if !value.is_finite() {
        bail!("non-finite training loss ({value}) at step {}", opt.step + 1);
    }
    clipped_update(opt, &opt.sum_grads(stores)?, lr, max_grad_norm)?;
    Ok(value)
}

/// Step `step` of a resumable run: dropout masks seeded for this step (so a
/// resumed run draws the same ones), one clipped update, and on a non-finite
/// loss an error that points at the checkpoint left intact in `out`. Then
/// `--stop-after-steps` acts as a crash would, for testing `--resume`.
pub fn resumable_step(
    opt: &mut AdamW,
    loss: impl FnOnce() -> Result<Tensor>,
    (lr, max_grad_norm): (f64, f64),
    (seed, step): (u64, usize),
    out: &Path,
    stop_after: Option<usize>,
) -> Result<f32> {
    crate::model::dropout::seed_step(seed, step);
    resumable(train_step(opt, loss, lr, max_grad_norm), step, out, stop_after)
}

/// [`resumable_step`] for a batch cut into shards ([`train_step_sharded`]).
pub fn resumable_sharded_step(
    opt: &mut AdamW,
    shards: Vec<Shard<'_>>,
    (lr, max_grad_norm): (f64, f64),
    (seed, step): (u64, usize),
    out: &Path,
    stop_after: Option<usize>,
) -> Result<f32> {
    resumable(train_step_sharded(opt, shards, lr, max_grad_norm, (seed, step)), step, out, stop_after)
}

fn resumable(result: Result<f32>, step: usize, out: &Path, stop_after: Option<usize>) -> Result<f32> {
    let value = result.map_err(|e| {
        e.context(format!(
            "training stopped; the last good checkpoint in {} is intact (lower --lr or check the data)",
            out.join(super::checkpoint::CHECKPOINT).display()
        ))
    })?;
    if stop_after == Some(step + 1) {
        bail!("stopped after {} steps (--stop-after-steps); continue with --resume", step + 1);
    }
    Ok(value)
}

/// A progress bar over `total` steps, hidden when `show` is false (tests) so
/// log lines go to stderr instead.
pub fn progress_bar(total: usize, show: bool) -> ProgressBar {
    let bar = if show { ProgressBar::new(total as u64) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} steps {msg} ETA {eta}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar
}

/// A line above the progress bar, or on stderr when there is no bar.
pub fn log_line(bar: &ProgressBar, line: String) {
    if bar.is_hidden() {
        eprintln!("{line}");
    } else {
        bar.println(line);
    }
}


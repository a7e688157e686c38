//! Multi-head self-attention from packed Q/K/V — scores, scale, mask,
//! softmax, dropout and the product with V — as one CPU op with a
//! hand-written backward.
//!
//! Composed from candle ops this is three head splits (a transpose and a
//! copy each), a transposed copy of K, two batched matmuls, the scale, the
//! mask add, softmax, a dropout multiply and the head merge, each with its
//! own buffer, and in the backward pass a zero-filled buffer and an add per
//! input of each. Here the heads are read in place from the (batch, seq,
//! 3·hidden) output of one Q/K/V product, every (batch, head) stays in the
//! cache from the scores to the context, and the backward pass writes the
//! gradient of the packed input directly. Other devices use the composed ops.

use super::cpu::{f32_slice, fusable, par_blocks, rows_per_block, with_best_simd, with_f32};
use super::erf::expf;
use super::fused::softmax_last_dim;
use super::small_gemm::{gemm, gemm_tn, transpose, Mat};
use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};
use std::sync::OnceLock;

#[derive(Clone, Copy)]
struct Dims {
    seq: usize,
    hidden: usize,
    heads: usize,
    head_dim: usize,
    scale: f32,
}

impl Dims {
    /// Offset of head `head`'s slice of Q (`part` 0), K (1) or V (2) in row `row` of one batch element.
    fn at(&self, part: usize, row: usize, head: usize) -> usize {
        row * 3 * self.hidden + part * self.hidden + head * self.head_dim
    }
}

/// Softmax of one row in place, as `fused::softmax_last_dim` computes it but
/// with libm's exp algorithm written to vectorise (`erf::expf`, within an ulp
/// or two of the platform's `exp`).
#[inline(always)]
fn softmax_row(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for v in row.iter_mut() {
        *v = expf(*v - max);
    }
    let sum: f32 = row.iter().sum();
    row.iter_mut().for_each(|v| *v /= sum);
}

/// One batch element: `qkv` (seq, 3·hidden), `bias` (seq), `mask` and
/// `probs` (heads, seq, seq), `ctx` (seq, hidden).
#[inline(always)]
fn forward_one(d: Dims, qkv: &[f32], bias: &[f32], mask: Option<&[f32]>, probs: &mut [f32], ctx: &mut [f32]) {
    let (s, dh, ld) = (d.seq, d.head_dim, 3 * d.hidden);
    let mut kt = vec![0f32; dh * s];
    let mut dropped = vec![0f32; s * s];
    for head in 0..d.heads {
        let part = |p: usize| Mat { data: &qkv[d.at(p, 0, head)..], stride: ld };
        let probs = &mut probs[head * s * s..][..s * s];
        // scores = Q Kᵀ, then scale, mask bias and softmax row by row.
        transpose(s, dh, part(1), &mut kt);
        gemm(s, dh, s, part(0), Mat { data: &kt, stride: s }, probs, s);
        for row in probs.chunks_mut(s) {
            row.iter_mut().zip(bias).for_each(|(v, b)| *v = *v * d.scale + b);
            softmax_row(row);
        }
        let p = match mask {
            Some(m) => {
                let m = &m[head * s * s..][..s * s];
                dropped.iter_mut().zip(probs.iter()).zip(m).for_each(|((o, p), m)| *o = p * m);
                &dropped[..]
            }
            None => &probs[..],
        };
        // This head's columns of the context: dropout(P) V.
        gemm(s, s, dh, Mat { data: p, stride: s }, part(2), &mut ctx[head * dh..], d.hidden);
    }
}

/// The gradient of one batch element's packed Q/K/V, `dqkv` (seq, 3·hidden),
/// from the context's gradient `dctx` (seq, hidden). Every element of `dqkv`
/// is written once.
#[inline(always)]
fn backward_one(d: Dims, qkv: &[f32], mask: Option<&[f32]>, probs: &[f32], dctx: &[f32], dqkv: &mut [f32]) {
    let (s, dh, ld) = (d.seq, d.head_dim, 3 * d.hidden);
    let mut vt = vec![0f32; dh * s];
    let mut ds = vec![0f32; s * s];
    for head in 0..d.heads {
        let part = |p: usize| Mat { data: &qkv[d.at(p, 0, head)..], stride: ld };
        let p = &probs[head * s * s..][..s * s];
        let m = mask.map(|m| &m[head * s * s..][..s * s]);
        let dout = Mat { data: &dctx[head * dh..], stride: d.hidden };
        // dV = dropout(P)ᵀ dOut
        let pd = match m {
            Some(m) => {
                ds.iter_mut().zip(p).zip(m).for_each(|((o, p), m)| *o = p * m);
                &ds[..]
            }
            None => p,
        };
        gemm_tn(s, s, dh, Mat { data: pd, stride: s }, dout, &mut dqkv[d.at(2, 0, head)..], ld);
        // d dropout(P) = dOut Vᵀ, then back through the mask and the softmax (dS, scaled).
        transpose(s, dh, part(2), &mut vt);
        gemm(s, dh, s, dout, Mat { data: &vt, stride: s }, &mut ds, s);
        for (i, g) in ds.chunks_mut(s).enumerate() {
            let pr = &p[i * s..][..s];
            if let Some(m) = m {
                g.iter_mut().zip(&m[i * s..][..s]).for_each(|(g, m)| *g *= m);
            }
            let dot: f32 = g.iter().zip(pr).map(|(g, p)| g * p).sum();
            g.iter_mut().zip(pr).for_each(|(g, p)| *g = p * (*g - dot) * d.scale);
        }
        // dQ = dS K, dK = dSᵀ Q
        gemm(s, s, dh, Mat { data: &ds, stride: s }, part(1), &mut dqkv[d.at(0, 0, head)..], ld);
        gemm_tn(s, s, dh, Mat { data: &ds, stride: s }, part(0), &mut dqkv[d.at(1, 0, head)..], ld);
    }
}

with_best_simd!(forward_simd, forward_one, (d: Dims, qkv: &[f32], bias: &[f32], mask: Option<&[f32]>, probs: &mut [f32], ctx: &mut [f32]));
with_best_simd!(backward_simd, backward_one, (d: Dims, qkv: &[f32], mask: Option<&[f32]>, probs: &[f32], dctx: &[f32], dqkv: &mut [f32]));

struct AttentionOp {
    heads: usize,
    /// Dropout's factors (0 or 1/(1-p)) for the probabilities, (batch, heads, seq, seq).
    mask: Option<Vec<f32>>,
    /// The softmax output before dropout, kept by the forward pass for the backward one.
    probs: OnceLock<Vec<f32>>,
}

impl AttentionOp {
    fn dims(&self, seq: usize, packed: usize) -> Dims {
        let hidden = packed / 3;
        let head_dim = hidden / self.heads;
        Dims { seq, hidden, heads: self.heads, head_dim, scale: 1.0 / (head_dim as f32).sqrt() }
    }
}

impl CustomOp2 for AttentionOp {
    fn name(&self) -> &'static str {
        "fused-attention"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (qkv, bias) = (f32_slice(s1, l1)?, f32_slice(s2, l2)?);
        let (b, s, packed) = l1.shape().dims3()?;
        if bias.len() != b * s {
            candle_core::bail!("fused attention needs a (batch, 1, 1, seq) bias, got {:?}", l2.dims())
        }
        let d = self.dims(s, packed);
        let mut probs = vec![0f32; b * d.heads * s * s];
        let mut ctx = vec![0f32; b * s * d.hidden];
        // Whole batch elements per thread.
        let per = rows_per_block(b, d.heads * s * s * d.head_dim);
        let (pl, cl) = (per * d.heads * s * s, per * s * d.hidden);
        let blocks: Vec<_> = probs.chunks_mut(pl).zip(ctx.chunks_mut(cl)).enumerate().collect();
        par_blocks(blocks, |(t, (probs, ctx))| {
            for (k, (probs, ctx)) in probs.chunks_mut(d.heads * s * s).zip(ctx.chunks_mut(s * d.hidden)).enumerate() {
                let e = t * per + k;
                let mask = self.mask.as_deref().map(|m| &m[e * d.heads * s * s..][..d.heads * s * s]);
                forward_simd(d, &qkv[e * s * packed..][..s * packed], &bias[e * s..][..s], mask, probs, ctx);
            }
        });
        let _ = self.probs.set(probs);
        Ok((CpuStorage::F32(ctx), Shape::from((b, s, d.hidden))))
    }

    fn bwd(&self, qkv: &Tensor, _bias: &Tensor, _ctx: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (b, s, packed) = qkv.dims3()?;
        let d = self.dims(s, packed);
        let probs = self.probs.get().expect("the forward pass keeps the probabilities");
        let mut dqkv = vec![0f32; b * s * packed];
        let per = rows_per_block(b, d.heads * s * s * d.head_dim);
        with_f32(qkv, |qkv| {
            with_f32(grad, |dctx| {
                par_blocks(dqkv.chunks_mut(per * s * packed).enumerate().collect(), |(t, dqkv)| {
                    for (k, dqkv) in dqkv.chunks_mut(s * packed).enumerate() {
                        let e = t * per + k;
                        let hss = d.heads * s * s;
                        let mask = self.mask.as_deref().map(|m| &m[e * hss..][..hss]);
                        let (x, g) = (&qkv[e * s * packed..][..s * packed], &dctx[e * s * d.hidden..][..s * d.hidden]);
                        backward_simd(d, x, mask, &probs[e * hss..][..hss], g, dqkv);
                    }
                });
                Ok(())
            })
        })?;
        Ok((Some(Tensor::from_vec(dqkv, qkv.shape(), qkv.device())?), None))
    }
}

/// Self-attention of `qkv` (batch, seq, 3·hidden: Q, K and V side by side)
/// over `heads` heads; `bias` (batch, 1, 1, seq) is added to the scaled
/// scores (0 for tokens, a large negative for padding) and `mask` holds
/// dropout's factors for the probabilities. Returns (batch, seq, hidden).
pub fn attention(qkv: &Tensor, bias: &Tensor, heads: usize, mask: Option<Vec<f32>>) -> Result<Tensor> {
    if fusable(qkv) {
        let op = AttentionOp { heads, mask, probs: OnceLock::new() };
        return qkv.contiguous()?.apply_op2(&bias.contiguous()?, op);
    }
    composed(qkv, bias, heads, mask)
}

/// The same with plain tensor ops: the other devices' path and the tests' reference.
pub(crate) fn composed(qkv: &Tensor, bias: &Tensor, heads: usize, mask: Option<Vec<f32>>) -> Result<Tensor> {
    let (b, s, packed) = qkv.dims3()?;
    let (h, dh) = (packed / 3, packed / 3 / heads);
    let split = |part: usize| qkv.narrow(2, part * h, h)?.reshape((b, s, heads, dh))?.transpose(1, 2)?.contiguous();
    let (q, k, v) = (split(0)?, split(1)?, split(2)?);
    let raw = (q.matmul(&k.t()?.contiguous()?)? * (1.0 / (dh as f64).sqrt()))?;
    let mut probs = softmax_last_dim(&raw.broadcast_add(bias)?)?;
    if let Some(m) = mask {
        probs = (&probs * Tensor::from_vec(m, probs.shape(), probs.device())?)?;
    }
    probs.matmul(&v)?.transpose(1, 2)?.contiguous()?.reshape((b, s, h))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::grad_check::{backward_both, max_diff};
    use candle_core::{Device, Var};

    /// Forward values and the packed input's gradient against the composed
    /// ops, with padding in the bias, under a random upstream gradient.
    fn check(batch: usize, seq: usize, hidden: usize, heads: usize, dropout: bool) {
        let dev = Device::Cpu;
        let qkv = Var::randn(0f32, 1.0, (batch, seq, 3 * hidden), &dev).unwrap();
        // The last two positions of every other sequence are padding.
        let bias: Vec<f32> = (0..batch * seq).map(|i| if (i / seq) % 2 == 1 && i % seq >= seq - 2 { -1e4 } else { 0.0 }).collect();
        let bias = Tensor::from_vec(bias, (batch, 1, 1, seq), &dev).unwrap();
        let n = batch * heads * seq * seq;
        let mask = dropout.then(|| (0..n).map(|i| if i % 5 == 2 { 0.0 } else { 1.0 / 0.9 }).collect::<Vec<f32>>());
        let up = Tensor::randn(0f32, 1.0, (batch, seq, hidden), &dev).unwrap();
        let fused = attention(&qkv, &bias, heads, mask.clone()).unwrap();
        let reference = composed(&qkv, &bias, heads, mask).unwrap();
        let d = max_diff(&fused, &reference);
        assert!(d < 1e-5, "forward differs by {d}");
        let (gf, gr) = backward_both(fused, reference, &up);
        let d = max_diff(gf.get(&qkv).unwrap(), gr.get(&qkv).unwrap());
        assert!(d < 1e-4, "gradient differs by {d}");
    }

    #[test]
    fn fused_attention_matches_the_composed_ops_forward_and_backward() {
        check(3, 7, 16, 2, false);
        check(3, 7, 16, 2, true);
        check(2, 5, 12, 3, true);
    }

    #[test]
    fn fused_attention_matches_the_composed_ops_when_split_over_threads() {
        // Large enough that the batch is split between the pool's threads.
        check(8, 32, 32, 2, true);
    }
}

//! Layer norm and softmax as single CPU ops with hand-written backward passes.
//!
//! Written with plain tensor ops, each costs ~10 forward and ~20 backward ops,
//! every one allocating and sweeping memory; candle-nn's fused kernels have no
//! backward. These compute each row in one pass, rows split over candle's
//! threads, vectorised for AVX2 where the CPU has it. Other devices (CUDA) fall back to the composed tensor-op versions.

use super::cpu::{block_len, f32_slice, fusable, par_blocks, sum_block_len, to_vec, with_best_simd, with_f32};
use candle_core::{CpuStorage, CustomOp1, CustomOp3, Layout, Result, Shape, Tensor, D};

struct LayerNormOp {
    eps: f32,
}

/// Σ f(i) over `0..n` in 8 interleaved partial sums, so that the loop
/// vectorises (a single running sum is a chain the compiler must keep).
macro_rules! lane_sum {
    ($n:expr, |$i:ident| $f:expr) => {{
        let n: usize = $n;
        let mut acc = [0f32; 8];
        for c in 0..n / 8 {
            for l in 0..8 {
                let $i = c * 8 + l;
                acc[l] += $f;
            }
        }
        let mut sum = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
        for $i in n / 8 * 8..n {
            sum += $f;
        }
        sum
    }};
}

/// Mean and 1/std of one row.
#[inline(always)]
fn moments(row: &[f32], eps: f32) -> (f32, f32) {
    let n = row.len();
    let mean = lane_sum!(n, |i| row[i]) / n as f32;
    let var = lane_sum!(n, |i| (row[i] - mean) * (row[i] - mean)) / n as f32;
    (mean, 1.0 / (var + eps).sqrt())
}

#[inline(always)]
fn forward_rows_inner(x: &[f32], y: &mut [f32], w: &[f32], b: &[f32], eps: f32) {
    let h = w.len();
    for (xr, yr) in x.chunks_exact(h).zip(y.chunks_exact_mut(h)) {
        let (mean, rstd) = moments(xr, eps);
        for i in 0..h {
            yr[i] = (xr[i] - mean) * rstd * w[i] + b[i];
        }
    }
}

/// dx of a block of rows, and the block's sums of the weight and bias gradients.
#[inline(always)]
fn backward_rows_inner(x: &[f32], g: &[f32], w: &[f32], eps: f32, dx: &mut [f32], dw: &mut [f32], db: &mut [f32]) {
    let h = w.len();
    let mut xhat = vec![0f32; h];
    for ((xr, gr), dxr) in x.chunks_exact(h).zip(g.chunks_exact(h)).zip(dx.chunks_exact_mut(h)) {
        let (mean, rstd) = moments(xr, eps);
        for i in 0..h {
            xhat[i] = (xr[i] - mean) * rstd;
            dw[i] += gr[i] * xhat[i];
            db[i] += gr[i];
        }
        let mg = lane_sum!(h, |i| gr[i] * w[i]) / h as f32;
        let mgx = lane_sum!(h, |i| gr[i] * w[i] * xhat[i]) / h as f32;
        for i in 0..h {
            dxr[i] = rstd * (gr[i] * w[i] - mg - xhat[i] * mgx);
        }
    }
}

with_best_simd!(forward_rows, forward_rows_inner, (x: &[f32], y: &mut [f32], w: &[f32], b: &[f32], eps: f32));
with_best_simd!(backward_rows, backward_rows_inner, (x: &[f32], g: &[f32], w: &[f32], eps: f32, dx: &mut [f32], dw: &mut [f32], db: &mut [f32]));

impl CustomOp3 for LayerNormOp {
    fn name(&self) -> &'static str {
        "fused-layer-norm"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout, s3: &CpuStorage, l3: &Layout) -> Result<(CpuStorage, Shape)> {
        let (x, w, b) = (f32_slice(s1, l1)?, f32_slice(s2, l2)?, f32_slice(s3, l3)?);
        let mut y = vec![0f32; x.len()];
        let bl = block_len(x.len(), w.len());
        par_blocks(y.chunks_mut(bl).zip(x.chunks(bl)).collect(), |(y, x)| forward_rows(x, y, w, b, self.eps));
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    /// Blocks of rows in parallel, each summing its rows' weight and bias
    /// gradients; the partial sums are added in block order, so the result
    /// does not vary with the number of threads.
    fn bwd(&self, x: &Tensor, w: &Tensor, _b: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let wv = to_vec(w)?;
        let h = wv.len();
        let mut dx = vec![0f32; x.elem_count()];
        let bl = sum_block_len(h);
        let partial = with_f32(x, |xv| {
            with_f32(grad, |gv| {
                let blocks: Vec<_> = dx.chunks_mut(bl).zip(xv.chunks(bl)).zip(gv.chunks(bl)).collect();
                Ok(par_blocks(blocks, |((dx, xv), gv)| {
                    let (mut dw, mut db) = (vec![0f32; h], vec![0f32; h]);
                    backward_rows(xv, gv, &wv, self.eps, dx, &mut dw, &mut db);
                    (dw, db)
                }))
            })
        })?;
        let (mut dw, mut db) = (vec![0f32; h], vec![0f32; h]);
        for (pw, pb) in partial {
            dw.iter_mut().zip(pw).for_each(|(s, v)| *s += v);
            db.iter_mut().zip(pb).for_each(|(s, v)| *s += v);
        }
        let dev = x.device();
        Ok((
            Some(Tensor::from_vec(dx, x.shape(), dev)?),
            Some(Tensor::from_vec(dw, w.shape(), dev)?),
            Some(Tensor::from_vec(db, w.shape(), dev)?),
        ))
    }
}

/// Layer normalisation over the last dimension.
pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
    if fusable(x) {
        return x.contiguous()?.apply_op3(weight, bias, LayerNormOp { eps: eps as f32 });
    }
    let mean = x.mean_keepdim(D::Minus1)?;
    let centred = x.broadcast_sub(&mean)?;
    let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
    let normed = centred.broadcast_div(&(var + eps)?.sqrt()?)?;
    normed.broadcast_mul(weight)?.broadcast_add(bias)
}

struct SoftmaxOp;

impl CustomOp1 for SoftmaxOp {
    fn name(&self) -> &'static str {
        "fused-softmax"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(s, l)?;
        let n = *l.dims().last().unwrap_or(&1);
        let mut y = vec![0f32; x.len()];
        for (xr, yr) in x.chunks(n).zip(y.chunks_mut(n)) {
            let max = xr.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0f32;
            for i in 0..n {
                yr[i] = (xr[i] - max).exp();
                sum += yr[i];
            }
            yr.iter_mut().for_each(|v| *v /= sum);
        }
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    /// dx = y ⊙ (dy − Σ dy⊙y), row by row.
    fn bwd(&self, arg: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let (y, g) = (to_vec(res)?, to_vec(grad)?);
        let n = arg.dim(D::Minus1)?;
        let mut dx = vec![0f32; y.len()];
        for ((yr, gr), dr) in y.chunks(n).zip(g.chunks(n)).zip(dx.chunks_mut(n)) {
            let dot: f32 = yr.iter().zip(gr).map(|(a, b)| a * b).sum();
            for i in 0..n {
                dr[i] = yr[i] * (gr[i] - dot);
            }
        }
        Ok(Some(Tensor::from_vec(dx, arg.shape(), arg.device())?))
    }
}

/// Softmax over the last dimension.
pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    if fusable(x) {
        return x.contiguous()?.apply_op1(SoftmaxOp);
    }
    let max = x.max_keepdim(D::Minus1)?;
    let exp = x.broadcast_sub(&max)?.exp()?;
    exp.broadcast_div(&exp.sum_keepdim(D::Minus1)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::grad_check::{backward_both, max_diff, relative_diff};
    use candle_core::{Device, Var};

    /// The composed (reference) versions, always built from plain tensor ops.
    fn ln_ref(x: &Tensor, w: &Tensor, b: &Tensor, eps: f64) -> Tensor {
        let mean = x.mean_keepdim(D::Minus1).unwrap();
        let c = x.broadcast_sub(&mean).unwrap();
        let var = c.sqr().unwrap().mean_keepdim(D::Minus1).unwrap();
        let n = c.broadcast_div(&(var + eps).unwrap().sqrt().unwrap()).unwrap();
        n.broadcast_mul(w).unwrap().broadcast_add(b).unwrap()
    }

    #[test]
    fn fused_layer_norm_matches_the_composed_ops_forward_and_backward() {
        // The second shape is large enough to be split between threads.
        for (b, s, h) in [(3, 5, 16), (16, 64, 32)] {
            check_layer_norm(b, s, h);
        }
    }

    fn check_layer_norm(batch: usize, seq: usize, h: usize) {
        let dev = Device::Cpu;
        let x = Var::randn(0f32, 2.0, (batch, seq, h), &dev).unwrap();
        let w = Var::randn(1f32, 0.3, h, &dev).unwrap();
        let b = Var::randn(0f32, 0.3, h, &dev).unwrap();
        let up = Tensor::randn(0f32, 1.0, (batch, seq, h), &dev).unwrap(); // a random upstream gradient
        let fused = layer_norm(&x, &w, &b, 1e-12).unwrap();
        let reference = ln_ref(&x, &w, &b, 1e-12);
        assert!(max_diff(&fused, &reference) < 1e-5);
        let (gf, gr) = backward_both(fused, reference, &up);
        for v in [&x, &w, &b] {
            let d = relative_diff(gf.get(v).unwrap(), gr.get(v).unwrap());
            assert!(d < 1e-5, "gradient differs by {d} of its scale");
        }
    }

    #[test]
    fn fused_softmax_matches_the_composed_ops_forward_and_backward() {
        let dev = Device::Cpu;
        let x = Var::randn(0f32, 3.0, (2, 3, 7), &dev).unwrap();
        let up = Tensor::randn(0f32, 1.0, (2, 3, 7), &dev).unwrap();
        let fused = softmax_last_dim(&x).unwrap();
        let max = x.max_keepdim(D::Minus1).unwrap();
        let e = x.broadcast_sub(&max).unwrap().exp().unwrap();
        let reference = e.broadcast_div(&e.sum_keepdim(D::Minus1).unwrap()).unwrap();
        assert!(max_diff(&fused, &reference) < 1e-6);
        let (gf, gr) = backward_both(fused, reference, &up);
        assert!(max_diff(gf.get(&x).unwrap(), gr.get(&x).unwrap()) < 1e-5);
    }
}

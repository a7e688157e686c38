//! Layer norm and softmax as single CPU ops with hand-written backward passes.
//!
//! Written with plain tensor ops, each costs ~10 forward and ~20 backward ops,
//! every one allocating and sweeping memory; candle-nn's fused kernels have no
//! backward. These compute each row in one pass. Other devices (CUDA) fall
//! back to the composed tensor-op versions.

use candle_core::{CpuStorage, CustomOp1, CustomOp3, DType, Layout, Result, Shape, Tensor, D};

fn f32_slice<'a>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [f32]> {
    let data = match s {
        CpuStorage::F32(v) => v.as_slice(),
        _ => candle_core::bail!("fused ops support f32 only"),
    };
    match l.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("fused ops need contiguous inputs"),
    }
}

fn to_vec(t: &Tensor) -> Result<Vec<f32>> {
    t.contiguous()?.flatten_all()?.to_vec1::<f32>()
}

struct LayerNormOp {
    eps: f32,
}

/// Mean and 1/std of one row.
fn moments(row: &[f32], eps: f32) -> (f32, f32) {
    let n = row.len() as f32;
    let mean = row.iter().sum::<f32>() / n;
    let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
    (mean, 1.0 / (var + eps).sqrt())
}

impl CustomOp3 for LayerNormOp {
    fn name(&self) -> &'static str {
        "fused-layer-norm"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout, s3: &CpuStorage, l3: &Layout) -> Result<(CpuStorage, Shape)> {
        let (x, w, b) = (f32_slice(s1, l1)?, f32_slice(s2, l2)?, f32_slice(s3, l3)?);
        let h = w.len();
        let mut y = vec![0f32; x.len()];
        for (xr, yr) in x.chunks(h).zip(y.chunks_mut(h)) {
            let (mean, rstd) = moments(xr, self.eps);
            for i in 0..h {
                yr[i] = (xr[i] - mean) * rstd * w[i] + b[i];
            }
        }
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, _b: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (xv, wv, gv) = (to_vec(x)?, to_vec(w)?, to_vec(grad)?);
        let h = wv.len();
        let mut dx = vec![0f32; xv.len()];
        let (mut dw, mut db) = (vec![0f32; h], vec![0f32; h]);
        let mut xhat = vec![0f32; h];
        for ((xr, gr), dxr) in xv.chunks(h).zip(gv.chunks(h)).zip(dx.chunks_mut(h)) {
            let (mean, rstd) = moments(xr, self.eps);
            let (mut sum_g, mut sum_gx) = (0f32, 0f32);
            for i in 0..h {
                xhat[i] = (xr[i] - mean) * rstd;
                let g = gr[i] * wv[i];
                sum_g += g;
                sum_gx += g * xhat[i];
                dw[i] += gr[i] * xhat[i];
                db[i] += gr[i];
            }
            let (mg, mgx) = (sum_g / h as f32, sum_gx / h as f32);
            for i in 0..h {
                dxr[i] = rstd * (gr[i] * wv[i] - mg - xhat[i] * mgx);
            }
        }
        let dev = x.device();
        Ok((
            Some(Tensor::from_vec(dx, x.shape(), dev)?),
            Some(Tensor::from_vec(dw, w.shape(), dev)?),
            Some(Tensor::from_vec(db, w.shape(), dev)?),
        ))
    }
}

fn fusable(x: &Tensor) -> bool {
    x.device().is_cpu() && x.dtype() == DType::F32
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
    use candle_core::{Device, Var};

    /// The composed (reference) versions, always built from plain tensor ops.
    fn ln_ref(x: &Tensor, w: &Tensor, b: &Tensor, eps: f64) -> Tensor {
        let mean = x.mean_keepdim(D::Minus1).unwrap();
        let c = x.broadcast_sub(&mean).unwrap();
        let var = c.sqr().unwrap().mean_keepdim(D::Minus1).unwrap();
        let n = c.broadcast_div(&(var + eps).unwrap().sqrt().unwrap()).unwrap();
        n.broadcast_mul(w).unwrap().broadcast_add(b).unwrap()
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap()
    }

    #[test]
    fn fused_layer_norm_matches_the_composed_ops_forward_and_backward() {
        let dev = Device::Cpu;
        let x = Var::randn(0f32, 2.0, (3, 5, 16), &dev).unwrap();
        let w = Var::randn(1f32, 0.3, 16, &dev).unwrap();
        let b = Var::randn(0f32, 0.3, 16, &dev).unwrap();
        let up = Tensor::randn(0f32, 1.0, (3, 5, 16), &dev).unwrap(); // a random upstream gradient
        let fused = layer_norm(&x, &w, &b, 1e-12).unwrap();
        let reference = ln_ref(&x, &w, &b, 1e-12);
        assert!(max_diff(&fused, &reference) < 1e-5);
        let gf = (fused * &up).unwrap().sum_all().unwrap().backward().unwrap();
        let gr = (reference * &up).unwrap().sum_all().unwrap().backward().unwrap();
        for v in [&x, &w, &b] {
            let d = max_diff(gf.get(v).unwrap(), gr.get(v).unwrap());
            assert!(d < 1e-4, "gradient differs by {d}");
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
        let gf = (fused * &up).unwrap().sum_all().unwrap().backward().unwrap();
        let gr = (reference * &up).unwrap().sum_all().unwrap().backward().unwrap();
        assert!(max_diff(gf.get(&x).unwrap(), gr.get(&x).unwrap()) < 1e-5);
    }
}

//! `y = act(x Wᵀ + b) ⊙ dropout` as one CPU op with a hand-written backward.
//!
//! Composed from candle ops this is a reshape, a weight transpose, a matmul, a
//! broadcast bias add (whose backward sums through candle's broadcast
//! machinery), the activation (the exact GELU's backward alone is ~10 ops) and
//! a dropout multiply, and candle's backward adds a zero-filled buffer and an
//! add per input of each. Fused: one GEMM and one pass forward; one pass (dz
//! and the bias's column sums together) and two GEMMs backward. Other devices
//! (CUDA) use the composed ops.

use super::cpu::{block_len, f32_slice, fusable, matmul, par_blocks, sum_block_len, with_best_simd, with_f32};
use super::erf::{erf_near, expf, is_near};
use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use std::f32::consts::FRAC_1_SQRT_2;
use std::sync::OnceLock;

/// The activations the op applies. `bert::HiddenAct` maps onto these: this
/// file does not import bert.rs, which imports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// The exact (erf) GELU.
    Gelu,
    /// GELU's tanh approximation.
    GeluTanh,
    Relu,
}

/// 1/√(2π), the standard normal density at 0.
const INV_SQRT_2PI: f32 = 0.398_942_3;
/// √(2/π), of the tanh approximation of GELU.
const SQRT_2_OVER_PI: f32 = 0.797_884_6;

/// The exact GELU and its derivative at `z`, given erf(z/√2). The value is
/// computed as candle's `gelu_erf` computes it.
#[inline(always)]
fn gelu_from_erf(z: f32, erf: f32) -> (f32, f32) {
    let cdf = (erf + 1.) * 0.5;
    (cdf * z, cdf + z * INV_SQRT_2PI * expf(-0.5 * z * z))
}

/// The exact GELU and its derivative, with libm's erf.
fn gelu_and_slope(z: f32) -> (f32, f32) {
    gelu_from_erf(z, candle_core::cpu::erf::erf_f32(z * FRAC_1_SQRT_2))
}

/// The exact GELU over `values` (its derivative into `slope`), 64 at a time:
/// erf from the vectorised `erf_near` for all, then libm's for those beyond
/// its range (|z| ≥ 1.77, a minority of a trained model's pre-activations).
/// The values are candle's `gelu_erf` bit for bit.
#[inline(always)]
fn gelu_block(values: &mut [f32], mut slope: Option<&mut [f32]>) {
    const N: usize = 64;
    for start in (0..values.len()).step_by(N) {
        let n = N.min(values.len() - start);
        let mut z = [0f32; N];
        z[..n].copy_from_slice(&values[start..start + n]);
        let v = &mut values[start..start + n];
        let mut far = false;
        match slope.as_deref_mut() {
            Some(s) => {
                let s = &mut s[start..start + n];
                for i in 0..n {
                    let x = z[i] * FRAC_1_SQRT_2;
                    far |= !is_near(x);
                    (v[i], s[i]) = gelu_from_erf(z[i], erf_near(x));
                }
            }
            None => {
                for i in 0..n {
                    let x = z[i] * FRAC_1_SQRT_2;
                    far |= !is_near(x);
                    v[i] = gelu_from_erf(z[i], erf_near(x)).0;
                }
            }
        }
        if far {
            for i in (0..n).filter(|&i| !is_near(z[i] * FRAC_1_SQRT_2)) {
                let (y, d) = gelu_and_slope(z[i]);
                v[i] = y;
                if let Some(s) = slope.as_deref_mut() {
                    s[start + i] = d;
                }
            }
        }
    }
}

/// The tanh approximation of GELU, as candle's `gelu`, and its derivative.
#[inline(always)]
fn gelu_tanh_and_slope(z: f32) -> (f32, f32) {
    let t = (SQRT_2_OVER_PI * z * (1.0 + 0.044715 * z * z)).tanh();
    let slope = 0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * SQRT_2_OVER_PI * (1.0 + 3.0 * 0.044715 * z * z);
    (0.5 * z * (1.0 + t), slope)
}

/// ReLU and its derivative; candle's relu backward counts z = 0 as positive.
#[inline(always)]
fn relu_and_slope(z: f32) -> (f32, f32) {
    (z.max(0.0), if z >= 0.0 { 1.0 } else { 0.0 })
}

fn act_and_slope(act: Activation, z: f32) -> (f32, f32) {
    match act {
        Activation::Gelu => gelu_and_slope(z),
        Activation::GeluTanh => gelu_tanh_and_slope(z),
        Activation::Relu => relu_and_slope(z),
    }
}

/// `$f` over every value, keeping its derivative in `$slope` when there is
/// one. A macro with plain index loops: with a function taking `impl Fn`, or
/// with iterator adapters, the loop body stayed a call compiled for baseline
/// x86-64 and was not vectorised.
macro_rules! activate {
    ($values:expr, $slope:expr, $f:ident) => {{
        let values: &mut [f32] = $values;
        match $slope {
            Some(s) => {
                let s = &mut s[..values.len()];
                for i in 0..values.len() {
                    (values[i], s[i]) = $f(values[i]);
                }
            }
            None => {
                for i in 0..values.len() {
                    values[i] = $f(values[i]).0;
                }
            }
        }
    }};
}

/// act(z + b) ⊙ mask over a block of whole output rows; `mask` and `slope`
/// are the block's parts of them.
#[inline(always)]
fn finish_rows_inner(act: Option<Activation>, b: &[f32], rows: &mut [f32], mask: Option<&[f32]>, mut slope: Option<&mut [f32]>) {
    for row in rows.chunks_mut(b.len()) {
        for i in 0..row.len() {
            row[i] += b[i];
        }
    }
    match act {
        Some(Activation::Gelu) => gelu_block(rows, slope.as_deref_mut()),
        Some(Activation::GeluTanh) => activate!(rows, slope.as_deref_mut(), gelu_tanh_and_slope),
        Some(Activation::Relu) => activate!(rows, slope.as_deref_mut(), relu_and_slope),
        None => {
            if let (Some(s), Some(m)) = (slope.as_deref_mut(), mask) {
                s.copy_from_slice(m);
            }
        }
    }
    if let Some(m) = mask {
        for i in 0..rows.len() {
            rows[i] *= m[i];
        }
        if let (Some(s), Some(_)) = (slope, act) {
            for i in 0..s.len() {
                s[i] *= m[i];
            }
        }
    }
}

with_best_simd!(finish_rows, finish_rows_inner, (act: Option<Activation>, b: &[f32], rows: &mut [f32], mask: Option<&[f32]>, slope: Option<&mut [f32]>));

struct LinearOp {
    act: Option<Activation>,
    /// Dropout's per-element factor (0 or 1/(1-p)), drawn by the caller.
    mask: Option<Vec<f32>>,
    /// Whether to keep dy/dz for a backward pass (false in evaluation).
    train: bool,
    /// dy/dz per element, kept by the forward pass; unset when y = z.
    slope: OnceLock<Vec<f32>>,
}

impl LinearOp {
    fn has_slope(&self) -> bool {
        self.act.is_some() || self.mask.is_some()
    }

    /// The part of the dropout mask for the values from `start`, `len` long.
    fn mask_part(&self, start: usize, len: usize) -> Option<&[f32]> {
        self.mask.as_deref().map(|m| &m[start..start + len])
    }
}

impl CustomOp3 for LinearOp {
    fn name(&self) -> &'static str {
        "fused-linear"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout, s3: &CpuStorage, l3: &Layout) -> Result<(CpuStorage, Shape)> {
        let ((out_dim, in_dim), b) = (l2.shape().dims2()?, f32_slice(s3, l3)?);
        let (Some((x_off, _)), Some((w_off, _))) = (l1.contiguous_offsets(), l2.contiguous_offsets()) else {
            candle_core::bail!("fused linear needs contiguous inputs")
        };
        let rows = l1.shape().elem_count() / in_dim;
        let mut y = matmul((s1, x_off), (s2, w_off), (rows, in_dim, out_dim), true)?;
        let bl = block_len(y.len(), out_dim);
        if self.has_slope() && self.train {
            let mut slope = vec![0f32; y.len()];
            let blocks: Vec<_> = y.chunks_mut(bl).zip(slope.chunks_mut(bl)).enumerate().collect();
            par_blocks(blocks, |(i, (ys, ss))| finish_rows(self.act, b, ys, self.mask_part(i * bl, ys.len()), Some(ss)));
            let _ = self.slope.set(slope);
        } else {
            par_blocks(y.chunks_mut(bl).enumerate().collect(), |(i, ys)| finish_rows(self.act, b, ys, self.mask_part(i * bl, ys.len()), None));
        }
        let mut dims = l1.dims().to_vec();
        *dims.last_mut().unwrap() = out_dim;
        Ok((CpuStorage::F32(y), Shape::from(dims)))
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, b: &Tensor, _y: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (out_dim, in_dim) = w.dims2()?;
        let rows = x.elem_count() / in_dim;
        let x2 = x.reshape((rows, in_dim))?;
        let recomputed;
        let slope = match (self.has_slope(), self.slope.get()) {
            (false, _) => None,
            (true, Some(s)) => Some(s.as_slice()),
            // An evaluation forward kept no slope: recompute it (rare, so with composed ops).
            (true, None) => {
                recomputed = super::cpu::to_vec(&composed_slope(&x2, w, b, self.act, self.mask.as_deref())?)?;
                Some(recomputed.as_slice())
            }
        };
        let (dz, db) = with_f32(grad, |g| Ok(dz_and_column_sums(g, slope, out_dim)))?;
        let dz = match dz {
            Some(dz) => Tensor::from_vec(dz, (rows, out_dim), x.device())?,
            None => grad.reshape((rows, out_dim))?,
        };
        let dx = dz.matmul(w)?.reshape(x.shape())?;
        let dw = dz.t()?.matmul(&x2)?;
        Ok((Some(dx), Some(dw), Some(Tensor::from_vec(db, out_dim, x.device())?)))
    }
}

/// dz = g ⊙ slope (None: dz is g itself) and the column sums of dz (the
/// bias gradient), in one pass. Blocks of rows are summed in parallel and
/// the partial sums added in block order: the result does not vary between
/// runs or with the number of threads.
fn dz_and_column_sums(g: &[f32], slope: Option<&[f32]>, n: usize) -> (Option<Vec<f32>>, Vec<f32>) {
    let column_sums = |rows: &[f32]| {
        let mut sum = vec![0f32; n];
        for row in rows.chunks(n) {
            sum.iter_mut().zip(row).for_each(|(s, v)| *s += v);
        }
        sum
    };
    let bl = sum_block_len(n);
    let (dz, partial) = match slope {
        Some(s) => {
            let mut dz = vec![0f32; g.len()];
            let blocks: Vec<_> = dz.chunks_mut(bl).zip(g.chunks(bl)).zip(s.chunks(bl)).collect();
            let partial = par_blocks(blocks, |((dz, g), s)| {
                dz.iter_mut().zip(g).zip(s).for_each(|((d, g), s)| *d = g * s);
                column_sums(dz)
            });
            (Some(dz), partial)
        }
        None => (None, par_blocks(g.chunks(bl).collect(), column_sums)),
    };
    let mut db = vec![0f32; n];
    for p in partial {
        db.iter_mut().zip(p).for_each(|(s, v)| *s += v);
    }
    (dz, db)
}

/// dy/dz of the composed version, for a backward pass after an evaluation forward.
fn composed_slope(x2: &Tensor, w: &Tensor, b: &Tensor, act: Option<Activation>, mask: Option<&[f32]>) -> Result<Tensor> {
    let z = x2.matmul(&w.t()?)?.broadcast_add(b)?;
    let slope = match act {
        Some(act) => {
            let v: Vec<f32> = super::cpu::to_vec(&z)?.into_iter().map(|z| act_and_slope(act, z).1).collect();
            Tensor::from_vec(v, z.shape(), z.device())?
        }
        None => z.ones_like()?,
    };
    match mask {
        Some(m) => slope * Tensor::from_slice(m, z.shape(), z.device())?,
        None => Ok(slope),
    }
}

/// `act(x Wᵀ + b) ⊙ mask` over the last dimension of `x`; `mask` holds
/// dropout's factors (0 or 1/(1-p)) for every output element.
pub fn linear(x: &Tensor, w: &Tensor, b: &Tensor, act: Option<Activation>, mask: Option<Vec<f32>>, train: bool) -> Result<Tensor> {
    if fusable(x) {
        let op = LinearOp { act, mask, train, slope: OnceLock::new() };
        return x.contiguous()?.apply_op3(&w.contiguous()?, b, op);
    }
    composed(x, w, b, act, mask)
}

/// The same with plain tensor ops: the other devices' path and the tests' reference.
pub(crate) fn composed(x: &Tensor, w: &Tensor, b: &Tensor, act: Option<Activation>, mask: Option<Vec<f32>>) -> Result<Tensor> {
    let dims = x.dims().to_vec();
    let in_dim = *dims.last().unwrap();
    let rows: usize = dims[..dims.len() - 1].iter().product();
    let mut y = x.reshape((rows, in_dim))?.matmul(&w.t()?)?.broadcast_add(b)?;
    y = match act {
        Some(Activation::Gelu) => y.gelu_erf()?,
        Some(Activation::GeluTanh) => y.gelu()?,
        Some(Activation::Relu) => y.relu()?,
        None => y,
    };
    if let Some(m) = mask {
        y = (&y * Tensor::from_vec(m, y.shape(), y.device())?)?;
    }
    let mut out_dims = dims;
    *out_dims.last_mut().unwrap() = w.dim(0)?;
    y.reshape(out_dims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::grad_check::{backward_both, max_diff, relative_diff};
    use candle_core::{Device, Var};

    /// Forward values and the gradients of x, W and b against the composed
    /// ops, for a (batch, seq, in) input, under a random upstream gradient.
    fn check(act: Option<Activation>, dropout: bool, (batch, seq, in_dim, out_dim): (usize, usize, usize, usize)) {
        let dev = Device::Cpu;
        let x = Var::randn(0f32, 1.5, (batch, seq, in_dim), &dev).unwrap();
        let w = Var::randn(0f32, 0.3, (out_dim, in_dim), &dev).unwrap();
        let b = Var::randn(0f32, 0.3, out_dim, &dev).unwrap();
        let n = batch * seq * out_dim;
        let mask = dropout.then(|| (0..n).map(|i| if i % 7 == 3 { 0.0 } else { 1.0 / 0.9 }).collect::<Vec<f32>>());
        let up = Tensor::randn(0f32, 1.0, (batch, seq, out_dim), &dev).unwrap();
        let fused = linear(&x, &w, &b, act, mask.clone(), true).unwrap();
        let reference = composed(&x, &w, &b, act, mask).unwrap();
        assert_eq!(fused.dims(), &[batch, seq, out_dim]);
        let d = max_diff(&fused, &reference);
        assert!(d < 1e-5, "{act:?} dropout {dropout}: forward differs by {d}");
        let (gf, gr) = backward_both(fused, reference, &up);
        for (name, v) in [("x", &x), ("W", &w), ("b", &b)] {
            let d = relative_diff(gf.get(v).unwrap(), gr.get(v).unwrap());
            assert!(d < 1e-5, "{act:?} dropout {dropout}: gradient of {name} differs by {d} of its scale");
        }
    }

    #[test]
    fn fused_linear_matches_the_composed_ops_for_every_activation_with_and_without_dropout() {
        for act in [None, Some(Activation::Gelu), Some(Activation::GeluTanh), Some(Activation::Relu)] {
            for dropout in [false, true] {
                check(act, dropout, (3, 5, 16, 24));
                // Large enough to be split between threads.
                check(act, dropout, (8, 64, 32, 96));
            }
        }
    }

    #[test]
    fn the_exact_gelu_forward_is_candles_bit_for_bit_in_and_beyond_the_vectorised_range() {
        // |z| up to 8: erf both from `erf_near` and from libm.
        let z: Vec<f32> = (-2000..2000).map(|i| i as f32 * 0.004 + 0.0013).collect();
        let (mut ours, mut slope) = (z.clone(), vec![0f32; z.len()]);
        finish_rows(Some(Activation::Gelu), &[0.0], &mut ours, None, Some(&mut slope));
        let candle: Vec<f32> = Tensor::new(z.as_slice(), &Device::Cpu).unwrap().gelu_erf().unwrap().to_vec1().unwrap();
        for ((z, ours), candle) in z.iter().zip(&ours).zip(&candle) {
            assert_eq!(ours.to_bits(), candle.to_bits(), "gelu({z})");
        }
        // The derivative, against a central difference of the GELU in f64.
        for (z, d) in z.iter().zip(&slope).step_by(37) {
            let h = 1e-2f64;
            let g = |z: f64| 0.5 * z * (1.0 + candle_core::cpu::erf::erf_f64(z / 2f64.sqrt()));
            let numeric = (g(*z as f64 + h) - g(*z as f64 - h)) / (2.0 * h);
            assert!((*d as f64 - numeric).abs() < 1e-4, "gelu'({z}) = {d}, not {numeric}");
        }
    }

    #[test]
    fn a_backward_pass_after_an_evaluation_forward_recomputes_the_slope() {
        let dev = Device::Cpu;
        let x = Var::randn(0f32, 1.0, (4, 8), &dev).unwrap();
        let w = Var::randn(0f32, 0.3, (6, 8), &dev).unwrap();
        let b = Var::zeros(6, candle_core::DType::F32, &dev).unwrap();
        let act = Some(Activation::Gelu);
        let g_eval = linear(&x, &w, &b, act, None, false).unwrap().sum_all().unwrap().backward().unwrap();
        let g_train = linear(&x, &w, &b, act, None, true).unwrap().sum_all().unwrap().backward().unwrap();
        assert!(max_diff(g_eval.get(&x).unwrap(), g_train.get(&x).unwrap()) < 1e-6);
    }
}

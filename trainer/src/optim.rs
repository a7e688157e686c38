//! AdamW with decoupled weight decay (Loshchilov & Hutter), written out because
//! resuming a run needs the moment estimates, which candle-nn's AdamW keeps
//! private. Biases and LayerNorm weights get no decay, as in BERT's recipe.
//!
//! On the CPU the moments are plain buffers and each parameter's update is
//! one pass over its weights, gradient and moments (`update_in_place`); as
//! tensor ops it was ~12 ops per parameter, each allocating and sweeping
//! memory. Other devices (CUDA) keep the tensor ops. Both compute the same
//! f32 operations in the same order.

use anyhow::{Context, Result};
use candle_core::{backprop::GradStore, CpuStorage, DType, InplaceOp2, Layout, Tensor, Var};
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;

pub struct AdamW {
    params: Vec<Param>,
    pub step: usize,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
}

struct Param {
    name: String,
    var: Var,
    moments: Moments,
    decay: bool,
}

enum Moments {
    /// f32 weights on the CPU: updated in place, with the weights, in one pass.
    Host { m: Vec<f32>, v: Vec<f32> },
    /// Elsewhere: updated with tensor ops.
    Device { m: Var, v: Var },
}

/// The constants of one update, as the f32 factors the tensor ops multiply by.
#[derive(Clone, Copy)]
struct Factors {
    grad_scale: Option<f32>,
    beta1: f32,
    one_minus_beta1: f32,
    beta2: f32,
    one_minus_beta2: f32,
    inv_bc1: f32,
    inv_bc2: f32,
    eps: f32,
    decay: Option<f32>,
    lr: f32,
}

impl Factors {
    /// One element: the tensor-op version's operations, in its order.
    #[inline(always)]
    fn apply(&self, w: &mut f32, m: &mut f32, v: &mut f32, g: f32) {
        let g = self.grad_scale.map_or(g, |s| g * s);
        *m = *m * self.beta1 + g * self.one_minus_beta1;
        *v = *v * self.beta2 + (g * g) * self.one_minus_beta2;
        let update = (*m * self.inv_bc1) / ((*v * self.inv_bc2).sqrt() + self.eps);
        if let Some(d) = self.decay {
            *w *= d;
        }
        *w -= update * self.lr;
    }
}

/// The in-place update of one weight tensor from its gradient; the moments
/// are lent in, as candle lends only the weights' storage to the op.
struct UpdateInPlace<'a> {
    m: RefCell<&'a mut [f32]>,
    v: RefCell<&'a mut [f32]>,
    factors: Factors,
}

impl InplaceOp2 for UpdateInPlace<'_> {
    fn name(&self) -> &'static str {
        "adamw-update"
    }

    fn cpu_fwd(&self, w: &mut CpuStorage, wl: &Layout, g: &CpuStorage, gl: &Layout) -> candle_core::Result<()> {
        let (CpuStorage::F32(w), CpuStorage::F32(g)) = (w, g) else { candle_core::bail!("adamw-update: f32 only") };
        let (Some((w0, w1)), Some((g0, g1))) = (wl.contiguous_offsets(), gl.contiguous_offsets()) else {
            candle_core::bail!("adamw-update: contiguous tensors only")
        };
        let (w, g) = (&mut w[w0..w1], &g[g0..g1]);
        let (mut m, mut v) = (self.m.borrow_mut(), self.v.borrow_mut());
        let f = self.factors;
        let bl = crate::model::cpu::block_len(w.len(), 1);
        let blocks: Vec<_> = w.chunks_mut(bl).zip(m.chunks_mut(bl)).zip(v.chunks_mut(bl)).zip(g.chunks(bl)).collect();
        crate::model::cpu::par_blocks(blocks, |(((w, m), v), g)| {
            for (((w, m), v), g) in w.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()).zip(g) {
                f.apply(w, m, v, *g);
            }
        });
        Ok(())
    }
}

impl AdamW {
    /// `vars` by name; the order is made stable by sorting.
    pub fn new(vars: HashMap<String, Var>, weight_decay: f64) -> Result<Self> {
        let mut named: Vec<(String, Var)> = vars.into_iter().collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let params = named
            .into_iter()
            .map(|(name, var)| {
                let decay = !(name.ends_with(".bias") || name.contains("LayerNorm"));
                let moments = if var.device().is_cpu() && var.dtype() == DType::F32 {
                    Moments::Host { m: vec![0f32; var.elem_count()], v: vec![0f32; var.elem_count()] }
                } else {
                    let zeros = || Var::zeros(var.shape(), var.dtype(), var.device());
                    Moments::Device { m: zeros()?, v: zeros()? }
                };
                Ok(Param { name, var, moments, decay })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { params, step: 0, beta1: 0.9, beta2: 0.999, eps: 1e-6, weight_decay })
    }

    /// Global L2 norm of all gradients (for clipping and logging).
    pub fn grad_norm(&self, grads: &GradStore) -> Result<f64> {
        let mut total = 0f64;
        for p in &self.params {
            if let Some(g) = grads.get(p.var.as_tensor()) {
                total += match p.moments {
                    Moments::Host { .. } => crate::model::cpu::with_f32(g, |g| Ok(g.iter().map(|g| g * g).sum::<f32>()))?,
                    Moments::Device { .. } => g.sqr()?.sum_all()?.to_scalar::<f32>()?,
                } as f64;
            }
        }
        Ok(total.sqrt())
    }

    /// The gradients of several shards of one batch, summed per parameter
    /// (in shard order, so the sum does not vary between runs).
    pub fn sum_grads(&self, stores: Vec<GradStore>) -> Result<GradStore> {
        let mut stores = stores.into_iter();
        let mut total = stores.next().context("no gradients to sum")?;
        for store in stores {
            for p in &self.params {
                let Some(g) = store.get(p.var.as_tensor()) else { continue };
                let sum = match total.get(p.var.as_tensor()) {
                    Some(t) => (t + g)?,
                    None => g.clone(),
                };
                total.insert(p.var.as_tensor(), sum);
            }
        }
        Ok(total)
    }

    /// One update with learning rate `lr`; gradients are scaled by `grad_scale`
    /// first (gradient clipping).
    pub fn step(&mut self, grads: &GradStore, lr: f64, grad_scale: f64) -> Result<()> {
        self.step += 1;
        let t = self.step as i32;
        let bc1 = 1.0 - self.beta1.powi(t);
        let bc2 = 1.0 - self.beta2.powi(t);
        for p in &mut self.params {
            let Some(g) = grads.get(p.var.as_tensor()) else { continue };
            let decay = (p.decay && self.weight_decay > 0.0).then_some(1.0 - lr * self.weight_decay);
            match &mut p.moments {
                Moments::Host { m, v } => {
                    let factors = Factors {
                        grad_scale: (grad_scale != 1.0).then_some(grad_scale as f32),
                        beta1: self.beta1 as f32,
                        one_minus_beta1: (1.0 - self.beta1) as f32,
                        beta2: self.beta2 as f32,
                        one_minus_beta2: (1.0 - self.beta2) as f32,
                        inv_bc1: (1.0 / bc1) as f32,
                        inv_bc2: (1.0 / bc2) as f32,
                        eps: self.eps as f32,
                        decay: decay.map(|d| d as f32),
                        lr: lr as f32,
                    };
                    let op = UpdateInPlace { m: RefCell::new(m), v: RefCell::new(v), factors };
                    p.var.inplace_op2(&g.contiguous()?, &op)?;
                }
                Moments::Device { m: mv, v: vv } => {
                    let g = if grad_scale != 1.0 { (g * grad_scale)? } else { g.clone() };
                    let m = ((mv.as_tensor() * self.beta1)? + (&g * (1.0 - self.beta1))?)?;
                    let v = ((vv.as_tensor() * self.beta2)? + (g.sqr()? * (1.0 - self.beta2))?)?;
                    let update = ((&m / bc1)? / ((&v / bc2)?.sqrt()? + self.eps)?)?;
                    let mut w = p.var.as_tensor().clone();
                    if let Some(d) = decay {
                        w = (&w * d)?;
                    }
                    p.var.set(&(w - (update * lr)?)?)?;
                    mv.set(&m)?;
                    vv.set(&v)?;
                }
            }
        }
        Ok(())
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let mut tensors: HashMap<String, Tensor> = HashMap::new();
        for p in &self.params {
            let (m, v) = match &p.moments {
                Moments::Host { m, v } => {
                    let dev = p.var.device();
                    (Tensor::from_slice(m, p.var.shape(), dev)?, Tensor::from_slice(v, p.var.shape(), dev)?)
                }
                Moments::Device { m, v } => (m.as_tensor().clone(), v.as_tensor().clone()),
            };
            tensors.insert(format!("m.{}", p.name), m);
            tensors.insert(format!("v.{}", p.name), v);
        }
        bundle::atomic::write_with(path, |tmp| {
            candle_core::safetensors::save(&tensors, tmp).with_context(|| format!("cannot write {}", tmp.display()))
        })
    }

    pub fn load(&mut self, path: &Path, step: usize) -> Result<()> {
        let tensors = candle_core::safetensors::load(path, &candle_core::Device::Cpu)
            .with_context(|| format!("{}: cannot read optimizer state", path.display()))?;
        for p in &mut self.params {
            let var = &p.var;
            let get = |prefix: &str| -> Result<(String, &Tensor)> {
                let key = format!("{prefix}.{}", p.name);
                let t = tensors.get(&key).with_context(|| format!("{}: missing tensor {key}", path.display()))?;
                if t.shape() != var.shape() {
                    anyhow::bail!("{}: tensor {key} has the wrong shape", path.display());
                }
                Ok((key, t))
            };
            let ((mk, mt), (vk, vt)) = (get("m")?, get("v")?);
            match &mut p.moments {
                Moments::Host { m, v } => {
                    for (key, t, slot) in [(&mk, mt, m), (&vk, vt, v)] {
                        *slot = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1()
                            .with_context(|| format!("{}: tensor {key} is unreadable", path.display()))?;
                    }
                }
                Moments::Device { m, v } => {
                    for (key, t, slot) in [(&mk, mt, &*m), (&vk, vt, &*v)] {
                        slot.set(&t.to_device(var.device())?)
                            .with_context(|| format!("{}: tensor {key} has the wrong shape", path.display()))?;
                    }
                }
            }
        }
        self.step = step;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Two parameters (one decayed, one not) and three gradients, the same on every call.
    fn setup(seed: f64) -> (HashMap<String, Var>, Vec<Tensor>) {
        let dev = Device::Cpu;
        let wave = |n: usize, f: f64| Tensor::from_vec((0..n).map(|i| ((i as f64 * f).sin() * 2.0) as f32).collect(), n, &dev).unwrap();
        let w = Var::from_tensor(&wave(64 * 300, 0.37).reshape((64, 300)).unwrap()).unwrap();
        let b = Var::from_tensor(&wave(7, 1.3)).unwrap();
        let grads = (0..3).map(|i| wave(64 * 300, seed + 0.11 * i as f64).reshape((64, 300)).unwrap()).collect();
        (HashMap::from([("l.weight".to_string(), w), ("l.bias".to_string(), b)]), grads)
    }

    fn run(host: bool) -> (Vec<f32>, Vec<f32>) {
        let (vars, grads) = setup(1.0);
        let mut opt = AdamW::new(vars.clone(), 0.01).unwrap();
        if !host {
            for p in &mut opt.params {
                let zeros = || Var::zeros(p.var.shape(), DType::F32, p.var.device()).unwrap();
                p.moments = Moments::Device { m: zeros(), v: zeros() };
            }
        }
        let (w, b) = (&vars["l.weight"], &vars["l.bias"]);
        for (i, g) in grads.iter().enumerate() {
            let mut store = w.as_tensor().sum_all().unwrap().backward().unwrap();
            store.insert(w.as_tensor(), g.clone());
            store.insert(b.as_tensor(), g.narrow(1, 0, 7).unwrap().narrow(0, 0, 1).unwrap().squeeze(0).unwrap());
            // Clipping on the second step.
            opt.step(&store, 1e-3, if i == 1 { 0.5 } else { 1.0 }).unwrap();
        }
        (w.flatten_all().unwrap().to_vec1().unwrap(), b.to_vec1().unwrap())
    }

    #[test]
    fn the_one_pass_update_is_the_tensor_ops_update_bit_for_bit() {
        let (host, tensor_ops) = (run(true), run(false));
        assert!(host == tensor_ops, "the two updates differ");
        assert!(host.0.iter().zip(&setup(1.0).0["l.weight"].flatten_all().unwrap().to_vec1::<f32>().unwrap()).any(|(a, b)| a != b));
    }

    #[test]
    fn moments_survive_a_save_and_load() {
        let (vars, grads) = setup(2.0);
        let mut opt = AdamW::new(vars.clone(), 0.01).unwrap();
        let w = &vars["l.weight"];
        let mut store = w.as_tensor().sum_all().unwrap().backward().unwrap();
        store.insert(w.as_tensor(), grads[0].clone());
        opt.step(&store, 1e-3, 1.0).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("opt.safetensors");
        opt.save(&path).unwrap();
        let mut again = AdamW::new(vars, 0.01).unwrap();
        again.load(&path, 1).unwrap();
        for (a, b) in opt.params.iter().zip(&again.params) {
            let (Moments::Host { m: ma, v: va }, Moments::Host { m: mb, v: vb }) = (&a.moments, &b.moments) else { panic!() };
            assert_eq!((ma, va), (mb, vb));
        }
        assert!(matches!(&again.params[1].moments, Moments::Host { m, .. } if m.iter().any(|&x| x != 0.0)));
    }
}

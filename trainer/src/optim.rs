//! AdamW with decoupled weight decay (Loshchilov & Hutter), written out because
//! resuming a run needs the moment estimates, which candle-nn's AdamW keeps
//! private. Biases and LayerNorm weights get no decay, as in BERT's recipe.

use anyhow::{Context, Result};
use candle_core::{backprop::GradStore, Tensor, Var};
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
    m: Var,
    v: Var,
    decay: bool,
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
                let m = Var::zeros(var.shape(), var.dtype(), var.device())?;
                let v = Var::zeros(var.shape(), var.dtype(), var.device())?;
                Ok(Param { name, var, m, v, decay })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { params, step: 0, beta1: 0.9, beta2: 0.999, eps: 1e-6, weight_decay })
    }

    /// Global L2 norm of all gradients (for clipping and logging).
    pub fn grad_norm(&self, grads: &GradStore) -> Result<f64> {
        let mut total = 0f64;
        for p in &self.params {
            if let Some(g) = grads.get(p.var.as_tensor()) {
                total += g.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
            }
        }
        Ok(total.sqrt())
    }

    /// One update with learning rate `lr`; gradients are scaled by `grad_scale`
    /// first (gradient clipping).
    pub fn step(&mut self, grads: &GradStore, lr: f64, grad_scale: f64) -> Result<()> {
        self.step += 1;
        let t = self.step as i32;
        let bc1 = 1.0 - self.beta1.powi(t);
        let bc2 = 1.0 - self.beta2.powi(t);
        for p in &self.params {
            let Some(g) = grads.get(p.var.as_tensor()) else { continue };
            let g = if grad_scale != 1.0 { (g * grad_scale)? } else { g.clone() };
            let m = ((p.m.as_tensor() * self.beta1)? + (&g * (1.0 - self.beta1))?)?;
            let v = ((p.v.as_tensor() * self.beta2)? + (g.sqr()? * (1.0 - self.beta2))?)?;
            let update = ((&m / bc1)? / ((&v / bc2)?.sqrt()? + self.eps)?)?;
            let mut w = p.var.as_tensor().clone();
            if p.decay && self.weight_decay > 0.0 {
                w = (&w * (1.0 - lr * self.weight_decay))?;
            }
            p.var.set(&(w - (update * lr)?)?)?;
            p.m.set(&m)?;
            p.v.set(&v)?;
        }
        Ok(())
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let mut tensors: HashMap<String, Tensor> = HashMap::new();
        for p in &self.params {
            tensors.insert(format!("m.{}", p.name), p.m.as_tensor().clone());
            tensors.insert(format!("v.{}", p.name), p.v.as_tensor().clone());
        }
        bundle::atomic::write_with(path, |tmp| {
            candle_core::safetensors::save(&tensors, tmp).with_context(|| format!("cannot write {}", tmp.display()))
        })
    }

    pub fn load(&mut self, path: &Path, step: usize) -> Result<()> {
        let tensors = candle_core::safetensors::load(path, &candle_core::Device::Cpu)
            .with_context(|| format!("{}: cannot read optimizer state", path.display()))?;
        for p in &self.params {
            for (prefix, slot) in [("m", &p.m), ("v", &p.v)] {
                let key = format!("{prefix}.{}", p.name);
                let t = tensors
                    .get(&key)
                    .with_context(|| format!("{}: missing tensor {key}", path.display()))?;
                slot.set(&t.to_device(p.var.device())?)
                    .with_context(|| format!("{}: tensor {key} has the wrong shape", path.display()))?;
            }
        }
        self.step = step;
        Ok(())
    }
}

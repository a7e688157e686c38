//! `trainer bench-step`: time of one training step (forward, backward, clip,
//! AdamW) on random data, for side-by-side comparison with PyTorch
//! (`bench/train-step/bench-train-step.sh` runs both in one go).

use crate::data::LabelSet;
use crate::model::{presets, SequenceClassifier};
use crate::optim::AdamW;
use anyhow::Result;
use candle_core::{Device, Tensor};
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde::Serialize;
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct StepBenchOptions {
    pub layers: usize,
    pub hidden: usize,
    pub heads: usize,
    pub intermediate: usize,
    pub vocab_size: usize,
    pub max_len: usize,
    pub batch_size: usize,
    pub steps: usize,
    pub warmup: usize,
    pub device: Device,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepBenchResult {
    #[serde(rename = "impl")]
    pub implementation: &'static str,
    pub candle: &'static str,
    pub device: String,
    pub threads: usize,
    pub batch_size: usize,
    pub max_len: usize,
    pub layers: usize,
    pub hidden: usize,
    pub step_ms_median: f64,
    pub step_ms_mean: f64,
    pub step_ms_min: f64,
    pub steps: usize,
}

pub fn bench_train_step(o: &StepBenchOptions) -> Result<StepBenchResult> {
    let mut cfg = presets::preset("tiny", o.vocab_size)?;
    cfg.num_hidden_layers = o.layers;
    cfg.hidden_size = o.hidden;
    cfg.num_attention_heads = o.heads;
    cfg.intermediate_size = o.intermediate;
    cfg.max_position_embeddings = o.max_len.max(512);
    let labels = LabelSet { labels: vec!["neg".into(), "pos".into()] };
    // The bench feeds random ids, so a minimal tokenizer stands in for a real one.
    let tokenizer = crate::tokenize::build_vocab(&["a b".to_string()], 10, 1)?;
    let device = o.device.clone();
    let model = SequenceClassifier::new(cfg, labels, tokenizer, &device, 0)?;
    let mut opt = AdamW::new(model.varmap.data().lock().unwrap().clone(), 0.01)?;
    let mut rng = StdRng::seed_from_u64(0);
    let ids: Vec<u32> = (0..o.batch_size * o.max_len).map(|_| rng.random_range(5..o.vocab_size as u32)).collect();
    let ids = Tensor::from_vec(ids, (o.batch_size, o.max_len), &device)?;
    let mask = ids.ones_like()?;
    let labels: Vec<u32> = (0..o.batch_size).map(|_| rng.random_range(0..2)).collect();
    let labels = Tensor::new(labels, &device)?;
    let mut times = Vec::with_capacity(o.steps);
    for i in 0..o.warmup + o.steps {
        let t0 = Instant::now();
        let loss = || Ok(candle_nn::loss::cross_entropy(&model.model.forward(&ids, &mask, true)?, &labels)?);
        crate::train::train_step(&mut opt, loss, 1e-4, 1.0)?;
        // A GPU runs the optimizer's updates asynchronously: count them in this step.
        device.synchronize()?;
        if i >= o.warmup {
            times.push(t0.elapsed().as_secs_f64() * 1e3);
        }
    }
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    Ok(StepBenchResult {
        implementation: "candle",
        candle: "0.11.1",
        device: crate::device_name(&device),
        threads: candle_core::utils::get_num_threads(),
        batch_size: o.batch_size,
        max_len: o.max_len,
        layers: o.layers,
        hidden: o.hidden,
        step_ms_median: sorted[sorted.len() / 2],
        step_ms_mean: times.iter().sum::<f64>() / times.len() as f64,
        step_ms_min: sorted[0],
        steps: o.steps,
    })
}

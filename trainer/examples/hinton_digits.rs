//! Hinton's soft-target distillation on real images, the seed's first
//! experiment (Keras, CIFAR-10: CNN teacher 70.2 %, MLP student 43.2 % alone,
//! 43.7 % with KD at T = 3.25, α = 0.5), repeated over seeds on scikit-learn's
//! 8×8 handwritten digits (`scripts/fetch-digits.sh`), at the full training
//! split and at 10 % of it, with a paired test of KD against the student alone.
//!
//! Within a seed, both students start from the same weights and see the same
//! batches: the only difference between them is α in `kd_loss`. All runs
//! share one stratified test split, so the bootstrap can pool seeds per image.
//!
//! cargo run --release -p trainer --example hinton_digits -- [--seeds 5] [--out docs/logs/hinton-digits]

use anyhow::{Context, Result};
use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::{conv2d, linear, AdamW, Conv2d, Conv2dConfig, Linear, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use clap::Parser;
use rand::{rngs::StdRng, seq::SliceRandom, SeedableRng};
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;
use trainer::images::digits::{self, Digits, CLASSES, PIXELS, SIDE};
use trainer::images::{seeded_he_init, student_loss, StudentObjective};
use trainer::report::significance::{mcnemar_exact, mean_difference, paired_bootstrap_p};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 5)]
    seeds: u64,
    #[arg(long, default_value = "docs/logs/hinton-digits")]
    out: PathBuf,
    #[arg(long, default_value = "data/digits/digits.csv.gz")]
    data: PathBuf,
    /// The seed's values.
    #[arg(long, default_value_t = 3.25)]
    temperature: f64,
    #[arg(long, default_value_t = 0.5)]
    alpha: f64,
    /// Fixed optimiser steps (not epochs), so both training sizes get the same budget.
    #[arg(long, default_value_t = 600)]
    teacher_steps: usize,
    #[arg(long, default_value_t = 2000)]
    student_steps: usize,
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Fraction of the training split in the small-data condition.
    #[arg(long, default_value_t = 0.1)]
    small_fraction: f64,
    #[arg(long, default_value_t = 0.2)]
    test_fraction: f64,
    /// Seed of the train/test split (one split for every run).
    #[arg(long, default_value_t = 0)]
    split_seed: u64,
    #[arg(long, default_value_t = 10_000)]
    bootstrap_rounds: usize,
}

/// Teacher: conv 3×3 (16) → relu → conv 3×3 (32) → relu → max-pool 2 → linear 512→128 → relu → linear 128→10.
struct Cnn {
    c1: Conv2d,
    c2: Conv2d,
    fc1: Linear,
    fc2: Linear,
}

impl Cnn {
    fn new(vb: VarBuilder) -> Result<Self> {
        let same = Conv2dConfig { padding: 1, ..Default::default() };
        Ok(Self {
            c1: conv2d(1, 16, 3, same, vb.pp("c1"))?,
            c2: conv2d(16, 32, 3, same, vb.pp("c2"))?,
            fc1: linear(32 * (SIDE / 2) * (SIDE / 2), 128, vb.pp("fc1"))?,
            fc2: linear(128, CLASSES, vb.pp("fc2"))?,
        })
    }
}

impl Module for Cnn {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let xs = xs.reshape((xs.dim(0)?, 1, SIDE, SIDE))?;
        let xs = self.c2.forward(&self.c1.forward(&xs)?.relu()?)?.relu()?.max_pool2d(2)?;
        self.fc2.forward(&self.fc1.forward(&xs.flatten_from(1)?)?.relu()?)
    }
}

/// Student: linear 64→32 → relu → linear 32→10.
struct Mlp {
    fc1: Linear,
    fc2: Linear,
}

impl Mlp {
    fn new(vb: VarBuilder) -> Result<Self> {
        Ok(Self { fc1: linear(PIXELS, 32, vb.pp("fc1"))?, fc2: linear(32, CLASSES, vb.pp("fc2"))? })
    }
}

impl Module for Mlp {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        self.fc2.forward(&self.fc1.forward(xs)?.relu()?)
    }
}

struct Split {
    x: Tensor,
    y: Tensor,
}

fn tensors(d: &Digits) -> Result<Split> {
    Ok(Split {
        x: Tensor::from_slice(&d.pixels, (d.len(), PIXELS), &Device::Cpu)?,
        y: Tensor::from_slice(&d.labels, d.len(), &Device::Cpu)?,
    })
}

/// Minibatch AdamW for `steps` steps, batches drawn epoch by epoch in a seeded order.
/// `teacher` is `None` for the teacher itself (plain cross-entropy).
fn train(
    model: &impl Module,
    varmap: &VarMap,
    data: &Split,
    teacher: Option<(&Tensor, StudentObjective)>,
    args: &Args,
    steps: usize,
    order_seed: u64,
) -> Result<()> {
    let mut opt = AdamW::new(varmap.all_vars(), ParamsAdamW { lr: args.lr, ..Default::default() })?;
    let mut rng = StdRng::seed_from_u64(order_seed);
    let n = data.x.dim(0)?;
    let mut order: Vec<u32> = Vec::new();
    for _ in 0..steps {
        if order.len() < args.batch_size.min(n) {
            let mut epoch: Vec<u32> = (0..n as u32).collect();
            epoch.shuffle(&mut rng);
            order = epoch;
        }
        let idx = Tensor::from_vec(
            order.split_off(order.len() - args.batch_size.min(n)),
            args.batch_size.min(n),
            &Device::Cpu,
        )?;
        let (x, y) = (data.x.index_select(&idx, 0)?, data.y.index_select(&idx, 0)?);
        let logits = model.forward(&x)?;
        let loss = match teacher {
            None => candle_nn::loss::cross_entropy(&logits, &y)?,
            Some((t, objective)) => student_loss(objective, &logits, &t.index_select(&idx, 0)?, &y)?,
        };
        opt.backward_step(&loss)?;
    }
    Ok(())
}

/// Per test image: is the arg-max the gold label?
fn correct(model: &impl Module, test: &Split) -> Result<Vec<bool>> {
    let pred = model.forward(&test.x)?.argmax(D::Minus1)?.to_vec1::<u32>()?;
    Ok(pred.iter().zip(test.y.to_vec1::<u32>()?).map(|(p, y)| *p == y).collect())
}

fn accuracy(c: &[bool]) -> f64 {
    100.0 * c.iter().filter(|&&b| b).count() as f64 / c.len() as f64
}

fn mean_sd(v: &[f64]) -> (f64, f64) {
    let m = v.iter().sum::<f64>() / v.len() as f64;
    let var = if v.len() > 1 { v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64 } else { 0.0 };
    (m, var.sqrt())
}

fn new_vars<M>(build: impl FnOnce(VarBuilder) -> Result<M>, seed: u64) -> Result<(M, VarMap)> {
    let varmap = VarMap::new();
    let model = build(VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu))?;
    seeded_he_init(&varmap, seed)?;
    Ok((model, varmap))
}

fn main() -> Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let all = digits::load(&args.data).context("run scripts/fetch-digits.sh first")?;
    let (train_idx, test_idx) = digits::stratified_split(&all.labels, args.test_fraction, args.split_seed);
    let test = tensors(&all.select(&test_idx))?;
    eprintln!("digits: {} images, {} train, {} test", all.len(), train_idx.len(), test_idx.len());
    let kd = StudentObjective::Distilled { temperature: args.temperature, alpha: args.alpha };

    let mut sizes = Vec::new();
    let mut rows = Vec::new();
    for (name, fraction) in [("full", 1.0), ("10%", args.small_fraction)] {
        let (mut acc_t, mut acc_s, mut acc_kd) = (vec![], vec![], vec![]);
        let (mut c_s, mut c_kd, mut mcnemar) = (vec![], vec![], vec![]);
        let mut n_train = 0;
        for seed in 0..args.seeds {
            let s = |k: u64| seed * 1000 + k; // independent streams per seed
            let idx = if fraction < 1.0 {
                digits::stratified_subsample(&all.labels, &train_idx, fraction, s(5))
            } else {
                train_idx.clone()
            };
            n_train = idx.len();
            let data = tensors(&all.select(&idx))?;
            let t0 = Instant::now();
            let (teacher, tv) = new_vars(Cnn::new, s(1))?;
            train(&teacher, &tv, &data, None, &args, args.teacher_steps, s(3))?;
            let teacher_logits = teacher.forward(&data.x)?.detach();
            let ct = correct(&teacher, &test)?;
            let mut arms = Vec::new();
            for objective in [StudentObjective::Alone, kd] {
                let (student, sv) = new_vars(Mlp::new, s(2))?; // same start for both arms
                train(&student, &sv, &data, Some((&teacher_logits, objective)), &args, args.student_steps, s(4))?;
                arms.push(correct(&student, &test)?);
            }
            let (cs, ckd) = (arms.remove(0), arms.remove(0));
            let (b, c) =
                ckd.iter().zip(&cs).fold((0, 0), |(b, c), (&k, &s)| (b + (k && !s) as usize, c + (s && !k) as usize));
            mcnemar.push(mcnemar_exact(b, c));
            eprintln!(
                "[{name} n={n_train} seed {seed}] teacher {:.2}%  student {:.2}%  student+KD {:.2}%  (KD-only right {b}, student-only right {c})  {:.1}s",
                accuracy(&ct), accuracy(&cs), accuracy(&ckd), t0.elapsed().as_secs_f64()
            );
            acc_t.push(accuracy(&ct));
            acc_s.push(accuracy(&cs));
            acc_kd.push(accuracy(&ckd));
            c_s.push(cs);
            c_kd.push(ckd);
        }
        let diff = 100.0 * mean_difference(&c_kd, &c_s);
        let p = paired_bootstrap_p(&c_kd, &c_s, args.bootstrap_rounds, 0);
        let stat = |v: &[f64]| {
            let (m, sd) = mean_sd(v);
            json!({ "mean": m, "sd": sd, "per_seed": v })
        };
        let cell = |v: &[f64]| {
            let (m, sd) = mean_sd(v);
            format!("{m:.2} ± {sd:.2}")
        };
        rows.push(format!(
            "| {name} ({n_train}) | {} | {} | {} | {diff:+.2} | {p:.4} |",
            cell(&acc_t),
            cell(&acc_s),
            cell(&acc_kd)
        ));
        sizes.push(json!({
            "size": name, "train_images": n_train, "test_images": test_idx.len(),
            "teacher_accuracy_pct": stat(&acc_t),
            "student_accuracy_pct": stat(&acc_s),
            "student_kd_accuracy_pct": stat(&acc_kd),
            "kd_minus_student": {
                "mean_difference_pp": diff,
                "paired_bootstrap_p": p,
                "bootstrap_rounds": args.bootstrap_rounds,
                "mcnemar_exact_p_per_seed": mcnemar,
            },
        }));
    }
    let wall = started.elapsed().as_secs_f64();
    let summary = json!({
        "experiment": "Hinton soft-target KD on scikit-learn 8x8 digits (the seed's CIFAR-10 experiment)",
        "data": { "path": args.data, "images": all.len(), "train": train_idx.len(), "test": test_idx.len(),
                  "test_fraction": args.test_fraction, "split_seed": args.split_seed },
        "teacher": "CNN conv3x3(16)-relu-conv3x3(32)-relu-maxpool2-linear(512,128)-relu-linear(128,10)",
        "student": "MLP linear(64,32)-relu-linear(32,10)",
        "kd": { "loss": "trainer::distill::kd_loss", "temperature": args.temperature, "alpha": args.alpha },
        "training": { "optimizer": "AdamW", "lr": args.lr, "batch_size": args.batch_size,
                      "teacher_steps": args.teacher_steps, "student_steps": args.student_steps,
                      "init": "He normal from seeded StdRng, zero biases", "seeds": args.seeds },
        "sizes": sizes,
        "wall_seconds": wall,
    });
    let path = args.out.join("summary.json");
    bundle::atomic::write_json(&path, &summary)?;
    println!("| train size (images) | teacher CNN % | student MLP alone % | student MLP + KD % | KD − student (pp) | p (paired bootstrap, {} seeds) |", args.seeds);
    println!("|---|---|---|---|---|---|");
    for r in &rows {
        println!("{r}");
    }
    println!(
        "\nmean ± sd over {} seeds, test accuracy on {} images; T = {}, α = {}. wall time {wall:.0} s. {}",
        args.seeds,
        test_idx.len(),
        args.temperature,
        args.alpha,
        path.display()
    );
    Ok(())
}

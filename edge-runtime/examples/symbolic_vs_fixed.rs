//! Why the runtime optimizes each graph once with a symbolic sequence length:
//! times one encoder layer of a bundle run through (a) the symbolic plan the
//! runtime uses and (b) a plan optimized for exactly that length, at several
//! lengths, side by side, plus what optimizing a plan costs.
//!
//!   cargo run --release --example symbolic_vs_fixed -- BUNDLE [ITERS]

use bundle::Manifest;
use std::time::Instant;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::model::TypedSimpleState;

fn main() -> TractResult<()> {
    let args: Vec<String> = std::env::args().collect();
    let bundle = std::path::Path::new(args.get(1).map(String::as_str).unwrap_or("tests/fixtures/tiny-bundle"));
    let iters: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(300);
    let manifest = Manifest::load(bundle).map_err(|e| anyhow::anyhow!("{e}"))?;
    let path = bundle.join(&manifest.layers[0]);
    let h = manifest.hidden_size;
    let t = Instant::now();
    let symbolic = tract_onnx::onnx().model_for_path(&path)?.into_optimized()?.into_runnable()?;
    let symbolic_ms = t.elapsed().as_secs_f64() * 1e3;
    println!("{}: layer 1, hidden {h}, {iters} runs per length, batch 1", bundle.display());
    println!("optimizing the symbolic plan: {symbolic_ms:.1} ms (once per bundle load)");
    println!("{:>6} {:>14} {:>14} {:>10} {:>18}", "length", "symbolic µs", "fixed µs", "fixed/sym", "optimize fixed ms");
    for len in [8usize, 16, 32, 64] {
        let t = Instant::now();
        let fixed = tract_onnx::onnx()
            .model_for_path(&path)?
            .with_input_fact(0, f32::fact([1, len, h]).into())?
            .with_input_fact(1, i64::fact([1, len]).into())?
            .into_optimized()?
            .into_runnable()?;
        let optimize_ms = t.elapsed().as_secs_f64() * 1e3;
        let x = Tensor::from_shape(&[1, len, h], &vec![0.1f32; len * h])?;
        let m = Tensor::from_shape(&[1, len], &vec![1i64; len])?;
        let mut sym_state = symbolic.spawn()?;
        let mut fix_state = fixed.spawn()?;
        let run = |state: &mut TypedSimpleState| -> TractResult<f64> {
            let t = Instant::now();
            for _ in 0..iters {
                state.run(tvec!(x.clone().into_tvalue(), m.clone().into_tvalue()))?;
            }
            Ok(t.elapsed().as_secs_f64() * 1e6 / iters as f64)
        };
        run(&mut sym_state)?; // warm-up
        run(&mut fix_state)?;
        let (mut s, mut f) = (0.0, 0.0);
        for _ in 0..3 {
            s += run(&mut sym_state)?; // alternate so drift hits both
            f += run(&mut fix_state)?;
        }
        println!("{len:>6} {:>14.1} {:>14.1} {:>10.3} {optimize_ms:>18.1}", s / 3.0, f / 3.0, f / s);
    }
    Ok(())
}

//! Why the runtime optimizes each graph once with a symbolic sequence length:
//! times one encoder layer of a bundle run through (a) the symbolic plan the
//! runtime uses and (b) a plan optimized for exactly that length, at several
//! lengths, side by side, plus what optimizing a plan costs.
//!
//!   cargo run --release --example symbolic_vs_fixed -- BUNDLE [ITERS]
//!
//! BUNDLE is an ONNX bundle (its layer through tract's stock ONNX ops) or an
//! NNEF twin (`edge-runtime to-nnef`: the graph the runtime plans, with its
//! fused LayerNorm and row softmax); the fixed plan binds the twin's batch and
//! length symbols on that same graph before optimizing it.

use bundle::Manifest;
use std::collections::HashMap;
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
    let twin = path.extension().is_some_and(|e| e == "tar");
    // The graph before optimization, and a plan of it for one length.
    let typed = || -> TractResult<TypedModel> {
        if twin {
            let bytes = std::fs::read(&path)?;
            edge_runtime::nnef::read_graph(&bytes).map_err(|e| anyhow::anyhow!("{}: {e:?}", path.display()))
        } else {
            tract_onnx::onnx().model_for_path(&path)?.into_typed()
        }
    };
    let fixed_plan = |len: usize| -> TractResult<Arc<TypedRunnableModel>> {
        if twin {
            let model = typed()?;
            let shape = model.input_fact(0)?.shape.to_tvec();
            let mut subs = HashMap::new();
            for (dim, value) in shape.iter().take(2).zip([1, len]) {
                if let TDim::Sym(s) = dim {
                    subs.insert(s.clone(), TDim::from(value));
                }
            }
            model.set_symbols(&subs)?.into_optimized()?.into_runnable()
        } else {
            tract_onnx::onnx()
                .model_for_path(&path)?
                .with_input_fact(0, f32::fact([1, len, h]).into())?
                .with_input_fact(1, i64::fact([1, len]).into())?
                .into_optimized()?
                .into_runnable()
        }
    };
    let mask_type = typed()?.input_fact(1)?.datum_type;
    let t = Instant::now();
    let symbolic = typed()?.into_optimized()?.into_runnable()?;
    let symbolic_ms = t.elapsed().as_secs_f64() * 1e3;
    let graph = if twin { "NNEF twin: the runtime's own ops" } else { "ONNX: tract's stock ops" };
    println!("{}: layer 1 ({graph}), hidden {h}, {iters} runs per length, batch 1", bundle.display());
    println!("optimizing the symbolic plan: {symbolic_ms:.1} ms (once per bundle load)");
    println!("{:>6} {:>14} {:>14} {:>10} {:>18}", "length", "symbolic µs", "fixed µs", "fixed/sym", "optimize fixed ms");
    for len in [8usize, 16, 32, 48, 64] {
        let t = Instant::now();
        let fixed = fixed_plan(len)?;
        let optimize_ms = t.elapsed().as_secs_f64() * 1e3;
        let x = Tensor::from_shape(&[1, len, h], &vec![0.1f32; len * h])?;
        let m = Tensor::from_shape(&[1, len], &vec![1i64; len])?.cast_to_dt(mask_type)?.into_owned();
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

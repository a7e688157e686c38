//! The runtime's own ops (the fused residual-add + LayerNorm, the row
//! softmax) compute what tract's stock ops compute on the same graphs: every
//! exit's logits within 1e-5, at every length up to max_seq_len, one sample
//! at a time and in padded batches of 8, in f32 and in f16.

use edge_runtime::{Compute, EdgeClassifier, LoadOptions};
use std::path::{Path, PathBuf};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny-bundle")
}

/// `own_ops`: the runtime's ops; otherwise tract's stock ones.
fn load(compute: Compute, own_ops: bool) -> EdgeClassifier {
    let options = LoadOptions { compute, fuse_layer_norm: own_ops, row_softmax: own_ops, ..LoadOptions::default() };
    EdgeClassifier::load_with_options(&fixture(), options).unwrap()
}

/// Token ids of `len` tokens, [CLS] … [SEP], varied so no two positions agree.
fn sample(model: &EdgeClassifier, len: usize, salt: usize) -> Vec<u32> {
    let (ids, _) = model.tokenize(&"这家酒店服务很好但是早餐一般价格偏贵下次还会再来".repeat(8)).unwrap();
    let body = &ids[1..ids.len() - 1];
    let mut row = vec![ids[0]];
    row.extend((0..len.saturating_sub(2)).map(|i| body[(i * 7 + salt) % body.len()]));
    row.push(*ids.last().unwrap());
    row.truncate(len);
    row
}

fn max_difference(a: &EdgeClassifier, b: &EdgeClassifier, batch: &[Vec<u32>]) -> f32 {
    let (la, lb) = (a.all_exit_logits(batch).unwrap(), b.all_exit_logits(batch).unwrap());
    let mut worst = 0f32;
    for (ea, eb) in la.iter().zip(&lb) {
        let (ea, eb) = (ea.as_ref().unwrap(), eb.as_ref().unwrap());
        for (ra, rb) in ea.iter().zip(eb) {
            for (x, y) in ra.iter().zip(rb) {
                worst = worst.max((x - y).abs());
            }
        }
    }
    worst
}

#[test]
fn the_plan_runs_the_own_ops_in_place_of_tracts() {
    let (fused, stock) = (load(Compute::F32, true), load(Compute::F32, false));
    let row = sample(&fused, 16, 0);
    let ops = |m: &EdgeClassifier| -> Vec<String> { m.profile_ops(std::slice::from_ref(&row), false).unwrap().into_iter().map(|o| o.0).collect() };
    let (with, without) = (ops(&fused), ops(&stock));
    // embeddings + 2 per layer: all of them with their residual Add folded in.
    assert!(with.iter().any(|o| o == "FusedAddLayerNorm"), "{with:?}");
    assert!(!with.iter().any(|o| o == "FusedLayerNorm"), "an unfused residual: {with:?}");
    assert!(!without.iter().any(|o| o.starts_with("Fused") && o.contains("LayerNorm")), "{without:?}");
    assert!(without.iter().any(|o| o.contains("Reduce")), "the stock plan reduces: {without:?}");
    assert!(with.iter().any(|o| o == "RowSoftmax") && !with.iter().any(|o| o == "Softmax"), "{with:?}");
    assert!(without.iter().any(|o| o == "Softmax") && !without.iter().any(|o| o == "RowSoftmax"), "{without:?}");
}

#[test]
fn own_and_stock_plans_agree_at_every_length_alone_and_in_batches() {
    let (fused, stock) = (load(Compute::F32, true), load(Compute::F32, false));
    let max = fused.manifest.max_seq_len;
    // Under emulation (targets/qemu-check.sh) every n-th length, and the last.
    let step = std::env::var("OWN_OPS_LENGTH_STEP").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    for len in (1..=max).step_by(step).chain([max]) {
        let d = max_difference(&fused, &stock, &[sample(&fused, len, len)]);
        assert!(d <= 1e-5, "batch 1, length {len}: logits differ by {d}");
        // Eight samples padded to `len`: lengths spread below it.
        let batch: Vec<Vec<u32>> = (0..8).map(|i| sample(&fused, (len * (i + 1)).div_ceil(8).max(1), i)).collect();
        let d = max_difference(&fused, &stock, &batch);
        assert!(d <= 1e-5, "batch 8, longest {len}: logits differ by {d}");
    }
}

#[test]
fn own_and_stock_plans_agree_when_computing_in_f16() {
    let (fused, stock) = (load(Compute::F16, true), load(Compute::F16, false));
    for len in [1, 2, 9, 33, fused.manifest.max_seq_len] {
        let batch: Vec<Vec<u32>> = (0..8).map(|i| sample(&fused, (len * (i + 1)).div_ceil(8).max(1), i)).collect();
        // f16 rounds every intermediate; the own ops round fewer of them.
        let d = max_difference(&fused, &stock, &batch);
        assert!(d <= 2e-2, "f16, longest {len}: logits differ by {d}");
    }
}

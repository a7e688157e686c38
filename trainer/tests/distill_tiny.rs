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

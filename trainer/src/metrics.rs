//! Classification metrics with a confidence interval, so a ±0.7-point wobble
//! on a 1.7k test set is not mistaken for progress.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalReport {
    pub n: usize,
    pub accuracy: f64,
    /// 95% Wilson score interval for the accuracy.
    pub accuracy_ci95: [f64; 2],
    pub macro_f1: f64,
    pub loss: f64,
    pub labels: Vec<String>,
    pub per_label_f1: Vec<f64>,
    /// Gold and predicted label index per example, in dataset order (for
    /// paired significance tests; `trainer eval --predictions` writes them).
    #[serde(skip)]
    pub pairs: Vec<(u32, u32)>,
}

impl EvalReport {
    /// One JSON line per example: its 0-based index in the dataset, gold and predicted label.
    pub fn predictions_jsonl(&self) -> String {
        self.pairs
            .iter()
            .enumerate()
            .map(|(i, &(g, p))| {
                serde_json::json!({"index": i, "gold": self.labels[g as usize], "pred": self.labels[p as usize]}).to_string() + "\n"
            })
            .collect()
    }
}

/// Wilson score interval at z = 1.96: well behaved near 0 and 1, unlike the
/// normal approximation. One implementation, shared with the edge runtime's reports.
pub use bundle::stats::wilson95 as wilson_ci95;

/// Accuracy, per-label F1 and macro-F1 from gold and predicted label indices.
pub fn report(gold: &[u32], pred: &[u32], labels: &[String], loss: f64) -> EvalReport {
    let n = gold.len();
    let correct = gold.iter().zip(pred).filter(|(g, p)| g == p).count();
    let per_label_f1: Vec<f64> = (0..labels.len() as u32)
        .map(|c| {
            let tp = gold.iter().zip(pred).filter(|(g, p)| **g == c && **p == c).count() as f64;
            let fp = gold.iter().zip(pred).filter(|(g, p)| **g != c && **p == c).count() as f64;
            let fneg = gold.iter().zip(pred).filter(|(g, p)| **g == c && **p != c).count() as f64;
            if tp == 0.0 { 0.0 } else { 2.0 * tp / (2.0 * tp + fp + fneg) }
        })
        .collect();
    let macro_f1 = per_label_f1.iter().sum::<f64>() / labels.len().max(1) as f64;
    EvalReport {
        n,
        accuracy: if n == 0 { 0.0 } else { correct as f64 / n as f64 },
        accuracy_ci95: wilson_ci95(correct, n),
        macro_f1,
        loss,
        labels: labels.to_vec(),
        per_label_f1,
        pairs: gold.iter().copied().zip(pred.iter().copied()).collect(),
    }
}

/// Peak resident set size of this process in MiB (Linux `VmHWM`), if known.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_interval_matches_the_textbook_value() {
        // 85 of 100: Wilson 95% interval is [0.7672, 0.9069].
        let [lo, hi] = wilson_ci95(85, 100);
        assert!((lo - 0.7672).abs() < 1e-4, "{lo}");
        assert!((hi - 0.9069).abs() < 1e-4, "{hi}");
    }

    #[test]
    fn macro_f1_averages_the_per_label_scores() {
        let labels = vec!["neg".to_string(), "pos".to_string()];
        let r = report(&[0, 0, 1, 1], &[0, 1, 1, 1], &labels, 0.0);
        assert_eq!(r.accuracy, 0.75);
        // neg: tp1 fp0 fn1 → 2/3; pos: tp2 fp1 fn0 → 4/5
        assert!((r.macro_f1 - (2.0 / 3.0 + 0.8) / 2.0).abs() < 1e-12);
    }
}

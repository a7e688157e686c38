//! Small statistics for reports: latency percentiles and a binomial CI.

use serde::{Deserialize, Serialize};

/// Latency summary in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub n: usize,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
}

impl Latency {
    /// `None` for no samples.
    pub fn of(samples_ms: &[f64]) -> Option<Self> {
        if samples_ms.is_empty() {
            return None;
        }
        let mut s = samples_ms.to_vec();
        s.sort_by(f64::total_cmp);
        Some(Self {
            n: s.len(),
            mean_ms: s.iter().sum::<f64>() / s.len() as f64,
            p50_ms: percentile(&s, 50.0),
            p90_ms: percentile(&s, 90.0),
            p99_ms: percentile(&s, 99.0),
        })
    }
}

/// Nearest-rank percentile of sorted samples.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Wilson score 95% interval for `k` successes out of `n`.
pub fn wilson95(k: usize, n: usize) -> [f64; 2] {
    if n == 0 {
        return [0.0, 1.0];
    }
    let (z, n, p) = (1.959_964f64, n as f64, k as f64 / n as f64);
    let centre = (p + z * z / (2.0 * n)) / (1.0 + z * z / n);
    let half = z / (1.0 + z * z / n) * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
    [(centre - half).max(0.0), (centre + half).min(1.0)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let s: Vec<f64> = (1..=100).map(f64::from).collect();
        let l = Latency::of(&s).unwrap();
        assert_eq!((l.p50_ms, l.p90_ms, l.p99_ms, l.mean_ms), (50.0, 90.0, 99.0, 50.5));
        assert_eq!(Latency::of(&[7.0]).unwrap().p99_ms, 7.0);
        assert!(Latency::of(&[]).is_none());
    }

    #[test]
    fn wilson_interval_matches_a_hand_value() {
        // 80 of 100: Wilson 95% = [0.7112, 0.8666]
        let [lo, hi] = wilson95(80, 100);
        assert!((lo - 0.7112).abs() < 1e-4 && (hi - 0.8666).abs() < 1e-4, "{lo} {hi}");
    }
}

//! Paired significance of one model's accuracy against another's on the same
//! test texts: McNemar's exact test for one pair of runs, and a paired
//! bootstrap over texts that pools several seeds (the texts are the shared
//! unit, so each resample draws the same texts for every seed).

use rand::{rngs::StdRng, Rng, SeedableRng};

/// Two-sided exact McNemar p-value from the discordant counts: `b` texts only
/// the first model gets right, `c` only the second. Binomial(b + c, ½) tail, doubled, capped at 1.
pub fn mcnemar_exact(b: usize, c: usize) -> f64 {
    let n = b + c;
    if n == 0 {
        return 1.0;
    }
    let k = b.min(c);
    // P(X ≤ k) for X ~ Binomial(n, 1/2), summed in log space to stay exact for large n.
    let ln_half_n = -(n as f64) * std::f64::consts::LN_2;
    let mut ln_choose = 0f64; // ln C(n, 0)
    let mut tail = 0f64;
    for i in 0..=k {
        if i > 0 {
            ln_choose += ((n - i + 1) as f64).ln() - (i as f64).ln();
        }
        tail += (ln_choose + ln_half_n).exp();
    }
    (2.0 * tail).min(1.0)
}

/// Mean over seeds of accuracy(a) − accuracy(b); `a[s]` and `b[s]` are one
/// seed's per-text correctness, all over the same texts in the same order.
pub fn mean_difference(a: &[Vec<bool>], b: &[Vec<bool>]) -> f64 {
    let diff = |x: &[bool], y: &[bool]| {
        x.iter().zip(y).map(|(&p, &q)| p as i32 - q as i32).sum::<i32>() as f64 / x.len().max(1) as f64
    };
    a.iter().zip(b).map(|(x, y)| diff(x, y)).sum::<f64>() / a.len().max(1) as f64
}

/// Two-sided p-value of the paired bootstrap: resample the texts `rounds`
/// times (seeded), recompute the seed-pooled mean difference, and count how
/// often the centred resampled difference is at least as far from 0 as the observed one.
pub fn paired_bootstrap_p(a: &[Vec<bool>], b: &[Vec<bool>], rounds: usize, seed: u64) -> f64 {
    let n = a.first().map_or(0, Vec::len);
    if n == 0 || a.len() != b.len() || a.iter().chain(b).any(|v| v.len() != n) {
        return f64::NAN;
    }
    // Per text, the seed-summed difference: a resample's statistic is their mean.
    let per_text: Vec<f64> = (0..n)
        .map(|t| a.iter().zip(b).map(|(x, y)| x[t] as i32 - y[t] as i32).sum::<i32>() as f64 / a.len() as f64)
        .collect();
    let observed = per_text.iter().sum::<f64>() / n as f64;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut extreme = 0usize;
    for _ in 0..rounds {
        let s: f64 = (0..n).map(|_| per_text[rng.random_range(0..n)]).sum::<f64>() / n as f64;
        if (s - observed).abs() >= observed.abs() - 1e-12 {
            extreme += 1;
        }
    }
    (extreme + 1) as f64 / (rounds + 1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mcnemar_matches_hand_computed_binomial_tails() {
        // b=0, c=5: 2 × (1/2)^5 = 0.0625
        assert!((mcnemar_exact(0, 5) - 0.0625).abs() < 1e-12);
        // b=2, c=8: 2 × (1 + 10 + 45) / 1024 = 0.109375
        assert!((mcnemar_exact(2, 8) - 0.109375).abs() < 1e-12);
        assert_eq!(mcnemar_exact(4, 4), 1.0);
        assert_eq!(mcnemar_exact(0, 0), 1.0);
        // Large counts stay finite and tiny: 10 vs 90.
        let p = mcnemar_exact(10, 90);
        assert!(p > 0.0 && p < 1e-15, "{p}");
    }

    fn runs(correct: &[&str]) -> Vec<Vec<bool>> {
        correct.iter().map(|s| s.chars().map(|c| c == '1').collect()).collect()
    }

    #[test]
    fn pooled_difference_and_bootstrap_separate_a_real_gap_from_none() {
        // 200 texts, two seeds: a is right on 20 more texts per seed than b.
        let base: String = (0..200).map(|i| if i % 2 == 0 { '1' } else { '0' }).collect();
        let better: String = base.chars().enumerate().map(|(i, c)| if i % 10 == 1 { '1' } else { c }).collect();
        let a = runs(&[&better, &better]);
        let b = runs(&[&base, &base]);
        assert!((mean_difference(&a, &b) - 0.1).abs() < 1e-12);
        let p = paired_bootstrap_p(&a, &b, 2000, 1);
        assert!(p < 0.01, "a 10-point gap on every seed: p = {p}");
        let same = paired_bootstrap_p(&a, &a, 2000, 1);
        assert!(same > 0.99, "identical runs: p = {same}");
        // The same seed gives the same p.
        assert_eq!(paired_bootstrap_p(&a, &b, 500, 9), paired_bootstrap_p(&a, &b, 500, 9));
    }

    #[test]
    fn mismatched_runs_give_no_p_value() {
        assert!(paired_bootstrap_p(&runs(&["101"]), &runs(&["10"]), 10, 0).is_nan());
    }
}

//! Early-exit policies, layer by layer:
//! - `Entropy { speed }` (FastBERT): exit at the first layer whose normalised
//!   entropy H(p)/ln(N) is below `speed`;
//! - `Patience { n }` (PABEE): exit once the argmax has stayed the same for
//!   `n` consecutive layers;
//! - `Layer { k }`: a fixed budget, exit at the k-th exit classifier (for a
//!   FastBERT bundle, after layer k) whatever it predicts;
//! - `Full`: run every layer.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "policy", rename_all = "lowercase")]
pub enum ExitPolicy {
    Entropy { speed: f32 },
    Patience { n: usize },
    Layer { k: usize },
    Full,
}

/// The policy as reports and provenance name it: `full`, `entropy 0.3`,
/// `patience 2`, `layer 1`.
impl fmt::Display for ExitPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitPolicy::Full => write!(f, "full"),
            ExitPolicy::Entropy { speed } => write!(f, "entropy {speed}"),
            ExitPolicy::Patience { n } => write!(f, "patience {n}"),
            ExitPolicy::Layer { k } => write!(f, "layer {k}"),
        }
    }
}

impl ExitPolicy {
    /// The policy a caller's options pick (the CLI's `--speed`, `--patience`,
    /// `--exit-layer`, `--full`; the Python `Classifier`'s keywords): `None`
    /// when none is given (the bundle's default applies), an error when more
    /// than one is. Ranges are [`ExitPolicy::check`]'s.
    pub fn chosen(speed: Option<f32>, patience: Option<usize>, exit_layer: Option<usize>, full: bool) -> Result<Option<Self>, String> {
        let chosen = [speed.map(|speed| ExitPolicy::Entropy { speed }), patience.map(|n| ExitPolicy::Patience { n }), exit_layer.map(|k| ExitPolicy::Layer { k }), full.then_some(ExitPolicy::Full)];
        let mut given = chosen.into_iter().flatten();
        match (given.next(), given.next()) {
            (_, Some(_)) => Err("give at most one exit policy: speed, patience, exit layer or full".into()),
            (policy, None) => Ok(policy),
        }
    }

    /// Whether the policy makes sense for a bundle with `exits` exit
    /// classifiers: a speed in [0, 1], a patience and a budget of at least 1
    /// and at most `exits`.
    pub fn check(&self, exits: usize) -> Result<(), String> {
        match *self {
            ExitPolicy::Entropy { speed } if !(0.0..=1.0).contains(&speed) => {
                Err(format!("entropy speed {speed} is outside [0, 1]"))
            }
            ExitPolicy::Patience { n } if n == 0 || n > exits => {
                Err(format!("patience {n} is outside 1..={exits} (the bundle has {exits} exit classifiers)"))
            }
            ExitPolicy::Layer { k } if k == 0 || k > exits => {
                Err(format!("exit layer {k} is outside 1..={exits} (the bundle has {exits} exit classifiers)"))
            }
            _ => Ok(()),
        }
    }
}

/// Softmax of logits (numerically stable).
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = logits.iter().map(|&l| (l - max).exp()).collect();
    let sum: f32 = exp.iter().sum();
    exp.into_iter().map(|e| e / sum).collect()
}

/// H(p)/ln(N) in [0, 1]: 0 for a one-hot distribution, 1 for a uniform one.
pub fn normalized_entropy(probs: &[f32]) -> f32 {
    if probs.len() < 2 {
        return 0.0;
    }
    let h: f32 = probs.iter().filter(|&&p| p > 0.0).map(|&p| -p * p.ln()).sum();
    (h / (probs.len() as f32).ln()).min(1.0)
}

pub fn argmax(values: &[f32]) -> usize {
    values
        .iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &v)| if v > best.1 { (i, v) } else { best })
        .0
}

/// Feeds one exit's probabilities at a time; says when to stop.
#[derive(Debug, Clone)]
pub struct ExitDecider {
    policy: ExitPolicy,
    last_argmax: Option<usize>,
    streak: usize,
    seen: usize,
}

impl ExitDecider {
    pub fn new(policy: ExitPolicy) -> Self {
        Self { policy, last_argmax: None, streak: 0, seen: 0 }
    }

    /// Whether the next exit's probabilities can change the decision: full
    /// depth needs none before the last, a fixed exit layer only its own, the
    /// entropy and patience policies every one.
    pub fn needs_next(&self) -> bool {
        match self.policy {
            ExitPolicy::Full => false,
            ExitPolicy::Layer { k } => self.seen + 1 >= k,
            ExitPolicy::Entropy { .. } | ExitPolicy::Patience { .. } => true,
        }
    }

    /// Passes an exit whose probabilities were not computed, because
    /// [`ExitDecider::needs_next`] said they could not change the decision.
    pub fn pass(&mut self) {
        self.seen += 1;
    }

    /// True when the sample should exit after the layer that produced `probs`.
    pub fn should_exit(&mut self, probs: &[f32]) -> bool {
        self.seen += 1;
        match self.policy {
            ExitPolicy::Layer { k } => self.seen >= k,
            ExitPolicy::Full => false,
            // Speed 1 is the fastest setting and always exits (FastBERT's "speed = 1"):
            // a near-uniform branch can round to an entropy of exactly 1, which `<` would keep.
            ExitPolicy::Entropy { speed } => speed >= 1.0 || normalized_entropy(probs) < speed,
            ExitPolicy::Patience { n } => {
                let a = argmax(probs);
                self.streak = if self.last_argmax == Some(a) { self.streak + 1 } else { 0 };
                self.last_argmax = Some(a);
                self.streak >= n
            }
        }
    }
}

/// Where `policy` takes one sample out, from the probabilities of every exit
/// computed beforehand: `exits[i]` is the exit after layer i+1 (`None` where
/// that layer has none). Returns the 1-based exit layer and its
/// probabilities; the last exit always decides. Lets a policy be evaluated
/// without running the model again, exactly as it would have exited live.
pub fn replay<P: AsRef<[f32]>>(policy: ExitPolicy, exits: impl IntoIterator<Item = Option<P>>) -> Option<(usize, P)> {
    let mut decider = ExitDecider::new(policy);
    let mut exits = exits.into_iter().enumerate().filter_map(|(i, p)| p.map(|p| (i + 1, p))).peekable();
    while let Some((layer, probs)) = exits.next() {
        if exits.peek().is_none() || decider.should_exit(probs.as_ref()) {
            return Some((layer, probs));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_choose_one_policy_or_none() {
        assert_eq!(ExitPolicy::chosen(None, None, None, false), Ok(None));
        assert_eq!(ExitPolicy::chosen(Some(0.3), None, None, false), Ok(Some(ExitPolicy::Entropy { speed: 0.3 })));
        assert_eq!(ExitPolicy::chosen(None, Some(2), None, false), Ok(Some(ExitPolicy::Patience { n: 2 })));
        assert_eq!(ExitPolicy::chosen(None, None, Some(1), false), Ok(Some(ExitPolicy::Layer { k: 1 })));
        assert_eq!(ExitPolicy::chosen(None, None, None, true), Ok(Some(ExitPolicy::Full)));
        for two in [(Some(0.3), Some(2), None, false), (None, Some(2), Some(1), false), (Some(0.3), None, None, true)] {
            let error = ExitPolicy::chosen(two.0, two.1, two.2, two.3).unwrap_err();
            assert!(error.contains("at most one exit policy"), "{error}");
        }
    }

    #[test]
    fn entropy_is_normalised_to_the_unit_interval() {
        assert!((normalized_entropy(&[0.5, 0.5]) - 1.0).abs() < 1e-6);
        assert!((normalized_entropy(&[0.25; 4]) - 1.0).abs() < 1e-6);
        assert_eq!(normalized_entropy(&[1.0, 0.0, 0.0]), 0.0);
        // H(0.9, 0.1) = 0.325083 nats; / ln 2 = 0.468996
        assert!((normalized_entropy(&[0.9, 0.1]) - 0.468_996).abs() < 1e-5);
    }

    #[test]
    fn speed_zero_never_exits_and_speed_one_always_exits() {
        let mut never = ExitDecider::new(ExitPolicy::Entropy { speed: 0.0 });
        assert!(!never.should_exit(&[1.0, 0.0]));
        let mut always = ExitDecider::new(ExitPolicy::Entropy { speed: 1.0 });
        assert!(always.should_exit(&[0.6, 0.4]));
        assert!(always.should_exit(&[0.5, 0.5]), "even a uniform branch exits at speed 1");
        let mut almost = ExitDecider::new(ExitPolicy::Entropy { speed: 0.999_999 });
        assert!(!almost.should_exit(&[0.5, 0.5]));
    }

    #[test]
    fn patience_counts_consecutive_agreeing_layers() {
        let mut d = ExitDecider::new(ExitPolicy::Patience { n: 2 });
        assert!(!d.should_exit(&[0.9, 0.1])); // first prediction, streak 0
        assert!(!d.should_exit(&[0.2, 0.8])); // changed, streak 0
        assert!(!d.should_exit(&[0.3, 0.7])); // same, streak 1
        assert!(d.should_exit(&[0.1, 0.9])); // same, streak 2
        assert!(!ExitDecider::new(ExitPolicy::Full).should_exit(&[1.0, 0.0]));
    }

    #[test]
    fn a_fixed_budget_exits_at_the_kth_classifier_whatever_it_says() {
        let mut d = ExitDecider::new(ExitPolicy::Layer { k: 3 });
        assert!(!d.should_exit(&[1.0, 0.0]));
        assert!(!d.should_exit(&[1.0, 0.0]));
        assert!(d.should_exit(&[0.5, 0.5]));
    }

    #[test]
    fn softmax_is_stable_for_large_logits() {
        let p = softmax(&[1000.0, 1000.0]);
        assert_eq!(p, vec![0.5, 0.5]);
        assert_eq!(argmax(&[0.1, 0.7, 0.2]), 1);
    }

    #[test]
    fn replay_exits_where_the_live_decider_would_and_at_the_last_exit_otherwise() {
        let confident = Some(vec![0.99, 0.01]);
        let unsure = Some(vec![0.5, 0.5]);
        let exits = || vec![unsure.clone(), None, confident.clone(), unsure.clone()];
        assert_eq!(replay(ExitPolicy::Entropy { speed: 0.3 }, exits()).map(|e| e.0), Some(3));
        assert_eq!(replay(ExitPolicy::Full, exits()).map(|e| e.0), Some(4));
        assert_eq!(replay(ExitPolicy::Layer { k: 2 }, exits()).map(|e| e.0), Some(3), "the 2nd exit classifier is after layer 3");
        assert_eq!(replay(ExitPolicy::Full, Vec::<Option<Vec<f32>>>::new()), None);
    }

    #[test]
    fn a_policy_is_checked_against_the_exits_it_can_use() {
        assert!(ExitPolicy::Entropy { speed: 0.5 }.check(1).is_ok());
        assert!(ExitPolicy::Full.check(1).is_ok());
        for bad in [ExitPolicy::Entropy { speed: -0.1 }, ExitPolicy::Entropy { speed: f32::NAN }, ExitPolicy::Entropy { speed: 1.5 }] {
            assert!(bad.check(3).unwrap_err().contains("outside [0, 1]"), "{bad}");
        }
        assert!(ExitPolicy::Patience { n: 0 }.check(3).is_err());
        assert!(ExitPolicy::Patience { n: 3 }.check(3).is_ok());
        assert!(ExitPolicy::Layer { k: 4 }.check(3).unwrap_err().contains("has 3 exit classifiers"));
    }

    #[test]
    fn policies_are_named_for_reports() {
        let names: Vec<String> = [ExitPolicy::Full, ExitPolicy::Entropy { speed: 0.3 }, ExitPolicy::Patience { n: 2 }, ExitPolicy::Layer { k: 1 }]
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(names, ["full", "entropy 0.3", "patience 2", "layer 1"]);
    }

    #[test]
    fn a_fixed_exit_layer_needs_only_its_own_exit_and_full_depth_none() {
        let mut layer3 = ExitDecider::new(ExitPolicy::Layer { k: 3 });
        let mut needed = Vec::new();
        for _ in 0..3 {
            needed.push(layer3.needs_next());
            if layer3.needs_next() {
                assert!(layer3.should_exit(&[0.5, 0.5]), "exits at its own exit");
            } else {
                layer3.pass();
            }
        }
        assert_eq!(needed, [false, false, true]);
        assert!(!ExitDecider::new(ExitPolicy::Full).needs_next());
        assert!(ExitDecider::new(ExitPolicy::Entropy { speed: 0.5 }).needs_next());
        assert!(ExitDecider::new(ExitPolicy::Patience { n: 2 }).needs_next());
    }
}

//! BERT's masking: choose ~15% of a segment's tokens (whole words when the
//! segment carries word boundaries, as Chinese-BERT-wwm does), then replace
//! 80% of the chosen tokens with [MASK], 10% with a random token and keep 10%.
//! The loss is computed on the chosen positions only.

use super::corpus::{Segment, NO_WORD};
use anyhow::{bail, Result};
use rand::{seq::SliceRandom, Rng};

pub fn check_prob(prob: f64) -> Result<()> {
    if !(prob > 0.0 && prob < 1.0) {
        bail!("--mask-prob must be within (0, 1), got {prob}");
    }
    Ok(())
}

#[derive(Debug, Clone)]
pub struct Masking {
    /// Fraction of tokens to predict, in (0, 1).
    pub prob: f64,
    pub mask_id: u32,
    /// Ids a random replacement is drawn from (the vocabulary without special tokens).
    pub replacement_ids: Vec<u32>,
}

impl Masking {
    pub fn new(prob: f64, mask_id: u32, vocab_size: u32, special_ids: &[u32]) -> Result<Self> {
        check_prob(prob)?;
        let replacement_ids: Vec<u32> = (0..vocab_size).filter(|id| !special_ids.contains(id)).collect();
        if replacement_ids.is_empty() {
            bail!("the vocabulary has no ordinary tokens to draw random replacements from");
        }
        Ok(Self { prob, mask_id, replacement_ids })
    }

    /// The model input for `segment` and the (position, original id) pairs to predict.
    pub fn apply(&self, segment: &Segment, rng: &mut impl Rng) -> (Vec<u32>, Vec<(usize, u32)>) {
        // Units: runs of positions that share a word number.
        let mut units: Vec<(usize, usize)> = Vec::new();
        for (i, &w) in segment.words.iter().enumerate() {
            if w == NO_WORD {
                continue;
            }
            match units.last_mut() {
                Some((start, end)) if *end == i && segment.words[*start] == w => *end = i + 1,
                _ => units.push((i, i + 1)),
            }
        }
        let maskable: usize = units.iter().map(|(s, e)| e - s).sum();
        let mut inputs = segment.ids.clone();
        if maskable == 0 {
            return (inputs, Vec::new());
        }
        let budget = ((maskable as f64 * self.prob).round() as usize).max(1);
        units.shuffle(rng);
        let mut chosen: Vec<usize> = Vec::with_capacity(budget);
        for &(start, end) in &units {
            if chosen.len() >= budget {
                break;
            }
            // A word that would overshoot the budget is skipped (HF's whole-word collator does the same),
            // except that a segment always predicts something.
            if chosen.len() + (end - start) > budget && !chosen.is_empty() {
                continue;
            }
            chosen.extend(start..end);
        }
        chosen.sort_unstable();
        let mut targets = Vec::with_capacity(chosen.len());
        for i in chosen {
            targets.push((i, segment.ids[i]));
            let r: f64 = rng.random();
            if r < 0.8 {
                inputs[i] = self.mask_id;
            } else if r < 0.9 {
                inputs[i] = self.replacement_ids[rng.random_range(0..self.replacement_ids.len())];
            }
        }
        (inputs, targets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};

    const MASK: u32 = 4;

    fn segment(words: Vec<u32>) -> Segment {
        let ids = (0..words.len() as u32).map(|i| 100 + i).collect();
        Segment { ids, words }
    }

    fn masking() -> Masking {
        Masking::new(0.15, MASK, 1000, &[0, 1, 2, 3, 4]).unwrap()
    }

    #[test]
    fn bert_proportions_on_a_fixed_seed() {
        let m = masking();
        let mut rng = StdRng::seed_from_u64(42);
        let (mut tokens, mut predicted, mut masked, mut random, mut kept) = (0, 0, 0, 0, 0);
        for _ in 0..2000 {
            let mut words = vec![NO_WORD];
            words.extend(0..60);
            words.push(NO_WORD);
            let seg = segment(words);
            let (inputs, targets) = m.apply(&seg, &mut rng);
            tokens += 60;
            predicted += targets.len();
            assert_eq!(inputs[0], seg.ids[0], "[CLS] is never masked");
            assert_eq!(inputs[61], seg.ids[61], "[SEP] is never masked");
            for (i, original) in targets {
                assert_eq!(original, seg.ids[i]);
                match inputs[i] {
                    MASK => masked += 1,
                    x if x == original => kept += 1,
                    _ => random += 1,
                }
            }
        }
        let share = |n: usize| n as f64 / predicted as f64;
        assert!((predicted as f64 / tokens as f64 - 0.15).abs() < 0.005, "predicted {predicted} of {tokens}");
        assert!((share(masked) - 0.8).abs() < 0.01, "[MASK] {}", share(masked));
        // A random draw can hit the original id (1 in 995): counted as kept.
        assert!((share(random) - 0.1).abs() < 0.01, "random {}", share(random));
        assert!((share(kept) - 0.1).abs() < 0.01, "kept {}", share(kept));
    }

    #[test]
    fn whole_words_are_masked_together() {
        let m = masking();
        let mut rng = StdRng::seed_from_u64(7);
        // 20 words of 3 tokens each.
        let mut words = vec![NO_WORD];
        words.extend((0..20).flat_map(|w| [w, w, w]));
        words.push(NO_WORD);
        let seg = segment(words.clone());
        for _ in 0..200 {
            let (_, targets) = m.apply(&seg, &mut rng);
            let positions: Vec<usize> = targets.iter().map(|&(i, _)| i).collect();
            for &i in &positions {
                let word = words[i];
                let all: Vec<usize> = (0..words.len()).filter(|&j| words[j] == word).collect();
                assert!(all.iter().all(|j| positions.contains(j)), "word {word} partly masked: {positions:?}");
            }
            assert_eq!(positions.len(), 9, "budget round(60 × 0.15) = 9 tokens, three whole words");
        }
    }

    #[test]
    fn the_same_seed_masks_the_same_way() {
        let m = masking();
        let seg = segment((0..40).collect());
        let a = m.apply(&seg, &mut StdRng::seed_from_u64(3));
        let b = m.apply(&seg, &mut StdRng::seed_from_u64(3));
        assert_eq!(a, b);
    }

    #[test]
    fn mask_prob_outside_the_open_unit_interval_is_refused() {
        for p in [0.0, 1.0, -0.1, 1.5, f64::NAN] {
            let err = Masking::new(p, MASK, 100, &[0]).unwrap_err().to_string();
            assert!(err.contains("--mask-prob"), "{err}");
        }
    }
}

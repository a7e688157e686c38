//! Dropout whose masks come from a seeded generator, so a resumed run draws the
//! same masks as the uninterrupted one. candle's own `Dropout` draws from an
//! unseedable thread RNG, which made `--resume` end at a different accuracy.
//!
//! The generator is per thread: the training loop calls [`seed_step`] before
//! each step's forward pass, and every dropout layer then draws from it in the
//! (deterministic) order the graph is built.

use candle_core::{Result, Tensor};
use rand::{rngs::SmallRng, RngCore, SeedableRng};
use std::cell::RefCell;

thread_local! {
    static RNG: RefCell<SmallRng> = RefCell::new(SmallRng::seed_from_u64(0));
}

/// Re-seeds this thread's dropout generator for training step `step` of a run with `seed`.
pub fn seed_step(seed: u64, step: usize) {
    let mixed = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (step as u64).wrapping_mul(0xD1B5_4A32_D192_ED03);
    RNG.with(|r| *r.borrow_mut() = SmallRng::seed_from_u64(mixed));
}

/// Re-seeds this thread's generator for shard `shard` of step `step` (a batch
/// cut over threads); shard 0 draws what [`seed_step`] would.
pub fn seed_shard(seed: u64, step: usize, shard: usize) {
    seed_step(seed ^ (shard as u64).wrapping_mul(0xA076_1D64_78BD_642F), step);
}

#[derive(Debug, Clone, Copy)]
pub struct Dropout {
    p: f32,
}

impl Dropout {
    pub fn new(p: f32) -> Self {
        Self { p }
    }

    /// Zeroes each element with probability p and scales the rest by 1/(1−p) when training.
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        match self.mask(x.elem_count(), train) {
            Some(mask) => x * Tensor::from_vec(mask, x.shape(), x.device())?.to_dtype(x.dtype())?,
            None => Ok(x.clone()),
        }
    }

    /// The factors `forward` multiplies `n` elements by — 0 or 1/(1−p) — for
    /// fused ops that apply them themselves; None when nothing is dropped.
    ///
    /// The step's generator, drawn in the order the graph is built, seeds one
    /// generator per block of `BLOCK` elements, and each 64-bit draw decides
    /// two elements: the blocks fill in parallel, and the mask does not depend
    /// on the number of threads. (One u32 per element from the step's
    /// generator was a serial chain of ~10M draws a step.)
    pub fn mask(&self, n: usize, train: bool) -> Option<Vec<f32>> {
        const BLOCK: usize = 1 << 14;
        if !train || self.p <= 0.0 {
            return None;
        }
        let keep_scale = 1.0 / (1.0 - self.p);
        // Compare raw u32 draws with a threshold: cheaper than drawing floats.
        let threshold = (self.p as f64 * u32::MAX as f64) as u32;
        let factor = |bits: u32| if bits >= threshold { keep_scale } else { 0.0 };
        let seeds: Vec<u64> = RNG.with(|r| {
            let mut r = r.borrow_mut();
            (0..n.div_ceil(BLOCK)).map(|_| r.next_u64()).collect()
        });
        let mut mask = vec![0f32; n];
        super::cpu::par_blocks(mask.chunks_mut(BLOCK).zip(seeds).collect(), |(block, seed)| {
            let mut r = SmallRng::seed_from_u64(seed);
            for pair in block.chunks_mut(2) {
                let bits = r.next_u64();
                pair[0] = factor((bits >> 32) as u32);
                if let Some(second) = pair.get_mut(1) {
                    *second = factor(bits as u32);
                }
            }
        });
        Some(mask)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn draw(seed: u64, step: usize) -> Vec<f32> {
        seed_step(seed, step);
        let x = Tensor::ones(1000, candle_core::DType::F32, &Device::Cpu).unwrap();
        Dropout::new(0.1).forward(&x, true).unwrap().to_vec1().unwrap()
    }

    #[test]
    fn the_same_step_draws_the_same_mask_and_another_step_a_different_one() {
        assert_eq!(draw(7, 3), draw(7, 3));
        assert_ne!(draw(7, 3), draw(7, 4));
        assert_ne!(draw(7, 3), draw(8, 3));
    }

    #[test]
    fn drops_about_p_and_keeps_the_expectation() {
        let v = draw(1, 0);
        let dropped = v.iter().filter(|&&x| x == 0.0).count();
        assert!((60..=140).contains(&dropped), "dropped {dropped} of 1000 at p = 0.1");
        let mean = v.iter().sum::<f32>() / v.len() as f32;
        assert!((mean - 1.0).abs() < 0.05, "mean {mean}");
    }

    #[test]
    fn a_mask_of_many_blocks_is_reproducible_and_drops_about_p_in_each() {
        let draw = || {
            seed_step(5, 9);
            Dropout::new(0.1).mask(100_000, true).unwrap()
        };
        let mask = draw();
        assert_eq!(mask, draw());
        for block in mask.chunks(1 << 14) {
            let dropped = block.iter().filter(|&&m| m == 0.0).count() as f64 / block.len() as f64;
            assert!((0.09..0.11).contains(&dropped), "dropped {dropped}");
        }
    }

    #[test]
    fn evaluation_passes_the_input_through() {
        let x = Tensor::new(&[1f32, 2., 3.], &Device::Cpu).unwrap();
        let y: Vec<f32> = Dropout::new(0.5).forward(&x, false).unwrap().to_vec1().unwrap();
        assert_eq!(y, vec![1., 2., 3.]);
    }
}

//! Dropout whose masks come from a seeded generator, so a resumed run draws the
//! same masks as the uninterrupted one. candle's own `Dropout` draws from an
//! unseedable thread RNG, which made `--resume` end at a different accuracy.
//!
//! The generator is per thread: the training loop calls [`seed_step`] before
//! each step's forward pass, and every dropout layer then draws from it in the
//! (deterministic) order the graph is built.

use candle_core::{Result, Tensor};
use rand::{rngs::SmallRng, Rng, SeedableRng};
use std::cell::RefCell;

thread_local! {
    static RNG: RefCell<SmallRng> = RefCell::new(SmallRng::seed_from_u64(0));
}

/// Re-seeds this thread's dropout generator for training step `step` of a run with `seed`.
pub fn seed_step(seed: u64, step: usize) {
    let mixed = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (step as u64).wrapping_mul(0xD1B5_4A32_D192_ED03);
    RNG.with(|r| *r.borrow_mut() = SmallRng::seed_from_u64(mixed));
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
        if !train || self.p <= 0.0 {
            return Ok(x.clone());
        }
        let keep_scale = 1.0 / (1.0 - self.p);
        // Compare raw u32 draws with a threshold: cheaper than drawing floats.
        let threshold = (self.p as f64 * u32::MAX as f64) as u32;
        let n = x.elem_count();
        let mask: Vec<f32> = RNG.with(|r| {
            let mut r = r.borrow_mut();
            (0..n).map(|_| if r.random::<u32>() >= threshold { keep_scale } else { 0.0 }).collect()
        });
        let mask = Tensor::from_vec(mask, x.shape(), x.device())?.to_dtype(x.dtype())?;
        x * mask
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
    fn evaluation_passes_the_input_through() {
        let x = Tensor::new(&[1f32, 2., 3.], &Device::Cpu).unwrap();
        let y: Vec<f32> = Dropout::new(0.5).forward(&x, false).unwrap().to_vec1().unwrap();
        assert_eq!(y, vec![1., 2., 3.]);
    }
}

//! Hinton's soft-target distillation on real images, the seed's first
//! experiment (CIFAR-10 there; scikit-learn's 8×8 digits here, see
//! [`digits`]). The experiment itself is `examples/hinton_digits.rs`; this
//! module holds what it shares with the rest of the trainer: the student's
//! objective is the very [`crate::distill::kd_loss`] the text students train on.

use anyhow::Result;
use candle_core::Tensor;
use candle_nn::VarMap;
use rand::{rngs::StdRng, SeedableRng};
use rand_distr::{Distribution, Normal};

pub mod digits;

/// How a student is trained.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StudentObjective {
    /// Gold labels only: cross-entropy (`kd_loss` with α = 1).
    Alone,
    /// α·CE + (1−α)·T²·KL against the teacher's logits.
    Distilled { temperature: f64, alpha: f64 },
}

/// The student's batch loss. Both arms go through `kd_loss`, so "student
/// alone" and "student + KD" differ only in α, exactly as in the seed.
/// `teacher` is ignored by [`StudentObjective::Alone`].
pub fn student_loss(
    objective: StudentObjective,
    student: &Tensor,
    teacher: &Tensor,
    labels: &Tensor,
) -> Result<Tensor> {
    match objective {
        StudentObjective::Alone => crate::distill::kd_loss(student, teacher, labels, 1.0, 1.0),
        StudentObjective::Distilled { temperature, alpha } => {
            crate::distill::kd_loss(student, teacher, labels, temperature, alpha)
        }
    }
}

/// Re-draws every weight from a seeded RNG (He normal: std √(2 / fan-in)) and
/// zeroes every bias, because candle's CPU random generator cannot be seeded.
/// Variables are visited in name order, so a seed always gives the same model.
pub fn seeded_he_init(varmap: &VarMap, seed: u64) -> Result<()> {
    let mut rng = StdRng::seed_from_u64(seed);
    let vars = varmap.data().lock().unwrap();
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort();
    for name in names {
        let var = &vars[name];
        let n = var.elem_count();
        let values: Vec<f32> = if name.ends_with("bias") {
            vec![0.0; n]
        } else {
            let fan_in = n / var.dims()[0].max(1);
            let normal = Normal::new(0f32, (2.0 / fan_in.max(1) as f64).sqrt() as f32)?;
            (0..n).map(|_| normal.sample(&mut rng)).collect()
        };
        var.set(&Tensor::from_vec(values, var.shape(), var.device())?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    fn seeded_logits(rng: &mut StdRng, rows: usize) -> Tensor {
        let normal = Normal::new(0f32, 3.0).unwrap();
        let v: Vec<f32> = (0..rows * digits::CLASSES).map(|_| normal.sample(rng)).collect();
        Tensor::from_vec(v, (rows, digits::CLASSES), &Device::Cpu).unwrap()
    }

    fn bits(t: &Tensor) -> u32 {
        t.to_scalar::<f32>().unwrap().to_bits()
    }

    #[test]
    fn the_image_students_kd_loss_is_the_text_kd_loss() {
        // On a fixed seed, the objective the digits example trains with returns
        // bit-identical values to `distill::kd_loss`: it is the same function.
        let mut rng = StdRng::seed_from_u64(42);
        let (s, t) = (seeded_logits(&mut rng, 32), seeded_logits(&mut rng, 32));
        let y = Tensor::from_vec((0..32u32).map(|i| (i * 7) % 10).collect(), 32, &Device::Cpu).unwrap();
        let kd = StudentObjective::Distilled { temperature: 3.25, alpha: 0.5 };
        let ours = student_loss(kd, &s, &t, &y).unwrap();
        let text = crate::distill::kd_loss(&s, &t, &y, 3.25, 0.5).unwrap();
        assert_eq!(bits(&ours), bits(&text));
        // Alone is α = 1: plain cross-entropy, whatever the teacher says.
        let alone = student_loss(StudentObjective::Alone, &s, &t, &y).unwrap();
        assert_eq!(bits(&alone), bits(&candle_nn::loss::cross_entropy(&s, &y).unwrap()));
        assert_ne!(bits(&alone), bits(&ours), "the soft term changes the loss");
    }

    #[test]
    fn seeded_init_is_reproducible_and_he_scaled() {
        let draw = |seed| {
            let varmap = VarMap::new();
            let vb = candle_nn::VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
            let lin = candle_nn::linear(200, 100, vb.pp("fc")).unwrap();
            seeded_he_init(&varmap, seed).unwrap();
            (
                lin.weight().flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                lin.bias().unwrap().to_vec1::<f32>().unwrap(),
            )
        };
        let (w, b) = draw(1);
        assert_eq!(draw(1).0, w);
        assert_ne!(draw(2).0, w);
        assert!(b.iter().all(|&x| x == 0.0));
        let var = w.iter().map(|x| x * x).sum::<f32>() / w.len() as f32;
        assert!((var - 2.0 / 200.0).abs() < 0.001, "variance {var} ≈ 2 / fan-in");
    }
}

//! Test helpers shared by the fused CPU ops' tests: each op is checked
//! against the composed candle ops it replaces, forward and backward, under
//! the same random upstream gradient.

use candle_core::backprop::GradStore;
use candle_core::Tensor;

/// The largest absolute difference between two tensors of one shape.
pub fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap()
}

/// [`max_diff`] as a share of the reference's largest magnitude (at least 1).
pub fn relative_diff(found: &Tensor, reference: &Tensor) -> f32 {
    let scale = reference.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap().max(1.0);
    max_diff(found, reference) / scale
}

/// The gradients of Σ fused·up and Σ reference·up.
pub fn backward_both(fused: Tensor, reference: Tensor, up: &Tensor) -> (GradStore, GradStore) {
    let grads = |t: Tensor| (t * up).unwrap().sum_all().unwrap().backward().unwrap();
    (grads(fused), grads(reference))
}

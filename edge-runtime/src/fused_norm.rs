//! LayerNormalization as one tract op, with the residual Add before it folded
//! in (onnxruntime's SkipLayerNorm on our side).
//!
//! tract 0.23.9 expands ONNX `LayerNormalization` into ten element-wise and
//! reduction ops (about a fifth of a BERT layer's time at hidden 128), and
//! runs the residual `Add` feeding it as one more pass over the hidden state.
//! The ONNX parser is given a builder (`onnx_graph`) that turns a last-axis
//! LayerNormalization with constant scale and bias (what the trainer exports)
//! into [`FusedLayerNorm`]; anything else keeps tract's own expansion. After
//! typing, [`absorb_residual_adds`] moves an `Add` of two same-shaped
//! tensors that feeds only the norm into it. Pinned to tract 0.23.9
//! (`Cargo.toml`): the op implements tract-core's `Op`/`EvalOp`/`TypedOp`,
//! which change across versions. Tested against the stock expansion in
//! `tests/own_ops.rs`.

use std::sync::Arc;
use tract_nnef::tract_core::internal::*;
use tract_nnef::tract_core::ops::binary::TypedBinOp;
use tract_nnef::tract_core::ops::math::Add;

/// `LayerNorm(x (+ residual))` over the last axis, computed in f32 whatever
/// the input type (as tract's expansion does with its default stash type).
#[derive(Debug, Clone, PartialEq)]
pub struct FusedLayerNorm {
    scale: Arc<[f32]>,
    bias: Arc<[f32]>,
    epsilon: f32,
    /// Takes a second input of the same shape and normalizes the sum.
    residual: bool,
}

impl Eq for FusedLayerNorm {}

impl FusedLayerNorm {
    pub fn new(scale: Arc<[f32]>, bias: Arc<[f32]>, epsilon: f32, residual: bool) -> TractResult<Self> {
        ensure!(!scale.is_empty() && scale.len() == bias.len(), "LayerNormalization: scale has {} values, bias {}", scale.len(), bias.len());
        ensure!(epsilon.is_finite() && epsilon >= 0.0, "LayerNormalization: epsilon {epsilon} is not a finite non-negative number");
        Ok(Self { scale, bias, epsilon, residual })
    }

    fn width(&self) -> usize {
        self.scale.len()
    }

    /// Scale and bias, one value per column.
    pub fn parameters(&self) -> (&[f32], &[f32]) {
        (&self.scale, &self.bias)
    }

    pub fn epsilon(&self) -> f32 {
        self.epsilon
    }

    pub fn has_residual(&self) -> bool {
        self.residual
    }
}

impl Op for FusedLayerNorm {
    fn name(&self) -> StaticName {
        if self.residual { "FusedAddLayerNorm".into() } else { "FusedLayerNorm".into() }
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!("width {} epsilon {}", self.width(), self.epsilon)])
    }

    op_as_typed_op!();
}

impl EvalOp for FusedLayerNorm {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, mut inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        ensure!(inputs.len() == 1 + self.residual as usize, "{}: {} inputs", self.name(), inputs.len());
        let dt = inputs[0].datum_type();
        let residual = if self.residual { Some(inputs.pop().unwrap()) } else { None };
        let x = inputs.pop().unwrap();
        let mut x = if dt == DatumType::F32 { x.into_tensor() } else { x.cast_to::<f32>()?.into_owned() };
        ensure!(x.shape().last() == Some(&self.width()), "{}: the last axis of {:?} is not {}", self.name(), x.shape(), self.width());
        if let Some(residual) = residual {
            ensure!(repeats_into(x.shape(), residual.shape(), &1), "{}: adding {:?} to {:?}", self.name(), residual.shape(), x.shape());
            let residual = residual.cast_to::<f32>()?;
            let residual = residual.try_as_plain_ram()?.as_slice::<f32>()?;
            let mut view = x.try_as_plain_ram_mut()?;
            // The residual may broadcast over leading axes (positions added to every sample).
            for block in view.as_slice_mut::<f32>()?.chunks_exact_mut(residual.len()) {
                for (a, b) in block.iter_mut().zip(residual) {
                    *a += b;
                }
            }
        }
        {
            let mut view = x.try_as_plain_ram_mut()?;
            for row in view.as_slice_mut::<f32>()?.chunks_exact_mut(self.width()) {
                normalize(row, &self.scale, &self.bias, self.epsilon);
            }
        }
        let x = if dt == DatumType::F32 { x } else { x.cast_to_dt(dt)?.into_owned() };
        Ok(tvec!(x.into_tvalue()))
    }
}

impl TypedOp for FusedLayerNorm {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(inputs.len() == 1 + self.residual as usize, "{}: {} inputs", self.name(), inputs.len());
        let x = inputs[0];
        ensure!(x.datum_type.is_float(), "{}: input is {:?}", self.name(), x.datum_type);
        ensure!(x.shape.last() == Some(&self.width().to_dim()), "{}: the last axis of {:?} is not {}", self.name(), x.shape, self.width());
        if self.residual {
            let r = inputs[1];
            ensure!(repeats_into(&x.shape, &r.shape, &1.to_dim()) && r.datum_type == x.datum_type, "{}: adding {:?} to {:?}", self.name(), r, x);
        }
        Ok(tvec!(x.datum_type.fact(x.shape.clone())))
    }

    as_op!();
}

/// `(x - mean) / sqrt(var + eps) * scale + bias` over one row, in the
/// order tract's expansion computes it. The sums run in eight lanes so the
/// compiler can vectorize them (a single float accumulator cannot be reordered).
fn normalize(row: &mut [f32], scale: &[f32], bias: &[f32], epsilon: f32) {
    let n = row.len() as f32;
    let mean = lane_sum(row, |x| x) / n;
    let var = lane_sum(row, |x| (x - mean) * (x - mean)) / n;
    let inverse = 1.0 / (var + epsilon).sqrt();
    for ((x, s), b) in row.iter_mut().zip(scale).zip(bias) {
        *x = (*x - mean) * inverse * s + b;
    }
}

/// `Σ f(v)` in eight lanes (a single float accumulator cannot be reordered,
/// so it would not vectorize).
pub(crate) fn lane_sum(values: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut lanes = [0f32; 8];
    let chunks = values.chunks_exact(8);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane += f(v);
        }
    }
    lanes.iter().sum::<f32>() + rest.iter().map(|&v| f(v)).sum::<f32>()
}

/// Folds each `Add(a, b)` whose only use is a [`FusedLayerNorm`] into it:
/// both inputs computed, of one type, one of them the sum's shape and the
/// other that shape or a suffix of it (the residual sum; positions added to
/// every sample). Returns how many it folded.
pub fn absorb_residual_adds(model: &mut TypedModel) -> TractResult<usize> {
    let mut folded = 0;
    while let Some((norm, [whole, residual])) = next_residual_add(model)? {
        let op = model.node(norm).op_as::<FusedLayerNorm>().expect("matched a FusedLayerNorm").clone();
        let mut patch = TypedModelPatch::default();
        let a = patch.tap_model(model, whole)?;
        let b = patch.tap_model(model, residual)?;
        let fused = FusedLayerNorm { residual: true, ..op };
        let name = model.node(norm).name.clone();
        let out = patch.wire_node(name, fused, &[a, b])?[0];
        patch.shunt_outside(model, OutletId::new(norm, 0), out)?;
        patch.apply(model)?;
        folded += 1;
    }
    if folded > 0 {
        model.compact()?;
    }
    Ok(folded)
}

/// Whether `part` is `whole` or a block repeated along `whole`'s leading
/// axes: its shape, leading 1s aside, ends `whole`'s (`[1, S, H]` into `[B, S, H]`).
fn repeats_into<D: PartialEq>(whole: &[D], part: &[D], one: &D) -> bool {
    let first = part.iter().position(|d| d != one).unwrap_or(part.len());
    part.len() <= whole.len() && whole.ends_with(&part[first..])
}

/// A plain [`FusedLayerNorm`] fed by such an `Add`, with the Add's inputs
/// ordered (full shape, residual).
fn next_residual_add(model: &TypedModel) -> TractResult<Option<(usize, [OutletId; 2])>> {
    for node in &model.nodes {
        let Some(op) = node.op_as::<FusedLayerNorm>() else { continue };
        if op.residual {
            continue;
        }
        let add = model.node(node.inputs[0].node);
        let is_add = add.op_as::<TypedBinOp>().is_some_and(|b| b.0.is::<Add>());
        let sole_use = add.outputs[0].successors.len() == 1 && !model.outputs.contains(&node.inputs[0]);
        if !is_add || !sole_use || add.inputs.len() != 2 {
            continue;
        }
        let sum = model.outlet_fact(node.inputs[0])?;
        let (a, b) = (model.outlet_fact(add.inputs[0])?, model.outlet_fact(add.inputs[1])?);
        if a.konst.is_some() || b.konst.is_some() || a.datum_type != b.datum_type {
            continue;
        }
        if a.shape == sum.shape && repeats_into(&sum.shape, &b.shape, &1.to_dim()) {
            return Ok(Some((node.id, [add.inputs[0], add.inputs[1]])));
        }
        if b.shape == sum.shape && repeats_into(&sum.shape, &a.shape, &1.to_dim()) {
            return Ok(Some((node.id, [add.inputs[1], add.inputs[0]])));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_a_row_like_the_textbook_formula() {
        let mut row: Vec<f32> = (0..13).map(|i| (i as f32 * 0.7).sin() * 3.0 + 1.0).collect();
        let scale: Vec<f32> = (0..13).map(|i| 0.5 + i as f32 * 0.1).collect();
        let bias: Vec<f32> = (0..13).map(|i| i as f32 * -0.05).collect();
        let x = row.clone();
        normalize(&mut row, &scale, &bias, 1e-12);
        let mean = x.iter().map(|&v| v as f64).sum::<f64>() / 13.0;
        let var = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / 13.0;
        for i in 0..13 {
            let want = (x[i] as f64 - mean) / (var + 1e-12).sqrt() * scale[i] as f64 + bias[i] as f64;
            assert!((row[i] as f64 - want).abs() < 1e-5, "{i}: {} vs {want}", row[i]);
        }
    }

    #[test]
    fn a_residual_repeats_only_along_leading_axes() {
        assert!(repeats_into(&[2, 5, 8], &[2, 5, 8], &1));
        assert!(repeats_into(&[2, 5, 8], &[1, 5, 8], &1));
        assert!(repeats_into(&[2, 5, 8], &[5, 8], &1));
        assert!(repeats_into(&[2, 5, 8], &[1, 1, 8], &1), "one row for every position of every sample");
        assert!(!repeats_into(&[2, 5, 8], &[1, 5, 1], &1), "a broadcast inside the block");
        assert!(!repeats_into(&[2, 5, 8], &[2, 1, 8], &1));
        assert!(!repeats_into(&[5, 8], &[1, 2, 5, 8], &1), "a higher rank");
    }

    #[test]
    fn refuses_inputs_of_another_width_or_shape() {
        let op = FusedLayerNorm::new(vec![1.0; 4].into(), vec![0.0; 4].into(), 1e-5, true).unwrap();
        let e = op.output_facts(&[&f32::fact([2, 5]), &f32::fact([2, 5])]).unwrap_err().to_string();
        assert!(e.contains("is not 4"), "{e}");
        let e = op.output_facts(&[&f32::fact([2, 4]), &f32::fact([3, 4])]).unwrap_err().to_string();
        assert!(e.contains("adding"), "{e}");
        assert!(op.output_facts(&[&f32::fact([2, 4]), &f32::fact([1, 4])]).is_ok(), "one row repeated along the batch");
    }

    #[test]
    fn refuses_mismatched_parameters() {
        assert!(FusedLayerNorm::new(vec![1.0; 4].into(), vec![0.0; 3].into(), 1e-5, false).is_err());
        assert!(FusedLayerNorm::new(vec![1.0; 4].into(), vec![0.0; 4].into(), f32::NAN, false).is_err());
        assert!(FusedLayerNorm::new(Vec::new().into(), Vec::new().into(), 1e-5, false).is_err());
    }
}

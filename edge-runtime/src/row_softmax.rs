//! Softmax over the last axis, one short row at a time.
//!
//! Attention scores are `[batch, heads, S, S]`: many rows of a few dozen
//! values. tract 0.23.9's Softmax runs its vectorized kernels per row, and on
//! rows this short their dispatch and alignment handling cost more than the
//! arithmetic (about 14 ns per value, a tenth of a small BERT's time). Here a
//! row is three plain loops the compiler vectorizes, with an `exp` made of
//! arithmetic and bit operations only (no libm call), accurate to a few
//! parts in 10⁷. [`use_row_softmax`] swaps it in for every last-axis Softmax
//! of a typed model before optimization. Checked against tract's Softmax in
//! `tests/own_ops.rs` (whole plans) and below (rows).

use tract_nnef::tract_core::internal::*;
use tract_nnef::tract_core::ops::nn::{Softmax, SoftmaxKind};

/// Replaces every f32/f16 Softmax over the last axis by [`RowSoftmax`];
/// returns how many.
pub fn use_row_softmax(model: &mut TypedModel) -> TractResult<usize> {
    let mut replaced = 0;
    for id in 0..model.nodes.len() {
        let node = &model.nodes[id];
        let Some(op) = node.op_as::<Softmax>() else { continue };
        let fact = model.outlet_fact(node.inputs[0])?;
        let last_axis = fact.rank() > 0 && op.axes.as_slice() == [fact.rank() - 1];
        let plain = op.kind == SoftmaxKind::Softmax && op.quant_output_dt.is_none();
        if last_axis && plain && matches!(fact.datum_type, DatumType::F32 | DatumType::F16) {
            model.nodes[id].op = Box::new(RowSoftmax);
            replaced += 1;
        }
    }
    Ok(replaced)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowSoftmax;

impl Op for RowSoftmax {
    fn name(&self) -> StaticName {
        "RowSoftmax".into()
    }

    op_as_typed_op!();
}

impl EvalOp for RowSoftmax {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let dt = input.datum_type();
        let mut x = if dt == DatumType::F32 { input.into_tensor() } else { input.cast_to::<f32>()?.into_owned() };
        let width = *x.shape().last().ok_or_else(|| format_err!("RowSoftmax on a scalar"))?;
        if width > 0 {
            let mut view = x.try_as_plain_ram_mut()?;
            for row in view.as_slice_mut::<f32>()?.chunks_exact_mut(width) {
                softmax_row(row);
            }
        }
        let x = if dt == DatumType::F32 { x } else { x.cast_to_dt(dt)?.into_owned() };
        Ok(tvec!(x.into_tvalue()))
    }
}

impl TypedOp for RowSoftmax {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(inputs.len() == 1 && inputs[0].rank() > 0, "RowSoftmax takes one tensor of rank 1 or more");
        ensure!(inputs[0].datum_type.is_float(), "RowSoftmax on {:?}", inputs[0].datum_type);
        Ok(tvec!(inputs[0].datum_type.fact(inputs[0].shape.clone())))
    }

    as_op!();
}

fn softmax_row(row: &mut [f32]) {
    let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    for v in row.iter_mut() {
        *v = exp(*v - max);
    }
    let inverse = 1.0 / crate::fused_norm::lane_sum(row, |v| v);
    for v in row.iter_mut() {
        *v *= inverse;
    }
}

/// e^x for x ≤ 0 (a softmax's shifted scores), relative error below 3e-7
/// down to e^-87; below that it returns e^-87 (a weight of 1.6e-38, where
/// the exact one would underflow to a denormal or 0). Range reduction
/// x = n·ln2 + r with |r| ≤ ln2/2, then a degree-6 Taylor polynomial; only
/// arithmetic and bit operations, so a loop of it vectorizes.
#[inline(always)]
fn exp(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // Adding and subtracting 1.5·2^23 rounds to the nearest integer without a libm call.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 0.0);
    let n = (x * std::f32::consts::LOG2_E + ROUND) - ROUND;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let p = 1.0 + r * (1.0 + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    p * scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_3e_7_of_the_exact_value_on_a_softmax_range() {
        let mut worst = 0f64;
        for i in 0..=870_000 {
            let x = -(i as f32) * 1e-4;
            let exact = (x as f64).exp();
            worst = worst.max(((exp(x) as f64) - exact).abs() / exact);
        }
        assert!(worst < 3e-7, "worst relative error {worst}");
        assert_eq!(exp(0.0), 1.0);
        assert!(exp(-1e4) > 0.0 && exp(-1e4) < 2e-38, "a masked score weighs next to nothing");
        assert!(exp(f32::NEG_INFINITY) < 2e-38);
    }

    #[test]
    fn refuses_integers_and_scalars() {
        let e = RowSoftmax.output_facts(&[&i64::fact([2, 3])]).unwrap_err().to_string();
        assert!(e.contains("RowSoftmax on I64"), "{e}");
        let e = RowSoftmax.output_facts(&[&f32::fact([0usize; 0])]).unwrap_err().to_string();
        assert!(e.contains("rank 1 or more"), "{e}");
    }

    #[test]
    fn a_row_sums_to_one_like_the_textbook_softmax() {
        for width in [1, 3, 8, 13, 50, 64] {
            let mut row: Vec<f32> = (0..width).map(|i| ((i * 37 % 11) as f32 - 5.0) * 1.7).collect();
            if width > 2 {
                row[1] = -10_000.0; // a masked position
            }
            let x = row.clone();
            softmax_row(&mut row);
            let max = x.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
            let sum: f64 = x.iter().map(|&v| (v as f64 - max).exp()).sum();
            for (got, v) in row.iter().zip(&x) {
                let want = (*v as f64 - max).exp() / sum;
                assert!((*got as f64 - want).abs() < 1e-6, "width {width}: {got} vs {want}");
            }
        }
    }
}

//! f32 ↔ f16 casts a whole slice at a time.
//!
//! tract 0.23.9 casts a tensor element by element (`Tensor::natural_cast`,
//! one `half` conversion call per value). The mixed f16 modes cast every
//! activation on its way into and out of the f32 ops, and on a Cortex-A76
//! those casts were a quarter of a text's instructions. `half`'s slice
//! conversion runs the CPU's own conversion instructions four or eight values
//! at a time (aarch64 FP16, x86 F16C) where it has them. [`use_half_casts`]
//! swaps [`HalfCast`] in for every f32 ↔ f16 Cast of a typed model before
//! optimization; values are bit for bit what tract's cast gives (both round
//! to nearest even). Checked below and in `tests/compute_modes.rs`.

use half::slice::HalfFloatSliceExt;
use tract_nnef::tract_core::internal::*;
use tract_nnef::tract_core::ops::cast::Cast;

/// Replaces every f32 → f16 and f16 → f32 Cast by [`HalfCast`]; returns how many.
pub fn use_half_casts(model: &mut TypedModel) -> TractResult<usize> {
    let mut replaced = 0;
    for id in 0..model.nodes.len() {
        let node = &model.nodes[id];
        let Some(cast) = node.op_as::<Cast>() else { continue };
        let from = model.outlet_fact(node.inputs[0])?;
        let pair = matches!((from.datum_type, cast.to), (DatumType::F32, DatumType::F16) | (DatumType::F16, DatumType::F32));
        if pair && from.is_plain() {
            model.nodes[id].op = Box::new(HalfCast { to: cast.to });
            replaced += 1;
        }
    }
    Ok(replaced)
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HalfCast {
    /// F16 or F32: the input is the other one.
    pub to: DatumType,
}

impl Op for HalfCast {
    fn name(&self) -> StaticName {
        "HalfCast".into()
    }

    op_as_typed_op!();
}

impl EvalOp for HalfCast {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let from = input.datum_type();
        if from == self.to {
            return Ok(tvec!(input));
        }
        let mut output = Tensor::zero_dt(self.to, input.shape())?;
        {
            let source = input.try_as_plain_ram()?;
            let mut target = output.try_as_plain_ram_mut()?;
            match (from, self.to) {
                (DatumType::F32, DatumType::F16) => target.as_slice_mut::<f16>()?.convert_from_f32_slice(source.as_slice::<f32>()?),
                (DatumType::F16, DatumType::F32) => source.as_slice::<f16>()?.convert_to_f32_slice(target.as_slice_mut::<f32>()?),
                _ => bail!("HalfCast from {from:?} to {:?}", self.to),
            }
        }
        Ok(tvec!(output.into_tvalue()))
    }
}

impl TypedOp for HalfCast {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(inputs.len() == 1, "HalfCast takes one tensor");
        let from = inputs[0].datum_type;
        ensure!(
            matches!((from, self.to), (DatumType::F32, DatumType::F16) | (DatumType::F16, DatumType::F32)),
            "HalfCast from {from:?} to {:?}",
            self.to
        );
        Ok(tvec!(self.to.fact(inputs[0].shape.clone())))
    }

    // Element-wise, like tract's Cast: axis changes pass through it.
    fn axes_mapping(&self, inputs: &[&TypedFact], outputs: &[&TypedFact]) -> TractResult<AxesMapping> {
        AxesMapping::natural(inputs, outputs)
    }

    fn change_axes(&self, model: &TypedModel, node: &TypedNode, _io: InOut, change: &AxisOp) -> TractResult<Option<AxisChangeConsequence>> {
        Ok(Some(AxisChangeConsequence::new(model, node, None, change)))
    }

    as_op!();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(op: HalfCast, input: Tensor) -> Tensor {
        let out = op.eval(&EvalContext::out_of_plan(), tvec!(input.into_tvalue())).unwrap();
        out[0].clone().into_tensor()
    }

    #[test]
    fn casts_bit_for_bit_like_tracts_cast_both_ways() {
        // Odd lengths (a tail after the chunks of 4 or 8), rounding ties, out-of-range, NaN.
        for len in [1usize, 3, 4, 7, 8, 9, 33] {
            let values: Vec<f32> = (0..len).map(|i| (i as f32 - 4.0) * 0.3337 + 1e-4 * (i % 3) as f32).collect();
            let mut values = values;
            values[0] = if len > 2 { 70_000.0 } else { 1.0 + f32::EPSILON };
            let x = tensor1(&values);
            let ours = run(HalfCast { to: DatumType::F16 }, x.clone());
            let tracts = x.cast_to_dt(DatumType::F16).unwrap().into_owned();
            assert_eq!(ours, tracts, "f32 → f16, {len} values");
            let back = run(HalfCast { to: DatumType::F32 }, ours.clone());
            assert_eq!(back, ours.cast_to_dt(DatumType::F32).unwrap().into_owned(), "f16 → f32, {len} values");
        }
        let nan = run(HalfCast { to: DatumType::F16 }, tensor1(&[f32::NAN]));
        assert!(nan.try_as_plain_ram().unwrap().as_slice::<f16>().unwrap()[0].is_nan());
    }

    #[test]
    fn keeps_the_shape_and_refuses_other_types() {
        let x = Tensor::from_shape(&[2, 3], &[1f32, 2., 3., 4., 5., 6.]).unwrap();
        assert_eq!(run(HalfCast { to: DatumType::F16 }, x).shape(), &[2, 3]);
        let e = HalfCast { to: DatumType::F16 }.output_facts(&[&i64::fact([2])]).unwrap_err().to_string();
        assert!(e.contains("HalfCast from I64"), "{e}");
    }
}

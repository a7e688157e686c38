//! Reading a bundle's ONNX graphs into typed tract models (the `onnx`
//! feature; a board binary built without it reads NNEF bundles only).
//! The parser is tract's, with LayerNormalization built as the runtime's
//! [`FusedLayerNorm`] where it can be.

use crate::checks::{self, Mismatch, WeightTypes};
use crate::fused_norm::FusedLayerNorm;
use std::sync::{Arc, OnceLock};
use tract_onnx::model::{Onnx, ParsingContext};
use tract_onnx::pb::{ModelProto, NodeProto};
use tract_onnx::tract_hir::internal::*;

/// Why a graph's bytes did not become a typed model.
pub enum ReadError {
    /// The graph does not fit what a bundle graph may be.
    Mismatch(Mismatch),
    /// The protobuf, or tract's parser and typing, failed.
    Graph(TractError),
}

/// The typed (not yet optimized) model of an ONNX graph's verified bytes,
/// with the fused LayerNorm or tract's own expansion; counts its weights.
pub fn read(bytes: &[u8], fuse_layer_norm: bool, weights: &mut WeightTypes) -> Result<TypedModel, ReadError> {
    // Decoded from the verified bytes in place (tract's reader would copy them first).
    let proto = <ModelProto as prost::Message>::decode(bytes).map_err(|e| ReadError::Graph(e.into()))?;
    checks::graph_proto(&proto).map_err(ReadError::Mismatch)?;
    weights.add_onnx(&proto);
    let onnx = if fuse_layer_norm { self::onnx() } else { stock_onnx() };
    onnx.model_for_proto_model(&proto).and_then(|m| m.into_typed()).map_err(ReadError::Graph)
}

type Builder = fn(&ParsingContext, &NodeProto) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)>;

/// tract's ONNX framework with the fused LayerNormalization registered (built once).
pub fn onnx() -> &'static Onnx {
    static ONNX: OnceLock<Onnx> = OnceLock::new();
    ONNX.get_or_init(|| {
        let mut onnx = tract_onnx::onnx();
        onnx.op_register.insert("LayerNormalization", layer_norm);
        onnx
    })
}

/// The stock tract parser (no fused op): for comparing plans, and its
/// LayerNormalization builder takes the forms the fused op does not.
pub fn stock_onnx() -> &'static Onnx {
    static ONNX: OnceLock<Onnx> = OnceLock::new();
    ONNX.get_or_init(tract_onnx::onnx)
}

fn layer_norm(ctx: &ParsingContext, node: &NodeProto) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let initializers = &ctx.model.graph.as_ref().map(|g| g.initializer.as_slice()).unwrap_or_default();
    let is_constant = |name: &String| initializers.iter().any(|t| &t.name == name);
    let axis = node.get_attr_opt::<i64>("axis")?.unwrap_or(-1);
    let one_output = node.output.iter().skip(1).all(|o| o.is_empty());
    if axis == -1 && one_output && node.input.len() == 3 && node.input[1..].iter().all(is_constant) {
        let epsilon = node.get_attr_opt::<f32>("epsilon")?.unwrap_or(1e-5);
        return Ok((expand(FusedLayerNormExpansion { epsilon }), vec![]));
    }
    let stock: Builder = stock_onnx().op_register.0["LayerNormalization"];
    stock(ctx, node)
}

/// The inference-time face of [`FusedLayerNorm`]: typing rules, and the
/// wiring once scale and bias are known constants.
#[derive(Debug, Clone)]
struct FusedLayerNormExpansion {
    epsilon: f32,
}

impl Expansion for FusedLayerNormExpansion {
    fn name(&self) -> StaticName {
        "FusedLayerNorm".into()
    }

    fn rules<'r, 'p: 'r, 's: 'r>(&'s self, s: &mut Solver<'r>, inputs: &'p [TensorProxy], outputs: &'p [TensorProxy]) -> InferenceResult {
        check_input_arity(inputs, 3)?;
        check_output_arity(outputs, 1)?;
        s.equals(&inputs[0].datum_type, &outputs[0].datum_type)?;
        s.equals(&inputs[0].shape, &outputs[0].shape)?;
        Ok(())
    }

    fn wire(&self, prefix: &str, model: &mut TypedModel, inputs: &[OutletId]) -> TractResult<TVec<OutletId>> {
        let constant = |outlet: OutletId, what: &str| -> TractResult<Arc<[f32]>> {
            let fact = model.outlet_fact(outlet)?;
            let value = fact.konst.as_ref().ok_or_else(|| format_err!("{prefix}: LayerNormalization {what} is not a constant"))?;
            let value = value.cast_to::<f32>()?;
            Ok(value.try_as_plain_ram()?.as_slice::<f32>()?.into())
        };
        let (scale, bias) = (constant(inputs[1], "scale")?, constant(inputs[2], "bias")?);
        let op = FusedLayerNorm::new(scale, bias, self.epsilon, false)?;
        model.wire_node(prefix, op, &inputs[..1])
    }
}


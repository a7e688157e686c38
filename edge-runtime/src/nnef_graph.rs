//! tract's NNEF archive (`*.nnef.tar`) of a typed graph, with the runtime's
//! own ops (fused LayerNorm, row softmax, GeluExact) as `edge_runtime_*`
//! primitives: writing one, and reading one from a bundle (untrusted input).
//! The NNEF variant of a bundle and `to-nnef`, which writes it, are
//! [`crate::nnef`]; the runtime reads its graphs here.

use crate::fused_norm::FusedLayerNorm;
use crate::row_softmax::RowSoftmax;
use std::io::Read;
use std::sync::{Arc, OnceLock};
use tract_nnef::internal::*;
use tract_nnef::tract_core::ops::nn::GeluExact;
use tract_nnef::ser::{logical, numeric};

/// tract's NNEF framework (every core op) with the runtime's own ops (built
/// once): what `to-nnef` writes with.
pub fn framework() -> &'static Nnef {
    static NNEF: OnceLock<Nnef> = OnceLock::new();
    NNEF.get_or_init(|| tract_nnef::nnef().with_registry(registry()))
}

/// The reader of twins: only the ops a twin uses (`crate::nnef_ops`) and the
/// runtime's own (built once).
pub fn reader() -> &'static Nnef {
    static NNEF: OnceLock<Nnef> = OnceLock::new();
    NNEF.get_or_init(|| crate::nnef_ops::reader(registry()))
}

fn registry() -> Registry {
    let mut r = Registry::new("edge_runtime").with_doc("The edge runtime's own ops: fused LayerNorm, row softmax.");
    r.register_dumper(dump_layer_norm);
    r.register_primitive(
        "edge_runtime_layer_norm",
        &[
            TypeName::Scalar.tensor().named("input"),
            TypeName::Scalar.tensor().named("residual"),
            TypeName::Scalar.tensor().named("scale"),
            TypeName::Scalar.tensor().named("bias"),
            TypeName::Scalar.named("epsilon"),
            TypeName::Logical.named("with_residual"),
        ],
        &[("output", TypeName::Scalar.tensor())],
        load_layer_norm,
    );
    // tract 0.23.9 fuses erf-GELU into GeluExact while decluttering and has
    // no NNEF form for it.
    r.register_unit_element_wise("edge_runtime_gelu_exact", &GeluExact {});
    r.register_dumper(dump_row_softmax);
    r.register_primitive(
        "edge_runtime_row_softmax",
        &[TypeName::Scalar.tensor().named("input")],
        &[("output", TypeName::Scalar.tensor())],
        load_row_softmax,
    );
    r
}

fn dump_layer_norm(ast: &mut IntoAst, node: &TypedNode, op: &FusedLayerNorm) -> TractResult<Option<Arc<RValue>>> {
    let input = ast.mapping[&node.inputs[0]].clone();
    // Without a residual the input stands in for it: the flag says it is unused.
    let residual = node.inputs.get(1).map(|i| ast.mapping[i].clone()).unwrap_or_else(|| input.clone());
    let (scale, bias) = op.parameters();
    let scale = ast.konst_variable(format!("{}.scale", node.name), &Arc::new(tensor1(scale)))?;
    let bias = ast.konst_variable(format!("{}.bias", node.name), &Arc::new(tensor1(bias)))?;
    Ok(Some(invocation(
        "edge_runtime_layer_norm",
        &[input, residual, scale, bias],
        &[("epsilon", numeric(op.epsilon())), ("with_residual", logical(op.has_residual()))],
    )))
}

fn load_layer_norm(builder: &mut ModelBuilder, invocation: &ResolvedInvocation) -> TractResult<Value> {
    let input: OutletId = invocation.named_arg_as(builder, "input")?;
    let residual: OutletId = invocation.named_arg_as(builder, "residual")?;
    let values = |builder: &mut ModelBuilder, name: &str| -> TractResult<Arc<[f32]>> {
        let t: Arc<Tensor> = invocation.named_arg_as(builder, name)?;
        ensure!(t.rank() == 1, "edge_runtime_layer_norm: {name} has rank {}, expected 1", t.rank());
        let t = t.cast_to::<f32>()?;
        Ok(t.try_as_plain_ram()?.as_slice::<f32>()?.into())
    };
    let (scale, bias) = (values(builder, "scale")?, values(builder, "bias")?);
    let epsilon: f32 = invocation.named_arg_as(builder, "epsilon")?;
    let with_residual: bool = invocation.named_arg_as(builder, "with_residual")?;
    let op = FusedLayerNorm::new(scale, bias, epsilon, with_residual)?;
    let inputs = if with_residual { vec![input, residual] } else { vec![input] };
    builder.wire(op, &inputs)
}

fn dump_row_softmax(ast: &mut IntoAst, node: &TypedNode, _op: &RowSoftmax) -> TractResult<Option<Arc<RValue>>> {
    let input = ast.mapping[&node.inputs[0]].clone();
    Ok(Some(invocation("edge_runtime_row_softmax", &[input], &[])))
}

fn load_row_softmax(builder: &mut ModelBuilder, invocation: &ResolvedInvocation) -> TractResult<Value> {
    let input: OutletId = invocation.named_arg_as(builder, "input")?;
    builder.wire(RowSoftmax, &[input])
}

/// The archive of a typed graph.
pub fn write_graph(model: &TypedModel) -> TractResult<Vec<u8>> {
    framework().write_to_tar(model, Vec::new())
}

/// Entries an archive of ours may hold: the graph document and its tensors,
/// at the top level. tract's reader would also take sub-models (`dir/graph.nnef`,
/// on a path that panics on a malformed one), and a bundle has none.
fn check_entries(bytes: &[u8]) -> Result<(), String> {
    let mut archive = tar::Archive::new(bytes);
    let entries = archive.entries().map_err(|e| format!("not a tar archive: {e}"))?;
    let mut has_graph = false;
    for entry in entries {
        let entry = entry.map_err(|e| format!("a malformed tar entry: {e}"))?;
        let path = entry.path().map_err(|e| format!("a tar entry with a bad name: {e}"))?.into_owned();
        let name = path.to_str().ok_or_else(|| format!("tar entry {path:?} is not UTF-8"))?;
        let name = name.strip_prefix("./").unwrap_or(name);
        let plain = !name.is_empty() && !name.contains('/') && !name.starts_with('.');
        if !plain || !(name == "graph.nnef" || name == "graph.quant" || name.ends_with(".dat")) {
            return Err(format!("tar entry {name:?} is not graph.nnef, graph.quant or a top-level .dat tensor"));
        }
        has_graph |= name == "graph.nnef";
    }
    if !has_graph {
        return Err("the archive has no graph.nnef".into());
    }
    Ok(())
}

/// The typed graph of an archive read from a bundle (untrusted): the entries
/// are checked first, then tract's NNEF reader builds the model.
pub fn read_graph(mut bytes: &[u8]) -> Result<TypedModel, ReadError> {
    check_entries(bytes).map_err(ReadError::Archive)?;
    let reader: &mut dyn Read = &mut bytes;
    self::reader().model_for_read(reader).map_err(ReadError::Graph)
}

#[derive(Debug)]
pub enum ReadError {
    /// What the archive holds is not a bundle graph's layout.
    Archive(String),
    /// tract's reader refused the graph.
    Graph(TractError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_ops_survive_a_round_trip() {
        let mut model = TypedModel::default();
        let x = model.add_source("x", f32::fact([2, 3, 4])).unwrap();
        let r = model.add_source("r", f32::fact([1, 3, 4])).unwrap();
        let op = FusedLayerNorm::new(vec![1.0, 2.0, 3.0, 4.0].into(), vec![0.5; 4].into(), 1e-12, true).unwrap();
        let n = model.wire_node("ln", op.clone(), &[x, r]).unwrap();
        let s = model.wire_node("sm", RowSoftmax, &n).unwrap();
        model.select_output_outlets(&s).unwrap();
        let back = read_graph(&write_graph(&model).unwrap()).unwrap();
        let ops: Vec<String> = back.nodes().iter().map(|n| n.op().name().to_string()).collect();
        assert!(ops.contains(&"FusedAddLayerNorm".to_string()) && ops.contains(&"RowSoftmax".to_string()), "{ops:?}");
        let ln = back.nodes().iter().find_map(|n| n.op_as::<FusedLayerNorm>()).unwrap();
        assert_eq!(ln, &op);
    }

    #[test]
    fn the_reader_refuses_an_op_a_twin_never_uses_by_name() {
        let mut model = TypedModel::default();
        let x = model.add_source("x", f32::fact([2, 3])).unwrap();
        let y = model.wire_node("sin", tract_nnef::tract_core::ops::math::sin(), &[x]).unwrap();
        model.select_output_outlets(&y).unwrap();
        // tract's full framework writes it; the twins' reader does not know `sin`.
        let archive = write_graph(&model).unwrap();
        let Err(ReadError::Graph(e)) = read_graph(&archive) else { panic!("an archive using `sin` was read") };
        assert!(format!("{e:#}").contains("No definition for operator Identifier(\"sin\")"), "{e:#}");
    }
}

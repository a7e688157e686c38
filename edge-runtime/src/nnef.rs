//! The NNEF variant of a bundle: every segment stored as tract's NNEF archive
//! (`*.nnef.tar`) of the typed graph the ONNX load builds, own ops included.
//!
//! Why: a board binary that reads these needs neither tract's ONNX parser nor
//! its inference analyser (tract-onnx, tract-hir), and a load skips parsing
//! the protobuf and typing the graph. `edge-runtime to-nnef` writes the
//! variant from an ONNX bundle with a full build; [`read_graph`] loads it.
//!
//! The graph is stored decluttered (tract's typed graph has ops with no NNEF
//! form until then), so a load only optimizes it. Decluttering folds int8
//! matrix weights and their scales into f32 constants, as the ONNX load does
//! in memory: an int8 bundle's variant keeps its int8 embedding table but
//! stores the layers' matrices in f32. The runtime's own ops (and GeluExact,
//! which tract 0.23.9 cannot write) travel as `edge_runtime_*` primitives.

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

/// Writes the NNEF variant of an ONNX bundle into `out` (replaced whole):
/// each graph read as the runtime reads it with `options` (own ops in or
/// out), stored as `<stem>.nnef.tar`; the tokenizer and other files copied.
#[cfg(feature = "onnx")]
pub fn convert_bundle(bundle: &bundle::BundleFiles, out: &std::path::Path, options: &crate::LoadOptions) -> Result<bundle::Manifest, crate::runtime::RuntimeError> {
    use crate::runtime::RuntimeError;
    use bundle::GraphFormat;
    let mut manifest = bundle.manifest.clone();
    if manifest.graph_format() != GraphFormat::Onnx {
        let path = bundle.path_of(&manifest.embeddings).display().to_string();
        return Err(RuntimeError::Mismatch { path, what: "already an NNEF graph; to-nnef converts ONNX bundles".into() });
    }
    if manifest.precision == bundle::manifest::Precision::F16 {
        // tract folds the f16 weights' casts while decluttering, so the twin would
        // store them in f32: twice the size, for no gain over the f32 bundle's twin.
        let path = bundle.path_of("manifest.json");
        return Err(RuntimeError::Input(format!(
            "{}: precision f16: an f16 bundle has no NNEF twin (its weights would be stored in f32); \
             convert the f32 bundle instead, and `--compute f16` runs that twin in f16 on a board with f16 arithmetic",
            path.display()
        )));
    }
    let graphs: Vec<String> = manifest.graphs().into_iter().map(String::from).collect();
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut renamed = std::collections::BTreeMap::new();
    for file in &graphs {
        let model = crate::runtime::parse_graph(bundle, file, &mut Default::default(), options)?;
        let path = bundle.path_of(file).display().to_string();
        let bytes = model.into_decluttered().and_then(|m| write_graph(&m)).map_err(|error| RuntimeError::Graph { path: path.clone(), error })?;
        // What converts must load on a board: read it back with the twins' reader.
        read_graph(&bytes).map_err(|e| {
            let why = match e {
                ReadError::Archive(what) => what,
                ReadError::Graph(error) => format!("{error:#}"),
            };
            RuntimeError::Mismatch { path: path.clone(), what: format!("its NNEF twin does not read back with the board's reader: {why}") }
        })?;
        let name = GraphFormat::Nnef.file_name(file.strip_suffix(".onnx").unwrap_or(file));
        renamed.insert(file.clone(), name.clone());
        files.push((name, bytes));
    }
    let rename = |f: &mut String| *f = renamed[f.as_str()].clone();
    rename(&mut manifest.embeddings);
    manifest.layers.iter_mut().for_each(rename);
    manifest.exits.iter_mut().flatten().for_each(rename);
    for name in bundle.manifest.sha256.keys().filter(|n| !renamed.contains_key(*n)) {
        files.push((name.clone(), bundle.bytes(name).unwrap_or_default().to_vec()));
    }
    let ops = match (options.fuse_layer_norm, options.row_softmax) {
        (true, true) => "fused LayerNorm, row softmax",
        (true, false) => "fused LayerNorm",
        (false, true) => "row softmax",
        (false, false) => "tract's stock ops",
    };
    manifest.provenance.insert("graphs".into(), format!("NNEF archives of tract {}'s typed graphs ({ops}), converted from ONNX by edge-runtime to-nnef", crate::TRACT_VERSION));
    Ok(bundle::manifest::write_bundle(out, manifest, &files)?)
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

//! Rewriting one bundle graph (an ONNX `ModelProto`) to int8 or f16 weights.
//!
//! - int8, `weight-only`: `MatMul(x, W)` → `MatMul(x, DequantizeLinear(Wq, s, 0; axis=1))`.
//! - int8, `dynamic-u8`: `MatMul(x, W)` → `DynamicQuantizeLinear(x)` →
//!   `MatMulInteger(xq, Wq, xzp, 0)` → `Cast` → `· (xs · s)`: ONNX's standard dynamic form.
//! - int8, `dynamic-i8`: x quantized symmetric int8 per token (`max|x|/127`) →
//!   `MatMulInteger(xq, Wq)` (i8 × i8) → `Cast` → `· xs · s`; x is quantized once
//!   for all the products that read it (Q, K and V share one).
//! - int8 embedding tables (both forms): `Gather(E, ids)` → `Cast(Gather(Eq, ids)) · Gather(s, ids)`,
//!   so the table stays int8 in memory too.
//! - int8, other large tables (position embeddings): per-row int8 + `DequantizeLinear`.
//! - f16: every float initializer of 16+ values stored as FLOAT16 behind a `Cast` to f32; the
//!   runtime folds the cast (f32 compute) or translates the whole graph to f16 (f16 compute).
//!
//! Weights are symmetric per output channel (columns of the (in, out) MatMul
//! weight, rows of an embedding table); zero points are 0.

use crate::numeric::{dequantize, error_stats, quantize_per_channel, to_f16, QuantizedMatrix};
use bundle::manifest::IR_VERSION;
use serde::Serialize;
use std::collections::HashMap;
use tract_onnx::pb::{attribute_proto::AttributeType, tensor_proto::DataType, AttributeProto, ModelProto, NodeProto, TensorProto};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Int8Form {
    /// int8 weights dequantized before a float MatMul.
    WeightOnly,
    /// ONNX's standard dynamic form: DynamicQuantizeLinear (uint8, per tensor) → MatMulInteger.
    DynamicU8,
    /// Activations quantized symmetric int8 per token on the fly → MatMulInteger (i8 × i8).
    DynamicI8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "to")]
pub enum Target {
    Int8 { form: Int8Form },
    F16,
}

/// What happened to one weight tensor.
#[derive(Debug, Clone, Serialize)]
pub struct TensorReport {
    pub graph: String,
    pub tensor: String,
    pub shape: Vec<usize>,
    /// "int8", "f16" or "f32" (kept).
    pub stored_as: String,
    pub bytes_before: usize,
    pub bytes_after: usize,
    pub max_abs_error: f32,
    pub sqnr_db: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("{graph}: initializer {tensor}: {what}")]
    Initializer { graph: String, tensor: String, what: String },
}

/// The f32 values of an initializer (raw little-endian or float_data).
pub fn float_values(t: &TensorProto) -> Option<Vec<f32>> {
    if t.data_type != DataType::Float as i32 {
        return None;
    }
    if !t.raw_data.is_empty() {
        if !t.raw_data.len().is_multiple_of(4) {
            return None;
        }
        return Some(t.raw_data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect());
    }
    Some(t.float_data.clone())
}

/// [`float_values`] of a tensor whose element count matches its dims (a
/// damaged graph can claim any shape): `Ok(None)` for a non-float tensor.
fn shaped_float_values(t: &TensorProto, graph: &str) -> Result<Option<Vec<f32>>, GraphError> {
    let bad = |what: String| GraphError::Initializer { graph: graph.into(), tensor: t.name.clone(), what };
    if t.data_type != DataType::Float as i32 {
        return Ok(None);
    }
    let values = float_values(t).ok_or_else(|| bad("f32 data whose byte count is not a multiple of 4".into()))?;
    let count = t.dims.iter().try_fold(1usize, |n, &d| usize::try_from(d).ok().and_then(|d| n.checked_mul(d)));
    match count {
        Some(n) if n == values.len() => Ok(Some(values)),
        _ => Err(bad(format!("dims {:?} do not match its {} values", t.dims, values.len()))),
    }
}

fn tensor(name: &str, dims: &[usize], data_type: DataType, raw: Vec<u8>) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: data_type as i32,
        raw_data: raw,
        ..Default::default()
    }
}

fn f32_tensor(name: &str, dims: &[usize], v: &[f32]) -> TensorProto {
    tensor(name, dims, DataType::Float, v.iter().flat_map(|x| x.to_le_bytes()).collect())
}

fn i8_tensor(name: &str, dims: &[usize], v: &[i8]) -> TensorProto {
    tensor(name, dims, DataType::Int8, v.iter().map(|&x| x as u8).collect())
}

fn node(op: &str, name: &str, inputs: &[&str], outputs: &[&str], attribute: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        name: name.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        attribute,
        ..Default::default()
    }
}

fn attr_int(name: &str, i: i64) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: AttributeType::Int as i32, i, ..Default::default() }
}

/// Per-channel quantization of a (in, out) MatMul weight along its columns:
/// the int8 values back in (in, out) order, one scale per output column.
fn quantize_columns(w: &[f32], rows: usize, cols: usize) -> Result<(QuantizedMatrix, Vec<i8>, Vec<f32>), crate::numeric::LengthMismatch> {
    let mut t = vec![0f32; w.len()];
    for i in 0..rows {
        for j in 0..cols {
            t[j * rows + i] = w[i * cols + j];
        }
    }
    let q = quantize_per_channel(&t, cols, rows)?;
    let mut back = vec![0i8; w.len()];
    for j in 0..cols {
        for i in 0..rows {
            back[i * cols + j] = q.values[j * rows + i];
        }
    }
    let deq_t = dequantize(&q);
    let mut deq = vec![0f32; w.len()];
    for j in 0..cols {
        for i in 0..rows {
            deq[i * cols + j] = deq_t[j * rows + i];
        }
    }
    Ok((q, back, deq))
}

/// Rewrites `model` (graph file `graph`) in place; `keep(tensor)` says which
/// weights stay f32. Returns one report per weight considered.
/// The `dynamic-i8` activations: each activation tensor quantized once, however
/// many products read it (a layer's Q, K and V projections share their input,
/// so quantizing per product did that work three times).
#[derive(Default)]
struct PerTokenInt8 {
    /// Activation name → (its int8 values, its per-token scales).
    done: HashMap<String, (String, String)>,
    constants: bool,
}

impl PerTokenInt8 {
    /// The names of `x` as int8 and of its scales, wiring their nodes the first
    /// time `x` is asked for: s_x = max|x| / 127 per token (row of the last
    /// axis), so a text's result does not depend on the others in its batch.
    fn quantized(&mut self, x: &str, nodes: &mut Vec<NodeProto>, inits: &mut Vec<TensorProto>) -> (String, String) {
        if let Some(names) = self.done.get(x) {
            return names.clone();
        }
        let (c127, eps, lo, hi, axes) = ("per_token.c127", "per_token.eps", "per_token.lo", "per_token.hi", "per_token.axes");
        if !std::mem::replace(&mut self.constants, true) {
            inits.push(f32_tensor(c127, &[], &[127.0]));
            inits.push(f32_tensor(eps, &[], &[1e-12]));
            inits.push(f32_tensor(lo, &[], &[-127.0]));
            inits.push(f32_tensor(hi, &[], &[127.0]));
            inits.push(TensorProto { name: axes.into(), dims: vec![1], data_type: DataType::Int64 as i32, int64_data: vec![-1], ..Default::default() });
        }
        let p = |s: &str| format!("{x}.per_token.{s}");
        nodes.push(node("Abs", &p("abs"), &[x], &[&p("abs")], vec![]));
        nodes.push(node("ReduceMax", &p("absmax"), &[&p("abs"), axes], &[&p("absmax")], vec![attr_int("keepdims", 1)]));
        nodes.push(node("Div", &p("sx0"), &[&p("absmax"), c127], &[&p("sx0")], vec![]));
        nodes.push(node("Add", &p("sx"), &[&p("sx0"), eps], &[&p("sx")], vec![]));
        nodes.push(node("Div", &p("scaled"), &[x, &p("sx")], &[&p("xs")], vec![]));
        nodes.push(node("Round", &p("round"), &[&p("xs")], &[&p("xr")], vec![]));
        nodes.push(node("Clip", &p("clip"), &[&p("xr"), lo, hi], &[&p("xc")], vec![]));
        nodes.push(node("Cast", &p("to_i8"), &[&p("xc")], &[&p("xq")], vec![attr_int("to", DataType::Int8 as i64)]));
        let names = (p("xq"), p("sx"));
        self.done.insert(x.to_string(), names.clone());
        names
    }
}

pub fn quantize_model(
    model: &mut ModelProto,
    graph: &str,
    target: Target,
    keep: &dyn Fn(&str) -> bool,
) -> Result<Vec<TensorReport>, GraphError> {
    let g = model.graph.as_mut().ok_or_else(|| GraphError::Initializer {
        graph: graph.into(),
        tensor: "-".into(),
        what: "the model has no graph".into(),
    })?;
    let inits: HashMap<String, usize> = g.initializer.iter().enumerate().map(|(i, t)| (t.name.clone(), i)).collect();
    let mut reports = Vec::new();
    let mut remove = std::collections::HashSet::new();
    let mut new_inits = Vec::new();
    let mut nodes = Vec::with_capacity(g.node.len());
    let report = |tensor: &str, shape: &[usize], stored: &str, before: usize, after: usize, reference: &[f32], approx: &[f32]| {
        let e = error_stats(reference, approx).map_err(|e| GraphError::Initializer { graph: graph.into(), tensor: tensor.into(), what: e.to_string() })?;
        Ok::<_, GraphError>(TensorReport {
            graph: graph.into(),
            tensor: tensor.into(),
            shape: shape.to_vec(),
            stored_as: stored.into(),
            bytes_before: before,
            bytes_after: after,
            max_abs_error: e.max_abs,
            sqnr_db: e.sqnr_db,
        })
    };
    let shape_error = |tensor: &str, e: crate::numeric::LengthMismatch| GraphError::Initializer { graph: graph.into(), tensor: tensor.into(), what: e.to_string() };

    if target == Target::F16 {
        for t in g.initializer.iter_mut() {
            let Some(v) = shaped_float_values(t, graph)? else { continue };
            if v.len() < 16 {
                continue;
            }
            let shape: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
            if keep(&t.name) {
                reports.push(report(&t.name, &shape, "f32", v.len() * 4, v.len() * 4, &v, &v)?);
                continue;
            }
            let h = to_f16(&v);
            let back = crate::numeric::from_f16(&h);
            reports.push(report(&t.name, &shape, "f16", v.len() * 4, v.len() * 2, &v, &back)?);
            let original = std::mem::take(&mut t.name);
            let stored = format!("{original}.f16");
            *t = tensor(&stored, &shape, DataType::Float16, h.iter().flat_map(|x| x.to_le_bytes()).collect());
            nodes.push(node("Cast", &format!("{original}.cast"), &[&stored], &[&original], vec![attr_int("to", DataType::Float as i64)]));
        }
        // The casts come first so every consumer sees its f32 input defined.
        nodes.append(&mut g.node);
        g.node = nodes;
        return Ok(reports);
    }

    let Target::Int8 { form } = target else { unreachable!() };
    let mut per_token = PerTokenInt8::default();
    for n in std::mem::take(&mut g.node) {
        let weight_idx = match n.op_type.as_str() {
            "MatMul" => 1,
            "Gather" => 0,
            _ => usize::MAX,
        };
        let init = n.input.get(weight_idx).and_then(|w| inits.get(w)).map(|&i| &g.initializer[i]);
        // Only well-formed two-input, one-output nodes are rewritten; a
        // malformed one is left for the runtime's load checks to refuse.
        let Some(init) = init.filter(|t| t.dims.len() == 2 && n.input.len() == 2 && n.output.len() == 1) else {
            nodes.push(n);
            continue;
        };
        let values = shaped_float_values(init, graph)?.ok_or_else(|| GraphError::Initializer {
            graph: graph.into(),
            tensor: init.name.clone(),
            what: "expected f32 data".into(),
        })?;
        let (rows, cols) = (init.dims[0] as usize, init.dims[1] as usize);
        let name = init.name.clone();
        if keep(&name) {
            reports.push(report(&name, &[rows, cols], "f32", values.len() * 4, values.len() * 4, &values, &values)?);
            nodes.push(n);
            continue;
        }
        remove.insert(name.clone());
        let (q_name, s_name, z_name) = (format!("{name}.int8"), format!("{name}.scale"), format!("{name}.zero_point"));
        let out = n.output[0].clone();
        if n.op_type == "Gather" {
            // Embedding table: one scale per row, gathered with the rows.
            let q = quantize_per_channel(&values, rows, cols).map_err(|e| shape_error(&name, e))?;
            let deq = dequantize(&q);
            reports.push(report(&name, &[rows, cols], "int8", values.len() * 4, values.len() + rows * 4, &values, &deq)?);
            let ids = n.input[1].clone();
            new_inits.push(i8_tensor(&q_name, &[rows, cols], &q.values));
            new_inits.push(f32_tensor(&s_name, &[rows, 1], &q.scales));
            let (gq, gf, gs) = (format!("{out}.q"), format!("{out}.f"), format!("{out}.s"));
            nodes.push(node("Gather", &format!("{}.int8", n.name), &[&q_name, &ids], &[&gq], vec![attr_int("axis", 0)]));
            nodes.push(node("Cast", &format!("{}.cast", n.name), &[&gq], &[&gf], vec![attr_int("to", DataType::Float as i64)]));
            nodes.push(node("Gather", &format!("{}.scales", n.name), &[&s_name, &ids], &[&gs], vec![attr_int("axis", 0)]));
            nodes.push(node("Mul", &format!("{}.dequantize", n.name), &[&gf, &gs], &[&out], vec![]));
            continue;
        }
        let (q, q_vals, deq) = quantize_columns(&values, rows, cols).map_err(|e| shape_error(&name, e))?;
        reports.push(report(&name, &[rows, cols], "int8", values.len() * 4, values.len() + cols * 4, &values, &deq)?);
        new_inits.push(i8_tensor(&q_name, &[rows, cols], &q_vals));
        if form != Int8Form::DynamicI8 {
            // i8 × i8 MatMulInteger takes no zero points; the other forms name one.
            new_inits.push(i8_tensor(&z_name, &[cols], &vec![0; cols]));
        }
        let x = n.input[0].clone();
        match form {
            Int8Form::WeightOnly => {
                new_inits.push(f32_tensor(&s_name, &[cols], &q.scales));
                let deq_name = format!("{name}.dequantized");
                nodes.push(node("DequantizeLinear", &format!("{}.dequantize", n.name), &[&q_name, &s_name, &z_name], &[&deq_name], vec![attr_int("axis", 1)]));
                nodes.push(node("MatMul", &n.name, &[&x, &deq_name], &[&out], vec![]));
            }
            Int8Form::DynamicU8 => {
                new_inits.push(f32_tensor(&s_name, &[cols], &q.scales));
                let (xq, xs, xz) = (format!("{out}.xq"), format!("{out}.xs"), format!("{out}.xzp"));
                let (acc, accf, scale) = (format!("{out}.i32"), format!("{out}.f32"), format!("{out}.scale"));
                nodes.push(node("DynamicQuantizeLinear", &format!("{}.quantize_x", n.name), &[&x], &[&xq, &xs, &xz], vec![]));
                nodes.push(node("MatMulInteger", &format!("{}.integer", n.name), &[&xq, &q_name, &xz, &z_name], &[&acc], vec![]));
                nodes.push(node("Cast", &format!("{}.cast", n.name), &[&acc], &[&accf], vec![attr_int("to", DataType::Float as i64)]));
                nodes.push(node("Mul", &format!("{}.scales", n.name), &[&xs, &s_name], &[&scale], vec![]));
                nodes.push(node("Mul", &format!("{}.dequantize", n.name), &[&accf, &scale], &[&out], vec![]));
            }
            Int8Form::DynamicI8 => {
                new_inits.push(f32_tensor(&s_name, &[cols], &q.scales));
                let (xq, sx) = per_token.quantized(&x, &mut nodes, &mut new_inits);
                let nn = |s: &str| format!("{}.{s}", n.name);
                let p = |s: &str| format!("{out}.{s}");
                nodes.push(node("MatMulInteger", &nn("integer"), &[&xq, &q_name], &[&p("i32")], vec![]));
                nodes.push(node("Cast", &nn("cast"), &[&p("i32")], &[&p("f32")], vec![attr_int("to", DataType::Float as i64)]));
                nodes.push(node("Mul", &nn("scale_x"), &[&p("f32"), &sx], &[&p("fx")], vec![]));
                nodes.push(node("Mul", &nn("dequantize"), &[&p("fx"), &s_name], &[&out], vec![]));
            }
        }
    }
    // Any other large table (the position embeddings, read by Slice): int8 on
    // disk with one scale per row, dequantized once at load.
    let mut prologue = Vec::new();
    let handled = remove.clone();
    for t in g.initializer.iter().filter(|t| t.dims.len() == 2 && !handled.contains(&t.name)) {
        // Its dims checked against its data first: a damaged graph can claim any shape.
        let Some(values) = shaped_float_values(t, graph)?.filter(|v| v.len() >= 1024) else { continue };
        let (rows, cols) = (t.dims[0] as usize, t.dims[1] as usize);
        if keep(&t.name) {
            reports.push(report(&t.name, &[rows, cols], "f32", values.len() * 4, values.len() * 4, &values, &values)?);
            continue;
        }
        let q = quantize_per_channel(&values, rows, cols).map_err(|e| shape_error(&t.name, e))?;
        reports.push(report(&t.name, &[rows, cols], "int8", values.len() * 4, values.len() + rows * 4, &values, &dequantize(&q))?);
        let (q_name, s_name, z_name) = (format!("{}.int8", t.name), format!("{}.scale", t.name), format!("{}.zero_point", t.name));
        new_inits.push(i8_tensor(&q_name, &[rows, cols], &q.values));
        new_inits.push(f32_tensor(&s_name, &[rows], &q.scales));
        new_inits.push(i8_tensor(&z_name, &[rows], &vec![0; rows]));
        prologue.push(node("DequantizeLinear", &format!("{}.dequantize", t.name), &[&q_name, &s_name, &z_name], &[&t.name], vec![attr_int("axis", 0)]));
        remove.insert(t.name.clone());
    }
    prologue.extend(nodes);
    g.node = prologue;
    g.initializer.retain(|t| !remove.contains(&t.name));
    g.initializer.extend(new_inits);
    model.ir_version = IR_VERSION;
    Ok(reports)
}

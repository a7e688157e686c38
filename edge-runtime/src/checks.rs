//! What the runtime checks once at load, so that no text ever meets a graph
//! that does not fit the manifest: the graphs' inputs and outputs (count,
//! type, rank, width), the precision the manifest claims against the weights
//! stored, and the tokenizer's ids against the embedding table.

use bundle::manifest::{Manifest, Precision};
#[cfg(feature = "onnx")]
use tract_onnx::pb::{tensor_proto::DataType, ModelProto};
use tract_nnef::prelude::*;

/// What a segment of the bundle is, hence what it must take and give.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Role {
    /// token ids `[batch, seq]` → hidden `[batch, seq, hidden]`
    Embeddings,
    /// hidden, mask → hidden
    Layer,
    /// hidden, mask → logits `[batch, labels]`
    Exit,
}

/// A mismatch between a graph and the manifest, for the file's error.
pub type Mismatch = String;

fn dim(fact: &TypedFact, axis: usize) -> Option<usize> {
    fact.shape.dims().get(axis).and_then(|d| d.as_i64()).and_then(|d| usize::try_from(d).ok())
}

fn expect_rank(what: &str, fact: &TypedFact, rank: usize) -> Result<(), Mismatch> {
    if fact.rank() != rank {
        return Err(format!("{what} has rank {}, expected {rank}", fact.rank()));
    }
    Ok(())
}

fn expect_width(what: &str, fact: &TypedFact, want: usize, of: &str) -> Result<(), Mismatch> {
    match dim(fact, fact.rank().saturating_sub(1)) {
        Some(w) if w == want => Ok(()),
        Some(w) => Err(format!("{what} is {w} wide, but the manifest's {of} is {want}")),
        None => Err(format!("{what} has no fixed width (the manifest's {of} is {want})")),
    }
}

fn expect_float(what: &str, fact: &TypedFact) -> Result<(), Mismatch> {
    if fact.datum_type.is_float() {
        Ok(())
    } else {
        Err(format!("{what} is {:?}, expected a float tensor", fact.datum_type))
    }
}

fn expect_integer(what: &str, fact: &TypedFact) -> Result<(), Mismatch> {
    if fact.datum_type == i64::datum_type() {
        Ok(())
    } else {
        Err(format!("{what} is {:?}, expected i64", fact.datum_type))
    }
}

/// The graph's inputs and outputs fit its role in a bundle with this
/// manifest, so each segment's output is the next one's input.
pub fn signature(model: &TypedModel, role: Role, m: &Manifest) -> Result<(), Mismatch> {
    let facts = |outlets: &[OutletId]| -> Result<Vec<TypedFact>, Mismatch> {
        outlets.iter().map(|&o| model.outlet_fact(o).cloned().map_err(|e| format!("{e}"))).collect()
    };
    let (inputs, outputs) = (facts(model.input_outlets().map_err(|e| format!("{e}"))?)?, facts(model.output_outlets().map_err(|e| format!("{e}"))?)?);
    let want_inputs = if role == Role::Embeddings { 1 } else { 2 };
    if inputs.len() != want_inputs || outputs.len() != 1 {
        return Err(format!("{} inputs and {} outputs, expected {want_inputs} and 1 for {role:?}", inputs.len(), outputs.len()));
    }
    let out = &outputs[0];
    match role {
        Role::Embeddings => {
            expect_rank("the token ids input", &inputs[0], 2)?;
            expect_integer("the token ids input", &inputs[0])?;
        }
        Role::Layer | Role::Exit => {
            expect_rank("the hidden-state input", &inputs[0], 3)?;
            expect_float("the hidden-state input", &inputs[0])?;
            expect_width("the hidden-state input", &inputs[0], m.hidden_size, "hidden_size")?;
            expect_rank("the attention-mask input", &inputs[1], 2)?;
            expect_integer("the attention-mask input", &inputs[1])?;
        }
    }
    expect_float("the output", out)?;
    match role {
        Role::Embeddings | Role::Layer => {
            expect_rank("the output", out, 3)?;
            expect_width("the output", out, m.hidden_size, "hidden_size")
        }
        Role::Exit => {
            expect_rank("the logits output", out, 2)?;
            expect_width("the logits output", out, m.labels.len(), "label count")
        }
    }
}

/// Rows of the word-embedding table: the fewest rows of any 2-d table the
/// embeddings graph gathers from (an int8 table and its per-row scales are
/// two), so every id below it is in bounds for all of them.
pub fn embedding_rows(model: &TypedModel) -> Result<usize, Mismatch> {
    model
        .nodes()
        .iter()
        .filter(|n| n.op().name() == "Gather")
        .filter_map(|n| n.inputs.first().and_then(|&i| model.outlet_fact(i).ok()).filter(|f| f.rank() == 2).and_then(|f| dim(f, 0)))
        .min()
        .ok_or_else(|| "no word-embedding table (a Gather from a fixed 2-d table) in the embeddings graph".into())
}

/// Counts of the stored weight types over every graph of the bundle.
#[derive(Debug, Default, Clone, Copy)]
pub struct WeightTypes {
    pub f32: usize,
    pub f16: usize,
    pub int8: usize,
}

impl WeightTypes {
    /// The initializers of an ONNX graph.
    #[cfg(feature = "onnx")]
    pub fn add_onnx(&mut self, proto: &ModelProto) {
        for t in proto.graph.iter().flat_map(|g| &g.initializer) {
            match DataType::try_from(t.data_type) {
                Ok(DataType::Float) => self.f32 += 1,
                Ok(DataType::Float16) => self.f16 += 1,
                Ok(DataType::Int8 | DataType::Uint8) => self.int8 += 1,
                _ => {}
            }
        }
    }

    /// The tensor constants of a typed graph (what an NNEF archive stores as
    /// variables; scalars are not weights).
    pub fn add_typed(&mut self, model: &TypedModel) {
        for konst in model.nodes().iter().filter_map(|n| n.op_as::<tract_nnef::tract_core::ops::konst::Const>()) {
            let t = konst.val();
            if t.rank() == 0 {
                continue;
            }
            match t.datum_type() {
                DatumType::F32 => self.f32 += 1,
                DatumType::F16 => self.f16 += 1,
                DatumType::I8 | DatumType::U8 | DatumType::QI8(_) | DatumType::QU8(_) => self.int8 += 1,
                _ => {}
            }
        }
    }

    pub fn merge(&mut self, other: &WeightTypes) {
        self.f32 += other.f32;
        self.f16 += other.f16;
        self.int8 += other.int8;
    }

    /// The stored weights are what the manifest's precision says: an f32
    /// bundle has no f16 or int8 weights, an f16 one has f16 weights and no
    /// int8, an int8 one has int8 weights (some tensors may stay f32 in
    /// both: `quantize --keep-f32`).
    pub fn check(&self, precision: Precision) -> Result<(), Mismatch> {
        let ok = match precision {
            Precision::F32 => self.f16 == 0 && self.int8 == 0,
            Precision::F16 => self.f16 > 0 && self.int8 == 0,
            Precision::Int8 => self.int8 > 0,
        };
        if ok {
            return Ok(());
        }
        Err(format!(
            "precision is {precision:?} but the graphs store {} f32, {} f16 and {} int8 weight tensors",
            self.f32, self.f16, self.int8
        ))
    }
}

#[cfg(feature = "onnx")]
/// What tract's ONNX reader takes on trust (it panics rather than failing
/// when it does not hold): every graph output is produced by something in the
/// graph, and no node carries a subgraph (bundles have no control flow).
pub fn graph_proto(proto: &ModelProto) -> Result<(), Mismatch> {
    let graph = proto.graph.as_ref().ok_or("the model has no graph")?;
    let mut defined: std::collections::HashSet<&str> = graph.input.iter().map(|i| i.name.as_str()).collect();
    defined.extend(graph.initializer.iter().map(|t| t.name.as_str()));
    defined.extend(graph.node.iter().flat_map(|n| n.output.iter().map(String::as_str)));
    if let Some(o) = graph.output.iter().find(|o| !defined.contains(o.name.as_str())) {
        return Err(format!("graph output {:?} is produced by no node", o.name));
    }
    if let Some(n) = graph.node.iter().find(|n| n.attribute.iter().any(|a| a.g.is_some() || !a.graphs.is_empty())) {
        return Err(format!("node {:?} ({}) holds a subgraph; bundles have no control flow", n.name, n.op_type));
    }
    Ok(())
}

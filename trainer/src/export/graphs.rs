//! The bundle's graphs for a BERT classifier, one small graph per segment:
//! embeddings, each encoder layer, each exit classifier. Weights come by their
//! Hugging Face names, so any BERT (candle-trained or not) can be exported.

use super::onnx::{Dim, GraphBuilder, Weight};
use std::collections::HashMap;
use tract_onnx::pb::{tensor_proto::DataType, ModelProto};

pub type Weights = HashMap<String, Weight>;

#[derive(Debug, thiserror::Error)]
#[error("missing weight {0}")]
pub struct MissingWeight(pub String);

fn get<'a>(w: &'a Weights, name: &str) -> Result<&'a Weight, MissingWeight> {
    w.get(name).ok_or_else(|| MissingWeight(name.to_string()))
}

const B: Dim = Dim::Symbol("B");
const S: Dim = Dim::Symbol("S");

fn hidden_dims(h: usize) -> [Dim; 3] {
    [B, S, Dim::Fixed(h as i64)]
}

/// input_ids (B, S) int64 → hidden (B, S, H). Token types are all 0 (single
/// sentences), so the type-0 embedding is folded into the position table.
pub fn embeddings(w: &Weights, eps: f32) -> Result<ModelProto, MissingWeight> {
    let word = get(w, "bert.embeddings.word_embeddings.weight")?;
    let pos = get(w, "bert.embeddings.position_embeddings.weight")?;
    let types = get(w, "bert.embeddings.token_type_embeddings.weight")?;
    let h = word.shape[1];
    let pos_plus_type: Vec<f32> = pos.data.chunks(h).flat_map(|row| row.iter().zip(&types.data[..h]).map(|(a, b)| a + b)).collect();
    let mut g = GraphBuilder::new("embeddings");
    let ids = g.input("input_ids", DataType::Int64, &[B, S]);
    let table = g.weight("word_embeddings", word);
    let positions = g.weight("position_plus_type_embeddings", &Weight::new(pos.shape.clone(), pos_plus_type));
    let words = g.node("Gather", &[&table, &ids], vec![], None);
    // positions[0..S], S read from the ids' shape.
    let shape = g.node("Shape", &[&ids], vec![], None);
    let (one, two, zero) = (g.ints(&[1]), g.ints(&[2]), g.ints(&[0]));
    let seq = g.node("Slice", &[&shape, &one, &two, &zero], vec![], None);
    let pos_rows = g.node("Slice", &[&positions, &zero, &seq, &zero], vec![], None);
    let sum = g.node("Add", &[&words, &pos_rows], vec![], None);
    let out = g.layer_norm(&sum, "LayerNorm", get(w, "bert.embeddings.LayerNorm.weight")?, get(w, "bert.embeddings.LayerNorm.bias")?, eps);
    g.output(&out, "hidden", DataType::Float, &hidden_dims(h));
    Ok(g.finish())
}

/// Multi-head self-attention of (B, S, H) `x`; `query_rows` = 1 computes only
/// the first token's output (what a branch classifier pools).
fn attention(g: &mut GraphBuilder, x: &str, bias: &str, w: &Weights, prefix: &str, heads: usize, first_only: bool) -> Result<String, MissingWeight> {
    let h = get(w, &format!("{prefix}.query.weight"))?.shape[0];
    let hd = (h / heads) as i64;
    let proj = |g: &mut GraphBuilder, name: &str| -> Result<String, MissingWeight> {
        let (wt, b) = (get(w, &format!("{prefix}.{name}.weight"))?, get(w, &format!("{prefix}.{name}.bias"))?);
        let y = g.linear(x, &format!("{prefix}.{name}"), wt, b);
        Ok(g.reshape(&y, &[0, 0, heads as i64, hd]))
    };
    let (q, k, v) = (proj(g, "query")?, proj(g, "key")?, proj(g, "value")?);
    let q = g.transpose(&q, &[0, 2, 1, 3]); // (B, nh, S, hd)
    let q = if first_only {
        let (zero, one, two) = (g.ints(&[0]), g.ints(&[1]), g.ints(&[2]));
        g.node("Slice", &[&q, &zero, &one, &two], vec![], None) // (B, nh, 1, hd)
    } else {
        q
    };
    let kt = g.transpose(&k, &[0, 2, 3, 1]); // (B, nh, hd, S)
    let v = g.transpose(&v, &[0, 2, 1, 3]);
    let scores = g.node("MatMul", &[&q, &kt], vec![], None);
    let scale = g.scalar(1.0 / (hd as f32).sqrt());
    let scores = g.node("Mul", &[&scores, &scale], vec![], None);
    let scores = g.node("Add", &[&scores, bias], vec![], None);
    let probs = g.softmax(&scores);
    let ctx = g.node("MatMul", &[&probs, &v], vec![], None);
    let ctx = g.transpose(&ctx, &[0, 2, 1, 3]);
    Ok(g.reshape(&ctx, &[0, 0, h as i64]))
}

/// hidden (B, S, H), attention_mask (B, S) int64 → hidden (B, S, H).
pub fn encoder_layer(w: &Weights, layer: usize, heads: usize, eps: f32) -> Result<ModelProto, MissingWeight> {
    let p = format!("bert.encoder.layer.{layer}");
    let h = get(w, &format!("{p}.attention.output.dense.weight"))?.shape[0];
    let mut g = GraphBuilder::new(&format!("layer_{layer}"));
    let x = g.input("hidden", DataType::Float, &hidden_dims(h));
    let mask = g.input("attention_mask", DataType::Int64, &[B, S]);
    let bias = g.attention_bias(&mask);
    let ctx = attention(&mut g, &x, &bias, w, &format!("{p}.attention.self"), heads, false)?;
    let n = |s: &str| format!("{p}.{s}");
    let a = g.linear(&ctx, &n("attention.output.dense"), get(w, &n("attention.output.dense.weight"))?, get(w, &n("attention.output.dense.bias"))?);
    let a = g.node("Add", &[&a, &x], vec![], None);
    let x1 = g.layer_norm(&a, &n("attention.output.LayerNorm"), get(w, &n("attention.output.LayerNorm.weight"))?, get(w, &n("attention.output.LayerNorm.bias"))?, eps);
    let i = g.linear(&x1, &n("intermediate.dense"), get(w, &n("intermediate.dense.weight"))?, get(w, &n("intermediate.dense.bias"))?);
    let i = g.gelu(&i);
    let o = g.linear(&i, &n("output.dense"), get(w, &n("output.dense.weight"))?, get(w, &n("output.dense.bias"))?);
    let o = g.node("Add", &[&o, &x1], vec![], None);
    let y = g.layer_norm(&o, &n("output.LayerNorm"), get(w, &n("output.LayerNorm.weight"))?, get(w, &n("output.LayerNorm.bias"))?, eps);
    g.output(&y, "hidden_out", DataType::Float, &hidden_dims(h));
    Ok(g.finish())
}

/// The final classifier: pooler (tanh of a dense [CLS]) → classifier.
pub fn final_exit(w: &Weights) -> Result<ModelProto, MissingWeight> {
    let pw = get(w, "bert.pooler.dense.weight")?;
    let h = pw.shape[0];
    let cw = get(w, "classifier.weight")?;
    let mut g = GraphBuilder::new("exit_final");
    let x = g.input("hidden", DataType::Float, &hidden_dims(h));
    g.input("attention_mask", DataType::Int64, &[B, S]);
    let cls = g.first_token(&x);
    let pooled = g.linear(&cls, "bert.pooler.dense", pw, get(w, "bert.pooler.dense.bias")?);
    let pooled = g.node("Tanh", &[&pooled], vec![], None);
    let logits = g.linear(&pooled, "classifier", cw, get(w, "classifier.bias")?);
    g.output(&logits, "logits", DataType::Float, &[B, Dim::Fixed(cw.shape[0] as i64)]);
    Ok(g.finish())
}

/// A FastBERT branch: dense+tanh → self-attention (first token) → dense+tanh → classifier.
pub fn branch_exit(w: &Weights, branch: usize, heads: usize) -> Result<ModelProto, MissingWeight> {
    let p = format!("branches.{branch}");
    let n = |s: &str| format!("{p}.{s}");
    let din = get(w, &n("dense_in.weight"))?;
    let (bh, h) = (din.shape[0], din.shape[1]);
    let cw = get(w, &n("classifier.weight"))?;
    let mut g = GraphBuilder::new(&format!("exit_{branch}"));
    let x = g.input("hidden", DataType::Float, &hidden_dims(h));
    let mask = g.input("attention_mask", DataType::Int64, &[B, S]);
    let bias = g.attention_bias(&mask);
    let y = g.linear(&x, &n("dense_in"), din, get(w, &n("dense_in.bias"))?);
    let y = g.node("Tanh", &[&y], vec![], None);
    let ctx = attention(&mut g, &y, &bias, w, &n("attention"), heads, true)?; // (B, 1, bh)
    let pooled = g.reshape(&ctx, &[0, bh as i64]);
    let z = g.linear(&pooled, &n("dense_out"), get(w, &n("dense_out.weight"))?, get(w, &n("dense_out.bias"))?);
    let z = g.node("Tanh", &[&z], vec![], None);
    let logits = g.linear(&z, &n("classifier"), cw, get(w, &n("classifier.bias"))?);
    g.output(&logits, "logits", DataType::Float, &[B, Dim::Fixed(cw.shape[0] as i64)]);
    Ok(g.finish())
}

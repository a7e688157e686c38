//! `trainer export`: a model directory → a deployable bundle (the `bundle`
//! crate's format): the tokenizer and one ONNX graph per segment.

pub mod graphs;
pub mod onnx;

use crate::model::SequenceClassifier;
use anyhow::{Context, Result};
use bundle::manifest::{sha256_hex, write_bundle, Manifest, Precision, FORMAT_VERSION};
use bundle::ExitPolicy;
use graphs::Weights;
use onnx::{encode, Weight};
use std::collections::BTreeMap;
use std::path::Path;

/// The model's weights by Hugging Face name, as plain f32 arrays.
pub fn weights(model: &SequenceClassifier) -> Result<Weights> {
    let vars = model.varmap.data().lock().unwrap();
    vars.iter()
        .map(|(name, var)| {
            let t = var.as_tensor().to_dtype(candle_core::DType::F32)?;
            let data = t.flatten_all()?.to_vec1::<f32>()?;
            Ok((name.clone(), Weight::new(t.dims().to_vec(), data)))
        })
        .collect()
}

pub fn export(model_dir: &Path, out: &Path, max_len: Option<usize>) -> Result<Manifest> {
    let model = SequenceClassifier::load(model_dir, &candle_core::Device::Cpu)?;
    let cfg = &model.config;
    let w = weights(&model)?;
    let eps = cfg.layer_norm_eps as f32;
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    files.push(("embeddings.onnx".into(), encode(&graphs::embeddings(&w, eps)?)));
    let mut layers = Vec::new();
    let mut exits = Vec::new();
    for i in 0..cfg.num_hidden_layers {
        let name = format!("layer_{i:02}.onnx");
        files.push((name.clone(), encode(&graphs::encoder_layer(&w, i, cfg.num_attention_heads, eps)?)));
        layers.push(name);
        let exit = if i + 1 == cfg.num_hidden_layers {
            Some(graphs::final_exit(&w)?)
        } else {
            cfg.exit_branches.map(|b| graphs::branch_exit(&w, i, b.num_attention_heads)).transpose()?
        };
        exits.push(exit.map(|g| {
            let name = format!("exit_{:02}.onnx", i + 1);
            files.push((name.clone(), encode(&g)));
            name
        }));
    }
    for f in ["tokenizer.json", "vocab.txt"] {
        let bytes = std::fs::read(model_dir.join(f)).with_context(|| format!("cannot read {}", model_dir.join(f).display()))?;
        if f == "tokenizer.json" {
            // Never write a bundle the runtime would refuse.
            bundle::tokenizer::from_bytes(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", model_dir.join(f).display()))?;
        }
        files.push((f.into(), bytes));
    }
    let weights_sha = sha256_hex(&std::fs::read(model_dir.join("model.safetensors"))?);
    let provenance = BTreeMap::from([
        ("model".to_string(), model_dir.display().to_string()),
        ("model_sha256".to_string(), weights_sha),
        ("exporter".to_string(), format!("trainer {}", env!("CARGO_PKG_VERSION"))),
    ]);
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        labels: model.labels.labels.clone(),
        num_layers: cfg.num_hidden_layers,
        hidden_size: cfg.hidden_size,
        max_seq_len: max_len.unwrap_or_else(|| crate::train::trained_max_len(model_dir, &model)).min(cfg.max_position_embeddings),
        tokenizer: "tokenizer.json".into(),
        precision: Precision::F32,
        default_policy: ExitPolicy::Full,
        embeddings: "embeddings.onnx".into(),
        layers,
        exits,
        sha256: BTreeMap::new(),
        provenance,
    };
    Ok(write_bundle(out, manifest, &files)?)
}

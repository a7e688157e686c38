//! A model directory in Hugging Face layout: `config.json`, `model.safetensors`,
//! `tokenizer.json`, `vocab.txt`, plus our `labels.json`.

use super::bert::Config;
use super::classifier::BertForSequenceClassification;
use super::bert::BranchConfig;
use crate::data::LabelSet;
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use rand::{rngs::StdRng, SeedableRng};
use rand_distr::{Distribution, Normal};
use std::path::Path;
use tokenizers::Tokenizer;

pub struct SequenceClassifier {
    pub config: Config,
    pub labels: LabelSet,
    pub tokenizer: Tokenizer,
    pub varmap: VarMap,
    pub model: BertForSequenceClassification,
    pub device: Device,
}

pub fn read_config(path: &Path) -> Result<Config> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let cfg: Config =
        serde_json::from_str(&text).with_context(|| format!("{}: invalid BERT config", path.display()))?;
    cfg.validate().map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(cfg)
}

impl SequenceClassifier {
    /// A freshly initialised model. Weights are drawn from a seeded RNG (normal
    /// with the config's `initializer_range`, as BERT does) because candle's
    /// CPU random generator cannot be seeded.
    pub fn new(config: Config, labels: LabelSet, tokenizer: Tokenizer, device: &Device, seed: u64) -> Result<Self> {
        let tok_vocab = crate::tokenize::vocab_size(&tokenizer);
        if tok_vocab > config.vocab_size {
            bail!(
                "vocabulary/embedding size mismatch: the tokenizer has {tok_vocab} tokens but config vocab_size is {}",
                config.vocab_size
            );
        }
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
        let model = BertForSequenceClassification::load(vb, &config, labels.len())?;
        reinit_seeded(&varmap, config.initializer_range, seed)?;
        Ok(Self { config, labels, tokenizer, varmap, model, device: device.clone() })
    }

    /// Loads one of our model directories (all weights required).
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let me = Self::load_architecture(dir, device)?;
        me.load_weights(&dir.join("model.safetensors"), false)?;
        Ok(me)
    }

    /// The encoder of any BERT directory: ours, or a bare Hugging Face
    /// checkpoint without `labels.json` (whose head is then left untrained and unused).
    pub fn load_encoder(dir: &Path, device: &Device) -> Result<Self> {
        if dir.join("labels.json").exists() {
            return Self::load(dir, device);
        }
        let labels = LabelSet { labels: vec!["LABEL_0".into(), "LABEL_1".into()] };
        Self::from_pretrained(dir, labels, device, 0)
    }

    /// Config, labels and tokenizer of a model directory, with untrained weights.
    pub fn load_architecture(dir: &Path, device: &Device) -> Result<Self> {
        let config = read_config(&dir.join("config.json"))?;
        let labels = LabelSet::load(&dir.join("labels.json"))?;
        let tokenizer = crate::tokenize::load_tokenizer(dir)?;
        Self::new(config, labels, tokenizer, device, 0)
    }

    /// Starts fine-tuning from a Hugging Face BERT checkpoint: the encoder must
    /// be complete; the classifier (and a missing pooler) start fresh.
    pub fn from_pretrained(dir: &Path, labels: LabelSet, device: &Device, seed: u64) -> Result<Self> {
        let mut config = read_config(&dir.join("config.json"))?;
        config.set_labels(&labels.labels);
        let tokenizer = crate::tokenize::load_tokenizer(dir)?;
        let me = Self::new(config, labels, tokenizer, device, seed)?;
        me.load_weights(&dir.join("model.safetensors"), true)?;
        Ok(me)
    }

    /// A backbone model directory with FastBERT branch classifiers added (fresh).
    pub fn with_branches(dir: &Path, branches: BranchConfig, device: &Device, seed: u64) -> Result<Self> {
        let mut config = read_config(&dir.join("config.json"))?;
        if config.num_hidden_layers < 2 {
            bail!("{}: a backbone needs at least 2 layers to have early exits", dir.display());
        }
        config.exit_branches = Some(branches);
        let labels = LabelSet::load(&dir.join("labels.json"))?;
        let tokenizer = crate::tokenize::load_tokenizer(dir)?;
        let me = Self::new(config, labels, tokenizer, device, seed)?;
        let weights = dir.join("model.safetensors");
        let fresh = me.load_weights(&weights, true)?;
        if let Some(name) = fresh.iter().find(|n| !n.starts_with("branches.")) {
            bail!("{}: missing tensor {name} (a backbone must be a fine-tuned classifier)", weights.display());
        }
        Ok(me)
    }

    /// Copies tensors from a safetensors file into the model. Names may carry
    /// the `bert.` prefix or not (sentence-transformers checkpoints drop it).
    pub fn load_weights(&self, path: &Path, allow_new_head: bool) -> Result<Vec<String>> {
        let is_head = |name: &str| {
            allow_new_head
                && (name.starts_with("classifier.") || name.starts_with("bert.pooler.") || name.starts_with("branches."))
        };
        copy_weights(&self.varmap, &self.device, path, &is_head)
    }

    /// Writes the whole model directory, each file atomically.
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let mut config = self.config.clone();
        config.set_labels(&self.labels.labels);
        bundle::atomic::write_json(&dir.join("config.json"), &config)?;
        bundle::atomic::write_json(&dir.join("labels.json"), &self.labels)?;
        crate::tokenize::save_tokenizer(&self.tokenizer, dir)?;
        self.save_weights(&dir.join("model.safetensors"))
    }

    pub fn save_weights(&self, path: &Path) -> Result<()> {
        bundle::atomic::write_with(path, |tmp| {
            self.varmap.save(tmp).with_context(|| format!("cannot write {}", tmp.display()))
        })
    }

    /// Token ids of a batch padded to its longest member, with the 0/1 mask.
    pub fn batch_tensors(&self, ids: &[&[u32]]) -> Result<(Tensor, Tensor)> {
        let width = ids.iter().map(|x| x.len()).max().unwrap_or(1);
        let pad = self.config.pad_token_id as u32;
        let mut flat = Vec::with_capacity(ids.len() * width);
        let mut mask = Vec::with_capacity(ids.len() * width);
        for row in ids {
            flat.extend_from_slice(row);
            flat.extend(std::iter::repeat_n(pad, width - row.len()));
            mask.extend(std::iter::repeat_n(1u32, row.len()));
            mask.extend(std::iter::repeat_n(0u32, width - row.len()));
        }
        let shape = (ids.len(), width);
        Ok((Tensor::from_vec(flat, shape, &self.device)?, Tensor::from_vec(mask, shape, &self.device)?))
    }
}

/// Copies tensors from a safetensors file into `varmap`; returns the names
/// that the file lacks and `may_be_new` allows to stay freshly initialised.
/// Names may carry the `bert.` prefix or not (sentence-transformers checkpoints
/// drop it), and LayerNorm parameters may use the TF names gamma/beta.
pub fn copy_weights(varmap: &VarMap, device: &Device, path: &Path, may_be_new: &dyn Fn(&str) -> bool) -> Result<Vec<String>> {
    let tensors = candle_core::safetensors::load(path, device)
        .with_context(|| format!("{}: cannot read safetensors", path.display()))?;
    let vars = varmap.data().lock().unwrap();
    let mut fresh = Vec::new();
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort();
    for name in names {
        let var = &vars[name];
        let stripped = name.strip_prefix("bert.");
        let found = tensors
            .get(name)
            .or_else(|| stripped.and_then(|s| tensors.get(s)))
            .or_else(|| legacy_layer_norm_name(name).and_then(|n| tensors.get(&n)));
        let Some(t) = found else {
            if may_be_new(name) {
                fresh.push(name.clone());
                continue;
            }
            bail!("{}: missing tensor {name}", path.display());
        };
        if t.dims() != var.dims() {
            if name.ends_with("word_embeddings.weight") {
                bail!(
                    "{}: vocabulary/embedding size mismatch: tensor {name} has shape {:?}, config expects {:?}",
                    path.display(),
                    t.dims(),
                    var.dims()
                );
            }
            bail!("{}: tensor {name} has shape {:?}, expected {:?}", path.display(), t.dims(), var.dims());
        }
        var.set(&t.to_dtype(DType::F32)?)
            .with_context(|| format!("{}: cannot set tensor {name}", path.display()))?;
    }
    Ok(fresh)
}

/// Old TF-converted checkpoints call LayerNorm parameters gamma/beta.
fn legacy_layer_norm_name(name: &str) -> Option<String> {
    let name = name.strip_prefix("bert.").unwrap_or(name);
    if let Some(base) = name.strip_suffix("LayerNorm.weight") {
        return Some(format!("{base}LayerNorm.gamma"));
    }
    name.strip_suffix("LayerNorm.bias").map(|base| format!("{base}LayerNorm.beta"))
}

pub(crate) fn reinit_seeded(varmap: &VarMap, std: f64, seed: u64) -> Result<()> {
    let mut rng = StdRng::seed_from_u64(seed);
    let normal = Normal::new(0f32, std as f32)?;
    let vars = varmap.data().lock().unwrap();
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort();
    for name in names {
        let var = &vars[name];
        if name.ends_with(".bias") || name.contains("LayerNorm") {
            continue; // constants (zeros / ones) already
        }
        let values: Vec<f32> = (0..var.elem_count()).map(|_| normal.sample(&mut rng)).collect();
        var.set(&Tensor::from_vec(values, var.shape(), var.device())?)?;
    }
    Ok(())
}

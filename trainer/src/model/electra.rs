//! ELECTRA pretraining (Clark et al. 2020): a small generator trained as a
//! masked LM fills the masked positions with samples, and the discriminator —
//! the BERT we keep — predicts for every token whether it was replaced.
//!
//! As in the paper, the two share the embeddings (token, position and type
//! tables and their LayerNorm: one set of tensors). A generator narrower than
//! the embeddings projects them down (`generator.embeddings_project`, as
//! Hugging Face's `ElectraModel`), and its output head maps back to the
//! embedding width, where the decoder is tied to the word embeddings.
//! Parameter names follow Hugging Face: the discriminator under `bert.` (so
//! `finetune --init` reads it like any BERT), its head under
//! `discriminator_predictions.`, the generator under `generator.`,
//! `generator_predictions.` and `generator_lm_head.`.

use super::bert::{attention_bias, linear, BertLayer, BertModel, Config, Linear};
use super::mlm::MlmHead;
use anyhow::{bail, Context};
use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{VarBuilder, VarMap};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The generator's shape. The paper's multiplier for small models is 1/4 of
/// the discriminator's hidden size, FFN size and heads, at the same depth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeneratorConfig {
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
}

impl GeneratorConfig {
    /// A generator `hidden` wide (default: a quarter of the discriminator,
    /// at least 16) with `layers` layers (default: the discriminator's);
    /// heads of at most 64 dimensions, FFN 4× the width.
    pub fn for_discriminator(disc: &Config, hidden: Option<usize>, layers: Option<usize>) -> anyhow::Result<Self> {
        let hidden = hidden.unwrap_or((disc.hidden_size / 4).max(16).min(disc.hidden_size));
        let layers = layers.unwrap_or(disc.num_hidden_layers);
        if hidden == 0 || hidden > disc.hidden_size {
            bail!("--generator-hidden must be within 1..={} (the discriminator's width), got {hidden}", disc.hidden_size);
        }
        if layers == 0 || layers > 64 {
            bail!("--generator-layers must be within 1..=64, got {layers}");
        }
        let heads = hidden.div_ceil(64);
        if !hidden.is_multiple_of(heads) {
            bail!("--generator-hidden {hidden} does not split into heads of at most 64 dimensions; use a multiple of {heads}");
        }
        Ok(Self { hidden_size: hidden, num_hidden_layers: layers, num_attention_heads: heads, intermediate_size: 4 * hidden })
    }

    /// The BERT config of the generator's encoder layers.
    fn encoder_config(&self, disc: &Config) -> Config {
        Config {
            hidden_size: self.hidden_size,
            num_hidden_layers: self.num_hidden_layers,
            num_attention_heads: self.num_attention_heads,
            intermediate_size: self.intermediate_size,
            ..disc.clone()
        }
    }
}

/// The generator's encoder: projection from the shared embeddings, then layers.
pub struct Generator {
    embeddings_project: Option<Linear>,
    layers: Vec<BertLayer>,
    head: MlmHead,
}

impl Generator {
    pub fn load(vb: VarBuilder, disc: &Config, cfg: &GeneratorConfig) -> Result<Self> {
        let enc = cfg.encoder_config(disc);
        let g = vb.pp("generator");
        let embeddings_project = (cfg.hidden_size != disc.hidden_size)
            .then(|| linear(disc.hidden_size, cfg.hidden_size, g.pp("embeddings_project"), disc))
            .transpose()?;
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| BertLayer::load(g.pp(format!("encoder.layer.{i}")), &enc))
            .collect::<Result<Vec<_>>>()?;
        let head = MlmHead::load_named(cfg.hidden_size, vb.pp("generator_predictions"), vb.pp("generator_lm_head"), disc)?;
        Ok(Self { embeddings_project, layers, head })
    }
}

/// The discriminator's head: dense → activation → one logit per token.
pub struct DiscriminatorHead {
    dense: Linear,
    act: super::bert::HiddenAct,
    dense_prediction: Linear,
}

impl DiscriminatorHead {
    pub fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        Ok(Self {
            dense: linear(cfg.hidden_size, cfg.hidden_size, vb.pp("dense"), cfg)?,
            act: cfg.hidden_act,
            dense_prediction: linear(cfg.hidden_size, 1, vb.pp("dense_prediction"), cfg)?,
        })
    }

    /// (batch, seq, hidden) → (batch, seq) replaced-token logits.
    pub fn forward(&self, hidden: &Tensor) -> Result<Tensor> {
        self.dense_prediction.forward(&self.dense.forward_act(hidden, self.act, true)?)?.squeeze(2)
    }
}

pub struct ElectraForPreTraining {
    /// The discriminator: the model kept.
    pub bert: BertModel,
    pub discriminator: DiscriminatorHead,
    pub generator: Generator,
}

impl ElectraForPreTraining {
    pub fn load(vb: VarBuilder, cfg: &Config, gen: &GeneratorConfig) -> Result<Self> {
        Ok(Self {
            bert: BertModel::load_without_pooler(vb.pp("bert"), cfg)?,
            discriminator: DiscriminatorHead::load(vb.pp("discriminator_predictions"), cfg)?,
            generator: Generator::load(vb, cfg, gen)?,
        })
    }

    /// The generator's vocabulary logits at `positions` (flat batch·seq
    /// indices) of the masked input, through the shared embeddings.
    pub fn generator_logits(&self, input_ids: &Tensor, mask: &Tensor, positions: &Tensor, train: bool) -> Result<Tensor> {
        let g = &self.generator;
        let bias = attention_bias(mask)?;
        let mut x = self.bert.embeddings.forward(input_ids, train)?;
        if let Some(p) = &g.embeddings_project {
            x = p.forward(&x)?;
        }
        for layer in &g.layers {
            x = layer.forward(&x, &bias, train)?;
        }
        let (b, s, h) = x.dims3()?;
        let picked = x.reshape((b * s, h))?.index_select(positions, 0)?;
        g.head.forward(&picked, self.bert.embeddings.word_embeddings())
    }

    /// The discriminator's replaced-token logits, (batch, seq).
    pub fn discriminator_logits(&self, input_ids: &Tensor, mask: &Tensor, train: bool) -> Result<Tensor> {
        self.discriminator.forward(&self.bert.forward(input_ids, mask, train)?)
    }
}

/// Where the generator's shape is kept in an ELECTRA output directory.
pub const GENERATOR_CONFIG: &str = "generator_config.json";
/// The generator and the discriminator head, beside the discriminator's `model.safetensors`.
pub const ELECTRA_HEADS: &str = "electra_heads.safetensors";

/// An ELECTRA pretraining directory. `config.json`, `model.safetensors`
/// (the discriminator's `bert.*` tensors only), `tokenizer.json` and
/// `vocab.txt` form a plain Hugging Face BERT that `finetune --init` and
/// transformers' `BertModel` load; the generator and the discriminator head
/// are kept beside it (`electra_heads.safetensors`, `generator_config.json`).
pub struct ElectraPretrainingModel {
    pub config: Config,
    pub generator_config: GeneratorConfig,
    pub tokenizer: tokenizers::Tokenizer,
    pub varmap: VarMap,
    pub model: ElectraForPreTraining,
    pub device: Device,
}

impl ElectraPretrainingModel {
    pub fn new(mut config: Config, generator_config: GeneratorConfig, tokenizer: tokenizers::Tokenizer, device: &Device, seed: u64) -> anyhow::Result<Self> {
        let tok_vocab = crate::tokenize::vocab_size(&tokenizer);
        if tok_vocab > config.vocab_size {
            bail!(
                "vocabulary/embedding size mismatch: the tokenizer has {tok_vocab} tokens but config vocab_size is {}",
                config.vocab_size
            );
        }
        config.architectures = vec!["BertModel".into()];
        config.id2label.clear();
        config.label2id.clear();
        config.exit_branches = None;
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
        let model = ElectraForPreTraining::load(vb, &config, &generator_config)?;
        super::checkpoint::reinit_seeded(&varmap, config.initializer_range, seed)?;
        Ok(Self { config, generator_config, tokenizer, varmap, model, device: device.clone() })
    }

    /// Continues from a Hugging Face BERT: its encoder becomes the
    /// discriminator; the generator and both heads start fresh.
    pub fn from_pretrained(dir: &Path, generator: (Option<usize>, Option<usize>), device: &Device, seed: u64) -> anyhow::Result<Self> {
        let config = super::checkpoint::read_config(&dir.join("config.json"))?;
        let gen = GeneratorConfig::for_discriminator(&config, generator.0, generator.1)?;
        let tokenizer = crate::tokenize::load_tokenizer(dir)?;
        let me = Self::new(config, gen, tokenizer, device, seed)?;
        let is_new = |name: &str| !name.starts_with("bert.");
        super::checkpoint::copy_weights(&me.varmap, device, &dir.join("model.safetensors"), &is_new)?;
        Ok(me)
    }

    /// Config, generator shape and tokenizer of an output directory, untrained.
    pub fn load_architecture(dir: &Path, device: &Device) -> anyhow::Result<Self> {
        let config = super::checkpoint::read_config(&dir.join("config.json"))?;
        let path = dir.join(GENERATOR_CONFIG);
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let gen: GeneratorConfig =
            serde_json::from_str(&text).with_context(|| format!("{}: invalid generator config", path.display()))?;
        GeneratorConfig::for_discriminator(&config, Some(gen.hidden_size), Some(gen.num_hidden_layers))
            .with_context(|| format!("{}: invalid generator config", path.display()))?;
        let tokenizer = crate::tokenize::load_tokenizer(dir)?;
        Self::new(config, gen, tokenizer, device, 0)
    }

    /// Every tensor (discriminator, its head, generator) from one safetensors file.
    pub fn load_weights(&self, path: &Path) -> anyhow::Result<()> {
        super::checkpoint::copy_weights(&self.varmap, &self.device, path, &|_| false)?;
        Ok(())
    }

    /// Writes config, generator config, tokenizer and weights, each file atomically.
    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        bundle::atomic::write_json(&dir.join("config.json"), &self.config)?;
        bundle::atomic::write_json(&dir.join(GENERATOR_CONFIG), &self.generator_config)?;
        crate::tokenize::save_tokenizer(&self.tokenizer, dir)?;
        self.save_weights(dir)
    }

    /// `model.safetensors` with the discriminator's `bert.*` tensors, and
    /// `electra_heads.safetensors` with the rest.
    pub fn save_weights(&self, dir: &Path) -> anyhow::Result<()> {
        let vars = self.varmap.data().lock().unwrap();
        let (mut bert, mut heads) = (std::collections::HashMap::new(), std::collections::HashMap::new());
        for (name, var) in vars.iter() {
            let side = if name.starts_with("bert.") { &mut bert } else { &mut heads };
            side.insert(name.clone(), var.as_tensor().clone());
        }
        drop(vars);
        for (file, tensors) in [("model.safetensors", &bert), (ELECTRA_HEADS, &heads)] {
            bundle::atomic::write_with(&dir.join(file), |tmp| {
                candle_core::safetensors::save(tensors, tmp).with_context(|| format!("cannot write {}", tmp.display()))
            })?;
        }
        Ok(())
    }
}

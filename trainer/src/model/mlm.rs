//! `BertForMaskedLM` with Hugging Face names: the encoder under `bert.` (no
//! pooler) and the head under `cls.predictions.` — a transform (dense →
//! activation → LayerNorm) and a decoder tied to the word embeddings, with its
//! own output bias. HF's `BertForMaskedLM.from_pretrained` loads our weights as
//! they are, and `trainer finetune --init` reads the encoder from them.

use super::bert::{linear, BertModel, Config, HiddenAct, LayerNorm, Linear};
use candle_core::{Module, Result, Tensor};
use candle_nn::{Init, VarBuilder};

pub struct MlmHead {
    dense: Linear,
    act: HiddenAct,
    layer_norm: LayerNorm,
    bias: Tensor,
}

impl MlmHead {
    pub fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        Self::load_named(cfg.hidden_size, vb.pp("transform"), vb, cfg)
    }

    /// The head of a model whose last hidden states are `in_dim` wide (an
    /// ELECTRA generator narrower than its embeddings), with the transform
    /// under `transform` and the output bias under `bias_vb`.
    pub fn load_named(in_dim: usize, transform: VarBuilder, bias_vb: VarBuilder, cfg: &Config) -> Result<Self> {
        Ok(Self {
            dense: linear(in_dim, cfg.hidden_size, transform.pp("dense"), cfg)?,
            act: cfg.hidden_act,
            layer_norm: LayerNorm::load(cfg.hidden_size, cfg.layer_norm_eps, transform.pp("LayerNorm"))?,
            bias: bias_vb.get_with_hints(cfg.vocab_size, "bias", Init::Const(0.))?,
        })
    }

    /// Vocabulary logits of (n, hidden) states through the decoder `word_embeddings`ᵀ.
    /// Both products are fused linear ops (`linear.rs`); the activation's
    /// derivative is always kept, as this head has no evaluation flag.
    pub fn forward(&self, hidden: &Tensor, word_embeddings: &Tensor) -> Result<Tensor> {
        let x = self.layer_norm.forward(&self.dense.forward_act(hidden, self.act, true)?)?;
        super::linear::linear(&x, word_embeddings, &self.bias, None, None, false)
    }
}

pub struct BertForMaskedLM {
    pub bert: BertModel,
    pub head: MlmHead,
}

impl BertForMaskedLM {
    pub fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        Ok(Self {
            bert: BertModel::load_without_pooler(vb.pp("bert"), cfg)?,
            head: MlmHead::load(vb.pp("cls.predictions"), cfg)?,
        })
    }

    /// Logits at the given positions only, (positions, vocab). `positions`
    /// index the flattened (batch·seq) tokens: computing the vocabulary
    /// projection for the masked tokens alone saves most of the head's cost.
    pub fn masked_logits(&self, input_ids: &Tensor, mask: &Tensor, positions: &Tensor, train: bool) -> Result<Tensor> {
        let hidden = self.bert.forward(input_ids, mask, train)?;
        let (b, s, h) = hidden.dims3()?;
        let picked = hidden.reshape((b * s, h))?.index_select(positions, 0)?;
        self.head.forward(&picked, self.bert.embeddings.word_embeddings())
    }
}

/// A masked-LM model directory in Hugging Face layout: `config.json`
/// (architectures `BertForMaskedLM`), `model.safetensors`, `tokenizer.json`, `vocab.txt`.
pub struct MaskedLanguageModel {
    pub config: Config,
    pub tokenizer: tokenizers::Tokenizer,
    pub varmap: candle_nn::VarMap,
    pub model: BertForMaskedLM,
    pub device: candle_core::Device,
}

impl MaskedLanguageModel {
    /// A freshly initialised model (seeded normal weights, as BERT does).
    pub fn new(mut config: Config, tokenizer: tokenizers::Tokenizer, device: &candle_core::Device, seed: u64) -> anyhow::Result<Self> {
        let tok_vocab = crate::tokenize::vocab_size(&tokenizer);
        if tok_vocab > config.vocab_size {
            anyhow::bail!(
                "vocabulary/embedding size mismatch: the tokenizer has {tok_vocab} tokens but config vocab_size is {}",
                config.vocab_size
            );
        }
        config.architectures = vec!["BertForMaskedLM".into()];
        config.id2label.clear();
        config.label2id.clear();
        config.exit_branches = None;
        let varmap = candle_nn::VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, candle_core::DType::F32, device);
        let model = BertForMaskedLM::load(vb, &config)?;
        super::checkpoint::reinit_seeded(&varmap, config.initializer_range, seed)?;
        Ok(Self { config, tokenizer, varmap, model, device: device.clone() })
    }

    /// Continues pretraining a Hugging Face BERT: its encoder must be complete;
    /// an MLM head it lacks starts fresh.
    pub fn from_pretrained(dir: &std::path::Path, device: &candle_core::Device, seed: u64) -> anyhow::Result<Self> {
        let config = super::checkpoint::read_config(&dir.join("config.json"))?;
        let tokenizer = crate::tokenize::load_tokenizer(dir)?;
        let me = Self::new(config, tokenizer, device, seed)?;
        me.load_weights(&dir.join("model.safetensors"), true)?;
        Ok(me)
    }

    /// Config and tokenizer of a model directory, with untrained weights.
    pub fn load_architecture(dir: &std::path::Path, device: &candle_core::Device) -> anyhow::Result<Self> {
        let config = super::checkpoint::read_config(&dir.join("config.json"))?;
        let tokenizer = crate::tokenize::load_tokenizer(dir)?;
        Self::new(config, tokenizer, device, 0)
    }

    pub fn load_weights(&self, path: &std::path::Path, allow_new_head: bool) -> anyhow::Result<Vec<String>> {
        let is_head = |name: &str| allow_new_head && name.starts_with("cls.");
        super::checkpoint::copy_weights(&self.varmap, &self.device, path, &is_head)
    }

    /// Writes config, tokenizer and weights, each file atomically.
    pub fn save(&self, dir: &std::path::Path) -> anyhow::Result<()> {
        use anyhow::Context;
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        bundle::atomic::write_json(&dir.join("config.json"), &self.config)?;
        crate::tokenize::save_tokenizer(&self.tokenizer, dir)?;
        self.save_weights(&dir.join("model.safetensors"))
    }

    pub fn save_weights(&self, path: &std::path::Path) -> anyhow::Result<()> {
        use anyhow::Context;
        bundle::atomic::write_with(path, |tmp| self.varmap.save(tmp).with_context(|| format!("cannot write {}", tmp.display())))
    }
}

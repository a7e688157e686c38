//! BERT encoder and sequence-classification head in candle, with Hugging Face
//! parameter names (`bert.embeddings.word_embeddings.weight`, ...) so HF
//! checkpoints load as they are and ours load in HF tools.
//!
//! Layer norm and softmax are our own fused ops (`fused.rs`): candle-nn's
//! fused kernels have no backward pass.

use candle_core::{DType, Module, Result, Tensor};
use candle_nn::{Embedding, Init, VarBuilder};
use super::dropout::Dropout;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HiddenAct {
    /// The exact (erf) GELU, as Hugging Face's `"gelu"`.
    Gelu,
    #[serde(alias = "gelu_new", alias = "gelu_pytorch_tanh")]
    GeluApproximate,
    Relu,
}

impl HiddenAct {
    pub fn apply(self, x: &Tensor) -> Result<Tensor> {
        match self {
            HiddenAct::Gelu => x.gelu_erf(),
            HiddenAct::GeluApproximate => x.gelu(),
            HiddenAct::Relu => x.relu(),
        }
    }
}

impl HiddenAct {
    /// The same activation for the fused linear op (`linear.rs`).
    fn fused(self) -> super::linear::Activation {
        use super::linear::Activation;
        match self {
            HiddenAct::Gelu => Activation::Gelu,
            HiddenAct::GeluApproximate => Activation::GeluTanh,
            HiddenAct::Relu => Activation::Relu,
        }
    }
}

fn default_act() -> HiddenAct {
    HiddenAct::Gelu
}
fn default_dropout() -> f64 {
    0.1
}
fn default_eps() -> f64 {
    1e-12
}
fn default_init_range() -> f64 {
    0.02
}
fn default_type_vocab() -> usize {
    2
}

/// Shape of the FastBERT branch classifiers (`branch.rs`), stored in
/// `config.json` as `exit_branches`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BranchConfig {
    pub hidden_size: usize,
    pub num_attention_heads: usize,
}

/// `config.json` of a Hugging Face BERT, with the fields this crate uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "default_act")]
    pub hidden_act: HiddenAct,
    #[serde(default = "default_dropout")]
    pub hidden_dropout_prob: f64,
    #[serde(default = "default_dropout")]
    pub attention_probs_dropout_prob: f64,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_init_range")]
    pub initializer_range: f64,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub pad_token_id: usize,
    #[serde(default = "default_model_type")]
    pub model_type: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub architectures: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub id2label: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub label2id: BTreeMap<String, usize>,
    /// FastBERT branch classifiers after every layer but the last (ignored by HF tools).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_branches: Option<BranchConfig>,
}

fn default_model_type() -> String {
    "bert".into()
}

impl Config {
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.num_attention_heads == 0 || !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(format!(
                "hidden_size {} is not divisible by num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        for (name, v) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
        ] {
            if v == 0 {
                return Err(format!("field `{name}` must be positive"));
            }
        }
        Ok(())
    }

    /// Records the label names the way `BertForSequenceClassification` expects.
    pub fn set_labels(&mut self, labels: &[String]) {
        self.architectures = vec!["BertForSequenceClassification".into()];
        self.id2label = labels.iter().enumerate().map(|(i, l)| (i.to_string(), l.clone())).collect();
        self.label2id = labels.iter().enumerate().map(|(i, l)| (l.clone(), i)).collect();
    }
}

fn normal(cfg: &Config) -> Init {
    Init::Randn { mean: 0., stdev: cfg.initializer_range }
}

/// `y = x Wᵀ + b` over the last dimension, one fused op on the CPU
/// (`linear.rs`): a (batch, seq, in) input is one matrix product, and the
/// backward pass computes dx, dW and db directly instead of through candle's
/// broadcast machinery (its bias-add reduction dominated the training step).
#[derive(Debug, Clone)]
pub struct Linear {
    weight: Tensor,
    bias: Tensor,
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        super::linear::linear(x, &self.weight, &self.bias, None, None, false)
    }
}

impl Linear {
    /// `act(x Wᵀ + b)`, the activation fused into the same op.
    pub fn forward_act(&self, x: &Tensor, act: HiddenAct, train: bool) -> Result<Tensor> {
        super::linear::linear(x, &self.weight, &self.bias, Some(act.fused()), None, train)
    }

    /// `dropout(x Wᵀ + b)`, the dropout fused into the same op.
    pub fn forward_dropout(&self, x: &Tensor, dropout: &Dropout, train: bool) -> Result<Tensor> {
        let n = x.elem_count() / x.dim(candle_core::D::Minus1)? * self.weight.dim(0)?;
        super::linear::linear(x, &self.weight, &self.bias, None, dropout.mask(n, train), train)
    }
}

pub(crate) fn linear(in_dim: usize, out_dim: usize, vb: VarBuilder, cfg: &Config) -> Result<Linear> {
    let weight = vb.get_with_hints((out_dim, in_dim), "weight", normal(cfg))?;
    let bias = vb.get_with_hints(out_dim, "bias", Init::Const(0.))?;
    Ok(Linear { weight, bias })
}

fn embedding(n: usize, dim: usize, vb: VarBuilder, cfg: &Config) -> Result<Embedding> {
    let weight = vb.get_with_hints((n, dim), "weight", normal(cfg))?;
    Ok(Embedding::new(weight, dim))
}

/// Layer normalisation over the last dimension, differentiable end to end.
#[derive(Debug, Clone)]
pub struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl LayerNorm {
    pub fn load(dim: usize, eps: f64, vb: VarBuilder) -> Result<Self> {
        let weight = vb.get_with_hints(dim, "weight", Init::Const(1.))?;
        let bias = vb.get_with_hints(dim, "bias", Init::Const(0.))?;
        Ok(Self { weight, bias, eps })
    }
}

impl Module for LayerNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        super::fused::layer_norm(x, &self.weight, &self.bias, self.eps)
    }
}

pub use super::fused::softmax_last_dim;

pub struct BertEmbeddings {
    word_embeddings: Embedding,
    position_embeddings: Embedding,
    token_type_embeddings: Embedding,
    layer_norm: LayerNorm,
    dropout: Dropout,
}

impl BertEmbeddings {
    pub fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        Ok(Self {
            word_embeddings: embedding(cfg.vocab_size, cfg.hidden_size, vb.pp("word_embeddings"), cfg)?,
            position_embeddings: embedding(
                cfg.max_position_embeddings,
                cfg.hidden_size,
                vb.pp("position_embeddings"),
                cfg,
            )?,
            token_type_embeddings: embedding(
                cfg.type_vocab_size,
                cfg.hidden_size,
                vb.pp("token_type_embeddings"),
                cfg,
            )?,
            layer_norm: LayerNorm::load(cfg.hidden_size, cfg.layer_norm_eps, vb.pp("LayerNorm"))?,
            dropout: Dropout::new(cfg.hidden_dropout_prob as f32),
        })
    }

    /// The word-embedding table, (vocab, hidden): the masked-LM decoder is tied to it.
    pub fn word_embeddings(&self) -> &Tensor {
        self.word_embeddings.embeddings()
    }

    /// `input_ids`: (batch, seq) u32. Token types are all zero (single sentences).
    pub fn forward(&self, input_ids: &Tensor, train: bool) -> Result<Tensor> {
        let (_, seq_len) = input_ids.dims2()?;
        let positions = Tensor::arange(0u32, seq_len as u32, input_ids.device())?;
        let words = self.word_embeddings.forward(input_ids)?;
        let pos = self.position_embeddings.forward(&positions)?;
        let types = self.token_type_embeddings.forward(&input_ids.zeros_like()?)?;
        let x = words.broadcast_add(&pos)?.add(&types)?;
        self.dropout.forward(&self.layer_norm.forward(&x)?, train)
    }
}

pub struct BertSelfAttention {
    query: Linear,
    key: Linear,
    value: Linear,
    num_heads: usize,
    head_dim: usize,
    dropout: Dropout,
}

impl BertSelfAttention {
    pub fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        let h = cfg.hidden_size;
        Ok(Self {
            query: linear(h, h, vb.pp("query"), cfg)?,
            key: linear(h, h, vb.pp("key"), cfg)?,
            value: linear(h, h, vb.pp("value"), cfg)?,
            num_heads: cfg.num_attention_heads,
            head_dim: h / cfg.num_attention_heads,
            dropout: Dropout::new(cfg.attention_probs_dropout_prob as f32),
        })
    }

    fn split_heads(&self, x: &Tensor) -> Result<Tensor> {
        let (b, s, _) = x.dims3()?;
        x.reshape((b, s, self.num_heads, self.head_dim))?.transpose(1, 2)?.contiguous()
    }

    /// `attn_bias`: (batch, 1, 1, seq), 0 for tokens and a large negative for padding.
    /// Q, K and V come from one product with the three weights stacked, and
    /// the rest is one fused op (`attention.rs`).
    pub fn forward(&self, x: &Tensor, attn_bias: &Tensor, train: bool) -> Result<Tensor> {
        let (b, s, _) = x.dims3()?;
        let (q, k, v) = (&self.query, &self.key, &self.value);
        let weight = Tensor::cat(&[&q.weight, &k.weight, &v.weight], 0)?;
        let bias = Tensor::cat(&[&q.bias, &k.bias, &v.bias], 0)?;
        let qkv = super::linear::linear(x, &weight, &bias, None, None, train)?;
        let mask = self.dropout.mask(b * self.num_heads * s * s, train);
        super::attention::attention(&qkv, attn_bias, self.num_heads, mask)
    }

    /// The output and the attention scores q·kᵀ/√d before the mask and softmax,
    /// (batch, heads, seq, seq): what TinyBERT's attention loss matches.
    pub fn forward_with_scores(&self, x: &Tensor, attn_bias: &Tensor, train: bool) -> Result<(Tensor, Tensor)> {
        let (b, s, h) = x.dims3()?;
        let q = self.split_heads(&self.query.forward(x)?)?;
        let k = self.split_heads(&self.key.forward(x)?)?;
        let v = self.split_heads(&self.value.forward(x)?)?;
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let raw = (q.matmul(&k.t()?.contiguous()?)? * scale)?;
        let probs = self.dropout.forward(&softmax_last_dim(&raw.broadcast_add(attn_bias)?)?, train)?;
        let out = probs.matmul(&v)?.transpose(1, 2)?.contiguous()?.reshape((b, s, h))?;
        Ok((out, raw))
    }
}

/// Dense + dropout + residual layer norm: `attention.output` and `output` in HF.
pub struct BertResidualOutput {
    dense: Linear,
    layer_norm: LayerNorm,
    dropout: Dropout,
}

impl BertResidualOutput {
    pub fn load(in_dim: usize, vb: VarBuilder, cfg: &Config) -> Result<Self> {
        Ok(Self {
            dense: linear(in_dim, cfg.hidden_size, vb.pp("dense"), cfg)?,
            layer_norm: LayerNorm::load(cfg.hidden_size, cfg.layer_norm_eps, vb.pp("LayerNorm"))?,
            dropout: Dropout::new(cfg.hidden_dropout_prob as f32),
        })
    }

    pub fn forward(&self, x: &Tensor, residual: &Tensor, train: bool) -> Result<Tensor> {
        let x = self.dense.forward_dropout(x, &self.dropout, train)?;
        self.layer_norm.forward(&(x + residual)?)
    }
}

pub struct BertLayer {
    attention: BertSelfAttention,
    attention_output: BertResidualOutput,
    intermediate: Linear,
    act: HiddenAct,
    output: BertResidualOutput,
}

impl BertLayer {
    pub fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        Ok(Self {
            attention: BertSelfAttention::load(vb.pp("attention.self"), cfg)?,
            attention_output: BertResidualOutput::load(cfg.hidden_size, vb.pp("attention.output"), cfg)?,
            intermediate: linear(cfg.hidden_size, cfg.intermediate_size, vb.pp("intermediate.dense"), cfg)?,
            act: cfg.hidden_act,
            output: BertResidualOutput::load(cfg.intermediate_size, vb.pp("output"), cfg)?,
        })
    }

    pub fn forward(&self, x: &Tensor, attn_bias: &Tensor, train: bool) -> Result<Tensor> {
        let attn = self.attention.forward(x, attn_bias, train)?;
        self.after_attention(x, &attn, train)
    }

    /// The layer's output and its attention scores before mask and softmax.
    pub fn forward_with_scores(&self, x: &Tensor, attn_bias: &Tensor, train: bool) -> Result<(Tensor, Tensor)> {
        let (attn, scores) = self.attention.forward_with_scores(x, attn_bias, train)?;
        Ok((self.after_attention(x, &attn, train)?, scores))
    }

    fn after_attention(&self, x: &Tensor, attn: &Tensor, train: bool) -> Result<Tensor> {
        let x = self.attention_output.forward(attn, x, train)?;
        let inter = self.intermediate.forward_act(&x, self.act, train)?;
        self.output.forward(&inter, &x, train)
    }
}

pub struct BertPooler {
    dense: Linear,
}

impl BertPooler {
    pub fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        Ok(Self { dense: linear(cfg.hidden_size, cfg.hidden_size, vb.pp("dense"), cfg)? })
    }

    /// tanh(W · h[CLS] + b).
    pub fn forward(&self, hidden: &Tensor) -> Result<Tensor> {
        self.dense.forward(&hidden.narrow(1, 0, 1)?.squeeze(1)?)?.tanh()
    }
}

/// Additive attention bias from a (batch, seq) 0/1 mask: −1e4 on padding. A
/// finite value (not f32::MIN) so the same graph stays NaN-free in f16.
pub fn attention_bias(mask: &Tensor) -> Result<Tensor> {
    let (b, s) = mask.dims2()?;
    ((mask.to_dtype(DType::F32)? - 1.0)? * 1e4)?.reshape((b, 1, 1, s))
}

/// Per-layer outputs of [`BertModel::forward_internals`].
pub struct Internals {
    /// (batch, seq, hidden) after each layer.
    pub hidden: Vec<Tensor>,
    /// (batch, heads, seq, seq) attention scores of each layer, before mask and softmax.
    pub scores: Vec<Tensor>,
}

/// Embeddings plus an encoder whose layers are reachable one by one (Theseus
/// swaps them, FastBERT classifies after each). The pooler exists for
/// classifiers only: `BertForMaskedLM` has none, as in Hugging Face.
pub struct BertModel {
    pub embeddings: BertEmbeddings,
    pub layers: Vec<BertLayer>,
    pub pooler: Option<BertPooler>,
}

impl BertModel {
    pub fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        let mut me = Self::load_without_pooler(vb.clone(), cfg)?;
        me.pooler = Some(BertPooler::load(vb.pp("pooler"), cfg)?);
        Ok(me)
    }

    pub fn load_without_pooler(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| BertLayer::load(vb.pp(format!("encoder.layer.{i}")), cfg))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { embeddings: BertEmbeddings::load(vb.pp("embeddings"), cfg)?, layers, pooler: None })
    }

    /// tanh(W · h[CLS] + b) of a model loaded with its pooler.
    pub fn pooled(&self, hidden: &Tensor) -> Result<Tensor> {
        match &self.pooler {
            Some(p) => p.forward(hidden),
            None => candle_core::bail!("this BERT was loaded without a pooler"),
        }
    }

    /// Every layer's output hidden states and attention scores (before mask and
    /// softmax), in layer order: what intermediate-layer distillation matches.
    pub fn forward_internals(&self, input_ids: &Tensor, mask: &Tensor, train: bool) -> Result<Internals> {
        let bias = attention_bias(mask)?;
        let mut x = self.embeddings.forward(input_ids, train)?;
        let mut internals = Internals { hidden: Vec::new(), scores: Vec::new() };
        for layer in &self.layers {
            let (y, scores) = layer.forward_with_scores(&x, &bias, train)?;
            internals.hidden.push(y.clone());
            internals.scores.push(scores);
            x = y;
        }
        Ok(internals)
    }

    /// Final hidden states, (batch, seq, hidden).
    pub fn forward(&self, input_ids: &Tensor, mask: &Tensor, train: bool) -> Result<Tensor> {
        let bias = attention_bias(mask)?;
        let mut x = self.embeddings.forward(input_ids, train)?;
        for layer in &self.layers {
            x = layer.forward(&x, &bias, train)?;
        }
        Ok(x)
    }
}

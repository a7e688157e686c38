//! FastBERT branch classifiers (Liu et al. 2020): a small classifier after an
//! encoder layer, so inference can stop there when it is confident.
//! Linear H→h + tanh → multi-head self-attention at h → first token →
//! Linear h→h + tanh → Linear h→labels.

pub use super::bert::BranchConfig;
use super::bert::{linear, softmax_last_dim, Config, Linear};
use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

pub struct BranchClassifier {
    dense_in: Linear,
    query: Linear,
    key: Linear,
    value: Linear,
    dense_out: Linear,
    classifier: Linear,
    heads: usize,
    head_dim: usize,
}

impl BranchClassifier {
    pub fn load(vb: VarBuilder, cfg: &Config, branch: &BranchConfig, num_labels: usize) -> Result<Self> {
        let h = branch.hidden_size;
        if branch.num_attention_heads == 0 || !h.is_multiple_of(branch.num_attention_heads) {
            candle_core::bail!("branch hidden size {h} is not divisible by {} heads", branch.num_attention_heads);
        }
        Ok(Self {
            dense_in: linear(cfg.hidden_size, h, vb.pp("dense_in"), cfg)?,
            query: linear(h, h, vb.pp("attention.query"), cfg)?,
            key: linear(h, h, vb.pp("attention.key"), cfg)?,
            value: linear(h, h, vb.pp("attention.value"), cfg)?,
            dense_out: linear(h, h, vb.pp("dense_out"), cfg)?,
            classifier: linear(h, num_labels, vb.pp("classifier"), cfg)?,
            heads: branch.num_attention_heads,
            head_dim: h / branch.num_attention_heads,
        })
    }

    fn split_heads(&self, x: &Tensor) -> Result<Tensor> {
        let (b, s, _) = x.dims3()?;
        x.reshape((b, s, self.heads, self.head_dim))?.transpose(1, 2)?.contiguous()
    }

    /// Logits from a layer's hidden states (batch, seq, H) and the attention bias.
    pub fn forward(&self, hidden: &Tensor, attn_bias: &Tensor) -> Result<Tensor> {
        let x = self.dense_in.forward(hidden)?.tanh()?;
        let (q, k, v) = (
            self.split_heads(&self.query.forward(&x)?)?,
            self.split_heads(&self.key.forward(&x)?)?,
            self.split_heads(&self.value.forward(&x)?)?,
        );
        // Only the first token's output is used, so only its query row is needed.
        let q0 = q.narrow(2, 0, 1)?.contiguous()?;
        let scores = (q0.matmul(&k.t()?.contiguous()?)? / (self.head_dim as f64).sqrt())?.broadcast_add(attn_bias)?;
        let ctx = softmax_last_dim(&scores)?.matmul(&v)?; // (b, heads, 1, head_dim)
        let (b, _, _, _) = ctx.dims4()?;
        let pooled = ctx.transpose(1, 2)?.reshape((b, self.heads * self.head_dim))?;
        let x = self.dense_out.forward(&pooled)?.tanh()?;
        self.classifier.forward(&x)
    }
}

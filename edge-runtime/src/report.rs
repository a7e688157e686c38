//! What `bench` measured: the report it returns and writes as
//! `report.json`, and that `report.md` and the plots are drawn from.

use crate::runtime::Compute;
use bundle::stats::Latency;
use bundle::{ExitPolicy, Precision};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct PolicyResult {
    pub name: String,
    pub policy: ExitPolicy,
    pub correct: usize,
    pub accuracy: f64,
    pub accuracy_ci95: [f64; 2],
    /// Accuracy minus full depth's, in percentage points.
    pub accuracy_change_pts: f64,
    pub mean_layers: f64,
    /// `exit_histogram[k]`: samples that exited after layer k+1.
    pub exit_histogram: Vec<usize>,
    /// Per-text wall time (all segments the text went through).
    pub latency: Latency,
    /// Latency of the texts that exited after each layer (`None`: no text did).
    pub latency_by_exit_layer: Vec<Option<Latency>>,
    /// Mean full-depth latency over this policy's mean latency.
    pub speedup_vs_full: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub bundle: String,
    pub data: String,
    pub n: usize,
    /// Texts longer than the bundle's max_seq_len (cut to it).
    pub truncated: usize,
    pub num_layers: usize,
    pub precision: Precision,
    /// The float type the graphs computed in.
    pub compute: Compute,
    pub batch_size: usize,
    pub threads: usize,
    pub machine: String,
    pub runtime: String,
    /// Wall time of loading the bundle (read, verify, parse, check, optimize),
    /// when the caller timed it.
    pub load_ms: Option<f64>,
    /// Wall time per call of each segment: embeddings, then layer k with its
    /// exit classifier (if any), from a pass that runs every exit.
    pub segment_latency: Vec<Latency>,
    /// What exiting after layer k costs: embeddings + layers 1..=k with their exits (mean ms).
    pub cost_to_exit_after_layer_ms: Vec<f64>,
    /// Latency of the texts that exited after layer k, all policies pooled.
    pub exits_at_layer: Vec<Option<Latency>>,
    /// Full depth first, then the requested policies.
    pub policies: Vec<PolicyResult>,
}

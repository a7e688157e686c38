//! One segment of a bundle (the embeddings, a layer, an exit) as tract's
//! optimized plan with the execution state it reuses from call to call.
//!
//! A segment is planned at load, or, with lazy plans
//! ([`crate::LoadOptions::lazy_plans`]), at the first text that reaches it:
//! tract's optimization is most of a load, and a text that exits after layer
//! k needs only k layers' plans. The graph is read, typed and checked against
//! the manifest at load either way; only the optimization waits.
//!
//! [`Compute`], the float type a plan computes in, is here too: the runtime
//! re-exports it.

use crate::error::RuntimeError;
use bundle::manifest::Precision;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use tract_nnef::prelude::*;
use tract_nnef::tract_core::floats::FloatPrecisionTranslator;
use tract_nnef::tract_core::model::TypedSimpleState;
use tract_nnef::tract_core::ops::einsum::EinSum;
use tract_nnef::tract_core::transform::ModelTransform;

/// The float type the graphs compute in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Compute {
    /// f16 for an f16 bundle on a CPU with f16 arithmetic (aarch64 FEAT_FP16), else f32.
    Auto,
    F32,
    /// Every float op in f16 (tract's f32→f16 translation). Emulated, hence
    /// slow, on CPUs without f16 arithmetic: for checking accuracy there.
    F16,
    /// Only the matrix products in f16 (tract's f16 kernels); every other op
    /// in f32, behind casts. (As in every f16 mode, the hidden states between
    /// segments are f16: tract's translation always translates a graph's
    /// inputs and outputs.)
    #[serde(rename = "f16-products")]
    F16Products,
    /// f16 but for the ops whose accuracy needs f32: layer norm, softmax,
    /// GELU and reductions run in f32 behind casts; the products and the
    /// reshapes, transposes and adds between them run in f16, so a product's
    /// output reaches the next product without a round trip through f32.
    #[serde(rename = "mixed-f16")]
    MixedF16,
}

/// The ops [`Compute::MixedF16`] keeps in f32, by tract op name (the runtime's
/// own layer norm and row softmax, and tract's stock forms).
const KEPT_F32: &[&str] = &["FusedAddLayerNorm", "FusedLayerNorm", "RowSoftmax", "Softmax", "GeluExact", "RmsNorm"];

fn kept_f32(node: &TypedNode) -> bool {
    let name = node.op.name();
    KEPT_F32.contains(&name.as_ref()) || name.starts_with("Reduce")
}

/// The names the CLI (`--compute`), the Python wheel and reports use.
const COMPUTE_NAMES: [(&str, Compute); 5] = [
    ("auto", Compute::Auto),
    ("f32", Compute::F32),
    ("f16", Compute::F16),
    ("f16-products", Compute::F16Products),
    ("mixed-f16", Compute::MixedF16),
];

impl std::str::FromStr for Compute {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        COMPUTE_NAMES.iter().find(|(name, _)| *name == s).map(|(_, c)| *c).ok_or_else(|| {
            let names: Vec<&str> = COMPUTE_NAMES.iter().map(|(name, _)| *name).collect();
            format!("unknown compute mode {s:?}: give one of {}", names.join(", "))
        })
    }
}

impl std::fmt::Display for Compute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = COMPUTE_NAMES.iter().find(|(_, c)| c == self).map_or("?", |(name, _)| name);
        f.write_str(name)
    }
}

impl Compute {
    /// Whether the matrix products run in f16 (every mode but f32 and auto).
    pub fn products_in_f16(self) -> bool {
        matches!(self, Compute::F16 | Compute::F16Products | Compute::MixedF16)
    }

    /// What `self` means for a bundle of `precision` on this CPU.
    pub fn resolve(self, precision: Precision) -> Compute {
        match self {
            Compute::Auto if precision == Precision::F16 && cpu_has_f16_arithmetic() => Compute::F16,
            Compute::Auto => Compute::F32,
            other => other,
        }
    }
}

/// Whether tract runs f16 arithmetic natively here (aarch64 FEAT_FP16, x86
/// AVX512-FP16). On aarch64 tract reads the `Features` line of /proc/cpuinfo
/// (`asimdhp`); under qemu-user that file is the host's, so pass
/// `TRACT_CPU_ISA=+fp16` there when the emulated CPU has it.
pub fn cpu_has_f16_arithmetic() -> bool {
    tract_linalg::isa::native().fp16_arithmetic()
}

/// Whether a typed model still needs tract's decluttering before its plan.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Stage {
    Typed,
    /// An NNEF archive holds the graph decluttered already; doing it again
    /// took about a third of the load and changed nothing.
    Decluttered,
}

pub(crate) struct Segment {
    path: String,
    state: Mutex<State>,
    /// Times the segment ran (the dry run at load included).
    runs: AtomicU64,
}

/// How a segment's plan is made: the float type, the matrix kernel
/// pinned for its products ([`crate::kernels`]), and whether the batch is
/// one text ([`crate::LoadOptions::one_text_plans`]).
#[derive(Debug, Clone)]
pub(crate) struct Planning {
    pub compute: Compute,
    pub kernel: Option<String>,
    pub one_text: bool,
}

/// The batch dimension's name in a bundle's graphs (the exporter's, kept by
/// `to-nnef` as `extension tract_symbol B`).
const BATCH_SYMBOL: &str = "B";

enum State {
    Ready(TypedSimpleState),
    /// Read and checked; tract's optimization waits for the first run.
    Pending(Box<(TypedModel, Stage, Planning)>),
    /// The deferred optimization failed: every later run reports it.
    Failed(String),
}

impl Segment {
    pub(crate) fn planned(model: TypedModel, stage: Stage, path: String, planning: &Planning) -> Result<Self, RuntimeError> {
        let state = plan(model, stage, &path, planning)?;
        Ok(Self { path, state: Mutex::new(State::Ready(state)), runs: AtomicU64::new(0) })
    }

    pub(crate) fn deferred(model: TypedModel, stage: Stage, path: String, planning: &Planning) -> Self {
        Self { path, state: Mutex::new(State::Pending(Box::new((model, stage, planning.clone())))), runs: AtomicU64::new(0) }
    }

    pub(crate) fn runs(&self) -> u64 {
        self.runs.load(Ordering::Relaxed)
    }

    pub(crate) fn is_planned(&self) -> bool {
        matches!(*self.lock(), State::Ready(_))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` on the segment's state, planning the segment first if it
    /// waits for that (one thread plans; others wait for it).
    pub(crate) fn with_state<R>(&self, f: impl FnOnce(&mut TypedSimpleState) -> Result<R, RuntimeError>) -> Result<R, RuntimeError> {
        let mut state = self.lock();
        if let State::Pending(_) = &*state {
            let State::Pending(pending) = std::mem::replace(&mut *state, State::Failed(String::new())) else { unreachable!() };
            let (model, stage, planning) = *pending;
            *state = match plan(model, stage, &self.path, &planning) {
                Ok(ready) => State::Ready(ready),
                Err(e) => State::Failed(e.to_string()),
            };
        }
        match &mut *state {
            State::Ready(ready) => f(ready),
            State::Failed(message) => Err(RuntimeError::Input(message.clone())),
            State::Pending(_) => unreachable!("planned above"),
        }
    }

    /// Runs the segment on `inputs`; `name` is what an error calls it.
    pub(crate) fn run(&self, name: &str, inputs: TVec<TValue>) -> Result<TVec<TValue>, RuntimeError> {
        self.runs.fetch_add(1, Ordering::Relaxed);
        self.with_state(|state| state.run(inputs).map_err(|error| RuntimeError::Run { segment: name.to_string(), error }))
    }
}

/// An optimized plan's state, computing in f16 where asked.
fn plan(model: TypedModel, stage: Stage, path: &str, planning: &Planning) -> Result<TypedSimpleState, RuntimeError> {
    let graph = |error| RuntimeError::Graph { path: path.to_string(), error };
    let (mut model, stage) = match planning.compute {
        // Every segment is translated, so hidden states pass between
        // them in f16; token ids and masks are integers and stay as they are.
        Compute::F16 => (FloatPrecisionTranslator::new(f32::datum_type(), f16::datum_type()).transform_into(model).map_err(graph)?, Stage::Typed),
        // Each filtered op's inputs are cast to f16 and its output back to
        // f32 where an f32 op reads it; the casts of constant weights fold
        // away when the plan is decluttered. The filters name ops as
        // decluttering leaves them (an ONNX graph's erf GELU becomes one
        // GeluExact there), so a graph not yet decluttered is decluttered first.
        Compute::F16Products | Compute::MixedF16 => {
            let mut model = model;
            if stage == Stage::Typed {
                model.declutter().map_err(graph)?;
            }
            let translator = if planning.compute == Compute::F16Products {
                FloatPrecisionTranslator::with_filter(f32::datum_type(), f16::datum_type(), |node| node.op_is::<EinSum>())
            } else {
                FloatPrecisionTranslator::with_filter(f32::datum_type(), f16::datum_type(), |node| !kept_f32(node))
            };
            (translator.transform_into(model).map_err(graph)?, Stage::Typed)
        }
        _ => (model, stage),
    };
    if stage == Stage::Typed {
        model.declutter().map_err(graph)?;
    }
    if planning.compute.products_in_f16() {
        // The casts the f16 translation wired (the weights' ones folded above).
        crate::half_cast::use_half_casts(&mut model).map_err(graph)?;
    }
    if planning.one_text {
        // Shapes then hold S alone, not products of B and S: tract's
        // optimization simplifies far fewer symbolic expressions.
        if let Some(batch) = model.symbols.get(BATCH_SYMBOL) {
            model = model.set_symbols(&std::collections::HashMap::from([(batch, TDim::from(1))])).map_err(graph)?;
        }
    }
    crate::kernels::optimize(&mut model, planning.kernel.as_deref()).map_err(graph)?;
    // A fresh state per call would reallocate every buffer of the graph.
    model.into_runnable().and_then(|plan| TypedSimpleState::new(&plan)).map_err(graph)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compute_modes_parse_from_the_names_they_print_and_serialize_as() {
        for (name, mode) in COMPUTE_NAMES {
            assert_eq!(name.parse::<Compute>(), Ok(mode));
            assert_eq!(mode.to_string(), name);
            assert_eq!(serde_json::to_value(mode).unwrap(), name, "the reports' spelling");
        }
        let e = "mixed".parse::<Compute>().unwrap_err();
        assert!(e.contains("\"mixed\"") && e.contains("mixed-f16"), "{e}");
    }

    #[test]
    fn auto_computes_in_f16_only_for_f16_weights_on_an_f16_cpu() {
        for precision in [Precision::F32, Precision::Int8] {
            assert_eq!(Compute::Auto.resolve(precision), Compute::F32, "{precision:?}");
        }
        let f16_cpu = cpu_has_f16_arithmetic();
        assert_eq!(Compute::Auto.resolve(Precision::F16), if f16_cpu { Compute::F16 } else { Compute::F32 });
        // An explicit choice is kept whatever the bundle holds.
        assert_eq!(Compute::F16.resolve(Precision::F32), Compute::F16);
        assert_eq!(Compute::F32.resolve(Precision::F16), Compute::F32);
    }
}

//! The matrix kernels: what tract can run on this CPU (the instruction-set
//! features it detected and the kernels those allow: NEON / fp16 /
//! dot-product on ARM, AVX2 / FMA / AVX-512 on x86), for `edge-runtime
//! --version --verbose`, and which one the products of a plan run with.
//!
//! Plans keep the sequence length symbolic, so tract 0.23.9 chooses each
//! product's kernel without knowing its `n` (the tokens): it takes the widest
//! packing group that also holds a one-column kernel. On aarch64 NEON in f32
//! that is `arm64simd_mmm_f32_32x3_gen` (with `32x1_gen` for one column),
//! whose inner loop does 3.10 multiply-adds per instruction and packs the
//! activations in panels of 3 columns. `arm64simd_mmm_f32_12x8_gen` does 3.43,
//! unrolled four times, and packs them in panels of 8. Counted under qemu on
//! the small-12 shape, a text then takes 0.86x the instructions at 64 tokens
//! and 0.90x at the corpus's own lengths, on the Cortex-A72 and the A76 alike
//! (docs/results/arm.md, "Where the instructions go"), so `Auto` picks it on
//! aarch64. Elsewhere tract's choice stands: on x86 its symbolic pick was the
//! faster one (docs/results/runtime-speed.md).
//!
//! In the f16 compute modes every product is f16, and tract's symbolic pick is
//! `arm64fp16_mmm_f16_64x3_gen`; `arm64fp16_mmm_f16_16x8_gen` took 0.87–0.91x
//! its instructions per text on a Cortex-A76 (docs/results/quantize.md,
//! "Compute modes on a Pi 5 core"), so there `Auto` picks that one where the
//! CPU has f16 arithmetic.
//!
//! The choice reaches tract through the vendored tract-core's
//! `TRACT_MMM_KERNEL_SYMBOLIC_N` knob (vendor/README.md), scoped to the
//! runtime's own optimizations. A product the named kernel does not suit
//! (another type, int8 products) keeps tract's choice.

use crate::error::RuntimeError;
use tract_linalg::isa::native;
use tract_linalg::mmm_routines::runnable_for;
use tract_nnef::tract_core::knobs::KnobScope;
use tract_nnef::prelude::*;

/// The f32 kernel `Auto` pins on aarch64.
pub const AARCH64_F32: &str = "arm64simd_mmm_f32_12x8_gen";
/// The f16 kernel `Auto` pins on aarch64 with f16 arithmetic, for the f16 compute modes.
pub const AARCH64_F16: &str = "arm64fp16_mmm_f16_16x8_gen";

/// The kernel for the products whose length is symbolic (all of a plan's).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum MatmulKernel {
    /// [`AARCH64_F32`] on aarch64 ([`AARCH64_F16`] when computing in f16
    /// where the CPU can), tract's own choice elsewhere.
    #[default]
    Auto,
    /// tract's own choice.
    Tract,
    /// This kernel, by the name `edge-runtime --version --verbose` lists.
    Named(String),
}

impl std::str::FromStr for MatmulKernel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "tract" => Ok(Self::Tract),
            "" => Err("give auto, tract or a kernel's name".into()),
            name => Ok(Self::Named(name.to_string())),
        }
    }
}

impl MatmulKernel {
    /// The kernel to pin on this CPU, if any, for plans whose products are
    /// f16 (`f16`: [`crate::Compute::products_in_f16`]) or f32; an error for a
    /// name tract cannot run here.
    pub fn resolve(&self, f16: bool) -> Result<Option<String>, RuntimeError> {
        let runnable = runnable_here();
        let can_run = |name: &str| runnable.iter().any(|k| k == name);
        let name = match self {
            Self::Auto if cfg!(target_arch = "aarch64") && f16 && can_run(AARCH64_F16) => AARCH64_F16,
            Self::Auto if cfg!(target_arch = "aarch64") => AARCH64_F32,
            Self::Auto | Self::Tract => return Ok(None),
            Self::Named(name) => name,
        };
        if can_run(name) {
            Ok(Some(name.to_string()))
        } else {
            Err(RuntimeError::Input(format!(
                "matrix kernel {name}: not one tract can run on this CPU (`edge-runtime --version --verbose` lists them)"
            )))
        }
    }
}

/// The names of the matrix kernels tract can run on this CPU.
pub fn runnable_here() -> Vec<String> {
    runnable_for(&native()).iter().map(|k| k.name().to_string()).collect()
}

/// `model.optimize()`, with `kernel` (a name [`MatmulKernel::resolve`] gave) pinned.
pub(crate) fn optimize(model: &mut TypedModel, kernel: Option<&str>) -> TractResult<()> {
    match kernel {
        Some(name) => KnobScope::new([("TRACT_MMM_KERNEL_SYMBOLIC_N", name)])?.enter(|| model.optimize()),
        None => model.optimize(),
    }
}

pub fn describe() -> String {
    let isa = native();
    let mut s = format!("target: {} {}\n", std::env::consts::ARCH, std::env::consts::OS);
    s += &format!("cpu features tract detected: {isa:?}\n");
    let kernels = runnable_here();
    s += &format!("matrix kernels usable here ({}):\n", kernels.len());
    for k in kernels {
        s += &format!("  {k}\n");
    }
    for (f16, what) in [(false, "f32"), (true, "f16 modes")] {
        let pinned = MatmulKernel::Auto.resolve(f16).ok().flatten();
        s += &format!("products of a plan run with (--matmul-kernel auto), {what}: {}\n", pinned.as_deref().unwrap_or("tract's choice"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_to_auto_tract_or_a_name() {
        assert_eq!("auto".parse(), Ok(MatmulKernel::Auto));
        assert_eq!("tract".parse(), Ok(MatmulKernel::Tract));
        assert_eq!("generic_f32_4x4".parse(), Ok(MatmulKernel::Named("generic_f32_4x4".into())));
        assert!("".parse::<MatmulKernel>().is_err());
    }

    #[test]
    fn auto_pins_the_12x8_kernel_on_aarch64_only_and_16x8_for_f16_where_the_cpu_has_it() {
        let auto = MatmulKernel::Auto.resolve(false).unwrap();
        let f16_cpu = runnable_here().iter().any(|k| k == AARCH64_F16);
        let f16 = MatmulKernel::Auto.resolve(true).unwrap();
        if cfg!(target_arch = "aarch64") {
            assert_eq!(auto.as_deref(), Some(AARCH64_F32));
            assert_eq!(f16.as_deref(), Some(if f16_cpu { AARCH64_F16 } else { AARCH64_F32 }));
        } else {
            assert_eq!((auto, f16), (None, None));
        }
        assert_eq!(MatmulKernel::Tract.resolve(false).unwrap(), None);
        assert_eq!(MatmulKernel::Tract.resolve(true).unwrap(), None);
    }

    #[test]
    fn a_kernel_this_cpu_cannot_run_is_refused_by_name() {
        let error = MatmulKernel::Named("no_such_mmm_f32_1x1".into()).resolve(false).unwrap_err().to_string();
        assert!(error.contains("no_such_mmm_f32_1x1") && error.contains("--version --verbose"), "{error}");
        // Every kernel listed as runnable is accepted.
        for name in runnable_here() {
            assert_eq!(MatmulKernel::Named(name.clone()).resolve(false).unwrap(), Some(name));
        }
    }
}

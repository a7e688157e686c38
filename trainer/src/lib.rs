//! Fine-tunes BERT classifiers with candle and compresses them for the edge.
//!
//! The CLI (`trainer`) is a thin layer over these modules.

pub mod bench;
pub mod data;
pub mod distill;
pub mod encode;
pub mod exits;
pub mod export;
pub mod fastbert;
pub mod images;
pub mod metrics;
pub mod model;
pub mod optim;
pub mod pretrain;
pub mod report;
pub mod theseus;
pub mod tokenize;
pub mod train;

/// Parses `cpu` or `cuda:N` (the latter needs the `cuda` feature).
pub fn parse_device(s: &str) -> anyhow::Result<candle_core::Device> {
    match s {
        "cpu" => Ok(candle_core::Device::Cpu),
        _ => {
            let ordinal = s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse::<usize>().ok())
                .ok_or_else(|| anyhow::anyhow!("invalid device {s:?}: expected `cpu` or `cuda:N`"))?;
            candle_core::Device::new_cuda(ordinal).map_err(|e| {
                anyhow::anyhow!("cannot use {s}: {e} (build with `--features cuda` on a machine with CUDA)")
            })
        }
    }
}

/// `cpu` or `cuda:N`: the name [`parse_device`] takes (the PyTorch bench prints the same).
pub fn device_name(device: &candle_core::Device) -> String {
    match device.location() {
        candle_core::DeviceLocation::Cpu => "cpu".into(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}

/// candle runs its element-wise binary ops (the gradient additions of the
/// backward pass among them) on a thread pool of its own whose workers spin
/// before they sleep, beside rayon's pool that runs the matrix products and
/// our fused ops. On a small machine the spinning takes the cores the products
/// need: on 2 cores a small-12 step is 0.90x PyTorch's with those ops inline
/// against 1.02x with the pool (`bench/train-step/`). So unless the user sets
/// `CANDLE_NUM_THREADS`, they run on the calling thread. Call before any
/// tensor op (candle reads the variable once).
pub fn run_binary_ops_inline() {
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
}

/// Training allocates and frees megabyte-sized tensors at every op. By default
/// glibc serves those with mmap and returns them to the kernel on free, so each
/// step page-faults (and zeroes) the same memory again: a third of the step
/// time in profiles. Keeping freed memory in the heap removes that.
/// `TRAINER_DEFAULT_MALLOC=1` keeps glibc's defaults (to measure the difference).
pub fn keep_freed_memory() {
    if std::env::var_os("TRAINER_DEFAULT_MALLOC").is_some() {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20); // glibc's maximum
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_TOP_PAD, 64 << 20);
    }
}

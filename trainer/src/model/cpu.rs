//! What the fused CPU ops share: f32 views of storages, matrix products
//! through candle's own GEMM (the `gemm` crate), and work split over candle's
//! thread pool (the element-wise passes would otherwise run on one core while
//! the GEMMs use all of them).

use candle_core::backend::BackendStorage;
use candle_core::cpu::kernels::par_for_each;
use candle_core::{CpuStorage, DType, Layout, Result, Storage, Tensor};
use std::sync::Mutex;

/// The f32 values of a contiguous input.
pub(crate) fn f32_slice<'a>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [f32]> {
    let data = match s {
        CpuStorage::F32(v) => v.as_slice(),
        _ => candle_core::bail!("fused ops support f32 only"),
    };
    match l.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("fused ops need contiguous inputs"),
    }
}

/// Runs `f` on the f32 values of a CPU tensor, in place when it is contiguous
/// (a gradient usually is), so the backward passes read it without a copy.
pub(crate) fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cpu(s) => f(f32_slice(s, layout)?),
        _ => candle_core::bail!("fused ops run on the CPU only"),
    }
}

pub(crate) fn to_vec(t: &Tensor) -> Result<Vec<f32>> {
    t.contiguous()?.flatten_all()?.to_vec1::<f32>()
}

/// Whether the fused CPU kernels apply; other devices use the composed ops.
pub(crate) fn fusable(x: &Tensor) -> bool {
    x.device().is_cpu() && x.dtype() == DType::F32
}

/// `a · b` for a row-major (m, k) matrix `a` and a (k, n) matrix `b`, both
/// contiguous in their storages from the given offsets; `b_transposed`: `b`
/// is stored as (n, k), like a Linear weight. Candle's GEMM, on all threads.
pub(crate) fn matmul(
    a: (&CpuStorage, usize),
    b: (&CpuStorage, usize),
    (m, k, n): (usize, usize, usize),
    b_transposed: bool,
) -> Result<Vec<f32>> {
    let a_l = Layout::contiguous_with_offset((m, k), a.1);
    let b_l = if b_transposed {
        Layout::contiguous_with_offset((n, k), b.1).transpose(0, 1)?
    } else {
        Layout::contiguous_with_offset((k, n), b.1)
    };
    match a.0.matmul(b.0, (1, m, n, k), &a_l, &b_l)? {
        CpuStorage::F32(v) => Ok(v),
        _ => candle_core::bail!("fused ops support f32 only"),
    }
}

/// Below this many values a pass stays on the calling thread: handing work
/// to the pool costs a few microseconds.
const PARALLEL_MIN: usize = 1 << 14;

/// Rows per block when `rows` rows of `row_work` values each are split into
/// one block per thread of candle's pool (all of them in one block when the
/// work is small).
pub(crate) fn rows_per_block(rows: usize, row_work: usize) -> usize {
    let threads = candle_core::utils::get_num_threads().min(rows).max(1);
    if threads == 1 || rows * row_work < PARALLEL_MIN {
        return rows.max(1);
    }
    rows.div_ceil(threads)
}

/// How many values each block holds when `len` values in rows of `row_len`
/// are split as [`rows_per_block`] does. Use with `chunks_mut` and [`par_blocks`].
pub(crate) fn block_len(len: usize, row_len: usize) -> usize {
    rows_per_block(len / row_len.max(1), row_len) * row_len.max(1)
}

/// Rows per block of a reduction over rows (a bias's or a layer norm's
/// gradient): a fixed number, not one block per thread, so that the partial
/// sums, added in block order, are the same whatever the number of threads
/// (a run resumed with another thread count continues exactly).
const SUM_ROWS: usize = 128;

/// How many values each block of a reduction over `row_len`-long rows holds.
pub(crate) fn sum_block_len(row_len: usize) -> usize {
    SUM_ROWS * row_len.max(1)
}

/// `f` on every block, each on a thread of candle's pool; the results in
/// block order (so sums over them do not vary between runs).
pub(crate) fn par_blocks<B: Send, T: Send>(blocks: Vec<B>, f: impl Fn(B) -> T + Send + Sync) -> Vec<T> {
    if blocks.len() <= 1 {
        return blocks.into_iter().map(f).collect();
    }
    let slots: Vec<Mutex<(Option<B>, Option<T>)>> = blocks.into_iter().map(|b| Mutex::new((Some(b), None))).collect();
    par_for_each(slots.len(), |t| {
        let mut slot = slots[t].lock().unwrap();
        let block = slot.0.take().unwrap();
        slot.1 = Some(f(block));
    });
    slots.into_iter().map(|s| s.into_inner().unwrap().1.unwrap()).collect()
}

/// Defines `$name`, which runs `$inner` compiled for AVX2 and FMA when the
/// CPU has them: the crate is built for baseline x86-64, whose vectors are
/// half as wide. `$inner` should be `#[inline(always)]`, so that its loops
/// are compiled (and vectorised) inside the AVX2 function.
macro_rules! with_best_simd {
    ($name:ident, $inner:ident, ($($arg:ident: $ty:ty),*)) => {
        fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                unsafe fn wide($($arg: $ty),*) {
                    $inner($($arg),*)
                }
                if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                    // SAFETY: the CPU has the features `wide` was compiled for.
                    return unsafe { wide($($arg),*) };
                }
            }
            $inner($($arg),*)
        }
    };
}
pub(crate) use with_best_simd;

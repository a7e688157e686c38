//! The numeric core: symmetric per-output-channel int8 and f16, with the
//! error measures the report uses.


use half::f16;

/// Two lengths that had to agree and did not (a damaged graph's dims, or two
/// outputs compared element by element).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{what}: {found} values where {expected} were expected")]
pub struct LengthMismatch {
    pub what: &'static str,
    pub expected: usize,
    pub found: usize,
}

/// Int8 weights of a (rows = output channels, cols) matrix with one scale per row.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizedMatrix {
    pub rows: usize,
    pub cols: usize,
    pub values: Vec<i8>,
    pub scales: Vec<f32>,
}

/// Symmetric per-row quantisation: scale = max|w| / 127, q = round(w / scale).
/// An all-zero row gets scale 1 so dequantisation stays exact.
pub fn quantize_per_channel(weights: &[f32], rows: usize, cols: usize) -> Result<QuantizedMatrix, LengthMismatch> {
    let expected = rows.saturating_mul(cols);
    if weights.len() != expected {
        return Err(LengthMismatch { what: "a rows × cols weight matrix", expected, found: weights.len() });
    }
    let mut values = Vec::with_capacity(weights.len());
    let mut scales = Vec::with_capacity(rows);
    for row in weights.chunks(cols.max(1)).take(rows) {
        let max = row.iter().fold(0f32, |m, &w| m.max(w.abs()));
        let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
        values.extend(row.iter().map(|&w| (w / scale).round().clamp(-127.0, 127.0) as i8));
        scales.push(scale);
    }
    Ok(QuantizedMatrix { rows, cols, values, scales })
}

pub fn dequantize(q: &QuantizedMatrix) -> Vec<f32> {
    q.values
        .chunks(q.cols.max(1))
        .zip(&q.scales)
        .flat_map(|(row, &s)| row.iter().map(move |&v| v as f32 * s))
        .collect()
}

pub fn to_f16(weights: &[f32]) -> Vec<f16> {
    weights.iter().map(|&w| f16::from_f32(w)).collect()
}

pub fn from_f16(weights: &[f16]) -> Vec<f32> {
    weights.iter().map(|w| w.to_f32()).collect()
}

/// Error of an approximation: max-abs and signal-to-quantisation-noise ratio in dB.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ErrorStats {
    pub max_abs: f32,
    pub sqnr_db: f64,
}

pub fn error_stats(reference: &[f32], approx: &[f32]) -> Result<ErrorStats, LengthMismatch> {
    if reference.len() != approx.len() {
        return Err(LengthMismatch { what: "an approximation of a reference", expected: reference.len(), found: approx.len() });
    }
    let (mut signal, mut noise, mut max_abs) = (0f64, 0f64, 0f32);
    for (&r, &a) in reference.iter().zip(approx) {
        signal += (r as f64).powi(2);
        noise += ((r - a) as f64).powi(2);
        max_abs = max_abs.max((r - a).abs());
    }
    let sqnr_db = if noise == 0.0 { f64::INFINITY } else { 10.0 * (signal / noise).log10() };
    Ok(ErrorStats { max_abs, sqnr_db })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, Rng, SeedableRng};

    fn random_matrix(rows: usize, cols: usize, seed: u64) -> Vec<f32> {
        let mut rng = StdRng::seed_from_u64(seed);
        // Rows with different ranges, as real weight matrices have.
        (0..rows * cols).map(|i| rng.random_range(-1.0f32..1.0) * (1 + i / cols) as f32 * 0.05).collect()
    }

    #[test]
    fn int8_round_trip_error_is_within_half_a_step_per_channel() {
        let (rows, cols) = (16, 64);
        let w = random_matrix(rows, cols, 1);
        let q = quantize_per_channel(&w, rows, cols).unwrap();
        let back = dequantize(&q);
        for r in 0..rows {
            for c in 0..cols {
                let err = (w[r * cols + c] - back[r * cols + c]).abs();
                assert!(err <= q.scales[r] * 0.5 + 1e-7, "row {r}: error {err} > half step {}", q.scales[r] / 2.0);
            }
        }
        // Uniform weights: SQNR of an 8-bit quantiser is ~ 6.02·8 − 4.77 ≈ 43 dB.
        let stats = error_stats(&w, &back).unwrap();
        assert!(stats.sqnr_db > 38.0, "{stats:?}");
    }

    #[test]
    fn zero_rows_and_extremes_quantise_exactly() {
        let w = [0.0, 0.0, -2.0, 2.0];
        let q = quantize_per_channel(&w, 2, 2).unwrap();
        assert_eq!(q.values, vec![0, 0, -127, 127]);
        assert_eq!(dequantize(&q), w.to_vec());
    }

    #[test]
    fn f16_round_trip_keeps_three_significant_digits() {
        let w = random_matrix(8, 32, 2);
        let back = from_f16(&to_f16(&w));
        for (a, b) in w.iter().zip(&back) {
            assert!((a - b).abs() <= a.abs() * 1e-3 + 1e-7, "{a} vs {b}");
        }
        assert!(error_stats(&w, &back).unwrap().sqnr_db > 60.0);
    }

    #[test]
    fn a_matrix_whose_dims_disagree_with_its_values_is_an_error_not_a_panic() {
        let e = quantize_per_channel(&[0.5; 12], 4, 32).unwrap_err();
        assert_eq!((e.expected, e.found), (128, 12));
        assert!(quantize_per_channel(&[0.5; 12], usize::MAX, 2).is_err());
        assert!(error_stats(&[1.0, 2.0], &[1.0]).is_err());
    }
}

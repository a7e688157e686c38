//! libm's `erff` near zero and `expf`, without branches, for the exact GELU
//! over whole slices.
//!
//! candle's `gelu_erf` calls libm's `erff` (FreeBSD's algorithm), one opaque
//! call per element, which made the exact GELU a tenth of the training step.
//! These are the same algorithms — the same constants, the same f32
//! operations in the same order — with the cases computed and selected
//! instead of branched to, so loops over them vectorise. The results are
//! libm's bit for bit (the tests sweep the inputs), so the model's numerics do
//! not change. `erf_near` covers |x| < 1.25, where erf is two rational
//! functions; beyond, libm's needs two `expf`, and computing that for every
//! element cost more than calling libm for the few that need it.

// The constants as libm writes them (more digits than an f32 holds, the
// same f32 values), so they can be compared with its source line by line.
#![allow(clippy::excessive_precision)]

const ERX: f32 = 8.4506291151e-01;
const EFX8: f32 = 1.0270333290e+00;
const PP: [f32; 5] = [1.2837916613e-01, -3.2504209876e-01, -2.8481749818e-02, -5.7702702470e-03, -2.3763017452e-05];
const QQ: [f32; 5] = [3.9791721106e-01, 6.5022252500e-02, 5.0813062117e-03, 1.3249473704e-04, -3.9602282413e-06];
const PA: [f32; 7] = [
    -2.3621185683e-03, 4.1485610604e-01, -3.7220788002e-01, 3.1834661961e-01, -1.1089469492e-01, 3.5478305072e-02,
    -2.1663755178e-03,
];
const QA: [f32; 6] = [1.0642088205e-01, 5.4039794207e-01, 7.1828655899e-02, 1.2617121637e-01, 1.3637083583e-02, 1.1984500103e-02];

/// `c[0] + s·(c[1] + s·(c[2] + …))`, nested as libm writes it.
#[inline(always)]
fn horner(s: f32, c: &[f32]) -> f32 {
    c.iter().rev().copied().reduce(|acc, c| c + s * acc).unwrap()
}

/// `1 + s·(c[0] + s·(c[1] + …))`, libm's denominators.
#[inline(always)]
fn one_plus(s: f32, c: &[f32]) -> f32 {
    1.0 + s * horner(s, c)
}

#[inline(always)]
fn select(c: bool, a: f32, b: f32) -> f32 {
    if c {
        a
    } else {
        b
    }
}

/// libm's `expf` for `x` in [-87.3, 88.7], where its result is a normal
/// number; below that 0 (libm: a subnormal), above it infinity.
#[inline(always)]
pub fn expf(x: f32) -> f32 {
    const LN2_HI: f32 = 6.9314575195e-01;
    const LN2_LO: f32 = 1.4286067653e-06;
    const INV_LN2: f32 = 1.4426950216e+00;
    const P1: f32 = 1.6666625440e-1;
    const P2: f32 = -2.7667332906e-3;
    let bits = x.to_bits();
    let sign = (bits >> 31) as i32;
    let hx = bits & 0x7fff_ffff;
    // Argument reduction: x = k·ln2 + (hi - lo), for |x| > ln2/2.
    let k_far = (INV_LN2 * x + select(sign != 0, -0.5, 0.5)) as i32;
    let k = if hx > 0x3f85_1592 { k_far } else if hx > 0x3eb1_7218 { 1 - sign - sign } else { 0 };
    let reduce = hx > 0x3eb1_7218;
    let kf = k as f32;
    let hi = select(reduce, x - kf * LN2_HI, x);
    let lo = select(reduce, kf * LN2_LO, 0.0);
    let r = select(reduce, hi - lo, x);
    let rr = r * r;
    let c = r - rr * (P1 + rr * P2);
    let y = 1. + (r * c / (2. - c) - lo + hi);
    // scalbnf(y, k) for k in the normal range is one exact multiplication.
    let scaled = y * f32::from_bits(((0x7f + k.clamp(-126, 127)) as u32) << 23);
    let e = select(k == 0, y, scaled);
    let e = select(hx > 0x3900_0000, e, 1. + x);
    select(x < -87.33654, 0.0, select(x > 88.72283, f32::INFINITY, e))
}

/// Whether `erf_near` is libm's `erff` at `x`: |x| < 1.25.
#[inline(always)]
pub fn is_near(x: f32) -> bool {
    x.to_bits() & 0x7fff_ffff < 0x3fa0_0000
}

/// libm's `erff`, bit for bit, where [`is_near`]; anything elsewhere.
#[inline(always)]
pub fn erf_near(x: f32) -> f32 {
    let ix = x.to_bits() & 0x7fff_ffff;
    // |x| < 2^-28
    let tiny = 0.125 * (8.0 * x + EFX8 * x);
    // |x| < 0.84375
    let z = x * x;
    let small = x + x * (horner(z, &PP) / one_plus(z, &QQ));
    // 0.84375 <= |x| < 1.25: erf = 1 - erfc, erfc = 1 - erx - P/Q around |x| = 1.
    let s = f32::from_bits(ix) - 1.0;
    let y = 1.0 - (1.0 - ERX - horner(s, &PA) / one_plus(s, &QA));
    let mid = select(x < 0.0, -y, y);
    select(ix < 0x3180_0000, tiny, select(ix < 0x3f58_0000, small, mid))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every 61st f32 (by bit pattern) of each sign up to `limit`, the limit
    /// and the case boundaries on both sides.
    fn sweep(limit: f32) -> Vec<f32> {
        let mut v: Vec<f32> = (0..limit.to_bits()).step_by(61).map(f32::from_bits).collect();
        for b in [0x3180_0000u32, 0x3f58_0000, 0x3fa0_0000, 0x3900_0000, 0x3eb1_7218, 0x3f85_1592] {
            v.extend([b - 1, b, b + 1].map(f32::from_bits));
        }
        v.push(limit);
        let negative: Vec<f32> = v.iter().map(|x| -x).collect();
        v.extend(negative);
        v
    }

    #[test]
    fn erf_near_is_libms_erff_bit_for_bit_below_1_25() {
        for x in sweep(1.25).into_iter().filter(|&x| is_near(x)) {
            let (ours, libm) = (erf_near(x), candle_core::cpu::erf::erf_f32(x));
            assert_eq!(ours.to_bits(), libm.to_bits(), "erf({x:e}): {ours:e} against libm's {libm:e}");
        }
        assert!(is_near(-1.2499999) && !is_near(1.25) && !is_near(f32::NAN));
    }

    #[test]
    fn expf_is_the_branching_algorithm_bit_for_bit_where_the_result_is_normal() {
        for x in sweep(87.0) {
            let (ours, reference) = (expf(x), reference_expf(x));
            assert_eq!(ours.to_bits(), reference.to_bits(), "exp({x:e})");
            // And the transcription is an exp: within 2 ulp of the correctly rounded value.
            let exact = (x as f64).exp() as f32;
            assert!(ours.to_bits().abs_diff(exact.to_bits()) <= 2, "exp({x:e}) = {ours:e}, not {exact:e}");
        }
        assert_eq!(expf(-100.0), 0.0);
        assert_eq!(expf(100.0), f32::INFINITY);
    }

    /// FreeBSD's expf with its branches, as libm has it (libm's own is not
    /// callable from here; erff's test covers it through erf).
    fn reference_expf(mut x: f32) -> f32 {
        let hx_full = x.to_bits();
        let sign = (hx_full >> 31) as i32;
        let hx = hx_full & 0x7fff_ffff;
        let (k, hi, lo);
        if hx > 0x3eb1_7218 {
            k = if hx > 0x3f85_1592 { (1.4426950216e+00f32 * x + if sign != 0 { -0.5 } else { 0.5 }) as i32 } else { 1 - sign - sign };
            let kf = k as f32;
            hi = x - kf * 6.9314575195e-01;
            lo = kf * 1.4286067653e-06;
            x = hi - lo;
        } else if hx > 0x3900_0000 {
            k = 0;
            hi = x;
            lo = 0.;
        } else {
            return 1. + x;
        }
        let xx = x * x;
        let c = x - xx * (1.6666625440e-1 + xx * -2.7667332906e-3);
        let y = 1. + (x * c / (2. - c) - lo + hi);
        if k == 0 {
            y
        } else {
            y * 2f32.powi(k)
        }
    }
}

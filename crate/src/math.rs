//! Numeric kernels of the hot path. Both use only IEEE add, multiply and conversions, which
//! round identically on every platform, so results are bit-identical natively and in wasm;
//! and both are written so that the compiler can vectorise them (SSE/AVX, wasm simd128).

/// e^x for x ≤ 0 (scaled logits minus their maximum), within 2 ulp; −∞ and anything below
/// −87 give 0. Cody–Waite reduction x = n·ln2 + r, |r| ≤ ln2/2, then a degree-6 Taylor
/// polynomial (its truncation error, r^7/7!, is 1.2e-7 relative at worst).
#[inline(always)]
pub fn exp_nonpositive(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_145_75; // few mantissa bits, so n·LN2_HI is exact
    const LN2_LO: f32 = 1.428_606_8e-6;
    const ROUNDER: f32 = 12_582_912.0; // 1.5·2^23: adding it rounds to an integer
    // Selects and bit operations rather than f32::max and `as i32`, which do not vectorise.
    let clamped = if x > -87.0 { x } else { -87.0 };
    let shifted = clamped * std::f32::consts::LOG2_E + ROUNDER;
    let n = shifted - ROUNDER;
    let r = (clamped - n * LN2_HI) - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    // The low mantissa bits of `shifted` hold n: 2^n has exponent field n + 127.
    let n_bits = shifted.to_bits().wrapping_sub(ROUNDER.to_bits());
    let two_n = f32::from_bits(n_bits.wrapping_add(127) << 23);
    if x > -87.0 { p * two_n } else { 0.0 }
}

const LANES: usize = 8;

/// Writes e_i = exp(scale·(x_i − max)) for every logit into `weights` and returns
/// (Σ e_i, Σ e_i·d_i) with d_i = scale·(x_i − max). The map and the sums are separate loops
/// because the map vectorises only on its own; the sums run in f64 over 8 fixed lanes, an
/// order that is the same on every platform and loose enough to vectorise.
pub fn exp_weights(logits: &[f32], scale: f32, max: f32, weights: &mut Vec<f32>) -> (f64, f64) {
    weights.clear();
    weights.extend(logits.iter().map(|&x| exp_nonpositive(scale * (x - max))));
    let (mut z, mut zd) = ([0.0f64; LANES], [0.0f64; LANES]);
    let mut add = |lane: usize, e: f32, x: f32| {
        z[lane] += e as f64;
        // A banned token has d = −∞ and e = 0: it adds nothing (and not 0·∞ = NaN).
        zd[lane] += if e > 0.0 { (e * (scale * (x - max))) as f64 } else { 0.0 };
    };
    let (chunks_e, chunks_x) = (weights.chunks_exact(LANES), logits.chunks_exact(LANES));
    let (rest_e, rest_x) = (chunks_e.remainder(), chunks_x.remainder());
    for (e, x) in chunks_e.zip(chunks_x) {
        for lane in 0..LANES {
            add(lane, e[lane], x[lane]);
        }
    }
    for (lane, (&e, &x)) in rest_e.iter().zip(rest_x).enumerate() {
        add(lane, e, x);
    }
    (z.iter().sum(), zd.iter().sum())
}

/// The largest value (−∞ for none), in 8 lanes so that it vectorises.
pub fn max_value(xs: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let chunks = xs.chunks_exact(LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for lane in 0..LANES {
            lanes[lane] = if chunk[lane] > lanes[lane] { chunk[lane] } else { lanes[lane] };
        }
    }
    rest.iter().chain(&lanes).fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_two_ulp_of_libm() {
        let mut worst = 0.0f64;
        for i in 0..=870_000 {
            let x = -(i as f32) * 1e-4;
            let (fast, exact) = (exp_nonpositive(x) as f64, (x as f64).exp());
            if exact > 1e-37 {
                worst = worst.max((fast - exact).abs() / exact);
            }
        }
        assert!(worst < 2.5e-7, "worst relative error {worst}");
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert_eq!(exp_nonpositive(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_nonpositive(-100.0), 0.0);
    }

    #[test]
    fn exp_weights_sums_every_weight() {
        let logits: Vec<f32> = (0..1001).map(|i| -(i as f32) * 0.01).collect();
        let mut weights = Vec::new();
        let (z, zd) = exp_weights(&logits, 2.0, 0.0, &mut weights);
        let exact: f64 = (0..1001).map(|i| (-0.02 * i as f64).exp()).sum();
        let exact_d: f64 = (0..1001).map(|i| (-0.02 * i as f64).exp() * -0.02 * i as f64).sum();
        assert!((z - exact).abs() < 1e-5 * exact && (zd - exact_d).abs() < 1e-5 * exact_d.abs());
        assert_eq!(weights.len(), 1001);
        assert_eq!(max_value(&logits), 0.0);
    }
}

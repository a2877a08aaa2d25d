//! The products `out = x · Wᵀ`: the [`Kernel`]s, the scalar reference that every SIMD kernel
//! equals bit for bit ([`block_term`]), the f32-activation path, and the L1 tiling they share.

use super::activations::Activations;
use super::schemes::{with_scheme, Format};
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
use super::simd128;
#[cfg(target_arch = "x86_64")]
use super::x86;
use super::{scale_index, QuantMatrix, BLOCK, GROUP};
use crate::error::{Error, Result};
use crate::model::crew;
use std::ops::Range;
use std::sync::OnceLock;

/// The weights of a tile of row groups that every token of a prefill sweeps while they sit in
/// L1 (32 KiB or more on current CPUs, with room left for the activations).
const TILE_BYTES: usize = 16 * 1024;

/// One block's contribution to an output, the f32 expression every kernel evaluates in exactly
/// this order: `(d_w0·d_x)·isum0 [+ (d_w1·d_x)·isum1] [+ m_w·s_x]`, where `isum_k` is the
/// integer sum over scale k's weights with the offset taken out.
#[inline(always)]
pub(super) fn block_term<F: Format>(dw: [f32; 2], dx: f32, isum: [i32; 2], mw: f32, sx: f32) -> f32 {
    let mut t = (dw[0] * dx) * isum[0] as f32;
    if F::SCALES == 2 {
        t += (dw[1] * dx) * isum[1] as f32;
    }
    if F::HAS_MIN {
        t + mw * sx
    } else {
        t
    }
}

impl QuantMatrix {
    /// `out` (m × rows, row-major) = `x` (m × cols, row-major) · Wᵀ with [`Kernel::Simd`].
    pub fn matmul(&self, x: &[f32], m: usize, out: &mut [f32]) -> Result<()> {
        self.matmul_with(Kernel::Simd, x, m, out)
    }

    /// [`matmul`](Self::matmul) with an explicit kernel.
    pub fn matmul_with(&self, kernel: Kernel, x: &[f32], m: usize, out: &mut [f32]) -> Result<()> {
        let len_ok = |len: usize, per_token: usize| m.checked_mul(per_token) == Some(len);
        if !len_ok(x.len(), self.cols) || !len_ok(out.len(), self.rows) {
            return Err(Error::Model(format!(
                "matmul with a {} x {} matrix and m = {m} takes x of m x {} and out of m x {} values, got {} and {}",
                self.rows,
                self.cols,
                self.cols,
                self.rows,
                x.len(),
                out.len()
            )));
        }
        if kernel == Kernel::F32Activations {
            self.matmul_f32(x, m, out);
            return Ok(());
        }
        let acts = Activations::quantize(x);
        with_scheme!(self.scheme, F => {
            if kernel == Kernel::Simd && simd_matmul::<F>(self, &acts, m, out) {
                return Ok(());
            }
            for_each_group_by_token(self, m, out, |g, t| reference_group_dot::<F>(self, &acts, g, t));
        });
        Ok(())
    }

    /// Each row is dequantised once and used by every token; the dot is the naive sequential sum.
    fn matmul_f32(&self, x: &[f32], m: usize, out: &mut [f32]) {
        let mut w = vec![0.0; self.cols];
        for r in 0..self.rows {
            self.for_each_weight(r, |j, v| w[j] = v);
            for t in 0..m {
                out[t * self.rows + r] = naive_dot(&w, &x[t * self.cols..][..self.cols]);
            }
        }
    }
}

fn naive_dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).fold(0.0, |acc, (x, y)| acc + x * y)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// Plain scalar code, int16 activations: the reference every SIMD kernel equals bit for bit.
    Reference,
    /// f32 activations against exactly dequantised weights (scalar, f32 accumulate): the accuracy
    /// reference, also used to measure what quantised activations cost in accuracy.
    F32Activations,
    /// The platform's SIMD kernel (wasm simd128 when compiled with +simd128; x86-64 AVX2 when the
    /// CPU has it); [`Reference`](Kernel::Reference) otherwise.
    Simd,
}

/// The kernel [`Kernel::Simd`] runs on this platform.
#[allow(unreachable_code)]
pub fn simd_kernel_name() -> &'static str {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return "wasm simd128";
    #[cfg(target_arch = "x86_64")]
    if x86::available() {
        return "x86-64 avx2";
    }
    "scalar"
}

/// Runs the platform's SIMD kernel; false, with nothing written, where there is none.
#[allow(unreachable_code, unused_variables)]
fn simd_matmul<F: Format>(w: &QuantMatrix, acts: &Activations, m: usize, out: &mut [f32]) -> bool {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        simd128::matmul::<F>(w, acts, m, out);
        return true;
    }
    #[cfg(target_arch = "x86_64")]
    return x86::matmul::<F>(w, acts, m, out);
    false
}

/// Tokens a kernel may compute together, prefill's register tile: the AVX2 kernel unpacks each
/// block's weights once for all of them, which is most of a nibble format's work. Every output
/// keeps its own sum in the reference's order, so the tile changes speed, never bits.
pub(super) const TOKENS: usize = 4;

/// Multiply-adds below which a product stays on its thread. During a forward pass the pool's
/// other threads spin, waiting for parts (`crew`), so a split costs an atomic add or two: at 128K a
/// decode splits SmolLM2's q, o, MLP and head products and keeps the small k and v. Measured in
/// Chromium on 2 threads, decode ÷ 1 thread: 1.57–1.63× at 128K, 1.59× at 32K. Through rayon's
/// own loop, whose threads sleep between products, 128K had given 1.24× from a pool thread and
/// 0.76× from outside the pool, and 1M (the head alone) 1.23×.
const PARALLEL_MACS: usize = 1 << 17;

/// Writes `out` (m × rows) from the row groups' outputs: `tile(g, t0)` gives row group `g`'s 4
/// outputs for the [`TOKENS`] tokens from `t0`, `single(g, t)` for one token (the tokens left
/// over). With more than one thread in rayon's pool (natively, or a threaded wasm build), the
/// row groups are split between the threads ([`crew::split`]: the pass's crew, or rayon's loop);
/// every output is still one call's sum, so any number of threads gives the same bits.
pub(super) fn for_each_group(
    w: &QuantMatrix,
    m: usize,
    out: &mut [f32],
    tile: impl Fn(usize, usize) -> [[f32; GROUP]; TOKENS] + Sync,
    single: impl Fn(usize, usize) -> [f32; GROUP] + Sync,
) {
    let group_bytes = w.storage_bytes() / w.rows.div_ceil(GROUP);
    let sweep = Sweep { group_tile: (TILE_BYTES / group_bytes).max(1), prepare: |_: Range<usize>| {}, tile, single };
    for_each_group_with(w, m, out, &sweep);
}

/// How a kernel goes over row groups: the groups go in tiles of `group_tile`, and every token
/// sweeps a tile before the next, so a prefill reads the weights from memory once, not once per
/// token. `prepare(groups)` runs on the thread that then sweeps `groups` with `tile` and
/// `single` (a kernel that unpacks a tile's weights once for all of its tokens).
pub(super) struct Sweep<P, T, S> {
    pub(super) group_tile: usize,
    pub(super) prepare: P,
    pub(super) tile: T,
    pub(super) single: S,
}

/// [`for_each_group`] with a kernel's own [`Sweep`].
pub(super) fn for_each_group_with<P, T, S>(w: &QuantMatrix, m: usize, out: &mut [f32], sweep: &Sweep<P, T, S>)
where
    P: Fn(Range<usize>) + Sync,
    T: Fn(usize, usize) -> [[f32; GROUP]; TOKENS] + Sync,
    S: Fn(usize, usize) -> [f32; GROUP] + Sync,
{
    let groups = w.rows.div_ceil(GROUP);
    let threads = rayon::current_num_threads().min(groups);
    if threads <= 1 || m * w.rows * w.cols < PARALLEL_MACS {
        return fill_groups(w, m, 0..groups, out, sweep);
    }
    let per_thread = groups.div_ceil(threads);
    let parts: Vec<OnceLock<Vec<f32>>> = (0..groups.div_ceil(per_thread)).map(|_| OnceLock::new()).collect();
    let groups_of = |p: usize| p * per_thread..((p + 1) * per_thread).min(groups);
    crew::split(parts.len(), &|p| {
        let mut part_out = vec![0.0; m * part_rows(w, &groups_of(p)).len()];
        fill_groups(w, m, groups_of(p), &mut part_out, sweep);
        parts[p].set(part_out).expect("each part runs once");
    });
    for (p, part_out) in parts.into_iter().enumerate() {
        let rows = part_rows(w, &groups_of(p));
        for (t, values) in part_out.into_inner().expect("every part ran").chunks_exact(rows.len()).enumerate() {
            out[t * w.rows..][rows.clone()].copy_from_slice(values);
        }
    }
}

/// [`for_each_group`] for a kernel without a tile of tokens: the tile is its tokens one by one.
#[inline(always)]
pub(super) fn for_each_group_by_token(
    w: &QuantMatrix,
    m: usize,
    out: &mut [f32],
    single: impl Fn(usize, usize) -> [f32; GROUP] + Sync,
) {
    for_each_group(w, m, out, |g, t0| std::array::from_fn(|i| single(g, t0 + i)), &single);
}

/// The real rows of row groups `groups`.
fn part_rows(w: &QuantMatrix, groups: &Range<usize>) -> Range<usize> {
    groups.start * GROUP..(groups.end * GROUP).min(w.rows)
}

/// [`for_each_group_with`] for row groups `groups` on this thread, into `out` (m × their real
/// rows).
#[inline(always)]
fn fill_groups<P, T, S>(w: &QuantMatrix, m: usize, groups: Range<usize>, out: &mut [f32], sweep: &Sweep<P, T, S>)
where
    P: Fn(Range<usize>),
    T: Fn(usize, usize) -> [[f32; GROUP]; TOKENS],
    S: Fn(usize, usize) -> [f32; GROUP],
{
    let rows = part_rows(w, &groups);
    for g0 in groups.clone().step_by(sweep.group_tile) {
        let g1 = (g0 + sweep.group_tile).min(groups.end);
        (sweep.prepare)(g0..g1);
        for t0 in (0..m).step_by(TOKENS) {
            let tokens = TOKENS.min(m - t0);
            for g in g0..g1 {
                let r0 = g * GROUP - rows.start;
                let n = GROUP.min(rows.end - g * GROUP);
                let mut write = |t: usize, v: &[f32; GROUP]| out[t * rows.len() + r0..][..n].copy_from_slice(&v[..n]);
                if tokens == TOKENS {
                    for (i, v) in (sweep.tile)(g, t0).iter().enumerate() {
                        write(t0 + i, v);
                    }
                } else {
                    for t in t0..t0 + tokens {
                        write(t, &(sweep.single)(g, t));
                    }
                }
            }
        }
    }
}

/// What a SIMD group product reads of the weights: row group `g`'s quants, scales and mins (4
/// rows interleaved per block and scale).
#[allow(dead_code)] // only the SIMD kernels use it
pub(super) struct GroupWeights<'a> {
    pub(super) qs: &'a [u8],
    pub(super) d: &'a [f32],
    pub(super) mins: &'a [f32],
}

/// What it reads of token `t`: its activation quants and per-block d, s and Σq.
#[allow(dead_code)]
pub(super) struct TokenActivations<'a> {
    pub(super) x: &'a [i16],
    pub(super) xd: &'a [f32],
    pub(super) xs: &'a [f32],
    pub(super) xsum: &'a [i32],
}

#[allow(dead_code)]
impl<'a> GroupWeights<'a> {
    /// Slicing once bounds every pointer read of a kernel.
    pub(super) fn new<F: Format>(w: &'a QuantMatrix, g: usize) -> Self {
        let nb = w.cols / BLOCK;
        let slots = g * nb * GROUP..(g + 1) * nb * GROUP;
        GroupWeights {
            qs: &w.qs[slots.start * F::QS_BYTES..slots.end * F::QS_BYTES],
            d: &w.d[slots.start * F::SCALES..slots.end * F::SCALES],
            mins: if F::HAS_MIN { &w.m[slots] } else { &[] },
        }
    }
}

#[allow(dead_code)]
impl<'a> TokenActivations<'a> {
    pub(super) fn new(w: &QuantMatrix, a: &'a Activations, t: usize) -> Self {
        let nb = w.cols / BLOCK;
        let blocks = t * nb..(t + 1) * nb;
        TokenActivations {
            x: &a.q[t * w.cols..][..w.cols],
            xd: &a.d[blocks.clone()],
            xs: &a.s[blocks.clone()],
            xsum: &a.sum[blocks],
        }
    }
}

/// The scalar kernel: lane by lane, block by block, the same terms as the SIMD kernels.
fn reference_group_dot<F: Format>(
    w: &QuantMatrix,
    a: &Activations,
    g: usize,
    t: usize,
) -> [f32; GROUP] {
    let nb = w.blocks_per_row();
    let per_scale = BLOCK / F::SCALES;
    let mut acc = [0.0f32; GROUP];
    for b in 0..nb {
        let xb = t * nb + b;
        let x = &a.q[xb * BLOCK..][..BLOCK];
        for (lane, acc) in acc.iter_mut().enumerate() {
            let s = (g * nb + b) * GROUP + lane;
            let qs = &w.qs[s * F::QS_BYTES..][..F::QS_BYTES];
            let dot = |k: usize| -> i32 { (k * per_scale..(k + 1) * per_scale).map(|j| F::quant(qs, j) * x[j] as i32).sum() };
            let isum = if F::SCALES == 2 { [dot(0), dot(1)] } else { [dot(0) - F::OFFSET * a.sum[xb], 0] };
            let dw = [w.d[scale_index::<F>(s, 0)], w.d[scale_index::<F>(s, F::SCALES - 1)]];
            let mw = if F::HAS_MIN { w.m[s] } else { 0.0 };
            *acc += block_term::<F>(dw, a.d[xb], isum, mw, a.s[xb]);
        }
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::super::activations::ACTIVATION_MAX;
    use super::super::selfcheck::same_bits;
    use super::super::testing::{formats, random_activations, random_matrix, run, width, Lcg};

    #[test]
    fn native_simd_kernel_is_avx2_where_the_cpu_has_it() {
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            simd_kernel_name() == "x86-64 avx2",
            is_x86_feature_detected!("avx2")
        );
    }

    #[test]
    fn simd_equals_reference_bit_for_bit() {
        let mut compared = 0;
        for format in formats() {
            for (seed, &(rows, cols)) in
                [(1, 32), (4, 64), (5, 96), (13, 576), (6, 1536), (17, 160)]
                    .iter()
                    .enumerate()
            {
                let cols = width(format, cols);
                for m in [1, 3, 7] {
                    for extreme in [false, true] {
                        let seed = (seed * 100 + m * 2 + extreme as usize) as u64;
                        let w = random_matrix(format, rows, cols, extreme, seed);
                        let x = random_activations(m * cols, extreme, &mut Lcg(seed ^ 0xabcd));
                        let reference = run(&w, Kernel::Reference, &x, m);
                        let simd = run(&w, Kernel::Simd, &x, m);
                        for (k, (r, s)) in reference.iter().zip(&simd).enumerate() {
                            assert!(same_bits(*r, *s), "{format:?} {rows}x{cols} m={m} extreme={extreme}: output {k}: simd {s} ({:#x}) vs reference {r} ({:#x})", s.to_bits(), r.to_bits());
                        }
                        compared += reference
                            .iter()
                            .filter(|v| v.is_finite() && **v != 0.0)
                            .count();
                    }
                }
            }
        }
        // Guard against comparing nothing but zeros and NaNs.
        assert!(
            compared > 1500,
            "only {compared} nonzero finite outputs compared"
        );
    }

    /// Big enough to be split between threads, with a part-filled last row group.
    #[test]
    fn any_number_of_threads_gives_the_same_bits() {
        for format in formats() {
            let (rows, cols, m) = (67, width(format, 576), 29);
            assert!(m * rows * cols >= PARALLEL_MACS);
            let w = random_matrix(format, rows, cols, false, 11);
            let x = random_activations(m * cols, false, &mut Lcg(12));
            for kernel in [Kernel::Simd, Kernel::Reference] {
                let on = |threads| {
                    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                    pool.install(|| run(&w, kernel, &x, m))
                };
                let one = on(1);
                for threads in [2, 3, 4] {
                    let many = on(threads);
                    let differs = one.iter().zip(&many).position(|(a, b)| !same_bits(*a, *b));
                    assert_eq!(differs, None, "{format:?} {kernel:?}: {threads} threads");
                }
            }
        }
    }

    #[test]
    fn simd_handles_all_zero_and_huge_inputs_like_reference() {
        for format in formats() {
            let cols = width(format, 64);
            let w = random_matrix(format, 5, cols, true, 9);
            for x in [
                vec![0.0; 2 * cols],
                vec![3e38; 2 * cols],
                vec![-1e-45; 2 * cols],
                vec![f32::NAN; 2 * cols],
            ] {
                let reference = run(&w, Kernel::Reference, &x, 2);
                let simd = run(&w, Kernel::Simd, &x, 2);
                assert!(
                    reference.iter().zip(&simd).all(|(r, s)| same_bits(*r, *s)),
                    "{format:?}: {reference:?} vs {simd:?}"
                );
            }
            assert!(run(&w, Kernel::Simd, &vec![0.0; cols], 1)
                .iter()
                .all(|v| *v == 0.0));
        }
    }

    #[test]
    fn f32_activations_is_the_naive_dot_of_dequantised_rows() {
        for format in formats() {
            let (rows, cols, m) = (7, width(format, 96), 3);
            let w = random_matrix(format, rows, cols, false, 3);
            let x = random_activations(m * cols, false, &mut Lcg(4));
            let out = run(&w, Kernel::F32Activations, &x, m);
            let mut row = vec![0.0; cols];
            for r in 0..rows {
                w.dequantize_row(r, &mut row).unwrap();
                for t in 0..m {
                    let mut acc = 0.0f32;
                    for j in 0..cols {
                        acc += row[j] * x[t * cols + j];
                    }
                    assert_eq!(
                        out[t * rows + r].to_bits(),
                        acc.to_bits(),
                        "{format:?} row {r} token {t}"
                    );
                }
            }
        }
    }

    /// The quantised activations' error on one output is at most Σ_blocks Σ_j |w_j| · d_x / 2, plus
    /// f32 rounding; the realised relative error on random data is far below 1e-4.
    #[test]
    fn reference_is_close_to_f32_activations() {
        for format in formats() {
            let (rows, cols, m) = (13, width(format, 576), 3);
            let w = random_matrix(format, rows, cols, false, 5);
            let x = random_activations(m * cols, false, &mut Lcg(6));
            let exact = run(&w, Kernel::F32Activations, &x, m);
            let quantised = run(&w, Kernel::Reference, &x, m);
            let mut row = vec![0.0; cols];
            let (mut err2, mut norm2) = (0.0f64, 0.0f64);
            for r in 0..rows {
                w.dequantize_row(r, &mut row).unwrap();
                for t in 0..m {
                    let xt = &x[t * cols..][..cols];
                    let mut bound = 0.0f64;
                    let mut magnitude = 0.0f64;
                    for (wb, xb) in row.chunks(BLOCK).zip(xt.chunks(BLOCK)) {
                        let amax = xb.iter().fold(0.0f32, |a, v| a.max(v.abs())) as f64;
                        bound += wb.iter().map(|v| v.abs() as f64).sum::<f64>() * amax / (2.0 * ACTIVATION_MAX as f64);
                        magnitude += wb
                            .iter()
                            .zip(xb)
                            .map(|(a, b)| (a * b).abs() as f64)
                            .sum::<f64>();
                    }
                    let (e, q) = (exact[t * rows + r] as f64, quantised[t * rows + r] as f64);
                    let bound = 1.001 * bound + 1e-4 * magnitude + 1e-30;
                    assert!(
                        (e - q).abs() <= bound,
                        "{format:?} row {r} token {t}: {q} vs {e}, bound {bound}"
                    );
                    err2 += (e - q).powi(2);
                    norm2 += e * e;
                }
            }
            let rel = (err2 / norm2).sqrt();
            eprintln!("{format}: int16 activations vs f32 activations, relative RMS error {rel:.2e}");
            assert!(rel > 1e-9 && rel < 1e-4, "{format:?}: relative error {rel}");
        }
    }
}

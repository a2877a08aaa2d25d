//! Weight matrices kept in blocks the way GGUF stores them, and kernels that compute `out = x · Wᵀ`
//! straight from the blocks, the way llama.cpp does: activations are quantised per 32-block to
//! int16, each block's dot product is an exact integer sum, and an f32 part scales it.
//!
//! Every block-quantised GGUF type (see `model::formats`) is repacked exactly into 32-weight
//! blocks of one of a few kernel schemes ([`Scheme`], `schemes.rs`, which also gives each one's
//! memory cost); `unpack.rs` reads GGUF's layouts.
//!
//! Determinism is the design constraint: the same seed must give the same tokens natively and in
//! wasm. Integer sums are exact, so their order is free, but every kernel performs the same f32
//! operations in the same order ([`block_term`]), lane = weight row, with no FMA. So
//! [`Kernel::Simd`] equals [`Kernel::Reference`] bit for bit on every platform; [`self_check`]
//! verifies it at run time.
//!
//! Memory layout: rows are interleaved in groups of [`GROUP`] (the last group padded with zero
//! rows). Per (group, block) the four rows' quant bytes lie back to back, then per (group, block,
//! scale) the four rows' f32 scales, and likewise the mins.

#[cfg(test)]
mod q4_0;
#[cfg(test)]
mod q4_1;
#[cfg(test)]
mod q8_0;

/// The hand-built blocks' dot test: `w` (one row of 32) against x = j − 16 with x[31] = 32767,
/// so that d_x = 1 and q_x = x exactly; every kernel must give `want`.
#[cfg(test)]
fn assert_hand_built_dot(w: &QuantMatrix, want: f32) {
    let mut x: Vec<f32> = (0..32).map(|j| j as f32 - 16.0).collect();
    x[31] = 32767.0;
    for kernel in [Kernel::Reference, Kernel::Simd, Kernel::F32Activations] {
        let mut out = [0.0];
        w.matmul_with(kernel, &x, 1, &mut out).unwrap();
        assert_eq!(out, [want], "{kernel:?}");
    }
}
mod schemes;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd128;
pub(crate) mod unpack;
#[cfg(target_arch = "x86_64")]
mod x86;

use crate::error::{Error, Result};
use crate::model::formats::{GgmlType, Held};
use schemes::{with_scheme, Bits, Format};
pub use schemes::Scheme;
use unpack::Sub;

/// Weights per block, in every scheme.
pub const BLOCK: usize = 32;
/// Rows computed together: one per f32 lane of a 128-bit vector.
const GROUP: usize = 4;
/// The weights of a tile of row groups that every token of a prefill sweeps while they sit in
/// L1 (32 KiB or more on current CPUs, with room left for the activations).
const TILE_BYTES: usize = 16 * 1024;

fn check_shape(ty: GgmlType, rows: usize, cols: usize) -> Result<()> {
    let block = ty.block_size().max(BLOCK);
    if rows == 0 || cols == 0 || !cols.is_multiple_of(block) {
        return Err(Error::Model(format!(
            "a {ty} matrix of {rows} x {cols}: rows must be positive and cols a positive multiple of {block}"
        )));
    }
    Ok(())
}

/// Weight `j` of a block exactly as ggml and gguf-py dequantise it. `d·(q − offset)` is exact in
/// f32 (at most 19 significant bits; Q6_K's d·sc·q at most 23), so a min's `+ m` is the only
/// rounding.
#[inline(always)]
fn dequantize<F: Format>(qs: &[u8], j: usize, d: &[f32], m: f32) -> f32 {
    let v = d[j * F::SCALES / BLOCK] * (F::quant(qs, j) - F::OFFSET) as f32;
    if F::HAS_MIN {
        v + m
    } else {
        v
    }
}

/// One block's contribution to an output, the f32 expression every kernel evaluates in exactly
/// this order: `(d_w0·d_x)·isum0 [+ (d_w1·d_x)·isum1] [+ m_w·s_x]`, where `isum_k` is the
/// integer sum over scale k's weights with the offset taken out.
#[inline(always)]
fn block_term<F: Format>(dw: [f32; 2], dx: f32, isum: [i32; 2], mw: f32, sx: f32) -> f32 {
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

/// `rows × cols` weights of one GGUF block type, repacked for the kernels (see the module docs
/// for the layout).
#[derive(Clone)]
pub struct QuantMatrix {
    ty: GgmlType,
    scheme: Scheme,
    rows: usize,
    cols: usize,
    /// Per (group, block), the group's 4 rows' quant bytes back to back.
    qs: Vec<u8>,
    /// Per (group, block, scale), the 4 rows' scales.
    d: Vec<f32>,
    /// Per (group, block), the 4 rows' mins (schemes with mins only; empty otherwise).
    m: Vec<f32>,
}

impl std::fmt::Debug for QuantMatrix {
    // The blocks themselves would be megabytes of output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuantMatrix")
            .field("format", &self.ty)
            .field("rows", &self.rows)
            .field("cols", &self.cols)
            .field("storage_bytes", &self.storage_bytes())
            .finish()
    }
}

impl QuantMatrix {
    /// `blocks`: the GGUF tensor data of type `ty`, row-major: `rows` rows of `cols / block size`
    /// blocks each. `row_order`: `None`, or `Some(perm)` with `perm.len() == rows`: row i of the
    /// result is GGUF row `perm[i]` (to undo llama.cpp's Q/K permutation); it must be a
    /// permutation.
    pub fn from_gguf_blocks(
        ty: GgmlType,
        rows: usize,
        cols: usize,
        blocks: &[u8],
        row_order: Option<&[usize]>,
    ) -> Result<Self> {
        let Held::Blocks { scheme, unpack } = ty.info().held else {
            return Err(Error::Model(format!("{ty} is not a block-quantised type")));
        };
        check_shape(ty, rows, cols)?;
        let expected = rows.checked_mul(cols / ty.block_size()).and_then(|n| n.checked_mul(ty.block_bytes()));
        if expected != Some(blocks.len()) {
            return Err(Error::Model(format!(
                "a {ty} matrix of {rows} x {cols} takes {} bytes of blocks, got {}",
                expected.map_or("more than usize::MAX".to_string(), |n| n.to_string()),
                blocks.len()
            )));
        }
        if let Some(perm) = row_order {
            check_permutation(perm, rows)?;
        }
        let (bb, subs) = (ty.block_bytes(), ty.block_size() / BLOCK);
        let row_bytes = cols / ty.block_size() * bb;
        with_scheme!(scheme, F => {
            let mut w = Self::zeroed::<F>(ty, scheme, rows, cols)?;
            for r in 0..rows {
                let src = row_order.map_or(r, |p| p[r]);
                for (i, block) in blocks[src * row_bytes..][..row_bytes].chunks_exact(bb).enumerate() {
                    for k in 0..subs {
                        let b = i * subs + k;
                        w.set_block::<F>(r, b, &unpack(block, k), || format!("{ty} block {i} of row {src}"))?;
                    }
                }
            }
            Ok(w)
        })
    }

    /// `rows × cols` weights quantised elsewhere than in GGUF (ONNX's block-quantised tensors), as
    /// `ty` (Q8_0, Q4_0 or Q4_1), given block by block: `block(r, b)` is block `b` of row `r` as
    /// its quants, weight j first (0..=15 for the 4-bit types, before Q4_0's offset; an i8 for
    /// Q8_0), with its scale and min (Q4_1; ignored otherwise) in f32, which GGUF's f16 would
    /// round.
    pub fn from_block_quants(
        ty: GgmlType,
        rows: usize,
        cols: usize,
        mut block: impl FnMut(usize, usize) -> ([i32; BLOCK], f32, f32),
    ) -> Result<Self> {
        let scheme = match ty {
            GgmlType::Q8_0 | GgmlType::Q4_0 | GgmlType::Q4_1 => ty.scheme().expect("a block type"),
            _ => return Err(Error::Model(format!("blocks given by value must be Q8_0, Q4_0 or Q4_1, not {ty}"))),
        };
        with_scheme!(scheme, F => {
            let mut w = Self::zeroed::<F>(ty, scheme, rows, cols)?;
            for r in 0..rows {
                for b in 0..cols / BLOCK {
                    let (q, d, m) = block(r, b);
                    w.set_block::<F>(r, b, &Sub { q, d: [d, d], m }, || format!("{ty} block {b} of row {r}"))?;
                }
            }
            Ok(w)
        })
    }

    /// A matrix of zero blocks, its shape checked.
    fn zeroed<F: Format>(ty: GgmlType, scheme: Scheme, rows: usize, cols: usize) -> Result<Self> {
        check_shape(ty, rows, cols)?;
        let slots = (rows.div_ceil(GROUP) * GROUP).checked_mul(cols / BLOCK).filter(|s| s.checked_mul(F::QS_BYTES).is_some());
        let slots = slots.ok_or_else(|| Error::Model(format!("a {ty} matrix of {rows} x {cols} is too large")))?;
        Ok(QuantMatrix {
            ty,
            scheme,
            rows,
            cols,
            qs: vec![0; slots * F::QS_BYTES],
            d: vec![0.0; slots * F::SCALES],
            m: if F::HAS_MIN { vec![0.0; slots] } else { Vec::new() },
        })
    }

    fn set_block<F: Format>(&mut self, r: usize, b: usize, sub: &Sub, which: impl Fn() -> String) -> Result<()> {
        // No quantiser writes these; they would turn every output they touch into NaN.
        if !sub.d.iter().all(|d| d.is_finite()) || !sub.m.is_finite() {
            return Err(Error::Model(format!("{} has a non-finite scale or min (d = {:?}, m = {})", which(), sub.d, sub.m)));
        }
        let s = self.slot(r, b);
        for k in 0..F::SCALES {
            self.d[scale_index::<F>(s, k)] = sub.d[k];
        }
        if F::HAS_MIN {
            self.m[s] = sub.m;
        }
        F::pack(&sub.q, &mut self.qs[s * F::QS_BYTES..][..F::QS_BYTES]);
        Ok(())
    }

    /// The GGUF type the blocks came from.
    pub fn format(&self) -> GgmlType {
        self.ty
    }

    /// The kernel scheme the blocks are held in.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Bytes of weights held (quants, f32 scales and mins, padding rows included).
    pub fn storage_bytes(&self) -> usize {
        self.qs.len() + 4 * (self.d.len() + self.m.len())
    }

    /// The repacked blocks as they lie in memory (see the module docs): the quant bytes, the f32
    /// scales and the f32 mins (empty without mins). The WebGPU backend uploads them as they
    /// are, so both backends read one copy of the layout.
    pub fn packed_parts(&self) -> (&[u8], &[f32], &[f32]) {
        (&self.qs, &self.d, &self.m)
    }

    /// `out[j] = W[row][j]`, dequantised exactly as ggml and gguf-py do in f32.
    pub fn dequantize_row(&self, row: usize, out: &mut [f32]) -> Result<()> {
        self.check_row(row, out.len())?;
        self.for_each_weight(row, |j, w| out[j] = w);
        Ok(())
    }

    /// `out[j] += weight * W[row][j]` with the values of [`dequantize_row`](Self::dequantize_row).
    pub fn add_scaled_row(&self, row: usize, weight: f32, out: &mut [f32]) -> Result<()> {
        self.check_row(row, out.len())?;
        self.for_each_weight(row, |j, w| out[j] += weight * w);
        Ok(())
    }

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
            for_each_group(self, m, out, |g, t| reference_group_dot::<F>(self, &acts, g, t));
        });
        Ok(())
    }

    fn check_row(&self, row: usize, len: usize) -> Result<()> {
        if row >= self.rows || len != self.cols {
            return Err(Error::Model(format!(
                "row {row} of a {} x {} matrix into {len} values",
                self.rows, self.cols
            )));
        }
        Ok(())
    }

    fn blocks_per_row(&self) -> usize {
        self.cols / BLOCK
    }

    /// Index of row `r`'s block `b` in `m` (and, × QS_BYTES, in `qs`; see [`scale_index`]).
    fn slot(&self, r: usize, b: usize) -> usize {
        ((r / GROUP) * self.blocks_per_row() + b) * GROUP + r % GROUP
    }

    fn for_each_weight(&self, row: usize, f: impl FnMut(usize, f32)) {
        with_scheme!(self.scheme, F => self.weights::<F>(row, f))
    }

    fn weights<F: Format>(&self, row: usize, mut f: impl FnMut(usize, f32)) {
        for b in 0..self.blocks_per_row() {
            let s = self.slot(row, b);
            let qs = &self.qs[s * F::QS_BYTES..][..F::QS_BYTES];
            let d: [f32; 2] = std::array::from_fn(|k| self.d[scale_index::<F>(s, k.min(F::SCALES - 1))]);
            let m = if F::HAS_MIN { self.m[s] } else { 0.0 };
            for j in 0..BLOCK {
                f(b * BLOCK + j, dequantize::<F>(qs, j, &d, m));
            }
        }
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

/// Index in `d` of scale `k` of slot `s`: per (group, block), the 4 rows' first scales, then
/// their second ones.
#[inline(always)]
fn scale_index<F: Format>(s: usize, k: usize) -> usize {
    (s / GROUP * F::SCALES + k) * GROUP + s % GROUP
}

fn naive_dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).fold(0.0, |acc, (x, y)| acc + x * y)
}

fn check_permutation(perm: &[usize], rows: usize) -> Result<()> {
    let bad = |why: String| {
        Err(Error::Model(format!(
            "row_order is not a permutation of 0..{rows}: {why}"
        )))
    };
    if perm.len() != rows {
        return bad(format!("it has {} entries", perm.len()));
    }
    let mut seen = vec![false; rows];
    for (i, &p) in perm.iter().enumerate() {
        if p >= rows || seen[p] {
            return bad(format!("entry {i} is {p}"));
        }
        seen[p] = true;
    }
    Ok(())
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

/// `x` quantised per 32-block to int16: `d = amax / 32767`, plus `s = d·Σq` and `Σq` (token-major,
/// like `x`). llama.cpp quantises activations to int8 because its kernels multiply i8 × i8; the
/// simd128 and AVX2 dot products used here take i16 operands anyway (`i32x4.dot_i16x8_s`,
/// `vpmaddwd`), so 16-bit activations cost the same and are 258× finer. Measured on SmolLM2:
/// int8 activations moved the greedy continuation off the f32 reference's after 12 tokens;
/// int16 ones keep it (docs/benchmarks.md, "Accuracy of the quantised path"). Every block sum stays within i32:
/// 32 · 128 · 32767 < 2³¹.
struct Activations {
    q: Vec<i16>,
    d: Vec<f32>,
    s: Vec<f32>,
    sum: Vec<i32>,
}

impl Activations {
    /// `x.len()` must be a multiple of [`BLOCK`] (the matrix's cols are).
    fn quantize(x: &[f32]) -> Self {
        let blocks = x.len() / BLOCK;
        let mut a = Activations {
            q: vec![0; x.len()],
            d: Vec::with_capacity(blocks),
            s: Vec::with_capacity(blocks),
            sum: Vec::with_capacity(blocks),
        };
        for (xb, qb) in x.chunks_exact(BLOCK).zip(a.q.chunks_exact_mut(BLOCK)) {
            // max ignores NaN and the values are ≥ +0, so this is the same everywhere.
            let amax = xb.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let d = amax / ACTIVATION_MAX;
            let mut sum = 0;
            if d != 0.0 {
                for (q, &v) in qb.iter_mut().zip(xb) {
                    let r = round_half_away((v / d).clamp(-ACTIVATION_MAX, ACTIVATION_MAX));
                    *q = r as i16;
                    sum += r;
                }
            }
            a.d.push(d);
            a.s.push(d * sum as f32);
            a.sum.push(sum);
        }
        a
    }
}

/// The largest activation quant.
const ACTIVATION_MAX: f32 = 32767.0;

/// `f32::round` (half away from zero) for |v| ≤ 2²³, from operations that are exact on every
/// platform, so no libm or instruction choice can change a quant. NaN gives 0.
fn round_half_away(v: f32) -> i32 {
    let t = v as i32;
    let frac = v - t as f32;
    if frac >= 0.5 {
        t + 1
    } else if frac <= -0.5 {
        t - 1
    } else {
        t
    }
}

/// Calls `dot(g, t)`, the 4 outputs of row group `g` for token `t`, for every pair, and writes the
/// real rows to `out` (m × rows). The groups go in tiles that fit L1, and every token sweeps a
/// tile before the next, so a prefill reads the weights from memory once, not once per token.
#[inline(always)]
fn for_each_group(
    w: &QuantMatrix,
    m: usize,
    out: &mut [f32],
    mut dot: impl FnMut(usize, usize) -> [f32; GROUP],
) {
    let groups = w.rows.div_ceil(GROUP);
    let group_bytes = (w.qs.len() + 4 * (w.d.len() + w.m.len())) / groups;
    let tile = (TILE_BYTES / group_bytes).max(1);
    for g0 in (0..groups).step_by(tile) {
        let g1 = (g0 + tile).min(groups);
        for (t, out_t) in out.chunks_exact_mut(w.rows).take(m).enumerate() {
            for g in g0..g1 {
                let r0 = g * GROUP;
                let n = GROUP.min(w.rows - r0);
                out_t[r0..r0 + n].copy_from_slice(&dot(g, t)[..n]);
            }
        }
    }
}

/// What one SIMD group product reads: row group `g`'s quants, scales and mins (4 rows
/// interleaved per block and scale), and token `t`'s activation quants and per-block d, s and Σq.
#[allow(dead_code)] // only the SIMD kernels use it
struct GroupSlices<'a> {
    qs: &'a [u8],
    d: &'a [f32],
    mins: &'a [f32],
    x: &'a [i16],
    xd: &'a [f32],
    xs: &'a [f32],
    xsum: &'a [i32],
}

#[allow(dead_code)]
impl<'a> GroupSlices<'a> {
    /// Slicing once bounds every pointer read of a kernel.
    fn new<F: Format>(w: &'a QuantMatrix, a: &'a Activations, g: usize, t: usize) -> Self {
        let nb = w.cols / BLOCK;
        let slots = g * nb * GROUP..(g + 1) * nb * GROUP;
        let blocks = t * nb..(t + 1) * nb;
        GroupSlices {
            qs: &w.qs[slots.start * F::QS_BYTES..slots.end * F::QS_BYTES],
            d: &w.d[slots.start * F::SCALES..slots.end * F::SCALES],
            mins: if F::HAS_MIN { &w.m[slots] } else { &[] },
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

/// Runs [`Kernel::Simd`] against [`Kernel::Reference`] on small pseudo-random matrices of every
/// format (odd row counts, extreme scales and activations included) and requires equal bits, and
/// checks the reference's outputs against a checksum computed natively, so that a platform whose
/// arithmetic differs is caught. Meant for wasm tests; takes a few milliseconds.
pub fn self_check() -> Result<()> {
    let mut hash = Fnv::new();
    for ty in block_types() {
        for (i, &(rows, cols, m, extreme)) in [
            (5, 64, 1, false),
            (13, 96, 3, false),
            (8, 576, 2, false),
            (7, 128, 3, true),
        ]
        .iter()
        .enumerate()
        {
            let mut rng = Lcg(0x5eed + i as u64);
            let cols = (cols as usize).next_multiple_of(ty.block_size());
            let w = QuantMatrix::from_gguf_blocks(ty, rows, cols, &random_blocks(ty, rows, cols, extreme, &mut rng), None)?;
            let x = random_activations(m * cols, extreme, &mut rng);
            let mut reference = vec![0.0; m * rows];
            let mut simd = vec![0.0; m * rows];
            w.matmul_with(Kernel::Reference, &x, m, &mut reference)?;
            w.matmul_with(Kernel::Simd, &x, m, &mut simd)?;
            if let Some(k) = (0..reference.len()).find(|&k| !same_bits(reference[k], simd[k])) {
                return Err(Error::Model(format!(
                    "quant self-check: {ty} {rows} x {cols}, m = {m}: the {} kernel gives {} at output {k}, the reference {}",
                    simd_kernel_name(),
                    simd[k],
                    reference[k]
                )));
            }
            // NaN bit patterns may differ between platforms (wasm leaves them open): not hashed.
            if !extreme {
                reference.iter().for_each(|v| hash.add(v.to_bits()));
            }
        }
    }
    if hash.0 != SELF_CHECK_HASH {
        return Err(Error::Model(format!(
            "quant self-check: the reference kernel's outputs hash to {:#018x}, natively {SELF_CHECK_HASH:#018x}",
            hash.0
        )));
    }
    Ok(())
}

/// FNV-1a over the bits of the non-extreme reference outputs of [`self_check`], computed natively.
const SELF_CHECK_HASH: u64 = 0x305d_e69a_ef76_d630;

struct Fnv(u64);
impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn add(&mut self, v: u32) {
        for byte in v.to_le_bytes() {
            self.0 = (self.0 ^ byte as u64).wrapping_mul(0x100_0000_01b3);
        }
    }
}

/// Equal bits, or both NaN.
fn same_bits(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// A 64-bit LCG (Knuth's MMIX constants), high bits out: enough to make test matrices.
#[doc(hidden)] // for the tests and the benchmark
pub struct Lcg(pub u64);
impl Lcg {
    #[allow(clippy::should_implement_trait)] // an infinite stream; Iterator would add nothing
    pub fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 32) as u32
    }
    /// Uniform in [-1, 1).
    pub fn signed_unit(&mut self) -> f32 {
        (self.next() >> 8) as f32 / (1 << 23) as f32 - 1.0
    }
}

/// GGUF bytes of a random matrix of block type `ty`: random quants (and K-quant sub-block
/// scales); f16 scales and mins mostly ordinary, some zero, negative or subnormal, and with
/// `extreme` also the f16 maximum.
#[doc(hidden)] // for the tests and the benchmark
pub fn random_blocks(ty: GgmlType, rows: usize, cols: usize, extreme: bool, rng: &mut Lcg) -> Vec<u8> {
    // Where each type keeps its f16 d (and m or dmin): ggml-common.h.
    let f16_at: &[usize] = match ty {
        GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q4_K | GgmlType::Q5_K => &[0, 2],
        GgmlType::Q6_K => &[208],
        GgmlType::Q3_K => &[108],
        _ => &[0],
    };
    let bb = ty.block_bytes();
    let mut bytes = Vec::with_capacity(rows * cols / ty.block_size() * bb);
    for _ in 0..rows * cols / ty.block_size() {
        let start = bytes.len();
        while bytes.len() < start + bb {
            if !f16_at.contains(&(bytes.len() - start)) {
                bytes.push(rng.next() as u8);
                continue;
            }
            let r = rng.next();
            let sign = ((r & 1) as u16) << 15;
            let bits = match (r >> 1) % 8 {
                0 => 0,
                1 => ((r >> 4) & 0x3ff) as u16, // subnormal
                2 if extreme => 0x7bff,         // 65504
                // 2^-12 .. 2^-4 with a random mantissa: the range real weights use.
                _ => (((r >> 4) % 9 + 3) << 10 | (r >> 13) & 0x3ff) as u16,
            };
            bytes.extend_from_slice(&(sign | bits).to_le_bytes());
        }
    }
    bytes
}

/// The block-quantised types.
#[doc(hidden)]
pub fn block_types() -> impl Iterator<Item = GgmlType> {
    GgmlType::supported().filter(|t| t.scheme().is_some())
}

/// Random activations: mostly ordinary, some all-zero blocks, and with `extreme` blocks near the
/// f32 maximum and subnormal ones.
pub(crate) fn random_activations(n: usize, extreme: bool, rng: &mut Lcg) -> Vec<f32> {
    let mut x = Vec::with_capacity(n);
    while x.len() < n {
        let scale = match rng.next() % 8 {
            0 => 0.0,
            1 if extreme => 1e36,
            2 if extreme => 1e-39,
            k => k as f32,
        };
        for _ in 0..BLOCK {
            x.push(scale * rng.signed_unit());
        }
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::model::f16_bits_to_f32;

    fn formats() -> Vec<GgmlType> {
        block_types().collect()
    }

    /// `cols` rounded up to a whole number of `ty`'s blocks.
    fn width(ty: GgmlType, cols: usize) -> usize {
        cols.next_multiple_of(ty.block_size())
    }

    fn random_matrix(ty: GgmlType, rows: usize, cols: usize, extreme: bool, seed: u64) -> QuantMatrix {
        let blocks = random_blocks(ty, rows, cols, extreme, &mut Lcg(seed));
        QuantMatrix::from_gguf_blocks(ty, rows, cols, &blocks, None).unwrap()
    }

    fn run(w: &QuantMatrix, kernel: Kernel, x: &[f32], m: usize) -> Vec<f32> {
        let mut out = vec![f32::NAN; m * w.rows()];
        w.matmul_with(kernel, x, m, &mut out).unwrap();
        out
    }

    fn model_error(r: Result<()>) -> String {
        match r {
            Err(Error::Model(msg)) => msg,
            other => panic!("expected Error::Model, got {other:?}"),
        }
    }

    #[test]
    fn blocks_given_by_value_are_the_gguf_blocks_of_the_same_values() {
        for ty in [GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1] {
            let (rows, cols) = (5, 64);
            let blocks = random_blocks(ty, rows, cols, false, &mut Lcg(11));
            let gguf = QuantMatrix::from_gguf_blocks(ty, rows, cols, &blocks, None).unwrap();
            let bb = ty.block_bytes();
            let by_value = QuantMatrix::from_block_quants(ty, rows, cols, |r, b| {
                let block = &blocks[(r * cols / BLOCK + b) * bb..][..bb];
                let f16 = |i: usize| f16_bits_to_f32(u16::from_le_bytes([block[i], block[i + 1]]));
                let q = |j: usize| match ty {
                    GgmlType::Q8_0 => block[2 + j] as i8 as i32,
                    _ => (block[bb - 16 + j % 16] >> (4 * (j / 16)) & 15) as i32,
                };
                (std::array::from_fn(q), f16(0), if ty == GgmlType::Q4_1 { f16(2) } else { 0.0 })
            })
            .unwrap();
            assert_eq!(by_value.packed_parts(), gguf.packed_parts(), "{ty:?}");
        }
        let refused = QuantMatrix::from_block_quants(GgmlType::Q4_0, 1, 32, |_, _| ([0; BLOCK], f32::NAN, 0.0));
        assert_eq!(model_error(refused.map(|_| ())), "Q4_0 block 0 of row 0 has a non-finite scale or min (d = [NaN, NaN], m = 0)");
        let refused = QuantMatrix::from_block_quants(GgmlType::Q6_K, 1, 256, |_, _| ([0; BLOCK], 1.0, 0.0));
        assert!(model_error(refused.map(|_| ())).contains("must be Q8_0, Q4_0 or Q4_1, not Q6_K"));
    }

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

    #[test]
    fn activations_round_half_away_from_zero() {
        let mut x = vec![0.0f32; 64];
        x[..6].copy_from_slice(&[32767.0, 2.5, -2.5, 0.49999997, -32766.5, 1.5]);
        let a = Activations::quantize(&x);
        assert_eq!(a.d, [1.0, 0.0]);
        assert_eq!(&a.q[..6], &[32767, 3, -3, 0, -32767, 2]);
        assert!(a.q[32..].iter().all(|&q| q == 0));
        assert_eq!(a.sum, [2, 0]); // 32767 + 3 - 3 + 0 - 32767 + 2
        assert_eq!(a.s, [2.0, 0.0]);
        assert_eq!(
            (
                round_half_away(f32::NAN),
                round_half_away(-0.5),
                round_half_away(0.4)
            ),
            (0, -1, 0)
        );
    }

    #[test]
    fn row_order_permutes_rows() {
        for format in formats() {
            let (rows, cols) = (6, width(format, 64));
            let blocks = random_blocks(format, rows, cols, false, &mut Lcg(11));
            let plain = QuantMatrix::from_gguf_blocks(format, rows, cols, &blocks, None).unwrap();
            let perm = [3, 0, 5, 1, 4, 2];
            let permuted =
                QuantMatrix::from_gguf_blocks(format, rows, cols, &blocks, Some(&perm)).unwrap();
            let (mut a, mut b) = (vec![0.0; cols], vec![0.0; cols]);
            for (i, &p) in perm.iter().enumerate() {
                permuted.dequantize_row(i, &mut a).unwrap();
                plain.dequantize_row(p, &mut b).unwrap();
                assert_eq!(a, b);
            }
            let x = random_activations(cols, false, &mut Lcg(12));
            let (y_plain, y_perm) = (
                run(&plain, Kernel::Simd, &x, 1),
                run(&permuted, Kernel::Simd, &x, 1),
            );
            assert_eq!(perm.iter().map(|&p| y_plain[p]).collect::<Vec<_>>(), y_perm);
            assert_ne!(y_plain, y_perm);
        }
    }

    #[test]
    fn add_scaled_row_adds_the_dequantised_row() {
        let w = random_matrix(GgmlType::Q4_1, 3, 64, false, 13);
        let mut row = vec![0.0; 64];
        w.dequantize_row(2, &mut row).unwrap();
        let mut out: Vec<f32> = (0..64).map(|i| i as f32).collect();
        w.add_scaled_row(2, -0.75, &mut out).unwrap();
        for j in 0..64 {
            assert_eq!(out[j], j as f32 + -0.75 * row[j]);
        }
    }

    #[test]
    fn bad_inputs_are_errors() {
        let q = GgmlType::Q4_1;
        let blocks = vec![0u8; 3 * 2 * 20];
        let new = |rows, cols, bytes: &[u8], perm: Option<&[usize]>| {
            QuantMatrix::from_gguf_blocks(q, rows, cols, bytes, perm).map(|_| ())
        };
        assert!(model_error(new(3, 48, &blocks[..60], None)).contains("multiple of 32"));
        let k = QuantMatrix::from_gguf_blocks(GgmlType::Q4_K, 1, 576, &[0; 324], None);
        assert!(model_error(k.map(|_| ())).contains("Q4_K matrix of 1 x 576: rows must be positive and cols a positive multiple of 256"));
        let f = QuantMatrix::from_gguf_blocks(GgmlType::F32, 1, 32, &[0; 128], None);
        assert_eq!(model_error(f.map(|_| ())), "F32 is not a block-quantised type");
        assert!(model_error(new(0, 64, &[], None)).contains("rows must be positive"));
        assert!(model_error(new(3, 64, &blocks[..119], None))
            .contains("takes 120 bytes of blocks, got 119"));
        assert!(model_error(new(usize::MAX, 64, &blocks, None)).contains("more than usize::MAX"));
        assert!(model_error(new(3, 64, &blocks, Some(&[0, 1]))).contains("2 entries"));
        assert!(model_error(new(3, 64, &blocks, Some(&[0, 1, 1]))).contains("entry 2 is 1"));
        assert!(model_error(new(3, 64, &blocks, Some(&[0, 3, 1]))).contains("entry 1 is 3"));
        let mut inf = blocks.clone();
        inf[2 * 20 + 2..2 * 20 + 4].copy_from_slice(&0x7c00u16.to_le_bytes()); // row 1 block 0's min
        assert!(model_error(new(3, 64, &inf, None)).contains("block 0 of row 1 has a non-finite"));

        let w = QuantMatrix::from_gguf_blocks(q, 3, 64, &blocks, None).unwrap();
        let mut out = vec![0.0; 64];
        assert!(model_error(w.dequantize_row(3, &mut out)).contains("row 3 of a 3 x 64"));
        assert!(model_error(w.dequantize_row(0, &mut out[..63])).contains("into 63 values"));
        assert!(model_error(w.add_scaled_row(3, 1.0, &mut out)).contains("row 3"));
        for kernel in [Kernel::Reference, Kernel::F32Activations, Kernel::Simd] {
            assert!(
                model_error(w.matmul_with(kernel, &[0.0; 128], 2, &mut [0.0; 5]))
                    .contains("got 128 and 5")
            );
            assert!(
                model_error(w.matmul_with(kernel, &[0.0; 127], 2, &mut [0.0; 6]))
                    .contains("got 127 and 6")
            );
            assert!(w.matmul_with(kernel, &[], usize::MAX, &mut []).is_err());
            assert!(w.matmul_with(kernel, &[], 0, &mut []).is_ok());
        }
    }

    #[test]
    fn storage_is_the_padded_repacked_blocks() {
        // 5 rows pad to 8; 2 blocks per row; Q4_1: 16 quant bytes + 2 f32 per block.
        let w = random_matrix(GgmlType::Q4_1, 5, 64, false, 1);
        assert_eq!(w.storage_bytes(), 8 * 2 * 24);
        let w = random_matrix(GgmlType::Q8_0, 4, 32, false, 1);
        assert_eq!(w.storage_bytes(), 4 * 36);
        assert_eq!(
            format!("{w:?}"),
            "QuantMatrix { format: Q8_0, rows: 4, cols: 32, storage_bytes: 144 }"
        );
        // Per 32 weights: Q4_K as Q4_1 (24 bytes), Q5_0 16 + 4 + 4, Q5_K as Q5_1 16 + 4 + 8, Q6_K
        // 32 + 2 f32.
        for (ty, bytes) in [(GgmlType::Q4_K, 24), (GgmlType::Q5_0, 24), (GgmlType::Q5_K, 28), (GgmlType::Q6_K, 40)] {
            assert_eq!(random_matrix(ty, 4, 256, false, 1).storage_bytes(), 4 * 8 * bytes, "{ty}");
        }
    }

    #[test]
    fn self_check_passes() {
        self_check().unwrap();
    }

    #[test]
    fn quant_matrix_is_send_and_sync() {
        fn assert<T: Send + Sync + std::fmt::Debug>() {}
        assert::<QuantMatrix>();
    }
}

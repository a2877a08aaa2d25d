//! GGUF's block layouts, read into 32-weight sub-blocks: the quants in ggml's element order and
//! the f32 scale(s) and min that make each weight exactly what ggml's `dequantize_row_*` (and
//! gguf-py) compute. Layouts and orders: ggml-common.h and ggml-quants.c, summarised in
//! `shared/notes/gguf-formats.md` §1.
//!
//! The K-quants' products `d·sc` and `dmin·m` are exact in f32 (11-bit × 6- or 8-bit
//! significands), so folding them into one scale and one min per sub-block changes no weight:
//! ggml's `d1·q − m1` equals `d1·q + (−m1)` bit for bit.

use super::BLOCK;
use crate::model::f16_bits_to_f32;

/// One 32-weight sub-block. `q`: weight j's quant before the scheme's offset. `d`: the scale
/// (Q6_K: one per 16 weights). `m`: the min added to every weight (schemes with mins).
pub struct Sub {
    pub q: [i32; BLOCK],
    pub d: [f32; 2],
    pub m: f32,
}

/// Sub-block `sub` (0 for 32-weight types, 0..8 for K-quants) of one GGUF block.
pub type Unpack = fn(block: &[u8], sub: usize) -> Sub;

fn f16(b: &[u8], at: usize) -> f32 {
    f16_bits_to_f32(u16::from_le_bytes([b[at], b[at + 1]]))
}

fn sub(q: impl Fn(usize) -> i32, d: f32, m: f32) -> Sub {
    Sub { q: std::array::from_fn(q), d: [d, d], m }
}

/// ggml's 32-weight nibble order: byte j's low nibble is weight j, its high nibble weight j + 16.
#[inline(always)]
pub(super) fn nibble(qs: &[u8], j: usize) -> i32 {
    (qs[j % 16] >> (4 * (j / 16)) & 0x0f) as i32
}

/// Q5_0/Q5_1's fifth bits: bit j of the little-endian u32 `qh` belongs to weight j.
#[inline(always)]
pub(super) fn high_bit(qh: &[u8], j: usize) -> i32 {
    ((qh[j / 8] >> (j % 8)) & 1) as i32
}

/// `f16 d; i8 qs[32]`
pub fn q8_0(b: &[u8], _: usize) -> Sub {
    sub(|j| b[2 + j] as i8 as i32, f16(b, 0), 0.0)
}

/// `f16 d; u8 qs[16]`
pub fn q4_0(b: &[u8], _: usize) -> Sub {
    sub(|j| nibble(&b[2..], j), f16(b, 0), 0.0)
}

/// `f16 d; f16 m; u8 qs[16]`
pub fn q4_1(b: &[u8], _: usize) -> Sub {
    sub(|j| nibble(&b[4..], j), f16(b, 0), f16(b, 2))
}

/// `f16 d; u8 qh[4]; u8 qs[16]`, as whole bytes: q − 16.
pub fn q5_0(b: &[u8], _: usize) -> Sub {
    sub(|j| (nibble(&b[6..], j) | high_bit(&b[2..], j) << 4) - 16, f16(b, 0), 0.0)
}

/// `f16 d; f16 m; u8 qh[4]; u8 qs[16]`
pub fn q5_1(b: &[u8], _: usize) -> Sub {
    sub(|j| nibble(&b[8..], j) | high_bit(&b[4..], j) << 4, f16(b, 0), f16(b, 2))
}

/// ggml's `get_scale_min_k4`: sub-block `j`'s 6-bit scale and min from the 12 packed bytes.
fn scale_min_k4(j: usize, s: &[u8]) -> (u8, u8) {
    if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        (s[j + 4] & 0x0f | (s[j - 4] >> 6) << 4, s[j + 4] >> 4 | (s[j] >> 6) << 4)
    }
}

/// Q4_K and Q5_K's scale and min of sub-block `s`: d·sc and −(dmin·m).
fn k_scale_min(b: &[u8], s: usize) -> (f32, f32) {
    let (sc, m) = scale_min_k4(s, &b[4..16]);
    (f16(b, 0) * sc as f32, -(f16(b, 2) * m as f32))
}

/// `f16 d; f16 dmin; u8 scales[12]; u8 qs[128]`. Sub-block s is the low (s even) or high
/// nibbles of bytes 32·(s/2) .. +32.
pub fn q4_k(b: &[u8], s: usize) -> Sub {
    let qs = &b[16 + 32 * (s / 2)..][..32];
    let (d, m) = k_scale_min(b, s);
    sub(|l| (qs[l] >> (4 * (s % 2)) & 0x0f) as i32, d, m)
}

/// `f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]`: Q4_K plus bit s of `qh[l]`.
pub fn q5_k(b: &[u8], s: usize) -> Sub {
    let (qh, qs) = (&b[16..48], &b[48 + 32 * (s / 2)..][..32]);
    let (d, m) = k_scale_min(b, s);
    sub(|l| (qs[l] >> (4 * (s % 2)) & 0x0f | (qh[l] >> s & 1) << 4) as i32, d, m)
}

/// `u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d`. In each 128-weight half n, sub-block k takes
/// nibble k/2 of `ql[64n + 32(k%2) + l]` and bits 2k..2k+2 of `qh[32n + l]`, minus 32; its two
/// 16-weight halves have scales `d·sc[8n + 2k]` and `d·sc[8n + 2k + 1]`.
pub fn q6_k(b: &[u8], s: usize) -> Sub {
    let (n, k) = (s / 4, s % 4);
    let (ql, qh) = (&b[64 * n + 32 * (k % 2)..][..32], &b[128 + 32 * n..][..32]);
    let d = f16(b, 208);
    let sc = |i: usize| d * (b[192 + 8 * n + 2 * k + i] as i8) as f32;
    let q = |l: usize| ((ql[l] >> (4 * (k / 2)) & 0x0f) | (qh[l] >> (2 * k) & 3) << 4) as i32 - 32;
    Sub { q: std::array::from_fn(q), d: [sc(0), sc(1)], m: 0.0 }
}

/// `u8 hmask[32]; u8 qs[64]; u8 scales[12]; f16 d`. In each 128-weight half n, sub-block j takes
/// bits 2j..2j+2 of `qs[32n + l]`, minus 4 unless bit 4n + j of `hmask[l]` is set; its two
/// 16-weight halves have scales `d·(s − 32)` with the 6-bit scales s[8n + 2j] and s[8n + 2j + 1].
pub fn q3_k(b: &[u8], s: usize) -> Sub {
    let (n, j) = (s / 4, s % 4);
    let (hmask, qs, scales) = (&b[..32], &b[32 + 32 * n..][..32], &b[96..108]);
    let six_bit = |k: usize| {
        let low = if k < 8 { scales[k] & 0x0f } else { scales[k - 8] >> 4 };
        (low | (scales[8 + k % 4] >> (2 * (k / 4)) & 3) << 4) as i32
    };
    let d = f16(b, 108);
    let sc = |i: usize| d * (six_bit(8 * n + 2 * j + i) - 32) as f32;
    let q = |l: usize| (qs[l] >> (2 * j) & 3) as i32 - if hmask[l] >> (4 * n + j) & 1 == 1 { 0 } else { 4 };
    Sub { q: std::array::from_fn(q), d: [sc(0), sc(1)], m: 0.0 }
}

//! The kernel schemes: how a 32-weight block lies in memory for the kernels. Each GGUF block type
//! is repacked into one of them (see `model::formats`); the scheme fixes the quant bytes, the
//! number of f32 scales, the offset and whether there is a min, and so which kernels run it.
//!
//! Bytes per 32 weights as held (quants + f32 scales and mins), and per weight:
//!
//! | scheme | quant bytes      | scales, min | bytes | bits/weight | GGUF types (GGUF bits/weight) |
//! |--------|------------------|-------------|-------|-------------|-------------------------------|
//! | Q8_0   | 32 × i8          | d           | 36    | 9           | Q8_0 (8.5), Q5_0 (5.5)        |
//! | Q4_0   | 16 nibble bytes  | d           | 20    | 5           | Q4_0 (4.5)                    |
//! | Q4_1   | 16 nibble bytes  | d, m        | 24    | 6           | Q4_1 (5), Q4_K (4.5)          |
//! | Q5_1   | 16 nibbles + 4 high-bit bytes | d, m | 28 | 7       | Q5_1 (6), Q5_K (5.5)          |
//! | Q6_K   | 32 × i8          | d per 16    | 40    | 10          | Q6_K (6.5625), Q3_K (3.4375)  |
//!
//! The scales are widened to f32 once, because f16 → f32 in the inner loop is expensive in wasm,
//! and the K-quants' sub-block scales become per-block f32s, which keeps every kernel's 32-weight
//! structure. Q6_K's quants are held as whole bytes, so its kernels are Q8_0's with a second
//! scale. Q5_0 is held as whole bytes too (q − 16, exact): spreading its fifth bits cost wasm
//! more than the extra bytes do, and Q5_0 is most of a "Q4_K_M" file whose rows are not a
//! multiple of 256 wide (SmolLM2, Qwen2.5-0.5B, Gemma-3-270M). In Chromium that took SmolLM2's
//! Q5_0 file from 35.4 to 54.7 tokens a second, for 1.125 bytes a weight instead of 0.75.

use super::unpack::{high_bit, nibble};
use super::BLOCK;

/// How the SIMD kernels unpack a block's quant bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Bits {
    /// 32 × i8.
    I8,
    /// 16 bytes of nibbles in ggml's order: byte j's low nibble is weight j, its high nibble
    /// weight j + 16.
    Nibbles,
    /// The nibbles, then a little-endian u32 whose bit j is weight j's fifth bit (ggml's `qh`).
    Nibbles5,
}

/// What tells the schemes apart; dequantisation, the kernels and repacking are generic over it.
pub(super) trait Format {
    const NAME: &'static str;
    const BITS: Bits;
    /// Quant bytes per block.
    const QS_BYTES: usize = match Self::BITS {
        Bits::I8 => BLOCK,
        Bits::Nibbles => BLOCK / 2,
        Bits::Nibbles5 => BLOCK / 2 + 4,
    };
    /// f32 scales per block: 1, or 2 (one per 16 weights).
    const SCALES: usize;
    /// Subtracted from every quant (Q4_0's 8); the kernels subtract `OFFSET · Σq_x`
    /// from the integer sum instead, which is exact. Only with one scale.
    const OFFSET: i32;
    /// Whether a block carries a min: `w = d·q + m`. Only with one scale.
    const HAS_MIN: bool;

    /// Quant `j` of a block's quant bytes, before the offset.
    #[inline(always)]
    fn quant(qs: &[u8], j: usize) -> i32 {
        match Self::BITS {
            Bits::I8 => qs[j] as i8 as i32,
            Bits::Nibbles => nibble(qs, j),
            Bits::Nibbles5 => nibble(qs, j) | high_bit(&qs[16..], j) << 4,
        }
    }

    /// The quant bytes of quants `q` (each in the scheme's range), the inverse of [`quant`](Format::quant).
    fn pack(q: &[i32; BLOCK], qs: &mut [u8]) {
        qs.fill(0);
        for (j, &v) in q.iter().enumerate() {
            match Self::BITS {
                Bits::I8 => qs[j] = v as i8 as u8,
                _ => {
                    qs[j % 16] |= (v as u8 & 0x0f) << (4 * (j / 16));
                    if Self::BITS == Bits::Nibbles5 {
                        qs[16 + j / 8] |= ((v >> 4) as u8 & 1) << (j % 8);
                    }
                }
            }
        }
    }
}

/// Runs `$body` with the type `$F` naming the [`Format`] of scheme `$scheme`.
macro_rules! with_scheme {
    ($scheme:expr, $F:ident => $body:expr) => {{
        use $crate::model::quant::schemes as s;
        match $scheme {
            s::Scheme::Q8_0 => { type $F = s::Q8_0; $body }
            s::Scheme::Q4_0 => { type $F = s::Q4_0; $body }
            s::Scheme::Q4_1 => { type $F = s::Q4_1; $body }
            s::Scheme::Q5_1 => { type $F = s::Q5_1; $body }
            s::Scheme::Q6_K => { type $F = s::Q6_K; $body }
        }
    }};
}
pub(super) use with_scheme;

/// The scheme of a [`QuantMatrix`](super::QuantMatrix): which [`Format`] its kernels use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum Scheme {
    Q8_0,
    Q4_0,
    Q4_1,
    Q5_1,
    Q6_K,
}

impl Scheme {
    pub const ALL: [Scheme; 5] = [Scheme::Q8_0, Scheme::Q4_0, Scheme::Q4_1, Scheme::Q5_1, Scheme::Q6_K];

    pub fn name(self) -> &'static str {
        with_scheme!(self, F => F::NAME)
    }
}


macro_rules! scheme {
    ($name:ident, $bits:ident, scales $scales:literal, offset $offset:literal, min $min:literal) => {
        #[allow(non_camel_case_types)]
        pub(super) struct $name;
        impl Format for $name {
            const NAME: &'static str = stringify!($name);
            const BITS: Bits = Bits::$bits;
            const SCALES: usize = $scales;
            const OFFSET: i32 = $offset;
            const HAS_MIN: bool = $min;
        }
    };
}

scheme!(Q8_0, I8, scales 1, offset 0, min false);
scheme!(Q4_0, Nibbles, scales 1, offset 8, min false);
scheme!(Q4_1, Nibbles, scales 1, offset 0, min true);
scheme!(Q5_1, Nibbles5, scales 1, offset 0, min true);
scheme!(Q6_K, I8, scales 2, offset 0, min false);

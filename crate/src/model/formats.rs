//! The registry of the GGUF tensor types this runtime reads: one entry per type gives its ggml id
//! and name, its block (weights and bytes, as ggml's `ggml-common.h` lays it out), and how its
//! tensors are held once loaded. Block-quantised types are repacked into 32-weight blocks of a
//! kernel scheme ([`Scheme`]); the scheme names the CPU kernels (scalar, AVX2, simd128) and the
//! WGSL kernel that run it, so several GGUF types can share one set of kernels (Q4_K runs as
//! Q4_1, Q5_K as Q5_1). Adding a type means one entry here, its `unpack`, and, if no scheme holds
//! it exactly, a new scheme with its kernels.
//!
//! Types are dispatched on per tensor, from the type each tensor stores (never from
//! `general.file_type`: llama.cpp mixes types within a file, and the mix changes between its
//! versions).

use std::fmt;

use crate::error::{Error, Result};
use crate::model::quant::unpack::{self, Unpack};
use crate::model::quant::Scheme;

/// The ggml tensor types this runtime reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(non_camel_case_types)]
pub enum GgmlType {
    F32,
    F16,
    BF16,
    Q8_0,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q4_K,
    Q5_K,
    Q6_K,
    Q3_K,
}

/// How a type's tensors are held in memory.
#[derive(Clone, Copy)]
pub enum Held {
    F32,
    /// As f16 bit patterns, widened where they are read.
    F16,
    /// Widened to f32 when loaded (exact: a bf16 is the top half of an f32), then as [`Held::F32`].
    Bf16AsF32,
    /// As 32-weight blocks of `scheme`, each GGUF block split by `unpack`.
    Blocks { scheme: Scheme, unpack: Unpack },
}

/// One registry entry.
pub struct TypeInfo {
    pub ty: GgmlType,
    pub id: u32,
    pub name: &'static str,
    /// Weights per GGUF block: a row's length is a multiple of it.
    pub block_weights: usize,
    pub block_bytes: usize,
    pub held: Held,
}

const fn entry(ty: GgmlType, id: u32, name: &'static str, block_weights: usize, block_bytes: usize, held: Held) -> TypeInfo {
    TypeInfo { ty, id, name, block_weights, block_bytes, held }
}

const fn blocks(scheme: Scheme, unpack: Unpack) -> Held {
    Held::Blocks { scheme, unpack }
}

/// In [`GgmlType`]'s order. Bytes per block from ggml-common.h's structs (see
/// `shared/notes/gguf-formats.md` §1).
const TYPES: [TypeInfo; 12] = [
    entry(GgmlType::F32, 0, "F32", 1, 4, Held::F32),
    entry(GgmlType::F16, 1, "F16", 1, 2, Held::F16),
    entry(GgmlType::BF16, 30, "BF16", 1, 2, Held::Bf16AsF32),
    entry(GgmlType::Q8_0, 8, "Q8_0", 32, 34, blocks(Scheme::Q8_0, unpack::q8_0)),
    entry(GgmlType::Q4_0, 2, "Q4_0", 32, 18, blocks(Scheme::Q4_0, unpack::q4_0)),
    entry(GgmlType::Q4_1, 3, "Q4_1", 32, 20, blocks(Scheme::Q4_1, unpack::q4_1)),
    // Held as whole bytes, q − 16: see `quant::schemes` for why.
    entry(GgmlType::Q5_0, 6, "Q5_0", 32, 22, blocks(Scheme::Q8_0, unpack::q5_0)),
    entry(GgmlType::Q5_1, 7, "Q5_1", 32, 24, blocks(Scheme::Q5_1, unpack::q5_1)),
    entry(GgmlType::Q4_K, 12, "Q4_K", 256, 144, blocks(Scheme::Q4_1, unpack::q4_k)),
    entry(GgmlType::Q5_K, 13, "Q5_K", 256, 176, blocks(Scheme::Q5_1, unpack::q5_k)),
    entry(GgmlType::Q6_K, 14, "Q6_K", 256, 210, blocks(Scheme::Q6_K, unpack::q6_k)),
    // 3-bit quants with 16-weight scales fit Q6_K's scheme exactly (at 10 bits a weight).
    entry(GgmlType::Q3_K, 11, "Q3_K", 256, 110, blocks(Scheme::Q6_K, unpack::q3_k)),
];

impl GgmlType {
    /// Every type the runtime reads, in the registry's order.
    pub fn supported() -> impl Iterator<Item = GgmlType> {
        TYPES.iter().map(|t| t.ty)
    }

    pub fn info(self) -> &'static TypeInfo {
        &TYPES[self as usize]
    }

    /// The type of ggml type id `id`, or an error naming the tensor and the type (known but
    /// unsupported ones by name, e.g. IQ2_XXS, unknown ones by number).
    pub fn from_id(id: u32, tensor: &str) -> Result<Self> {
        if let Some(t) = TYPES.iter().find(|t| t.id == id) {
            return Ok(t.ty);
        }
        let supported: Vec<&str> = TYPES.iter().map(|t| t.name).collect();
        let supported = supported.join(", ");
        Err(Error::Model(match ggml_type_name(id) {
            Some(name) => format!("tensor `{tensor}` has type {name} ({id}), which is not supported: {supported}"),
            None => format!("tensor `{tensor}` has unknown ggml type id {id} (supported: {supported})"),
        }))
    }

    /// The ggml type id, as stored in the file.
    pub fn id(self) -> u32 {
        self.info().id
    }

    /// ggml's name, e.g. "Q4_K".
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// Weights per block (1 for F32, F16 and BF16).
    pub fn block_size(self) -> usize {
        self.info().block_weights
    }

    pub fn block_bytes(self) -> usize {
        self.info().block_bytes
    }

    /// Bytes of a row of `n` elements, `None` unless `n` is a multiple of the block size.
    pub fn row_bytes(self, n: usize) -> Option<usize> {
        if !n.is_multiple_of(self.block_size()) {
            return None;
        }
        (n / self.block_size()).checked_mul(self.block_bytes())
    }

    /// The kernel scheme of a block-quantised type; `None` for F32, F16 and BF16.
    pub fn scheme(self) -> Option<Scheme> {
        match self.info().held {
            Held::Blocks { scheme, .. } => Some(scheme),
            _ => None,
        }
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// ggml's name of a type id, supported or not, for error messages (ids of types ggml removed
/// give `None`).
pub fn ggml_type_name(id: u32) -> Option<&'static str> {
    if let Some(t) = TYPES.iter().find(|t| t.id == id) {
        return Some(t.name);
    }
    Some(match id {
        9 => "Q8_1",
        10 => "Q2_K",
        15 => "Q8_K",
        16 => "IQ2_XXS",
        17 => "IQ2_XS",
        18 => "IQ3_XXS",
        19 => "IQ1_S",
        20 => "IQ4_NL",
        21 => "IQ3_S",
        22 => "IQ2_S",
        23 => "IQ4_XS",
        24 => "I8",
        25 => "I16",
        26 => "I32",
        27 => "I64",
        28 => "F64",
        29 => "IQ1_M",
        34 => "TQ1_0",
        35 => "TQ2_0",
        39 => "MXFP4",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_in_enum_order_and_ids_round_trip() {
        for (i, t) in TYPES.iter().enumerate() {
            assert_eq!(t.ty as usize, i, "{}", t.name);
            assert_eq!(GgmlType::from_id(t.id, "x").unwrap(), t.ty);
            assert_eq!(ggml_type_name(t.id), Some(t.name));
            assert_eq!(format!("{:?}", t.ty), t.name);
        }
    }

    /// gguf-py's `GGML_QUANT_SIZES` (constants.py, gguf 0.19.0).
    #[test]
    fn block_sizes_are_ggmls() {
        let sizes: Vec<_> = GgmlType::supported().map(|t| (t.name(), t.block_size(), t.block_bytes())).collect();
        assert_eq!(
            sizes,
            [
                ("F32", 1, 4),
                ("F16", 1, 2),
                ("BF16", 1, 2),
                ("Q8_0", 32, 34),
                ("Q4_0", 32, 18),
                ("Q4_1", 32, 20),
                ("Q5_0", 32, 22),
                ("Q5_1", 32, 24),
                ("Q4_K", 256, 144),
                ("Q5_K", 256, 176),
                ("Q6_K", 256, 210),
                ("Q3_K", 256, 110)
            ]
        );
        assert_eq!(GgmlType::Q4_1.row_bytes(64), Some(40));
        assert_eq!(GgmlType::Q4_K.row_bytes(576), None);
        assert_eq!(GgmlType::Q6_K.row_bytes(512), Some(420));
    }

    #[test]
    fn unsupported_types_are_named_with_the_tensor() {
        let e = GgmlType::from_id(16, "blk.0.attn_q.weight").unwrap_err().to_string();
        assert!(e.contains("tensor `blk.0.attn_q.weight` has type IQ2_XXS (16), which is not supported: F32, F16, BF16"), "{e}");
        assert!(e.ends_with("Q6_K, Q3_K"), "{e}");
        let e = GgmlType::from_id(77, "t").unwrap_err().to_string();
        assert!(e.contains("unknown ggml type id 77"), "{e}");
    }
}

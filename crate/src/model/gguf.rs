//! A GGUF (v2/v3) reader that streams: it parses the header from a [`Buf`] (in wasm the bytes
//! come from JS one chunk at a time, see `JsChunks` in `wasm/bytes.rs`; natively `&[u8]` is a `Buf`),
//! then hands out each tensor's bytes in file order, so at most one tensor is copied at a time.
//!
//! Layout (all little-endian): magic `GGUF`, `u32` version, `u64` tensor count, `u64` metadata
//! count; the metadata key/value pairs; one info record per tensor (name, dims in ggml order,
//! type, offset into the data section); padding to `general.alignment` (default 32); the data
//! section, each tensor at its offset (a multiple of the alignment).
//!
//! Everything here treats the file as untrusted: every length is checked against
//! [`Buf::remaining`] before anything is allocated or read, nothing panics, and every failure is
//! an [`Error::Model`] that says what is wrong and where.
//!
//! What the metadata means for a model is `arch::params`'; [`llama_permutation`](crate::model::arch::llama_permutation)
//! undoes the Q/K row permutation of `llama` files; [`GgufHeader::tokenizer_meta`] reads the
//! tokenizer's special ids and chat template (the tokenizer itself: `TextTokenizer::from_gguf`).

use std::collections::{BTreeMap, HashMap};

use prost::bytes::Buf;

use crate::error::{Error, Result};

/// A model split into several GGUF files (`gguf-split`), read as one.
pub mod split;

const MAGIC: [u8; 4] = *b"GGUF";
/// `general.alignment` when the key is absent.
pub const DEFAULT_ALIGNMENT: usize = 32;
/// ggml's GGML_MAX_DIMS.
const MAX_DIMS: usize = 4;
/// Arrays of arrays nest at most this deep (bounds the recursion on hostile input).
const MAX_ARRAY_DEPTH: usize = 8;
/// All metadata arrays together hold at most this many elements (a `MetaValue` takes 32 bytes
/// in memory however small it is in the file). Real files: ~150k for a 49k vocabulary.
const MAX_METADATA_ELEMENTS: u64 = 1 << 22;

fn model_err(msg: impl Into<String>) -> Error {
    Error::Model(msg.into())
}

// ------------------------------------------------------------------ tensor types

pub use super::formats::{ggml_type_name, GgmlType};

// ------------------------------------------------------------------ metadata values

/// One metadata value (GGUF value types 0..=12).
#[derive(Debug, Clone, PartialEq)]
pub enum MetaValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    Array(Vec<MetaValue>),
    U64(u64),
    I64(i64),
    F64(f64),
}

/// GGUF value type ids.
const T_U8: u32 = 0;
const T_I8: u32 = 1;
const T_U16: u32 = 2;
const T_I16: u32 = 3;
const T_U32: u32 = 4;
const T_I32: u32 = 5;
const T_F32: u32 = 6;
const T_BOOL: u32 = 7;
const T_STRING: u32 = 8;
const T_ARRAY: u32 = 9;
const T_U64: u32 = 10;
const T_I64: u32 = 11;
const T_F64: u32 = 12;

/// The fewest bytes one value of type `t` takes in the file (`None`: not a value type).
fn min_value_bytes(t: u32) -> Option<u64> {
    Some(match t {
        T_U8 | T_I8 | T_BOOL => 1,
        T_U16 | T_I16 => 2,
        T_U32 | T_I32 | T_F32 => 4,
        T_U64 | T_I64 | T_F64 | T_STRING => 8,
        T_ARRAY => 12,
        _ => return None,
    })
}

fn value_type_name(t: u32) -> &'static str {
    match t {
        T_U8 => "u8",
        T_I8 => "i8",
        T_U16 => "u16",
        T_I16 => "i16",
        T_U32 => "u32",
        T_I32 => "i32",
        T_F32 => "f32",
        T_BOOL => "bool",
        T_STRING => "string",
        T_ARRAY => "array",
        T_U64 => "u64",
        T_I64 => "i64",
        T_F64 => "f64",
        _ => "unknown",
    }
}

impl MetaValue {
    /// The value's type as a message shows it: "u32", "string", "array of string", ...
    pub fn type_name(&self) -> String {
        match self {
            MetaValue::Array(items) => match items.first() {
                Some(first) => format!("array of {}", first.type_name()),
                None => "empty array".into(),
            },
            other => value_type_name(other.type_id()).into(),
        }
    }

    fn type_id(&self) -> u32 {
        match self {
            MetaValue::U8(_) => T_U8,
            MetaValue::I8(_) => T_I8,
            MetaValue::U16(_) => T_U16,
            MetaValue::I16(_) => T_I16,
            MetaValue::U32(_) => T_U32,
            MetaValue::I32(_) => T_I32,
            MetaValue::F32(_) => T_F32,
            MetaValue::Bool(_) => T_BOOL,
            MetaValue::String(_) => T_STRING,
            MetaValue::Array(_) => T_ARRAY,
            MetaValue::U64(_) => T_U64,
            MetaValue::I64(_) => T_I64,
            MetaValue::F64(_) => T_F64,
        }
    }

    /// Any integer type, as i128 (holds every u64 and i64).
    pub fn as_integer(&self) -> Option<i128> {
        Some(match *self {
            MetaValue::U8(v) => v.into(),
            MetaValue::I8(v) => v.into(),
            MetaValue::U16(v) => v.into(),
            MetaValue::I16(v) => v.into(),
            MetaValue::U32(v) => v.into(),
            MetaValue::I32(v) => v.into(),
            MetaValue::U64(v) => v.into(),
            MetaValue::I64(v) => v.into(),
            _ => return None,
        })
    }

    /// F32 or F64 (as f64).
    pub fn as_float(&self) -> Option<f64> {
        match *self {
            MetaValue::F32(v) => Some(v.into()),
            MetaValue::F64(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            MetaValue::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            MetaValue::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[MetaValue]> {
        match self {
            MetaValue::Array(items) => Some(items),
            _ => None,
        }
    }
}

// ------------------------------------------------------------------ tensor info and header

/// One tensor's header record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    /// ggml order: `dims[0]` is the row length (contiguous), `dims[1]` the number of rows of a
    /// matrix. numpy/PyTorch shapes are the reverse.
    pub dims: Vec<usize>,
    pub ggml_type: GgmlType,
    /// Where the tensor starts, relative to the data section (a multiple of the alignment).
    pub offset: u64,
}

impl TensorInfo {
    /// Product of the dims.
    pub fn n_elements(&self) -> usize {
        self.dims.iter().fold(1usize, |a, &d| a.saturating_mul(d))
    }

    /// Bytes of the tensor's data (validated not to overflow when the header was read).
    pub fn n_bytes(&self) -> usize {
        (self.n_elements() / self.ggml_type.block_size())
            .saturating_mul(self.ggml_type.block_bytes())
    }

    /// Row length: `dims[0]`.
    pub fn cols(&self) -> usize {
        self.dims.first().copied().unwrap_or(1)
    }

    /// Number of rows: the product of `dims[1..]` (1 for a vector).
    pub fn rows(&self) -> usize {
        self.dims
            .iter()
            .skip(1)
            .fold(1usize, |a, &d| a.saturating_mul(d))
    }
}

/// Everything before the data section.
#[derive(Debug, Clone, PartialEq)]
pub struct GgufHeader {
    pub version: u32,
    pub metadata: BTreeMap<String, MetaValue>,
    /// In header order (for files written by llama.cpp and gguf-py this is also offset order).
    pub tensors: Vec<TensorInfo>,
    /// `general.alignment`, or 32.
    pub alignment: usize,
    /// Where the data section starts in the file (header length + padding).
    pub data_offset: u64,
}

/// The tokenizer facts a runtime needs besides the vocabulary (`tokenizer.ggml.*` keys and
/// `tokenizer.chat_template`). Ids are checked to be inside the vocabulary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GgufTokenizerMeta {
    /// `tokenizer.ggml.model`: "gpt2" (byte-level BPE), "llama" (SentencePiece), ...
    pub model: String,
    /// `tokenizer.ggml.pre`: the pre-tokenizer ("smollm", "gpt-2", "llama-bpe", ...).
    pub pre: Option<String>,
    pub bos_token_id: Option<u32>,
    pub eos_token_id: Option<u32>,
    pub padding_token_id: Option<u32>,
    pub unknown_token_id: Option<u32>,
    /// `None` when the key is absent (llama.cpp then picks a default per tokenizer type).
    pub add_bos_token: Option<bool>,
    pub add_eos_token: Option<bool>,
    pub chat_template: Option<String>,
}

impl GgufHeader {
    /// Reads the header from `buf` and consumes it, up to the start of the data section
    /// (the padding included). Checks the tensor records against each other (alignment,
    /// overlaps) but not against the length of the data: [`GgufReader::new`] does that.
    pub fn read(buf: &mut impl Buf) -> Result<Self> {
        let mut r = Reader {
            buf,
            pos: 0,
            what: String::new(),
            elements: 0,
        };
        r.header()
    }

    /// The metadata value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        self.metadata.get(key)
    }

    fn require(&self, key: &str) -> Result<&MetaValue> {
        self.get(key)
            .ok_or_else(|| model_err(format!("metadata key `{key}` is missing")))
    }

    fn typed<'a, T>(
        &'a self,
        key: &str,
        expected: &str,
        f: impl FnOnce(&'a MetaValue) -> Option<T>,
    ) -> Result<Option<T>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => f(v).map(Some).ok_or_else(|| wrong_type(key, v, expected)),
        }
    }

    fn required<'a, T>(
        &'a self,
        key: &str,
        expected: &str,
        f: impl FnOnce(&'a MetaValue) -> Option<T>,
    ) -> Result<T> {
        let v = self.require(key)?;
        f(v).ok_or_else(|| wrong_type(key, v, expected))
    }

    /// A string value.
    pub fn get_str(&self, key: &str) -> Result<&str> {
        self.required(key, "a string", MetaValue::as_str)
    }

    /// A string value, `None` if the key is absent (an error if it has another type).
    pub fn opt_str(&self, key: &str) -> Result<Option<&str>> {
        self.typed(key, "a string", MetaValue::as_str)
    }

    /// An integer of any GGUF integer type that fits in u32.
    pub fn get_u32(&self, key: &str) -> Result<u32> {
        self.required(key, "an unsigned 32-bit integer", as_int)
    }

    pub fn opt_u32(&self, key: &str) -> Result<Option<u32>> {
        self.typed(key, "an unsigned 32-bit integer", as_int)
    }

    /// An integer of any GGUF integer type that fits in u64.
    pub fn get_u64(&self, key: &str) -> Result<u64> {
        self.required(key, "an unsigned integer", as_int)
    }

    /// An integer of any GGUF integer type that fits in usize.
    pub fn get_usize(&self, key: &str) -> Result<usize> {
        self.required(key, "an unsigned integer", as_int)
    }

    pub fn opt_usize(&self, key: &str) -> Result<Option<usize>> {
        self.typed(key, "an unsigned integer", as_int)
    }

    /// An F32 or F64 value (as f32; F64 values are rounded).
    pub fn get_f32(&self, key: &str) -> Result<f32> {
        self.required(key, "a float", |v| v.as_float().map(|x| x as f32))
    }

    pub fn opt_f32(&self, key: &str) -> Result<Option<f32>> {
        self.typed(key, "a float", |v| v.as_float().map(|x| x as f32))
    }

    pub fn get_bool(&self, key: &str) -> Result<bool> {
        self.required(key, "a bool", MetaValue::as_bool)
    }

    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>> {
        self.typed(key, "a bool", MetaValue::as_bool)
    }

    /// An array of strings (an empty array is fine).
    pub fn get_str_array(&self, key: &str) -> Result<Vec<&str>> {
        self.required(key, "an array of strings", |v| {
            v.as_array()?.iter().map(MetaValue::as_str).collect()
        })
    }

    pub fn opt_str_array(&self, key: &str) -> Result<Option<Vec<&str>>> {
        self.typed(key, "an array of strings", |v| {
            v.as_array()?.iter().map(MetaValue::as_str).collect()
        })
    }

    /// An array of integers (any GGUF integer type) that fit in i32.
    pub fn get_i32_array(&self, key: &str) -> Result<Vec<i32>> {
        self.required(key, "an array of 32-bit integers", |v| {
            v.as_array()?.iter().map(as_int).collect()
        })
    }

    pub fn opt_i32_array(&self, key: &str) -> Result<Option<Vec<i32>>> {
        self.typed(key, "an array of 32-bit integers", |v| {
            v.as_array()?.iter().map(as_int).collect()
        })
    }

    /// `general.architecture` ("llama", ...).
    pub fn architecture(&self) -> Result<&str> {
        self.get_str("general.architecture")
    }

    /// The tensor named `name`.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// Indices into [`tensors`](Self::tensors) in data (offset) order: the order
    /// [`GgufReader::next_tensor`] hands them out.
    pub fn file_order(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.tensors.len()).collect();
        order.sort_by_key(|&i| self.tensors[i].offset);
        order
    }

    /// Bytes of the data section the tensors need (the end of the last one).
    pub fn data_len(&self) -> u64 {
        self.tensors
            .iter()
            .map(|t| t.offset.saturating_add(t.n_bytes() as u64))
            .max()
            .unwrap_or(0)
    }

    /// Special ids, BOS/EOS policy and chat template of the file's tokenizer.
    pub fn tokenizer_meta(&self) -> Result<GgufTokenizerMeta> {
        let n_tokens = self
            .get("tokenizer.ggml.tokens")
            .and_then(MetaValue::as_array)
            .map(|a| a.len());
        let id = |key: &str| -> Result<Option<u32>> {
            let id = self.opt_u32(key)?;
            match (id, n_tokens) {
                (Some(id), Some(n)) if id as usize >= n => Err(model_err(format!(
                    "metadata key `{key}` is {id}, outside the vocabulary of {n} tokens"
                ))),
                _ => Ok(id),
            }
        };
        Ok(GgufTokenizerMeta {
            model: self.get_str("tokenizer.ggml.model")?.to_string(),
            pre: self.opt_str("tokenizer.ggml.pre")?.map(str::to_string),
            bos_token_id: id("tokenizer.ggml.bos_token_id")?,
            eos_token_id: id("tokenizer.ggml.eos_token_id")?,
            padding_token_id: id("tokenizer.ggml.padding_token_id")?,
            unknown_token_id: id("tokenizer.ggml.unknown_token_id")?,
            add_bos_token: self.opt_bool("tokenizer.ggml.add_bos_token")?,
            add_eos_token: self.opt_bool("tokenizer.ggml.add_eos_token")?,
            chat_template: self.opt_str("tokenizer.chat_template")?.map(str::to_string),
        })
    }
}

fn as_int<T: TryFrom<i128>>(v: &MetaValue) -> Option<T> {
    v.as_integer().and_then(|i| T::try_from(i).ok())
}

fn wrong_type(key: &str, v: &MetaValue, expected: &str) -> Error {
    let value = match v {
        _ if v.as_integer().is_some() => format!(" ({})", v.as_integer().unwrap_or(0)),
        MetaValue::F32(x) => format!(" ({x})"),
        MetaValue::F64(x) => format!(" ({x})"),
        MetaValue::Bool(b) => format!(" ({b})"),
        MetaValue::String(s) if s.len() <= 40 => format!(" ({s:?})"),
        _ => String::new(),
    };
    model_err(format!(
        "metadata key `{key}` has type {}{value}, expected {expected}",
        v.type_name()
    ))
}

// ------------------------------------------------------------------ parsing

/// A cursor over the header that knows its position and what it is reading, so a truncation
/// error can say where.
struct Reader<'a, B: Buf> {
    buf: &'a mut B,
    pos: u64,
    /// What is being read, for error messages.
    what: String,
    /// Metadata array elements read so far.
    elements: u64,
}

impl<B: Buf> Reader<'_, B> {
    fn need(&self, n: u64) -> Result<()> {
        let left = self.buf.remaining() as u64;
        if n > left {
            return Err(model_err(format!(
                "the file ends inside {} at byte {} (needs {n} bytes, {left} left)",
                self.what, self.pos
            )));
        }
        Ok(())
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        self.need(N as u64)?;
        let mut a = [0u8; N];
        self.buf.copy_to_slice(&mut a);
        self.pos += N as u64;
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn skip(&mut self, n: u64) -> Result<()> {
        self.need(n)?;
        self.buf.advance(n as usize); // n <= remaining, a usize
        self.pos += n;
        Ok(())
    }

    /// A GGUF string: u64 length + UTF-8 bytes.
    fn string(&mut self) -> Result<String> {
        let len = self.u64()?;
        let left = self.buf.remaining() as u64;
        if len > left {
            return Err(model_err(format!(
                "the file ends inside {} at byte {}: a string of {len} bytes, {left} left",
                self.what, self.pos
            )));
        }
        let mut bytes = vec![0u8; len as usize];
        self.buf.copy_to_slice(&mut bytes);
        self.pos += len;
        String::from_utf8(bytes)
            .map_err(|_| model_err(format!("{} holds a string that is not UTF-8", self.what)))
    }

    fn value(&mut self, t: u32, depth: usize) -> Result<MetaValue> {
        Ok(match t {
            T_U8 => MetaValue::U8(self.u8()?),
            T_I8 => MetaValue::I8(self.u8()? as i8),
            T_U16 => MetaValue::U16(self.u16()?),
            T_I16 => MetaValue::I16(self.u16()? as i16),
            T_U32 => MetaValue::U32(self.u32()?),
            T_I32 => MetaValue::I32(self.u32()? as i32),
            T_F32 => MetaValue::F32(f32::from_bits(self.u32()?)),
            T_BOOL => match self.u8()? {
                0 => MetaValue::Bool(false),
                1 => MetaValue::Bool(true),
                b => {
                    return Err(model_err(format!(
                        "{} is a bool of value {b} (not 0 or 1)",
                        self.what
                    )))
                }
            },
            T_STRING => MetaValue::String(self.string()?),
            T_ARRAY => {
                if depth >= MAX_ARRAY_DEPTH {
                    return Err(model_err(format!(
                        "{} nests arrays more than {MAX_ARRAY_DEPTH} deep",
                        self.what
                    )));
                }
                let elem = self.u32()?;
                let min = min_value_bytes(elem).ok_or_else(|| {
                    model_err(format!(
                        "{} is an array of unknown value type {elem}",
                        self.what
                    ))
                })?;
                let count = self.u64()?;
                let left = self.buf.remaining() as u64;
                if count.saturating_mul(min) > left {
                    return Err(model_err(format!(
                        "the file ends inside {} at byte {}: an array of {count} {} values needs at \
                         least {} bytes, {left} left",
                        self.what,
                        self.pos,
                        value_type_name(elem),
                        count.saturating_mul(min)
                    )));
                }
                self.elements = self.elements.saturating_add(count);
                if self.elements > MAX_METADATA_ELEMENTS {
                    return Err(model_err(format!(
                        "{} makes the metadata arrays hold more than {MAX_METADATA_ELEMENTS} \
                         elements in all",
                        self.what
                    )));
                }
                // count * min <= remaining: the capacity is bounded by the bytes that exist.
                let mut items = Vec::with_capacity(count as usize);
                for _ in 0..count {
                    items.push(self.value(elem, depth + 1)?);
                }
                MetaValue::Array(items)
            }
            T_U64 => MetaValue::U64(self.u64()?),
            T_I64 => MetaValue::I64(self.u64()? as i64),
            T_F64 => MetaValue::F64(f64::from_bits(self.u64()?)),
            other => {
                return Err(model_err(format!(
                    "{} has unknown value type {other}",
                    self.what
                )))
            }
        })
    }

    fn header(&mut self) -> Result<GgufHeader> {
        self.what = "the magic number".into();
        let magic = self.array::<4>()?;
        if magic != MAGIC {
            return Err(model_err(format!(
                "not a GGUF file (magic {:?}, expected \"GGUF\")",
                String::from_utf8_lossy(&magic)
            )));
        }
        self.what = "the GGUF version".into();
        let version = self.u32()?;
        match version {
            2 | 3 => {}
            1 => {
                return Err(model_err(
                    "GGUF version 1 is not supported (only versions 2 and 3)",
                ))
            }
            v if v.swap_bytes() == 2 || v.swap_bytes() == 3 => return Err(model_err(format!(
                "this GGUF file is big-endian (version {}), only little-endian files are supported",
                v.swap_bytes()
            ))),
            v => {
                return Err(model_err(format!(
                    "GGUF version {v} is not supported (only versions 2 and 3)"
                )))
            }
        }
        self.what = "the tensor count".into();
        let n_tensors = self.u64()?;
        self.what = "the metadata count".into();
        let n_kv = self.u64()?;
        // Each entry takes at least 8 (key length) + 4 (type) + 1 bytes; each tensor record
        // 8 (name length) + 4 (n_dims) + 8 (a dim) + 4 (type) + 8 (offset).
        let left = self.buf.remaining() as u64;
        if n_kv.saturating_mul(13) > left {
            return Err(model_err(format!(
                "the header claims {n_kv} metadata entries, more than the {left} bytes left can hold"
            )));
        }
        if n_tensors
            .saturating_mul(32)
            .saturating_add(n_kv.saturating_mul(13))
            > left
        {
            return Err(model_err(format!(
                "the header claims {n_tensors} tensors and {n_kv} metadata entries, more than the \
                 {left} bytes left can hold"
            )));
        }

        let mut metadata = BTreeMap::new();
        for i in 0..n_kv {
            self.what = format!("the key of metadata entry {i}");
            let key = self.string()?;
            self.what = format!("the value of metadata key `{key}`");
            let t = self.u32()?;
            let value = self.value(t, 0)?;
            if metadata.contains_key(&key) {
                return Err(model_err(format!("metadata key `{key}` appears twice")));
            }
            metadata.insert(key, value);
        }

        let alignment = match metadata.get("general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some(v) => match as_int::<u32>(v) {
                Some(a) if a > 0 && a.is_power_of_two() => a as usize,
                _ => {
                    return Err(model_err(format!(
                        "metadata key `general.alignment` is {}, expected a power of two",
                        match v.as_integer() {
                            Some(i) => i.to_string(),
                            None => v.type_name(),
                        }
                    )))
                }
            },
        };

        let mut tensors = Vec::with_capacity(n_tensors as usize); // bounded by the check above
        let mut names = HashMap::new();
        for i in 0..n_tensors {
            self.what = format!("the record of tensor {i}");
            let name = self.string()?;
            self.what = format!("the record of tensor `{name}`");
            let n_dims = self.u32()?;
            if n_dims == 0 || n_dims as usize > MAX_DIMS {
                return Err(model_err(format!(
                    "tensor `{name}` has {n_dims} dimensions (1 to {MAX_DIMS} are allowed)"
                )));
            }
            let mut dims = Vec::with_capacity(n_dims as usize);
            for _ in 0..n_dims {
                let d = self.u64()?;
                if d == 0 {
                    return Err(model_err(format!(
                        "tensor `{name}` has a dimension of size 0"
                    )));
                }
                dims.push(d);
            }
            let type_id = self.u32()?;
            let offset = self.u64()?;
            let ggml_type = GgmlType::from_id(type_id, &name)?;
            let too_big = || model_err(format!("tensor `{name}` has absurd dimensions {dims:?}"));
            let mut n_elements: u64 = 1;
            for &d in &dims {
                n_elements = n_elements.checked_mul(d).ok_or_else(too_big)?;
            }
            let dims_usize = dims
                .iter()
                .map(|&d| usize::try_from(d))
                .collect::<std::result::Result<Vec<usize>, _>>()
                .map_err(|_| too_big())?;
            let n_bytes = usize::try_from(n_elements)
                .ok()
                .and_then(|_| ggml_type.row_bytes(dims_usize[0]))
                .and_then(|row| row.checked_mul(dims_usize[1..].iter().product()))
                .ok_or_else(|| {
                    if dims_usize[0] % ggml_type.block_size() != 0 {
                        model_err(format!(
                            "tensor `{name}` has rows of {} elements, not a multiple of the {} \
                             block size {}",
                            dims_usize[0],
                            ggml_type.name(),
                            ggml_type.block_size()
                        ))
                    } else {
                        too_big()
                    }
                })?;
            if offset % alignment as u64 != 0 {
                return Err(model_err(format!(
                    "tensor `{name}` starts at offset {offset}, not a multiple of the alignment {alignment}"
                )));
            }
            if offset.checked_add(n_bytes as u64).is_none() {
                return Err(model_err(format!(
                    "tensor `{name}` has an absurd offset {offset}"
                )));
            }
            if let Some(j) = names.insert(name.clone(), i) {
                return Err(model_err(format!(
                    "tensors {j} and {i} are both named `{name}`"
                )));
            }
            tensors.push(TensorInfo {
                name,
                dims: dims_usize,
                ggml_type,
                offset,
            });
        }

        let mut header = GgufHeader {
            version,
            metadata,
            tensors,
            alignment,
            data_offset: 0,
        };
        // No two tensors may share bytes.
        let order = header.file_order();
        for pair in order.windows(2) {
            let (a, b) = (&header.tensors[pair[0]], &header.tensors[pair[1]]);
            let a_end = a.offset + a.n_bytes() as u64;
            if b.offset < a_end {
                return Err(model_err(format!(
                    "tensors `{}` (data bytes {}..{a_end}) and `{}` (from byte {}) overlap",
                    a.name, a.offset, b.name, b.offset
                )));
            }
        }

        // The data section starts at the next multiple of the alignment. A file without
        // tensors may end right after its metadata.
        let pad = (alignment as u64 - self.pos % alignment as u64) % alignment as u64;
        if !header.tensors.is_empty() || self.buf.remaining() as u64 >= pad {
            self.what = "the padding before the data section".into();
            self.skip(pad)?;
        }
        header.data_offset = self.pos;
        Ok(header)
    }
}

// ------------------------------------------------------------------ streaming reader

/// Streams a GGUF file: the header first, then each tensor's bytes in file (offset) order.
pub struct GgufReader<B: Buf> {
    buf: B,
    header: GgufHeader,
    /// Indices into `header.tensors` in offset order.
    order: Vec<usize>,
    next: usize,
    /// Bytes of the data section consumed so far.
    data_pos: u64,
    failed: bool,
}

impl<B: Buf> GgufReader<B> {
    /// Reads and validates the whole header, and checks that the bytes left hold every tensor.
    pub fn new(mut buf: B) -> Result<Self> {
        let header = GgufHeader::read(&mut buf)?;
        let order = header.file_order();
        if let Some(&last) = order.last() {
            let t = &header.tensors[last];
            let end = t.offset + t.n_bytes() as u64;
            let left = buf.remaining() as u64;
            if end > left {
                // Name the first tensor that does not fit.
                let t = order
                    .iter()
                    .map(|&i| &header.tensors[i])
                    .find(|t| t.offset + t.n_bytes() as u64 > left)
                    .unwrap_or(t);
                return Err(truncated_tensor(t, left.saturating_sub(t.offset)));
            }
        }
        Ok(Self {
            buf,
            header,
            order,
            next: 0,
            data_pos: 0,
            failed: false,
        })
    }

    pub fn header(&self) -> &GgufHeader {
        &self.header
    }

    /// Takes the header (when the tensors are not needed any more).
    pub fn into_header(self) -> GgufHeader {
        self.header
    }

    /// Tensors not handed out yet.
    pub fn remaining_tensors(&self) -> usize {
        self.order.len() - self.next
    }

    /// The next tensor in file order and its raw bytes (`n_bytes()` of them, in the type's
    /// block layout), or `None` after the last. Skips the alignment padding between tensors.
    pub fn next_tensor(&mut self) -> Result<Option<(TensorInfo, Vec<u8>)>> {
        if self.failed {
            return Err(model_err("the GGUF reader stopped at an earlier error"));
        }
        let Some(&index) = self.order.get(self.next) else {
            return Ok(None);
        };
        let t = &self.header.tensors[index];
        let result = (|| {
            if t.offset < self.data_pos {
                return Err(model_err(format!(
                    "tensor `{}` starts at data byte {}, inside the previous tensor (which ends at {})",
                    t.name, t.offset, self.data_pos
                )));
            }
            let pad = t.offset - self.data_pos;
            let n = t.n_bytes();
            let left = self.buf.remaining() as u64;
            if pad.saturating_add(n as u64) > left {
                return Err(truncated_tensor(t, left.saturating_sub(pad)));
            }
            self.buf.advance(pad as usize);
            let mut bytes = vec![0u8; n];
            self.buf.copy_to_slice(&mut bytes);
            Ok(bytes)
        })();
        match result {
            Ok(bytes) => {
                self.data_pos = t.offset + bytes.len() as u64;
                self.next += 1;
                Ok(Some((t.clone(), bytes)))
            }
            Err(e) => {
                self.failed = true;
                Err(e)
            }
        }
    }
}

/// `available`: bytes of the file from the tensor's start on.
fn truncated_tensor(t: &TensorInfo, available: u64) -> Error {
    model_err(format!(
        "the file ends inside tensor `{}` (needs {} bytes, {} left)",
        t.name,
        t.n_bytes(),
        available.min(t.n_bytes() as u64)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_tiny_inputs_do_not_panic() {
        for bytes in [
            &b""[..],
            b"GG",
            b"GGUF",
            b"GGUF\x03\0\0\0",
            b"XXXX\x03\0\0\0",
        ] {
            let e = GgufReader::new(bytes).err().expect("an error");
            assert!(matches!(e, Error::Model(_)));
        }
    }
}

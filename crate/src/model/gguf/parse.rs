//! Parsing the header: [`GgufHeader::read`] and the cursor it reads with, which checks every
//! length against the bytes left and says where a truncation is.

use std::collections::{BTreeMap, HashMap};

use prost::bytes::Buf;

use super::value::{
    as_int, min_value_bytes, value_type_name, MetaValue, T_ARRAY, T_BOOL, T_F32, T_F64, T_I16,
    T_I32, T_I64, T_I8, T_STRING, T_U16, T_U32, T_U64, T_U8,
};
use super::{model_err, GgmlType, GgufHeader, TensorInfo, DEFAULT_ALIGNMENT, MAGIC};
use crate::error::Result;

/// ggml's GGML_MAX_DIMS.
const MAX_DIMS: usize = 4;
/// Arrays of arrays nest at most this deep (bounds the recursion on hostile input).
const MAX_ARRAY_DEPTH: usize = 8;
/// All metadata arrays together hold at most this many elements (a `MetaValue` takes 32 bytes
/// in memory however small it is in the file). Real files: ~150k for a 49k vocabulary.
const MAX_METADATA_ELEMENTS: u64 = 1 << 22;

impl GgufHeader {
    /// Reads the header from `buf` and consumes it, up to the start of the data section
    /// (the padding included). Checks the tensor records against each other (alignment,
    /// overlaps) but not against the length of the data: [`GgufReader::new`](super::GgufReader::new) does that.
    pub fn read(buf: &mut impl Buf) -> Result<Self> {
        let mut r = Reader {
            buf,
            pos: 0,
            what: String::new(),
            elements: 0,
        };
        r.header()
    }
}

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

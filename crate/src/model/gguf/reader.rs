//! The streaming tensor reader: [`GgufReader`] hands out each tensor ([`TensorInfo`]) and its bytes
//! in file order, at most one tensor copied at a time.

use prost::bytes::Buf;

use super::{model_err, GgmlType, GgufHeader};
use crate::error::{Error, Result};

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
pub(super) fn truncated_tensor(t: &TensorInfo, available: u64) -> Error {
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

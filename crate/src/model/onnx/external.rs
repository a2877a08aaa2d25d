//! External data (`model.onnx_data` beside the graph): the files a graph names, a reader over
//! them, and their bytes moved into the graph.

use prost::bytes::Buf;
use tract_onnx::pb;

use super::decode;
use super::proto::element_bytes;
use crate::error::{Error, Result};

// ONNX TensorProto.DataLocation
const ONNX_EXTERNAL: i32 = 1;

/// Reads `length` bytes (to the end of the file when `None`) at `offset` of the external data
/// file `location`.
pub type ReadExternal<'a> = dyn FnMut(&str, u64, Option<u64>) -> Result<Vec<u8>> + 'a;

pub(super) fn missing_data_file(location: &str) -> Error {
    Error::Model(format!(
        "the weights are stored in `{location}`, which was not given: give it with the .onnx file"
    ))
}

/// An external data file's bytes, wherever they are: in memory here, a JS array in wasm (read
/// tensor by tensor, never copied whole).
pub trait DataFile {
    fn len(&self) -> u64;
    /// Bytes `start..end`, which are within `len`.
    fn bytes(&self, start: u64, end: u64) -> Vec<u8>;
}

impl DataFile for &[u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }
    fn bytes(&self, start: u64, end: u64) -> Vec<u8> {
        self[start as usize..end as usize].to_vec()
    }
}

/// The external data reader over `files`, named as the graph's `location`s name them.
pub fn data_files<N: AsRef<str>, F: DataFile>(files: &[(N, F)]) -> impl FnMut(&str, u64, Option<u64>) -> Result<Vec<u8>> + '_ {
    move |location, offset, length| {
        let (_, file) = files.iter().find(|(name, _)| name.as_ref() == location).ok_or_else(|| missing_data_file(location))?;
        let end = match length {
            Some(n) => offset.checked_add(n),
            None => Some(file.len()),
        };
        match end {
            Some(end) if offset <= end && end <= file.len() => Ok(file.bytes(offset, end)),
            _ => Err(Error::Model(format!(
                "`{location}` has {} bytes, but the graph reads {} bytes at offset {offset} of it (a data file of another export?)",
                file.len(),
                length.map_or("the rest".to_string(), |n| n.to_string())
            ))),
        }
    }
}

/// The external data files `onnx` names, in the order they are first read (none: one protobuf).
pub fn external_data_files(onnx: impl Buf) -> Result<Vec<String>> {
    let proto = decode(onnx)?;
    let mut files: Vec<String> = Vec::new();
    for t in proto.graph.iter().flat_map(|g| &g.initializer).filter(|t| is_external(t)) {
        let location = external_field(t, "location")?;
        if !files.contains(&location) {
            files.push(location);
        }
    }
    Ok(files)
}

fn is_external(t: &pb::TensorProto) -> bool {
    t.data_location == Some(ONNX_EXTERNAL) || !t.external_data.is_empty()
}

fn external_field(t: &pb::TensorProto, key: &str) -> Result<String> {
    t.external_data
        .iter()
        .find(|e| e.key == key)
        .map(|e| e.value.clone())
        .ok_or_else(|| Error::Model(format!("tensor `{}` is external data without a `{key}`", t.name)))
}

/// Moves every external initializer's bytes into the graph, checked against its dims, so that
/// the rest of the loader (and tract) sees one protobuf.
pub(super) fn inline_external_data(graph: &mut pb::GraphProto, read: &mut ReadExternal<'_>) -> Result<()> {
    for t in graph.initializer.iter_mut().filter(|t| is_external(t)) {
        let location = external_field(t, "location")?;
        let number = |key: &str| -> Result<Option<u64>> {
            match t.external_data.iter().find(|e| e.key == key) {
                None => Ok(None),
                Some(e) => e.value.parse().map(Some).map_err(|_| {
                    Error::Model(format!("tensor `{}` has external data {key} `{}`, not a number", t.name, e.value))
                }),
            }
        };
        let (offset, length) = (number("offset")?.unwrap_or(0), number("length")?);
        let bytes = read(&location, offset, length)?;
        let expected = element_bytes(t.data_type).and_then(|size| {
            t.dims.iter().try_fold(size, |n, &d| u64::try_from(d).ok().and_then(|d| n.checked_mul(d)))
        });
        if let Some(expected) = expected {
            if bytes.len() as u64 != expected {
                return Err(Error::Model(format!(
                    "tensor `{}` needs {expected} bytes but `{location}` holds {} for it (a data file of another export?)",
                    t.name,
                    bytes.len()
                )));
            }
        }
        t.raw_data = bytes;
        t.external_data.clear();
        t.data_location = None;
    }
    Ok(())
}

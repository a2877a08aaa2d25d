//! The JS byte readers: a `Uint8Array` read in chunks as a `Buf` (never copied whole into wasm
//! memory), and `Uint8Array`s as an ONNX graph's external data files.

use super::convert::js_error;
use crate::model::onnx::DataFile;
use crate::Error;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// A JS byte array as an external data file, read a tensor at a time.
pub(super) struct JsDataFile(js_sys::Uint8Array);

impl DataFile for JsDataFile {
    fn len(&self) -> u64 {
        self.0.length() as u64
    }
    fn bytes(&self, start: u64, end: u64) -> Vec<u8> {
        self.0.subarray(start as u32, end as u32).to_vec()
    }
}

/// `options.externalData` (an object of name → Uint8Array) as data files.
pub(super) fn js_data_files(options: &JsValue) -> Result<Vec<(String, JsDataFile)>, JsValue> {
    let invalid = |why: &str| js_error(Error::InvalidConfig(why.to_string()));
    let files = js_sys::Reflect::get(options, &"externalData".into()).unwrap_or(JsValue::UNDEFINED);
    if files.is_undefined() || files.is_null() {
        return Ok(Vec::new());
    }
    let entries = js_sys::Object::entries(files.dyn_ref::<js_sys::Object>().ok_or_else(|| invalid("externalData must be an object of file name → Uint8Array"))?);
    entries
        .iter()
        .map(|entry| {
            let entry: js_sys::Array = entry.unchecked_into();
            let name = entry.get(0).as_string().unwrap_or_default();
            let bytes = entry.get(1).dyn_into::<js_sys::Uint8Array>().map_err(|_| invalid(&format!("externalData[\"{name}\"] must be a Uint8Array")))?;
            Ok((name, JsDataFile(bytes)))
        })
        .collect()
}

/// A JS `Uint8Array` read as a [`Buf`], one chunk at a time.
pub(super) struct JsChunks {
    array: js_sys::Uint8Array,
    chunk: Vec<u8>,
    /// Where `chunk` starts in `array`, and how much of it is consumed.
    chunk_start: usize,
    consumed: usize,
}

impl JsChunks {
    const CHUNK: usize = 1 << 20;

    pub(super) fn new(array: js_sys::Uint8Array) -> Self {
        let mut chunks = JsChunks { array, chunk: Vec::new(), chunk_start: 0, consumed: 0 };
        chunks.load_next();
        chunks
    }

    fn load_next(&mut self) {
        self.chunk_start += self.chunk.len();
        self.consumed = 0;
        let end = (self.chunk_start + Self::CHUNK).min(self.array.length() as usize);
        self.chunk.resize(end - self.chunk_start, 0);
        self.array.subarray(self.chunk_start as u32, end as u32).copy_to(&mut self.chunk);
    }
}

impl prost::bytes::Buf for JsChunks {
    fn remaining(&self) -> usize {
        self.array.length() as usize - self.chunk_start - self.consumed
    }

    fn chunk(&self) -> &[u8] {
        &self.chunk[self.consumed..]
    }

    fn advance(&mut self, count: usize) {
        // prost never asks for more than `remaining`; clamp rather than panic if it did.
        let mut count = count.min(self.remaining());
        while count > 0 {
            let step = count.min(self.chunk.len() - self.consumed);
            self.consumed += step;
            count -= step;
            if self.consumed == self.chunk.len() && self.remaining() > 0 {
                self.load_next();
            }
        }
    }
}

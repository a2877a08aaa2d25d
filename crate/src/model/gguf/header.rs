//! The parsed header ([`GgufHeader`]) and its typed metadata getters, each error naming the key.

use std::collections::BTreeMap;

use super::value::{as_int, MetaValue};
use super::{model_err, TensorInfo};
use crate::error::{Error, Result};

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

impl GgufHeader {
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
    /// [`GgufReader::next_tensor`](super::GgufReader::next_tensor) hands them out.
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

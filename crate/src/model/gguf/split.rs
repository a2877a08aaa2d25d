//! A GGUF split into parts, as llama.cpp's `gguf-split` (and gguf-py's writer) write it, read as
//! one file. Each part is a GGUF of its own (`name-00001-of-00003.gguf`, …): the first holds the
//! model's metadata; every part holds `split.no` (from 0), `split.count` and
//! `split.tensors.count`, and the infos and data of its own tensors.
//!
//! [`GgufParts::join`] reads each part's header, writes one header for the whole model (the first
//! part's metadata without the `split.*` keys; every part's tensor infos, their offsets moved
//! past the data of the parts before), and hands out that header's bytes and then each part's
//! data section: a [`Buf`] that [`GgufReader`](super::GgufReader) reads as if it were one file,
//! so the loader needs nothing of splits. A single unsplit file passes through the same way.

use std::collections::VecDeque;

use prost::bytes::Buf;

use super::reader::truncated_tensor;
use super::value::{T_ARRAY, T_U8};
use super::{model_err, GgufHeader, MetaValue, TensorInfo, MAGIC};
use crate::error::{Error, Result};

const SPLIT_NO: &str = "split.no";
const SPLIT_COUNT: &str = "split.count";
const SPLIT_TENSORS: &str = "split.tensors.count";

/// The parts of one model, joined: reads as one GGUF file.
pub struct GgufParts<B: Buf> {
    header: GgufHeader,
    segments: VecDeque<Segment<B>>,
}

enum Segment<B> {
    /// The joined header, or zeros that pad a part's data to the alignment.
    Bytes(Vec<u8>, usize),
    /// A part's data section (its header consumed).
    Part(B),
}

/// One part, its header read.
struct Part<B> {
    header: GgufHeader,
    data: B,
    /// `split.no` (0 for an unsplit file).
    no: usize,
}

impl<B: Buf> GgufParts<B> {
    /// Joins `parts`, given in any order: every part of one split model, or one unsplit file.
    /// Refuses a missing, repeated or foreign part with a message that names it (1-based, as
    /// the file names count).
    pub fn join(parts: Vec<B>) -> Result<Self> {
        let given = parts.len();
        let mut parts = parts
            .into_iter()
            .enumerate()
            .map(|(i, mut data)| {
                let header = GgufHeader::read(&mut data).map_err(|e| match e {
                    Error::Model(why) if given > 1 => {
                        model_err(format!("file {} of {given}: {why}", i + 1))
                    }
                    other => other,
                })?;
                Ok(Part {
                    no: 0,
                    header,
                    data,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let count = split_count(&parts)?;
        if count != given {
            return Err(model_err(if given == 1 {
                format!("this is part {} of a GGUF split into {count}: give all {count} parts (name-00001-of-{count:05}.gguf and the rest)", parts[0].header.opt_usize(SPLIT_NO)?.unwrap_or(0) + 1)
            } else {
                format!("{given} files for a GGUF split into {count} parts: give all {count}, each once")
            }));
        }
        if count > 1 {
            for part in &mut parts {
                part.no = part.header.get_usize(SPLIT_NO)?;
            }
            check_numbers(&parts)?;
            parts.sort_by_key(|p| p.no);
            check_tensor_count(&parts)?;
        }
        Self::from_parts(parts)
    }

    /// The joined header: the first part's metadata and every part's tensors.
    pub fn header(&self) -> &GgufHeader {
        &self.header
    }

    fn from_parts(parts: Vec<Part<B>>) -> Result<Self> {
        let alignment = parts[0].header.alignment;
        let mut metadata = parts[0].header.metadata.clone();
        metadata.retain(|key, _| !key.starts_with("split."));
        let mut tensors: Vec<TensorInfo> = Vec::new();
        let mut segments = VecDeque::new();
        let mut base = 0u64;
        let count = parts.len();
        for (i, part) in parts.into_iter().enumerate() {
            let number = part.no + 1;
            let len = part.data.remaining() as u64;
            // Each part's tensors must lie in its own data: the zeros that pad it to the next
            // part's start must never stand in for a part's missing end.
            let short = part
                .header
                .tensors
                .iter()
                .filter(|t| t.offset + t.n_bytes() as u64 > len)
                .min_by_key(|t| t.offset);
            if let Some(t) = short {
                let error = truncated_tensor(t, len.saturating_sub(t.offset));
                return Err(match error {
                    Error::Model(why) if count > 1 => model_err(format!("part {number}: {why}")),
                    other => other,
                });
            }
            if part.header.alignment != alignment {
                return Err(model_err(format!(
                    "part {number} aligns its tensors to {} bytes, part 1 to {alignment}: the parts are not of one model",
                    part.header.alignment
                )));
            }
            for t in &part.header.tensors {
                if tensors.iter().any(|other| other.name == t.name) {
                    return Err(model_err(format!("tensor `{}` is in two parts (again in part {number}): the parts are not of one model", t.name)));
                }
                let offset = t
                    .offset
                    .checked_add(base)
                    .ok_or_else(|| model_err("the parts together are too large"))?;
                tensors.push(TensorInfo {
                    offset,
                    ..t.clone()
                });
            }
            let end = base + len;
            let padded = end.next_multiple_of(alignment as u64);
            // No empty segment: the front one always has bytes for `chunk`.
            if len > 0 {
                segments.push_back(Segment::Part(part.data));
            }
            if padded > end && i + 1 < count {
                segments.push_back(Segment::Bytes(vec![0; (padded - end) as usize], 0));
            }
            base = padded;
        }
        let bytes = write_header(&metadata, &tensors, alignment);
        // Read back: the joined header is checked as any file's is (overlaps, alignment).
        let header = GgufHeader::read(&mut bytes.as_slice())?;
        segments.push_front(Segment::Bytes(bytes, 0));
        Ok(GgufParts { header, segments })
    }
}

/// `split.count`, the same in every part; 1 for one unsplit file.
fn split_count<B>(parts: &[Part<B>]) -> Result<usize> {
    let counts = parts
        .iter()
        .map(|p| p.header.opt_usize(SPLIT_COUNT))
        .collect::<Result<Vec<_>>>()?;
    if let Some(i) = counts
        .iter()
        .position(Option::is_none)
        .filter(|_| parts.len() > 1)
    {
        return Err(model_err(if counts.iter().all(Option::is_none) {
            format!("{} .gguf files, none a part of a split model: give one file, or every part of one split model", parts.len())
        } else {
            format!(
                "file {} is not a part of a split GGUF (it has no `{SPLIT_COUNT}`)",
                i + 1
            )
        }));
    }
    let first = counts[0].unwrap_or(1);
    if first == 0 {
        return Err(model_err(format!("metadata key `{SPLIT_COUNT}` is 0")));
    }
    if let Some(i) = counts
        .iter()
        .position(|&n| n != Some(first))
        .filter(|_| parts.len() > 1)
    {
        return Err(model_err(format!(
            "file 1 is a part of a GGUF split into {first}, file {} of one split into {}: the parts are not of one model",
            i + 1,
            counts[i].unwrap_or(1)
        )));
    }
    Ok(first)
}

/// Each `split.no` below the count, and none twice.
fn check_numbers<B>(parts: &[Part<B>]) -> Result<()> {
    let count = parts.len();
    let mut seen = vec![false; count];
    for part in parts {
        let number = part.no + 1;
        if part.no >= count {
            return Err(model_err(format!(
                "a file says it is part {number} of {count}"
            )));
        }
        if std::mem::replace(&mut seen[part.no], true) {
            return Err(model_err(format!(
                "part {number} of {count} is given twice"
            )));
        }
    }
    Ok(())
}

/// The parts hold the tensors the first says the model has.
fn check_tensor_count<B>(parts: &[Part<B>]) -> Result<()> {
    let expected = parts[0].header.get_usize(SPLIT_TENSORS)?;
    for part in parts {
        let says = part.header.opt_usize(SPLIT_TENSORS)?;
        if says.is_some_and(|n| n != expected) {
            return Err(model_err(format!(
                "part {} says the model has {} tensors, part 1 {expected}: the parts are not of one model",
                part.no + 1,
                says.unwrap_or_default()
            )));
        }
    }
    let held: usize = parts.iter().map(|p| p.header.tensors.len()).sum();
    if held != expected {
        return Err(model_err(format!(
            "the parts hold {held} tensors, but the model has {expected} (`{SPLIT_TENSORS}`)"
        )));
    }
    Ok(())
}

/// A GGUF v3 header: the metadata, the tensor infos, and the padding to the data section.
fn write_header(
    metadata: &std::collections::BTreeMap<String, MetaValue>,
    tensors: &[TensorInfo],
    alignment: usize,
) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    out.extend_from_slice(&(metadata.len() as u64).to_le_bytes());
    for (key, value) in metadata {
        write_string(&mut out, key);
        out.extend_from_slice(&value.type_id().to_le_bytes());
        write_value(&mut out, value);
    }
    for t in tensors {
        write_string(&mut out, &t.name);
        out.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
        for &d in &t.dims {
            out.extend_from_slice(&(d as u64).to_le_bytes());
        }
        out.extend_from_slice(&t.ggml_type.id().to_le_bytes());
        out.extend_from_slice(&t.offset.to_le_bytes());
    }
    out.resize(out.len().next_multiple_of(alignment), 0);
    out
}

fn write_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn write_value(out: &mut Vec<u8>, value: &MetaValue) {
    match value {
        MetaValue::U8(v) => out.push(*v),
        MetaValue::I8(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetaValue::U16(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetaValue::I16(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetaValue::U32(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetaValue::I32(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetaValue::F32(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetaValue::Bool(v) => out.push(u8::from(*v)),
        MetaValue::String(s) => write_string(out, s),
        MetaValue::Array(items) => {
            // An empty array's element type is not kept by the reader; any type reads back empty.
            let element = items.first().map_or(T_U8, MetaValue::type_id);
            debug_assert!(element != T_ARRAY || items.iter().all(|i| i.type_id() == T_ARRAY));
            out.extend_from_slice(&element.to_le_bytes());
            out.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for item in items {
                write_value(out, item);
            }
        }
        MetaValue::U64(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetaValue::I64(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetaValue::F64(v) => out.extend_from_slice(&v.to_le_bytes()),
    }
}

impl<B: Buf> Buf for GgufParts<B> {
    fn remaining(&self) -> usize {
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Bytes(bytes, at) => bytes.len() - at,
                Segment::Part(part) => part.remaining(),
            })
            .sum()
    }

    fn chunk(&self) -> &[u8] {
        // Segments are dropped once empty, so the front one has bytes (or there are none).
        match self.segments.front() {
            Some(Segment::Bytes(bytes, at)) => &bytes[*at..],
            Some(Segment::Part(part)) => part.chunk(),
            None => &[],
        }
    }

    fn advance(&mut self, mut count: usize) {
        while count > 0 {
            let Some(front) = self.segments.front_mut() else {
                return;
            };
            let left = match front {
                Segment::Bytes(bytes, at) => {
                    let step = count.min(bytes.len() - *at);
                    *at += step;
                    count -= step;
                    bytes.len() - *at
                }
                Segment::Part(part) => {
                    let step = count.min(part.remaining());
                    part.advance(step);
                    count -= step;
                    part.remaining()
                }
            };
            if left == 0 {
                self.segments.pop_front();
            }
        }
    }
}

//! The GGUF reader (`model::gguf`) and the tokenizer built from a GGUF's metadata, on the
//! committed tiny GGUF (`models/tiny/model.gguf`, checked against `models/tiny/
//! gguf_reference.json` from gguf-py), on SmolLM2-135M-Instruct's own GGUF
//! (`models/smollm2-135m/model.gguf`, placed by `models/build.sh`; skipped with a message when
//! absent, except in the full test run and CI), and on broken files: every failure must be a clear
//! `Error::Model`, never a panic.
use crate::common;
use std::path::PathBuf;

use decoding_playground::model::arch::params::{ModelParams, RopeParams};
use decoding_playground::model::arch::Architecture;
use decoding_playground::model::arch::llama_permutation;
use decoding_playground::model::gguf::{GgmlType, GgufHeader, GgufReader, MetaValue, TensorInfo};
use decoding_playground::tokenizer::TextTokenizer;
use decoding_playground::Error;
use prost::bytes::Buf;
use serde_json::Value;

const TINY_GGUF: &[u8] = include_bytes!("../../../models/tiny/model.gguf");
const TINY_REFERENCE: &str = include_str!("../../../models/tiny/gguf_reference.json");
const TINY_TOKENIZER: &[u8] = include_bytes!("../../../models/tiny/tokenizer.json");
const TINY_CONFIG: &str = include_str!("../../../models/tiny/config.json");
const SMOLLM2_REFERENCE: &str = include_str!("../../../models/fixtures/smollm2_reference.json");

/// The metadata keys of SmolLM2-135M-Instruct's GGUF, in file order (the tiny GGUF copies them).
const SMOLLM2_KEYS: [&str; 33] = [
    "general.architecture",
    "general.type",
    "general.name",
    "general.organization",
    "general.finetune",
    "general.basename",
    "general.size_label",
    "general.license",
    "general.languages",
    "llama.block_count",
    "llama.context_length",
    "llama.embedding_length",
    "llama.feed_forward_length",
    "llama.attention.head_count",
    "llama.attention.head_count_kv",
    "llama.rope.freq_base",
    "llama.attention.layer_norm_rms_epsilon",
    "general.file_type",
    "llama.vocab_size",
    "llama.rope.dimension_count",
    "tokenizer.ggml.add_space_prefix",
    "tokenizer.ggml.add_bos_token",
    "tokenizer.ggml.model",
    "tokenizer.ggml.pre",
    "tokenizer.ggml.tokens",
    "tokenizer.ggml.token_type",
    "tokenizer.ggml.merges",
    "tokenizer.ggml.bos_token_id",
    "tokenizer.ggml.eos_token_id",
    "tokenizer.ggml.unknown_token_id",
    "tokenizer.ggml.padding_token_id",
    "tokenizer.chat_template",
    "general.quantization_version",
];

fn models_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models")
}

// ------------------------------------------------------------------ helpers: sha256, dequant

/// FIPS 180-4 SHA-256 (the crate has no sha2 dependency; checked on the standard vectors).
fn sha256(data: &[u8]) -> String {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut tail = data[data.len() - data.len() % 64..].to_vec();
    tail.push(0x80);
    while tail.len() % 64 != 56 {
        tail.push(0);
    }
    tail.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
    let full = &data[..data.len() - data.len() % 64];
    for block in full.chunks_exact(64).chain(tail.chunks_exact(64)) {
        let mut w = [0u32; 64];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes(word.try_into().unwrap());
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *x = x.wrapping_add(y);
        }
    }
    h.iter().map(|x| format!("{x:08x}")).collect()
}

#[test]
fn sha256_matches_the_standard_vectors() {
    assert_eq!(
        sha256(b""),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        sha256(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(
        sha256(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
    );
    assert_eq!(
        sha256(&[b'a'; 1000]),
        "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3"
    );
}

/// IEEE half -> f32 (exact).
fn f16_to_f32(bits: u16) -> f32 {
    let sign = ((bits >> 15) as u32) << 31;
    let exp = ((bits >> 10) & 0x1f) as u32;
    let man = (bits & 0x3ff) as u32;
    let out = match (exp, man) {
        (0, 0) => sign,
        (0, _) => {
            // subnormal: man * 2^-24
            let v = man as f32 * (1.0 / 16_777_216.0);
            return if sign != 0 { -v } else { v };
        }
        (0x1f, _) => sign | 0x7f80_0000 | (man << 13),
        _ => sign | ((exp + 127 - 15) << 23) | (man << 13),
    };
    f32::from_bits(out)
}

fn f16_at(b: &[u8], i: usize) -> f32 {
    f16_to_f32(u16::from_le_bytes([b[i], b[i + 1]]))
}

/// ggml's reference dequantisation (as gguf-py's `gguf.quants.dequantize`), written out here so
/// the test checks the reader's bytes without depending on the runtime's quant kernels.
fn dequantize(t: GgmlType, bytes: &[u8]) -> Vec<f32> {
    match t {
        GgmlType::F32 => bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect(),
        GgmlType::F16 => bytes
            .chunks_exact(2)
            .map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
            .collect(),
        GgmlType::Q8_0 => bytes
            .chunks_exact(34)
            .flat_map(|b| {
                let d = f16_at(b, 0);
                (0..32).map(move |j| d * (b[2 + j] as i8) as f32)
            })
            .collect(),
        GgmlType::Q4_0 => bytes
            .chunks_exact(18)
            .flat_map(|b| {
                let d = f16_at(b, 0);
                (0..32).map(move |j| {
                    let q = if j < 16 {
                        b[2 + j] & 0xf
                    } else {
                        b[2 + j - 16] >> 4
                    };
                    d * (q as i32 - 8) as f32
                })
            })
            .collect(),
        GgmlType::Q4_1 => bytes
            .chunks_exact(20)
            .flat_map(|b| {
                let (d, m) = (f16_at(b, 0), f16_at(b, 2));
                (0..32).map(move |j| {
                    let q = if j < 16 {
                        b[4 + j] & 0xf
                    } else {
                        b[4 + j - 16] >> 4
                    };
                    d * q as f32 + m
                })
            })
            .collect(),
        // The other block types: tests/native/gguf_blocks.rs, against gguf-py.
        _ => panic!("no reference dequantisation here for {t}"),
    }
}

/// `t` if it is held as blocks.
fn block_format(t: GgmlType) -> Option<GgmlType> {
    t.scheme().map(|_| t)
}

fn f32_le_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

// ------------------------------------------------------------------ helpers: writing GGUFs

/// A GGUF writer for the tests (little-endian, any version number), tensors packed at the
/// alignment in the given order.
struct Writer {
    version: u32,
    alignment: usize,
    kvs: Vec<(String, MetaValue)>,
    tensors: Vec<(String, Vec<usize>, u32, Vec<u8>)>,
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

fn type_id(v: &MetaValue) -> u32 {
    match v {
        MetaValue::U8(_) => 0,
        MetaValue::I8(_) => 1,
        MetaValue::U16(_) => 2,
        MetaValue::I16(_) => 3,
        MetaValue::U32(_) => 4,
        MetaValue::I32(_) => 5,
        MetaValue::F32(_) => 6,
        MetaValue::Bool(_) => 7,
        MetaValue::String(_) => 8,
        MetaValue::Array(_) => 9,
        MetaValue::U64(_) => 10,
        MetaValue::I64(_) => 11,
        MetaValue::F64(_) => 12,
    }
}

fn put_value(out: &mut Vec<u8>, v: &MetaValue) {
    match v {
        MetaValue::U8(x) => out.push(*x),
        MetaValue::I8(x) => out.push(*x as u8),
        MetaValue::U16(x) => out.extend(x.to_le_bytes()),
        MetaValue::I16(x) => out.extend(x.to_le_bytes()),
        MetaValue::U32(x) => out.extend(x.to_le_bytes()),
        MetaValue::I32(x) => out.extend(x.to_le_bytes()),
        MetaValue::F32(x) => out.extend(x.to_le_bytes()),
        MetaValue::Bool(x) => out.push(*x as u8),
        MetaValue::String(s) => put_str(out, s),
        MetaValue::Array(items) => {
            // An empty array is written as an array of u8.
            out.extend(items.first().map(type_id).unwrap_or(0).to_le_bytes());
            out.extend((items.len() as u64).to_le_bytes());
            for item in items {
                put_value(out, item);
            }
        }
        MetaValue::U64(x) => out.extend(x.to_le_bytes()),
        MetaValue::I64(x) => out.extend(x.to_le_bytes()),
        MetaValue::F64(x) => out.extend(x.to_le_bytes()),
    }
}

impl Writer {
    fn new() -> Self {
        Writer {
            version: 3,
            alignment: 32,
            kvs: Vec::new(),
            tensors: Vec::new(),
        }
    }

    /// The tiny GGUF's metadata and tensors (metadata in key order).
    fn tiny() -> Self {
        Self::of(TINY_GGUF)
    }

    /// A GGUF's metadata and tensors (metadata in key order).
    fn of(gguf: &[u8]) -> Self {
        let mut reader = GgufReader::new(gguf).unwrap();
        let kvs = reader.header().metadata.clone().into_iter().collect();
        let mut tensors = Vec::new();
        while let Some((t, bytes)) = reader.next_tensor().unwrap() {
            tensors.push((t.name, t.dims, t.ggml_type.id(), bytes));
        }
        Writer {
            version: 3,
            alignment: 32,
            kvs,
            tensors,
        }
    }

    fn set(&mut self, key: &str, v: MetaValue) -> &mut Self {
        match self.kvs.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = v,
            None => self.kvs.push((key.to_string(), v)),
        }
        self
    }

    fn remove(&mut self, key: &str) -> &mut Self {
        self.kvs.retain(|(k, _)| k != key);
        self
    }

    fn get(&self, key: &str) -> &MetaValue {
        &self.kvs.iter().find(|(k, _)| k == key).unwrap().1
    }

    fn bytes(&self) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend(self.version.to_le_bytes());
        out.extend((self.tensors.len() as u64).to_le_bytes());
        out.extend((self.kvs.len() as u64).to_le_bytes());
        for (k, v) in &self.kvs {
            put_str(&mut out, k);
            out.extend(type_id(v).to_le_bytes());
            put_value(&mut out, v);
        }
        let align = |n: usize| n.div_ceil(self.alignment) * self.alignment;
        let mut offset = 0;
        for (name, dims, t, data) in &self.tensors {
            put_str(&mut out, name);
            out.extend((dims.len() as u32).to_le_bytes());
            for &d in dims {
                out.extend((d as u64).to_le_bytes());
            }
            out.extend(t.to_le_bytes());
            out.extend((offset as u64).to_le_bytes());
            offset = align(offset + data.len());
        }
        out.resize(align(out.len()), 0);
        for (_, _, _, data) in &self.tensors {
            out.extend(data);
            out.resize(align(out.len()), 0);
        }
        out
    }

    fn header(&self) -> GgufHeader {
        GgufReader::new(&self.bytes()[..])
            .expect("the written GGUF parses")
            .into_header()
    }
}

/// The message of an `Error::Model`; any other outcome fails the test.
fn model_error<T>(r: decoding_playground::Result<T>, what: &str) -> String {
    match r {
        Err(Error::Model(m)) => m,
        Err(other) => panic!("{what}: expected Error::Model, got {other:?}"),
        Ok(_) => panic!("{what}: expected an error, got Ok"),
    }
}

fn assert_contains(msg: &str, needle: &str) {
    assert!(
        msg.contains(needle),
        "error message {msg:?} does not contain {needle:?}"
    );
}

/// Where tensor `name`'s record puts its type id and offset in a GGUF's bytes.
fn tensor_record(bytes: &[u8], name: &str) -> (usize, usize) {
    let mut needle = (name.len() as u64).to_le_bytes().to_vec();
    needle.extend(name.as_bytes());
    let start = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the record")
        + needle.len();
    let n_dims = u32::from_le_bytes(bytes[start..start + 4].try_into().unwrap()) as usize;
    let type_pos = start + 4 + 8 * n_dims;
    (type_pos, type_pos + 4)
}

/// A `Buf` over a slice that shows at most `chunk` bytes at a time (like the wasm side's
/// `JsChunks`).
struct Chunked<'a> {
    data: &'a [u8],
    pos: usize,
    chunk: usize,
}

impl Buf for Chunked<'_> {
    fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }
    fn chunk(&self) -> &[u8] {
        &self.data[self.pos..(self.pos + self.chunk).min(self.data.len())]
    }
    fn advance(&mut self, n: usize) {
        assert!(n <= self.remaining(), "advance past the end");
        self.pos += n;
    }
}

// ------------------------------------------------------------------ (a) the tiny GGUF

fn tiny_params() -> ModelParams {
    ModelParams {
        arch: Architecture::named("llama").unwrap(),
        vocab_size: 512,
        hidden_size: 64,
        intermediate_size: 128,
        num_layers: 2,
        num_heads: 4,
        num_kv_heads: 2,
        head_dim: 16,
        context_length: 512,
        rms_norm_eps: 1e-5,
        tied_embeddings: true,
        rope: RopeParams::plain(100000.0, 512),
        sliding_window: None,
        final_softcap: None,
    }
}

#[test]
fn tiny_gguf_header_params_and_tensors_match_gguf_py() {
    let reference: Value = serde_json::from_str(TINY_REFERENCE).unwrap();
    let mut reader = GgufReader::new(TINY_GGUF).unwrap();
    let h = reader.header().clone();
    assert_eq!(h.version, 3);
    assert_eq!(
        h.alignment,
        reference["alignment"].as_u64().unwrap() as usize
    );
    assert_eq!(h.data_offset, reference["data_offset"].as_u64().unwrap());
    let mut keys: Vec<&str> = h.metadata.keys().map(String::as_str).collect();
    let mut want = SMOLLM2_KEYS.to_vec();
    keys.sort_unstable();
    want.sort_unstable();
    assert_eq!(keys, want, "the tiny GGUF has SmolLM2's metadata key set");

    assert_eq!(ModelParams::from_header(&h).unwrap(), tiny_params());
    assert_eq!(h.architecture().unwrap(), "llama");
    assert_eq!(h.get_str("general.name").unwrap(), "tiny-random-llama");
    assert_eq!(h.get_u32("general.file_type").unwrap(), 3);
    assert_eq!(h.get_str_array("general.languages").unwrap(), ["en"]);
    assert_eq!(
        h.get_i32_array("tokenizer.ggml.token_type")
            .unwrap()
            .iter()
            .filter(|&&t| t == 3)
            .count(),
        17
    );

    let meta = h.tokenizer_meta().unwrap();
    let config: Value = serde_json::from_str(TINY_CONFIG).unwrap();
    assert_eq!(meta.model, "gpt2");
    assert_eq!(meta.pre.as_deref(), Some("smollm"));
    assert_eq!(meta.bos_token_id, Some(1));
    assert_eq!(meta.eos_token_id, Some(2));
    assert_eq!(meta.padding_token_id, Some(2));
    assert_eq!(meta.unknown_token_id, Some(0));
    assert_eq!(meta.add_bos_token, Some(false));
    assert_eq!(meta.add_eos_token, None);
    assert_eq!(
        meta.chat_template.as_deref(),
        config["chat_template"].as_str()
    );

    // Tensors: header order is file order, and every tensor's bytes and gguf-py dequantised
    // values match the reference.
    let want = reference["tensors"].as_array().unwrap();
    assert_eq!(h.tensors.len(), want.len());
    assert_eq!(h.file_order(), (0..want.len()).collect::<Vec<_>>());
    let mut n = 0;
    while let Some((t, bytes)) = reader.next_tensor().unwrap() {
        let w = &want[n];
        assert_eq!(t, h.tensors[n]);
        assert_eq!(t.name, w["name"].as_str().unwrap());
        assert_eq!(
            t.ggml_type.name(),
            w["ggml_type"].as_str().unwrap(),
            "{}",
            t.name
        );
        let dims: Vec<usize> = w["dims"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(t.dims, dims, "{}", t.name);
        assert_eq!(t.offset, w["offset"].as_u64().unwrap(), "{}", t.name);
        assert_eq!(
            t.n_bytes(),
            w["n_bytes"].as_u64().unwrap() as usize,
            "{}",
            t.name
        );
        assert_eq!(bytes.len(), t.n_bytes());
        assert_eq!(t.cols() * t.rows(), t.n_elements());
        assert_eq!(
            sha256(&bytes),
            w["raw_sha256"].as_str().unwrap(),
            "raw bytes of {}",
            t.name
        );
        let values = dequantize(t.ggml_type, &bytes);
        assert_eq!(values.len(), t.n_elements());
        let first: Vec<f32> = w["first_values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(values[..8], first[..], "first values of {}", t.name);
        assert_eq!(
            sha256(&f32_le_bytes(&values)),
            w["dequantized_sha256"].as_str().unwrap(),
            "dequantised values of {}",
            t.name
        );
        let want_type = match (t.dims.len(), t.name.as_str()) {
            (1, _) => GgmlType::F32,
            (_, "token_embd.weight") => GgmlType::Q8_0,
            _ => GgmlType::Q4_1,
        };
        assert_eq!(t.ggml_type, want_type, "{}", t.name);
        n += 1;
    }
    assert_eq!(n, want.len());
    assert_eq!(reader.remaining_tensors(), 0);
    assert!(reader.next_tensor().unwrap().is_none());
}

#[test]
fn tiny_gguf_reads_the_same_from_small_chunks_and_from_a_header_only_prefix() {
    let tensors = |buf: &mut dyn FnMut() -> Option<(TensorInfo, Vec<u8>)>| {
        let mut all = Vec::new();
        while let Some(t) = buf() {
            all.push(t);
        }
        all
    };
    let mut whole = GgufReader::new(TINY_GGUF).unwrap();
    let want = tensors(&mut || whole.next_tensor().unwrap());
    for chunk in [1, 7, 32, 1000] {
        let mut r = GgufReader::new(Chunked {
            data: TINY_GGUF,
            pos: 0,
            chunk,
        })
        .unwrap();
        assert_eq!(r.header(), whole.header(), "chunk {chunk}");
        assert_eq!(
            tensors(&mut || r.next_tensor().unwrap()),
            want,
            "chunk {chunk}"
        );
    }
    // Buf::chain of two halves.
    let (a, b) = TINY_GGUF.split_at(TINY_GGUF.len() / 2 + 3);
    let mut r = GgufReader::new(a.chain(b)).unwrap();
    assert_eq!(tensors(&mut || r.next_tensor().unwrap()), want);

    // GgufHeader::read needs only the header and stops at the data section.
    let data_offset = whole.header().data_offset as usize;
    let mut prefix = &TINY_GGUF[..data_offset];
    let h = GgufHeader::read(&mut prefix).unwrap();
    assert_eq!(&h, whole.header());
    assert_eq!(prefix.len(), 0);
    assert_eq!(h.data_len() as usize, TINY_GGUF.len() - data_offset);
}

#[test]
fn the_test_writer_round_trips_the_tiny_gguf() {
    let w = Writer::tiny();
    let h = w.header();
    let tiny = GgufReader::new(TINY_GGUF).unwrap().into_header();
    assert_eq!(h.metadata, tiny.metadata);
    assert_eq!(h.tensors, tiny.tensors);
    assert_eq!(ModelParams::from_header(&h).unwrap(), tiny_params());
}

#[test]
fn llama_permutation_undoes_the_q_k_permutation() {
    // gguf row (h, i, s) -> hf row (h, s, i): head_dim 4 -> per head [0, 2, 1, 3].
    assert_eq!(llama_permutation(8, 2), [0, 2, 1, 3, 4, 6, 5, 7]);
    let p = llama_permutation(64, 4);
    for (hf, &gg) in p.iter().enumerate() {
        let (h, r) = (hf / 16, hf % 16);
        let (s, i) = (r / 8, r % 8);
        assert_eq!(gg, h * 16 + 2 * i + s);
    }
}

/// The runtime's quant module reads the GGUF blocks to exactly gguf-py's values, and its row
/// order option with [`llama_permutation`] picks the GGUF rows the permutation names.
#[test]
fn quant_matrix_dequantises_the_tiny_tensors_like_gguf_py() {
    use decoding_playground::model::quant::QuantMatrix;
    let reference: Value = serde_json::from_str(TINY_REFERENCE).unwrap();
    let mut reader = GgufReader::new(TINY_GGUF).unwrap();
    let params = ModelParams::from_header(reader.header()).unwrap();
    let mut n = 0;
    while let Some((t, bytes)) = reader.next_tensor().unwrap() {
        let want = reference["tensors"][n]["dequantized_sha256"]
            .as_str()
            .unwrap();
        n += 1;
        let Some(format) = block_format(t.ggml_type) else {
            assert_eq!(
                sha256(&f32_le_bytes(&dequantize(t.ggml_type, &bytes))),
                want,
                "{}",
                t.name
            );
            continue;
        };
        let (rows, cols) = (t.rows(), t.cols());
        let m = QuantMatrix::from_gguf_blocks(format, rows, cols, &bytes, None).unwrap();
        let mut values = vec![0f32; rows * cols];
        for (r, out) in values.chunks_exact_mut(cols).enumerate() {
            m.dequantize_row(r, out).unwrap();
        }
        assert_eq!(
            sha256(&f32_le_bytes(&values)),
            want,
            "QuantMatrix dequantisation of {}",
            t.name
        );

        let heads = if t.name.ends_with("attn_q.weight") {
            params.num_heads
        } else if t.name.ends_with("attn_k.weight") {
            params.num_kv_heads
        } else {
            continue;
        };
        let perm = llama_permutation(rows, heads);
        let pm = QuantMatrix::from_gguf_blocks(format, rows, cols, &bytes, Some(&perm)).unwrap();
        let mut row = vec![0f32; cols];
        for (hf_row, &gguf_row) in perm.iter().enumerate() {
            pm.dequantize_row(hf_row, &mut row).unwrap();
            assert_eq!(
                row[..],
                values[gguf_row * cols..][..cols],
                "{} row {hf_row}",
                t.name
            );
        }
    }
    assert_eq!(n, 20);
}

// ------------------------------------------------------------------ (b) tokenizer

fn reference_texts() -> Vec<String> {
    let r: Value = serde_json::from_str(SMOLLM2_REFERENCE).unwrap();
    let mut texts: Vec<String> = r["tokenizer_cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["text"].as_str().unwrap().to_string())
        .collect();
    texts.push(
        std::fs::read_to_string(models_dir().join("fixtures/paragraph.txt"))
            .unwrap()
            .trim()
            .to_string(),
    );
    texts.extend(
        [
            "",
            " ",
            "Once upon a time, there was a little",
            "<|im_start|><|im_end|><|endoftext|>x<jupyter_code>",
            "<|im_start|user>",
            "numbers 0123456789 ٣٤ ½",
            "tabs\t\tand\r\nwindows lines",
            "ÀÉÎÕÜ ßøåæ ĞŞİ",
            "\u{0}\u{1}\u{7f}",
            "🙂🙂🙂 👩‍👩‍👧",
            "a  b   c    d",
            "Ishmael, whale; Ahab! Queequeg? Pequod...",
        ]
        .map(String::from),
    );
    texts
}

fn assert_same_tokenizer(a: &TextTokenizer, b: &TextTokenizer, texts: &[String]) {
    assert_eq!(a.vocab_size(), b.vocab_size());
    assert_eq!(a.fingerprint(), b.fingerprint(), "same id -> token mapping");
    for text in texts {
        let ids = a.encode(text).unwrap();
        assert_eq!(b.encode(text).unwrap(), ids, "ids of {text:?}");
        assert_eq!(
            b.decode(&ids).unwrap(),
            a.decode(&ids).unwrap(),
            "decode of {text:?}"
        );
    }
}

#[test]
fn tokenizer_from_the_tiny_gguf_equals_tiny_tokenizer_json() {
    let h = GgufReader::new(TINY_GGUF).unwrap().into_header();
    let from_gguf = TextTokenizer::from_gguf(&h).unwrap();
    let from_json = TextTokenizer::from_bytes(TINY_TOKENIZER).unwrap();
    assert_same_tokenizer(&from_json, &from_gguf, &reference_texts());
    assert_eq!(from_gguf.token_to_id("<|im_start|>"), Some(1));
    assert_eq!(from_gguf.token_to_id("<|im_end|>"), Some(2));
    let ids = from_gguf.encode("<|im_start|>user\nhi<|im_end|>").unwrap();
    assert_eq!((ids[0], *ids.last().unwrap()), (1, 2));
}

#[test]
fn tokenizer_from_gguf_refuses_what_it_cannot_reproduce() {
    let mut w = Writer::tiny();
    w.set("tokenizer.ggml.model", MetaValue::String("bert".into()));
    let e = model_error(TextTokenizer::from_gguf(&w.header()), "wordpiece");
    assert_contains(&e, "tokenizer model `bert` (tokenizer.ggml.model) is not supported");

    let mut w = Writer::tiny();
    w.set("tokenizer.ggml.pre", MetaValue::String("jina-v2-code".into()));
    let e = model_error(
        TextTokenizer::from_gguf(&w.header()),
        "pre-tokenizer llama.cpp sets up with a separator token",
    );
    assert_contains(&e, "pre-tokenizer `jina-v2-code`");

    let mut w = Writer::tiny();
    w.remove("tokenizer.ggml.merges");
    let e = model_error(TextTokenizer::from_gguf(&w.header()), "no merges");
    assert_contains(&e, "metadata key `tokenizer.ggml.merges` is missing");

    let mut w = Writer::tiny();
    let MetaValue::Array(mut merges) = w.get("tokenizer.ggml.merges").clone() else {
        panic!()
    };
    merges[3] = MetaValue::String("nospace".into());
    w.set("tokenizer.ggml.merges", MetaValue::Array(merges));
    let e = model_error(TextTokenizer::from_gguf(&w.header()), "bad merge");
    assert_contains(&e, "merge 3 (\"nospace\")");

    let mut w = Writer::tiny();
    let MetaValue::Array(mut tokens) = w.get("tokenizer.ggml.tokens").clone() else {
        panic!()
    };
    tokens[100] = tokens[99].clone();
    w.set("tokenizer.ggml.tokens", MetaValue::Array(tokens));
    let e = model_error(TextTokenizer::from_gguf(&w.header()), "duplicate token");
    assert_contains(&e, "twice (ids 99 and 100)");

    let mut w = Writer::tiny();
    w.set(
        "tokenizer.ggml.token_type",
        MetaValue::Array(vec![MetaValue::I32(1); 3]),
    );
    let e = model_error(TextTokenizer::from_gguf(&w.header()), "token types");
    assert_contains(&e, "has 3 entries for 512 tokens");

    let mut w = Writer::tiny();
    w.set("tokenizer.ggml.eos_token_id", MetaValue::U32(512));
    let e = model_error(w.header().tokenizer_meta(), "eos outside");
    assert_contains(
        &e,
        "`tokenizer.ggml.eos_token_id` is 512, outside the vocabulary of 512 tokens",
    );
}

// ------------------------------------------------------------------ (c) SmolLM2's GGUF

#[test]
fn smollm2_gguf_header_params_tokenizer_and_streaming() {
    let dir = models_dir().join("smollm2-135m");
    let Some(path) = common::built_file(dir.join("model.gguf")) else { return };
    let bytes = std::fs::read(&path).unwrap();
    let mut reader = GgufReader::new(&bytes[..]).unwrap();
    let h = reader.header().clone();
    assert_eq!(h.version, 3);
    assert_eq!(h.alignment, 32);
    assert_eq!(h.data_offset, 1_785_664);
    assert_eq!(h.metadata.len(), SMOLLM2_KEYS.len());
    for key in SMOLLM2_KEYS {
        assert!(h.get(key).is_some(), "{key}");
    }
    let p = ModelParams::from_header(&h).unwrap();
    assert_eq!(
        p,
        ModelParams {
            arch: Architecture::named("llama").unwrap(),
            vocab_size: 49152,
            hidden_size: 576,
            intermediate_size: 1536,
            num_layers: 30,
            num_heads: 9,
            num_kv_heads: 3,
            head_dim: 64,
            context_length: 8192,
            rms_norm_eps: 1e-5,
            tied_embeddings: true,
            rope: RopeParams::plain(100000.0, 8192),
            sliding_window: None,
            final_softcap: None,
        }
    );
    assert_eq!(h.tensors.len(), 272);
    assert_eq!(
        h.file_order(),
        (0..272).collect::<Vec<_>>(),
        "header order is offset order"
    );
    assert_eq!(h.tensors[0].name, "token_embd.weight");
    assert_eq!(h.tensors[271].name, "output_norm.weight");
    for t in &h.tensors {
        let want = match (t.dims.len(), t.name.as_str()) {
            (1, _) => GgmlType::F32,
            (_, "token_embd.weight") => GgmlType::Q8_0,
            _ => GgmlType::Q4_1,
        };
        assert_eq!(t.ggml_type, want, "{}", t.name);
    }
    let meta = h.tokenizer_meta().unwrap();
    assert_eq!(
        (
            meta.bos_token_id,
            meta.eos_token_id,
            meta.padding_token_id,
            meta.add_bos_token
        ),
        (Some(1), Some(2), Some(2), Some(false))
    );
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        meta.chat_template.as_deref(),
        config["chat_template"].as_str()
    );

    // Tokenizer: the same ids as the build's tokenizer.json and as the reference fixture.
    let from_gguf = TextTokenizer::from_gguf(&h).unwrap();
    let from_json =
        TextTokenizer::from_bytes(&std::fs::read(dir.join("tokenizer.json")).unwrap()).unwrap();
    assert_same_tokenizer(&from_json, &from_gguf, &reference_texts());
    let r: Value = serde_json::from_str(SMOLLM2_REFERENCE).unwrap();
    let ids = |v: &Value| -> Vec<u32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect()
    };
    for case in r["tokenizer_cases"].as_array().unwrap() {
        assert_eq!(
            from_gguf.encode(case["text"].as_str().unwrap()).unwrap(),
            ids(&case["ids"])
        );
    }
    let para = std::fs::read_to_string(models_dir().join("fixtures/paragraph.txt")).unwrap();
    assert_eq!(
        from_gguf.encode(para.trim()).unwrap(),
        ids(&r["paragraph"]["ids"])
    );
    assert_eq!(
        from_gguf
            .encode(r["greedy"]["prompt"].as_str().unwrap())
            .unwrap(),
        ids(&r["greedy"]["prompt_ids"])
    );

    // Streaming from 1000-byte chunks gives the same tensors as one slice; the bytes and a few
    // dequantised tensors match gguf-py (gguf_reference.json, written by models/build.sh).
    let reference: Option<Value> = std::fs::read_to_string(dir.join("gguf_reference.json"))
        .ok()
        .map(|s| serde_json::from_str(&s).unwrap());
    if reference.is_none() {
        println!(
            "note: {} is missing; checking streaming only",
            dir.join("gguf_reference.json").display()
        );
    }
    let mut chunked = GgufReader::new(Chunked {
        data: &bytes,
        pos: 0,
        chunk: 1000,
    })
    .unwrap();
    assert_eq!(chunked.header(), &h);
    let mut n = 0;
    let mut dequantised = 0;
    while let Some((t, data)) = reader.next_tensor().unwrap() {
        let (t2, data2) = chunked.next_tensor().unwrap().unwrap();
        assert_eq!(t, t2);
        assert!(
            data == data2,
            "tensor {} differs between the readers",
            t.name
        );
        if let Some(reference) = &reference {
            let w = &reference["tensors"][n];
            assert_eq!(w["name"].as_str(), Some(t.name.as_str()));
            assert_eq!(w["offset"].as_u64(), Some(t.offset));
            if let Some(want) = w["dequantized_sha256"].as_str() {
                let values = dequantize(t.ggml_type, &data);
                assert_eq!(
                    sha256(&f32_le_bytes(&values)),
                    want,
                    "dequantised {}",
                    t.name
                );
                if let Some(format) = block_format(t.ggml_type) {
                    use decoding_playground::model::quant::QuantMatrix;
                    let m = QuantMatrix::from_gguf_blocks(format, t.rows(), t.cols(), &data, None)
                        .unwrap();
                    let mut row = vec![0f32; t.cols()];
                    for (r, want_row) in values.chunks_exact(t.cols()).enumerate() {
                        m.dequantize_row(r, &mut row).unwrap();
                        assert!(row == want_row, "QuantMatrix row {r} of {}", t.name);
                    }
                }
                dequantised += 1;
            } else if t.dims.len() == 1 || n % 37 == 0 {
                assert_eq!(
                    Some(sha256(&data).as_str()),
                    w["raw_sha256"].as_str(),
                    "bytes of {}",
                    t.name
                );
            }
        }
        n += 1;
    }
    assert!(chunked.next_tensor().unwrap().is_none());
    assert_eq!(n, 272);
    if reference.is_some() {
        assert_eq!(dequantised, 4);
    }
}

// ------------------------------------------------------------------ (d) broken files

#[test]
fn every_truncation_of_the_tiny_header_is_a_clear_error() {
    let h = GgufReader::new(TINY_GGUF).unwrap().into_header();
    let data_offset = h.data_offset as usize;
    for n in 0..data_offset {
        let e = model_error(
            GgufReader::new(&TINY_GGUF[..n]),
            &format!("truncated at {n}"),
        );
        assert!(
            e.contains("the file ends inside") || e.contains("more than the"),
            "at {n}: {e}"
        );
    }
    // Inside the data: the reader names the first tensor that does not fit.
    for (cut, tensor) in [
        (data_offset, "token_embd.weight"),
        (data_offset + 1000, "token_embd.weight"),
        (
            data_offset + h.tensors[1].offset as usize + 3,
            "blk.0.attn_norm.weight",
        ),
        (TINY_GGUF.len() - 1, "output_norm.weight"),
    ] {
        let e = model_error(
            GgufReader::new(&TINY_GGUF[..cut]),
            &format!("data cut at {cut}"),
        );
        assert_contains(&e, &format!("the file ends inside tensor `{tensor}`"));
    }
    let last = h.tensors.last().unwrap();
    let e = model_error(
        GgufReader::new(&TINY_GGUF[..TINY_GGUF.len() - 1]),
        "last byte",
    );
    assert_eq!(
        e,
        format!(
            "the file ends inside tensor `output_norm.weight` (needs {} bytes, {} left)",
            last.n_bytes(),
            last.n_bytes() - 1
        )
    );
}

#[test]
fn wrong_magic_and_versions_are_refused() {
    let mut b = TINY_GGUF.to_vec();
    b[..4].copy_from_slice(b"GGML");
    assert_contains(
        &model_error(GgufReader::new(&b[..]), "magic"),
        "not a GGUF file (magic \"GGML\"",
    );
    let onnx = include_bytes!("../../../models/tiny/model.onnx");
    assert_contains(
        &model_error(GgufReader::new(&onnx[..]), "onnx"),
        "not a GGUF file",
    );
    for (version, msg) in [
        (1u32, "GGUF version 1 is not supported"),
        (4, "GGUF version 4 is not supported"),
        (0, "GGUF version 0 is not supported"),
        (3u32.swap_bytes(), "big-endian"),
    ] {
        let mut b = TINY_GGUF.to_vec();
        b[4..8].copy_from_slice(&version.to_le_bytes());
        assert_contains(&model_error(GgufReader::new(&b[..]), msg), msg);
    }
    // Version 2 has the same layout as 3.
    let mut b = TINY_GGUF.to_vec();
    b[4..8].copy_from_slice(&2u32.to_le_bytes());
    assert_eq!(GgufReader::new(&b[..]).unwrap().header().version, 2);
}

#[test]
fn unsupported_tensor_types_are_named() {
    let (type_pos, _) = tensor_record(TINY_GGUF, "blk.0.attn_q.weight");
    assert_eq!(
        u32::from_le_bytes(TINY_GGUF[type_pos..type_pos + 4].try_into().unwrap()),
        3
    );
    for (id, msg) in [
        (16u32, "tensor `blk.0.attn_q.weight` has type IQ2_XXS (16), which is not supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K, Q3_K"),
        (10, "has type Q2_K (10)"),
        (20, "has type IQ4_NL (20)"),
        (15, "has type Q8_K (15)"),
        (77, "tensor `blk.0.attn_q.weight` has unknown ggml type id 77"),
        (4, "unknown ggml type id 4"),
    ] {
        let mut b = TINY_GGUF.to_vec();
        b[type_pos..type_pos + 4].copy_from_slice(&id.to_le_bytes());
        assert_contains(&model_error(GgufReader::new(&b[..]), msg), msg);
    }
    // A supported type whose size does not match the data that follows: Q4_1 -> F32 makes the
    // tensor 64*64*4 bytes, overlapping the next one.
    let mut b = TINY_GGUF.to_vec();
    b[type_pos..type_pos + 4].copy_from_slice(&0u32.to_le_bytes());
    assert_contains(&model_error(GgufReader::new(&b[..]), "retyped"), "overlap");
}

#[test]
fn bad_tensor_offsets_are_refused() {
    let patch = |name: &str, offset: u64| {
        let (_, pos) = tensor_record(TINY_GGUF, name);
        let mut b = TINY_GGUF.to_vec();
        b[pos..pos + 8].copy_from_slice(&offset.to_le_bytes());
        b
    };
    let e = model_error(
        GgufReader::new(&patch("output_norm.weight", 1 << 20)[..]),
        "past the end",
    );
    assert_contains(
        &e,
        "the file ends inside tensor `output_norm.weight` (needs 256 bytes, 0 left)",
    );
    let e = model_error(
        GgufReader::new(&patch("blk.0.attn_norm.weight", 0)[..]),
        "overlap",
    );
    assert_contains(&e, "overlap");
    assert_contains(&e, "token_embd.weight");
    let e = model_error(
        GgufReader::new(&patch("blk.1.attn_v.weight", 33)[..]),
        "unaligned",
    );
    assert_contains(&e, "not a multiple of the alignment 32");
    let e = model_error(
        GgufReader::new(&patch("output_norm.weight", u64::MAX - 31)[..]),
        "overflow",
    );
    assert_contains(&e, "absurd offset");
}

#[test]
fn absurd_lengths_are_refused_before_allocating() {
    // Header: magic 4, version 4, tensor count 8 (at 8), kv count 8 (at 16), first key length
    // at 24.
    let patch = |pos: usize, v: u64| {
        let mut b = TINY_GGUF.to_vec();
        b[pos..pos + 8].copy_from_slice(&v.to_le_bytes());
        b
    };
    let e = model_error(GgufReader::new(&patch(24, 1 << 60)[..]), "key length");
    assert_contains(&e, "a string of 1152921504606846976 bytes");
    assert_contains(&e, "the key of metadata entry 0");
    let e = model_error(GgufReader::new(&patch(8, 1 << 60)[..]), "tensor count");
    assert_contains(&e, "claims 1152921504606846976 tensors");
    let e = model_error(GgufReader::new(&patch(16, u64::MAX)[..]), "kv count");
    assert_contains(&e, "metadata entries");

    // The tokens array: its count follows the key and the element type.
    let key = b"tokenizer.ggml.tokens";
    let at = TINY_GGUF.windows(key.len()).position(|w| w == key).unwrap() + key.len();
    assert_eq!(
        u32::from_le_bytes(TINY_GGUF[at..at + 4].try_into().unwrap()),
        9
    ); // array
    let count_pos = at + 8;
    assert_eq!(
        u64::from_le_bytes(TINY_GGUF[count_pos..count_pos + 8].try_into().unwrap()),
        512
    );
    let e = model_error(
        GgufReader::new(&patch(count_pos, 1 << 60)[..]),
        "array count",
    );
    assert_contains(&e, "an array of 1152921504606846976 string values");
    // The first token's length.
    let e = model_error(
        GgufReader::new(&patch(count_pos + 8, 1 << 60)[..]),
        "token length",
    );
    assert_contains(&e, "`tokenizer.ggml.tokens`");
    assert_contains(&e, "a string of 1152921504606846976 bytes");

    // Tensor records: n_dims and dims.
    let (type_pos, _) = tensor_record(TINY_GGUF, "blk.0.ffn_up.weight");
    let dims_pos = type_pos - 16;
    let ndims_pos = dims_pos - 4;
    let mut b = TINY_GGUF.to_vec();
    b[ndims_pos..ndims_pos + 4].copy_from_slice(&1000u32.to_le_bytes());
    assert_contains(
        &model_error(GgufReader::new(&b[..]), "n_dims"),
        "has 1000 dimensions",
    );
    let e = model_error(
        GgufReader::new(&patch(dims_pos + 8, 1 << 62)[..]),
        "huge dim",
    );
    assert!(
        e.contains("absurd dimensions") || e.contains("overlap") || e.contains("ends inside"),
        "{e}"
    );
    let mut b = patch(dims_pos, 1 << 40);
    b[dims_pos + 8..dims_pos + 16].copy_from_slice(&(1u64 << 40).to_le_bytes());
    assert_contains(
        &model_error(GgufReader::new(&b[..]), "dims overflow"),
        "absurd dimensions",
    );
    let e = model_error(
        GgufReader::new(&patch(dims_pos, 65)[..]),
        "row not a block multiple",
    );
    assert_contains(
        &e,
        "rows of 65 elements, not a multiple of the Q4_1 block size 32",
    );
    let e = model_error(GgufReader::new(&patch(dims_pos, 0)[..]), "zero dim");
    assert_contains(&e, "a dimension of size 0");

    // Arrays nested too deep, unknown value types, bad bools, non-UTF-8 strings.
    let mut deep = MetaValue::U8(1);
    for _ in 0..20 {
        deep = MetaValue::Array(vec![deep]);
    }
    let mut w = Writer::tiny();
    w.set("x.deep", deep);
    assert_contains(
        &model_error(GgufReader::new(&w.bytes()[..]), "deep"),
        "nests arrays more than",
    );
    let mut b = TINY_GGUF.to_vec();
    b[at..at + 4].copy_from_slice(&13u32.to_le_bytes());
    assert_contains(
        &model_error(GgufReader::new(&b[..]), "value type 13"),
        "unknown value type 13",
    );
    let mut b = TINY_GGUF.to_vec();
    b[at + 4..at + 8].copy_from_slice(&77u32.to_le_bytes());
    assert_contains(
        &model_error(GgufReader::new(&b[..]), "element type 77"),
        "array of unknown value type 77",
    );
    let bool_key = b"tokenizer.ggml.add_bos_token";
    let bpos = TINY_GGUF
        .windows(bool_key.len())
        .position(|w| w == bool_key)
        .unwrap()
        + bool_key.len();
    let mut b = TINY_GGUF.to_vec();
    b[bpos + 4] = 2;
    assert_contains(
        &model_error(GgufReader::new(&b[..]), "bool 2"),
        "a bool of value 2",
    );
    let mut b = TINY_GGUF.to_vec();
    b[32] = 0xff; // inside the first key, "general.architecture"
    assert_contains(&model_error(GgufReader::new(&b[..]), "utf-8"), "not UTF-8");
    let mut w = Writer::tiny();
    w.kvs
        .push(("general.name".into(), MetaValue::String("again".into())));
    assert_contains(
        &model_error(GgufReader::new(&w.bytes()[..]), "duplicate key"),
        "`general.name` appears twice",
    );
    let mut w = Writer::tiny();
    let dup = w.tensors[3].clone();
    w.tensors.push(dup);
    assert_contains(
        &model_error(GgufReader::new(&w.bytes()[..]), "duplicate tensor"),
        "are both named",
    );
    let mut w = Writer::tiny();
    w.set("general.alignment", MetaValue::U32(24));
    assert_contains(
        &model_error(GgufReader::new(&w.bytes()[..]), "alignment"),
        "a power of two",
    );
}

#[test]
fn other_alignments_and_no_tensors_parse() {
    let mut w = Writer::tiny();
    w.alignment = 64;
    w.set("general.alignment", MetaValue::U32(64));
    let h = w.header();
    assert_eq!(h.alignment, 64);
    assert_eq!(h.data_offset % 64, 0);
    let bytes = w.bytes();
    let mut r = GgufReader::new(&bytes[..]).unwrap();
    let mut tiny = GgufReader::new(TINY_GGUF).unwrap();
    while let Some((t, d)) = tiny.next_tensor().unwrap() {
        let (t2, d2) = r.next_tensor().unwrap().unwrap();
        assert_eq!((t.name, t.dims, d), (t2.name, t2.dims, d2));
    }
    let mut w = Writer::new();
    w.set("general.architecture", MetaValue::String("llama".into()));
    let bytes = w.bytes();
    let h = GgufReader::new(&bytes[..]).unwrap().into_header();
    assert!(h.tensors.is_empty());
    // Without the trailing padding too.
    let unpadded = &bytes[..8 + 16 + 8 + 20 + 4 + 8 + 5];
    assert!(GgufReader::new(unpadded)
        .unwrap()
        .header()
        .tensors
        .is_empty());
    assert_contains(
        &model_error(ModelParams::from_header(&h), "no tensors"),
        "is missing",
    );
}

/// What each architecture adds to the checks: its own keys and tensors, each refused by name.
#[test]
fn architecture_problems_are_named() {
    let qwen3: &[u8] = include_bytes!("../../../models/tiny/archs/qwen3.gguf");
    let gemma3: &[u8] = include_bytes!("../../../models/tiny/archs/gemma3.gguf");
    let phi3: &[u8] = include_bytes!("../../../models/tiny/archs/phi3.gguf");
    let params = |w: &Writer| ModelParams::from_header(&w.header());
    let without = |gguf: &[u8], tensor: &str| {
        let mut w = Writer::of(gguf);
        w.tensors.retain(|t| t.0 != tensor);
        w
    };
    assert_eq!(
        model_error(params(&without(qwen3, "blk.1.attn_k_norm.weight")), "qwen3 k norm"),
        "tensor `blk.1.attn_k_norm.weight` is missing"
    );
    assert_eq!(
        model_error(params(&without(phi3, "blk.0.attn_qkv.weight")), "phi3 qkv"),
        "tensor `blk.0.attn_q.weight` is missing"
    );
    for (gguf, key, value, msg) in [
        (qwen3, "qwen3.attention.head_count", MetaValue::U32(2), "tensor `blk.0.attn_q.weight` has dims [64, 128] (ggml order), expected [64, 64]"),
        (qwen3, "qwen3.attention.key_length", MetaValue::U32(31), "the head dimension 31 is odd"),
        (qwen3, "qwen3.attention.value_length", MetaValue::U32(16), "`qwen3.attention.value_length` is 16, but the head dimension is 32"),
        (gemma3, "gemma3.attention.sliding_window_pattern", MetaValue::Array(vec![MetaValue::Bool(true); 3]), "`gemma3.attention.sliding_window_pattern` must be 7 booleans"),
        (gemma3, "gemma3.rope.freq_base_swa", MetaValue::F32(0.0), "`gemma3.rope.freq_base_swa` is 0, expected a positive number"),
        (gemma3, "gemma3.final_logit_softcapping", MetaValue::F32(f32::NAN), "`gemma3.final_logit_softcapping` is NaN"),
        (phi3, "phi3.rope.scaling.type", MetaValue::String("yarn".into()), "RoPE scaling `yarn` is not supported for phi3"),
        (phi3, "general.architecture", MetaValue::String("mamba".into()), "architecture `mamba` is not supported"),
        (phi3, "phi3.feed_forward_length", MetaValue::U32(64), "tensor `blk.0.ffn_up.weight` has dims [64, 256] (ggml order), expected [64, 128]"),
    ] {
        let mut w = Writer::of(gguf);
        w.set(key, value);
        assert_contains(&model_error(params(&w), key), msg);
    }
    // The layers a sliding window covers: the pattern's period, or one flag per layer.
    let windows = |w: &Writer| params(w).unwrap().sliding_window.map(|(n, local)| (n, local));
    let mut w = Writer::of(gemma3);
    assert_eq!(windows(&w), Some((5, vec![true, true, true, true, true, false, true])));
    w.set("gemma3.attention.sliding_window_pattern", MetaValue::U32(2));
    assert_eq!(windows(&w), Some((5, vec![true, false, true, false, true, false, true])));
    w.set("gemma3.attention.sliding_window", MetaValue::U32(0));
    assert_eq!(windows(&w), None);
    // phi3's window is ignored, as llama.cpp ignores it.
    assert_eq!(windows(&Writer::of(phi3)), None);
}

#[test]
fn metadata_problems_are_named_by_key() {
    let params = |w: &Writer| ModelParams::from_header(&w.header());

    let mut w = Writer::tiny();
    w.remove("llama.block_count");
    assert_eq!(
        model_error(params(&w), "missing"),
        "metadata key `llama.block_count` is missing"
    );

    let mut w = Writer::tiny();
    w.set("llama.block_count", MetaValue::String("two".into()));
    assert_eq!(
        model_error(params(&w), "string"),
        "metadata key `llama.block_count` has type string (\"two\"), expected an unsigned integer"
    );
    let mut w = Writer::tiny();
    w.set("llama.embedding_length", MetaValue::I32(-64));
    assert_contains(
        &model_error(params(&w), "negative"),
        "has type i32 (-64), expected an unsigned integer",
    );
    let mut w = Writer::tiny();
    w.set(
        "llama.attention.layer_norm_rms_epsilon",
        MetaValue::Bool(true),
    );
    assert_contains(
        &model_error(params(&w), "bool eps"),
        "has type bool (true), expected a float",
    );
    let mut w = Writer::tiny();
    w.set(
        "tokenizer.ggml.tokens",
        MetaValue::Array(vec![MetaValue::U32(1); 512]),
    );
    assert_contains(
        &model_error(params(&w), "tokens of u32"),
        "has type array of u32, expected an array of strings",
    );

    // Integer widths and F64 are accepted where they fit.
    let mut w = Writer::tiny();
    w.set("llama.block_count", MetaValue::U64(2));
    w.set("llama.context_length", MetaValue::I32(512));
    w.set("llama.rope.freq_base", MetaValue::F64(100000.0));
    assert_eq!(params(&w).unwrap(), tiny_params());
    // rope.freq_base defaults to 10000, head_count_kv to head_count.
    let mut w = Writer::tiny();
    w.remove("llama.rope.freq_base");
    assert_eq!(params(&w).unwrap().rope.base, 10000.0);

    let mut w = Writer::tiny();
    w.set("general.architecture", MetaValue::String("gpt2".into()));
    assert_eq!(
        model_error(params(&w), "gpt2"),
        "architecture `gpt2` is not supported (supported: llama, qwen2, qwen3, gemma3, phi3)"
    );
    let mut w = Writer::tiny();
    w.remove("general.architecture");
    assert_contains(
        &model_error(params(&w), "no arch"),
        "`general.architecture` is missing",
    );

    for (key, value, msg) in [
        (
            "llama.attention.head_count",
            MetaValue::U32(5),
            "not a multiple of the head count 5",
        ),
        (
            "llama.attention.head_count",
            MetaValue::U32(0),
            "`llama.attention.head_count` is 0",
        ),
        (
            "llama.attention.head_count_kv",
            MetaValue::U32(3),
            "not a multiple of the KV head count 3",
        ),
        (
            "llama.attention.head_count_kv",
            MetaValue::U32(4),
            "tensor `blk.0.attn_k.weight` has dims [64, 32] (ggml order), expected [64, 64]",
        ),
        (
            "llama.rope.dimension_count",
            MetaValue::U32(8),
            "`llama.rope.dimension_count` is 8",
        ),
        (
            "llama.feed_forward_length",
            MetaValue::U32(256),
            "tensor `blk.0.ffn_gate.weight` has dims [64, 128] (ggml order), expected [64, 256]",
        ),
        (
            "llama.block_count",
            MetaValue::U32(3),
            "tensor `blk.2.attn_norm.weight` is missing",
        ),
        (
            "llama.block_count",
            MetaValue::U32(1),
            "tensor `blk.1.attn_norm.weight` is not part of a 1-layer llama model",
        ),
        (
            "llama.vocab_size",
            MetaValue::U32(500),
            "the tokenizer has 512 tokens but `llama.vocab_size` is 500",
        ),
        (
            "llama.attention.layer_norm_rms_epsilon",
            MetaValue::F32(-1.0),
            "expected a positive number",
        ),
        (
            "llama.rope.scaling.type",
            MetaValue::String("yarn".into()),
            "RoPE scaling `yarn` is not supported for llama",
        ),
        (
            "llama.expert_count",
            MetaValue::U32(8),
            "mixture-of-experts",
        ),
    ] {
        let mut w = Writer::tiny();
        w.set(key, value);
        assert_contains(&model_error(params(&w), key), msg);
    }
    // The tokenizer's vocabulary must fit the embedding table.
    let mut w = Writer::tiny();
    w.remove("llama.vocab_size");
    let MetaValue::Array(mut tokens) = w.get("tokenizer.ggml.tokens").clone() else {
        panic!()
    };
    tokens.pop();
    w.set("tokenizer.ggml.tokens", MetaValue::Array(tokens));
    assert_eq!(
        model_error(params(&w), "vocab vs embedding"),
        "the vocabulary has 511 tokens but `token_embd.weight` has 512 rows"
    );
    let mut w = Writer::tiny();
    w.remove("llama.vocab_size").remove("tokenizer.ggml.tokens");
    assert_contains(
        &model_error(params(&w), "no vocab"),
        "cannot tell the vocabulary size",
    );

    // An untied output.weight must have the embedding's shape.
    let mut w = Writer::tiny();
    let embd = w.tensors[0].clone();
    w.tensors.push((
        "output.weight".into(),
        embd.1.clone(),
        embd.2,
        embd.3.clone(),
    ));
    let p = params(&w).unwrap();
    assert!(!p.tied_embeddings);
    let mut w = Writer::tiny();
    w.tensors.push((
        "output.weight".into(),
        vec![64, 256],
        embd.2,
        embd.3[..embd.3.len() / 2].to_vec(),
    ));
    assert_contains(
        &model_error(params(&w), "output.weight"),
        "tensor `output.weight` has dims [64, 256]",
    );
    // Llama 3's RoPE factors are known, at their size; a tensor of no known role is refused.
    let mut w = Writer::tiny();
    w.tensors.push(("rope_freqs.weight".into(), vec![16], 0, vec![0; 64]));
    assert_contains(
        &model_error(params(&w), "rope_freqs"),
        "tensor `rope_freqs.weight` has dims [16] (ggml order), expected [8]",
    );
    let mut w = Writer::tiny();
    w.tensors.push(("blk.0.ffn_gate_exps.weight".into(), vec![8], 0, vec![0; 32]));
    assert_contains(
        &model_error(params(&w), "experts"),
        "tensor `blk.0.ffn_gate_exps.weight` is not part of a 2-layer llama model",
    );
}

/// Deterministic byte flips and truncations over the whole pipeline: parse, params, tokenizer
/// metadata, tokenizer, every tensor. Errors are fine; panics are not.
#[test]
fn random_corruptions_never_panic() {
    let h = GgufReader::new(TINY_GGUF).unwrap().into_header();
    let header_len = h.data_offset as usize;
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut ok, mut err) = (0, 0);
    for i in 0..400 {
        let mut b = TINY_GGUF.to_vec();
        let flips = 1 + next() % 4;
        for _ in 0..flips {
            // Mostly in the header (numbers, lengths, type ids), sometimes anywhere.
            let pos = if i % 4 == 0 {
                next() as usize % b.len()
            } else {
                next() as usize % header_len
            };
            b[pos] = match next() % 4 {
                0 => 0xff,
                1 => 0,
                2 => b[pos] ^ (1 << (next() % 8)),
                _ => next() as u8,
            };
        }
        if i % 5 == 0 {
            b.truncate(next() as usize % b.len());
        }
        let outcome = (|| -> decoding_playground::Result<()> {
            let mut r = GgufReader::new(&b[..])?;
            let h = r.header().clone();
            let _ = ModelParams::from_header(&h);
            let _ = h.tokenizer_meta();
            if let Ok(t) = TextTokenizer::from_gguf(&h) {
                let _ = t.encode("Call me Ishmael. 12 <|im_end|>");
            }
            while let Some((t, bytes)) = r.next_tensor()? {
                assert_eq!(bytes.len(), t.n_bytes());
            }
            Ok(())
        })();
        match outcome {
            Ok(()) => ok += 1,
            Err(Error::Model(_)) | Err(Error::Tokenizer(_)) => err += 1,
            Err(e) => panic!("case {i}: unexpected error kind {e:?}"),
        }
    }
    println!("{ok} corrupted files still parsed, {err} refused");
    assert!(err > 100);
}

#[test]
fn metadata_getters_convert_and_explain() {
    let h = GgufReader::new(TINY_GGUF).unwrap().into_header();
    assert_eq!(h.get_usize("llama.block_count").unwrap(), 2);
    assert_eq!(h.get_u64("llama.block_count").unwrap(), 2);
    assert_eq!(h.get_f32("llama.rope.freq_base").unwrap(), 100000.0);
    assert!(!h.get_bool("tokenizer.ggml.add_space_prefix").unwrap());
    assert_eq!(h.opt_str("nope").unwrap(), None);
    assert_eq!(h.opt_usize("llama.vocab_size").unwrap(), Some(512));
    assert_eq!(h.get_str_array("tokenizer.ggml.tokens").unwrap().len(), 512);
    assert_contains(
        &model_error(h.get_bool("general.name"), "bool"),
        "`general.name` has type string (\"tiny-random-llama\"), expected a bool",
    );
    assert_contains(
        &model_error(h.get_str("llama.block_count"), "str"),
        "has type u32 (2), expected a string",
    );
    assert_contains(
        &model_error(h.get_i32_array("general.languages"), "i32 array"),
        "has type array of string",
    );
    assert_contains(
        &model_error(h.opt_f32("general.name"), "opt"),
        "expected a float",
    );
}

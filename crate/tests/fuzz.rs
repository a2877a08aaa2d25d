//! Seeded mutation fuzzing, on stable Rust (no cargo-fuzz), of every entry point that takes
//! outside bytes: the GGUF reader and loader (weights, tokenizer, the tract model), a split
//! GGUF's joiner, the ONNX
//! checks and loader, the n-gram store, `tokenizer.json`, `config.json`, and the configs JS
//! passes (generate, sampler and score configs, as JSON).
//!
//! Each case mutates a valid file (bit flips, truncations, splices from the file or another
//! valid one, insertions, deletions, and length or count fields set to boundary values) and
//! must give `Ok` or an `Err` with a message: never a panic, and never a large allocation (a
//! counting global allocator measures every case; one request of 1 GiB or more aborts the run
//! after naming the case). One exception is reported but not failed: see [`onnx_tract`].
//!
//! - `FUZZ_ITERS` (default 25 000): sets each target's cases (see [`TARGETS`]); each target
//!   prints its count, time and peak memory (`-- --nocapture`). The default keeps this file
//!   near a minute in CI's debug `cargo test`; `scripts/fuzz.sh` runs a long budget.
//! - `FUZZ_SEED`: the base seed. Every case's mutations follow from (seed, target, case) alone,
//!   so a failure (reported with its seed, case and mutations, its input saved under the target
//!   directory's `tmp/fuzz-crashes/`) replays with `FUZZ_SEED=… FUZZ_CASE=target:case`. That
//!   is why this is a loop over seeded cases and not a proptest runner, which shrinks a failure
//!   by running more cases in the same process (an aborted allocation ends that).
//! - `FUZZ_MAX_FAILURES` (default 3) failures end a target; `FUZZ_STRICT=1` fails on tract's
//!   own panics too.
//!
//! Crashers found are kept in `tests/fixtures/fuzz/` (named `<target>-….bin`) and replayed by
//! `fuzz_regressions_stay_fixed`.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::tiny::{self, CONFIG, GGUF, NGRAMS, NGRAM_CORPUS, ONNX, PROMPT, SPLIT, TOKENIZER};
use common::synthetic_logits;
use decoding_playground::generate::{Engine, GenerateConfig};
use decoding_playground::model::arch::params::ModelParams;
use decoding_playground::model::gguf::GgufReader;
use decoding_playground::model::gguf::split::GgufParts;
use decoding_playground::model::onnx::OnnxDecoder;
use decoding_playground::model::weights::GgufModel;
use decoding_playground::model::ModelConfig;
use decoding_playground::ngram::{NgramBuilder, NgramStore};
use decoding_playground::sampling::{Chain, MirostatConfig, PenaltyConfig, SamplerConfig, TokenBias};
use decoding_playground::score::ScoreConfig;
use decoding_playground::superposed::{SuperposedConfig, SuperposedDecoder};
use decoding_playground::tokenizer::{gguf_tokenizer_json, TextStream, TextTokenizer};
use decoding_playground::{Error, LanguageModel, Result, TractModel};
use pollster::block_on;
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};

const DEFAULT_ITERS: usize = 25_000;
const DEFAULT_SEED: u64 = 0x5eed_f00d;
/// The most one case may allocate at its peak: the seed files are under 600 kB, and nothing
/// read from them should need more than a small multiple of that.
const CASE_PEAK_LIMIT: usize = 64 << 20;

// ------------------------------------------------------------------ allocation meter

/// The system allocator, counting the bytes each thread holds and its peak: every test runs on
/// a thread of its own, so each case is measured apart from the other tests.
struct Meter;

#[global_allocator]
static METER: Meter = Meter;

/// One request this large is refused (Rust then aborts): no input here needs it, and the label
/// of the case (set by [`run_case`]) is printed first, past the test harness's capture.
const REFUSED_BYTES: usize = 1 << 30;

thread_local! {
    static HELD: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
    static CASE: RefCell<String> = const { RefCell::new(String::new()) };
}

fn allocating(size: usize) -> bool {
    if size >= REFUSED_BYTES {
        let _ = CASE.try_with(|case| {
            use std::io::Write;
            let case = case.try_borrow().map(|c| c.clone()).unwrap_or_default();
            let _ = writeln!(std::io::stderr(), "fuzz: {case} asked for one allocation of {size} bytes: refused, aborting");
        });
        return false;
    }
    let _ = HELD.try_with(|held| {
        held.set(held.get() + size);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(held.get())));
    });
    true
}

fn freeing(size: usize) {
    let _ = HELD.try_with(|held| held.set(held.get().saturating_sub(size)));
}

unsafe impl std::alloc::GlobalAlloc for Meter {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        if !allocating(layout.size()) {
            return std::ptr::null_mut();
        }
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        if !allocating(layout.size()) {
            return std::ptr::null_mut();
        }
        unsafe { std::alloc::System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        freeing(layout.size());
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        if !allocating(new_size) {
            return std::ptr::null_mut();
        }
        freeing(layout.size());
        unsafe { std::alloc::System.realloc(ptr, layout, new_size) }
    }
}

/// Runs `f` and returns its result with the most bytes this thread held during it beyond what
/// it held before.
fn measured<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = HELD.with(Cell::get);
    PEAK.with(|peak| peak.set(before));
    let out = f();
    (out, PEAK.with(Cell::get) - before)
}

/// The process's peak resident set (VmHWM), in bytes.
fn peak_rss() -> usize {
    common::process_memory("VmHWM").unwrap_or(0)
}

fn mb(bytes: usize) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

// ------------------------------------------------------------------ mutations

#[derive(Debug, Clone, Copy, PartialEq)]
enum Format {
    /// Little-endian lengths and counts (GGUF, the n-gram store).
    Binary,
    /// Varints (ONNX).
    Protobuf,
    Json,
}

/// One edit of an input; a case applies one to eight of them in turn.
#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, bit: u8 },
    Truncate { len: usize },
    Delete { at: usize, len: usize },
    Insert { at: usize, bytes: Vec<u8> },
    /// `len` bytes at `at` become `bytes`: a length, count or number set to a boundary value
    /// (little-endian u32/u64, a varint, a JSON number), or random bytes.
    Replace { at: usize, len: usize, bytes: Vec<u8> },
    /// `len` bytes from offset `from` of valid file `donor` (the target's seeds) copied over,
    /// or inserted at, `at`.
    Splice { donor: usize, from: usize, len: usize, at: usize, insert: bool },
}

const U32_EDGES: [u32; 20] = [
    0, 1, 2, 3, 4, 8, 9, 12, 13, 32, 0x7f, 0x80, 0xff, 0xffff, 0x1_0000, 0x7fff_ffff, 0x8000_0000, 0xffff_fffe,
    0xffff_ffff, 1 << 24,
];
const U64_EDGES: [u64; 12] = [0, 1, 2, 64, 0xffff_ffff, 1 << 32, 1 << 40, 1 << 48, 1 << 60, i64::MAX as u64, u64::MAX - 1, u64::MAX];
const JSON_EDGES: [&str; 16] = [
    "0", "-1", "1", "2", "0.5", "-0.5", "1e-45", "4294967295", "4294967296", "18446744073709551615",
    "18446744073709551616", "1e308", "-1e308", "1e999", "null", "true",
];
const JSON_WORDS: [&str; 8] = ["null", "true", "false", "[]", "{}", "\"\"", ",", ":"];

/// The valid files of one target and where their structure (lengths, counts, tags) lies.
struct Corpus {
    seeds: Vec<Vec<u8>>,
    /// Per seed, the offsets most mutations aim at (the header, not tensor data).
    hot: Vec<Vec<usize>>,
    format: Format,
    /// JSON: the quoted strings of the seeds (keys, enum names), for insertions.
    words: Vec<Vec<u8>>,
}

impl Corpus {
    fn new(format: Format, seeds: Vec<(Vec<u8>, Vec<usize>)>) -> Self {
        let mut words: Vec<Vec<u8>> = JSON_WORDS.iter().map(|w| w.as_bytes().to_vec()).collect();
        if format == Format::Json {
            for (seed, _) in &seeds {
                let text = String::from_utf8_lossy(seed);
                words.extend(text.split('"').skip(1).step_by(2).map(|s| format!("\"{s}\"").into_bytes()));
            }
            words.sort();
            words.dedup();
        }
        let (seeds, hot) = seeds.into_iter().unzip();
        Corpus { seeds, hot, format, words }
    }

    /// Seeds whose every byte is of interest.
    fn whole(format: Format, seeds: Vec<Vec<u8>>) -> Self {
        let every_offset = |s: Vec<u8>| {
            let all = (0..s.len()).collect();
            (s, all)
        };
        Self::new(format, seeds.into_iter().map(every_offset).collect())
    }
}

fn below(rng: &mut ChaCha8Rng, n: usize) -> usize {
    (rng.next_u64() % n.max(1) as u64) as usize
}

fn coin(rng: &mut ChaCha8Rng) -> bool {
    rng.next_u32() & 1 == 0
}

fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> &'a T {
    &items[below(rng, items.len())]
}

fn varint(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
    out
}

/// A length or count field at `at` set to a boundary value, or nudged by one.
fn field_edit(rng: &mut ChaCha8Rng, data: &[u8], at: usize, format: Format) -> Mutation {
    match format {
        Format::Json => {
            // The number (or word) starting at the first digit from `at` on.
            let start = (at..data.len()).find(|&i| data[i].is_ascii_digit()).unwrap_or(at);
            let start = if start > 0 && data[start - 1] == b'-' { start - 1 } else { start };
            let len = data[start..].iter().skip(1).take_while(|b| b.is_ascii_alphanumeric() || b"+-.".contains(b)).count() + 1;
            Mutation::Replace { at: start, len: len.min(data.len() - start), bytes: pick(rng, &JSON_EDGES).as_bytes().to_vec() }
        }
        Format::Protobuf if coin(rng) => {
            let len = data[at..].iter().take(9).take_while(|&&b| b & 0x80 != 0).count() + 1;
            Mutation::Replace { at, len: len.min(data.len() - at), bytes: varint(*pick(rng, &U64_EDGES)) }
        }
        _ => {
            let width = if coin(rng) { 4 } else { 8 }.min(data.len() - at);
            let mut old = [0u8; 8];
            old[..width].copy_from_slice(&data[at..at + width]);
            let old = u64::from_le_bytes(old);
            let value = match below(rng, 4) {
                0 => old.wrapping_add(1),
                1 => old.wrapping_sub(1),
                _ if width == 4 => *pick(rng, &U32_EDGES) as u64,
                _ => *pick(rng, &U64_EDGES),
            };
            Mutation::Replace { at, len: width, bytes: value.to_le_bytes()[..width].to_vec() }
        }
    }
}

/// One mutation of `data` (a mutated copy of seed `seed`).
fn mutation(rng: &mut ChaCha8Rng, corpus: &Corpus, seed: usize, data: &[u8]) -> Mutation {
    let n = data.len();
    let random_bytes = |rng: &mut ChaCha8Rng| (0..1 + below(rng, 8)).map(|_| rng.next_u32() as u8).collect::<Vec<u8>>();
    if n == 0 {
        return Mutation::Insert { at: 0, bytes: random_bytes(rng) };
    }
    // Three in four aim at the structure; the offsets of the seed still roughly fit its copy.
    let at = match rng.next_u32() % 4 {
        0 => below(rng, n),
        _ => (*pick(rng, &corpus.hot[seed])).min(n - 1),
    };
    match below(rng, 16) {
        0..=2 => Mutation::Flip { at, bit: below(rng, 8) as u8 },
        3..=6 => field_edit(rng, data, at, corpus.format),
        7 => Mutation::Replace { at, len: 1, bytes: vec![rng.next_u32() as u8] },
        8 => Mutation::Truncate { len: if coin(rng) { at } else { below(rng, n) } },
        9 => Mutation::Delete { at, len: 1 + below(rng, 64.min(n - at)) },
        10 | 11 => {
            let bytes = match corpus.format {
                Format::Json => pick(rng, &corpus.words).clone(),
                _ => random_bytes(rng),
            };
            Mutation::Insert { at, bytes }
        }
        _ => {
            let donor = below(rng, corpus.seeds.len());
            let from = below(rng, corpus.seeds[donor].len());
            let len = 1 + below(rng, 256.min(corpus.seeds[donor].len() - from));
            Mutation::Splice { donor, from, len, at, insert: coin(rng) }
        }
    }
}

fn apply(data: &mut Vec<u8>, m: &Mutation, corpus: &Corpus) {
    match *m {
        Mutation::Flip { at, bit } => data[at] ^= 1 << bit,
        Mutation::Truncate { len } => data.truncate(len),
        Mutation::Delete { at, len } => {
            data.drain(at..at + len);
        }
        Mutation::Insert { at, ref bytes } => {
            data.splice(at..at, bytes.iter().copied());
        }
        Mutation::Replace { at, len, ref bytes } => {
            data.splice(at..at + len, bytes.iter().copied());
        }
        Mutation::Splice { donor, from, len, at, insert } => {
            let piece = &corpus.seeds[donor][from..from + len];
            let end = if insert { at } else { (at + len).min(data.len()) };
            data.splice(at..end, piece.iter().copied());
        }
    }
}

/// The input of one case and the mutations that made it from a seed: 1 with probability 1/2,
/// 2 with 1/4, … up to 8.
fn mutate(rng: &mut ChaCha8Rng, corpus: &Corpus) -> (Vec<u8>, usize, Vec<Mutation>) {
    let seed = below(rng, corpus.seeds.len());
    let mut data = corpus.seeds[seed].clone();
    let count = 1 + (rng.next_u32().trailing_zeros() as usize).min(7);
    let mutations: Vec<Mutation> = (0..count)
        .map(|_| {
            let m = mutation(rng, corpus, seed, &data);
            apply(&mut data, &m, corpus);
            m
        })
        .collect();
    (data, seed, mutations)
}

// ------------------------------------------------------------------ running cases

fn env_usize(key: &str) -> Option<usize> {
    std::env::var(key).ok().map(|v| v.parse().unwrap_or_else(|_| panic!("{key}={v:?} is not a number")))
}

fn base_seed() -> u64 {
    std::env::var("FUZZ_SEED").ok().map_or(DEFAULT_SEED, |v| {
        let v = v.trim();
        match v.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => v.parse(),
        }
        .unwrap_or_else(|_| panic!("FUZZ_SEED={v:?} is not a number"))
    })
}

/// Every case has its own generator, so any case replays alone.
fn case_rng(seed: u64, target: &str, case: usize) -> ChaCha8Rng {
    let name = target.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
    ChaCha8Rng::seed_from_u64(seed ^ name ^ (case as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// What one input did: what went wrong, if anything (a panic, an empty error message, a peak
/// allocation over [`CASE_PEAK_LIMIT`]), the error it was refused with, its peak allocation,
/// and whether it went wrong inside tract's analysis of an ONNX graph (see [`onnx_tract`]).
struct Outcome {
    problem: Option<String>,
    error: Option<String>,
    peak: usize,
    in_tract: bool,
}

impl Outcome {
    fn accepted(&self) -> bool {
        self.problem.is_none() && self.error.is_none()
    }
}

fn run_case(label: &str, run: &mut dyn FnMut(&[u8]) -> Result<()>, input: &[u8]) -> Outcome {
    CASE.with(|case| *case.borrow_mut() = label.to_string());
    IN_TRACT.set(false);
    let (outcome, peak) = measured(|| catch_unwind(AssertUnwindSafe(|| run(input))));
    let problem = match &outcome {
        Err(panic) => Some(format!(
            "panicked: {}",
            panic.downcast_ref::<&str>().copied().or(panic.downcast_ref::<String>().map(String::as_str)).unwrap_or("?")
        )),
        Ok(Err(e)) if e.to_string().trim().is_empty() => Some(format!("an error without a message: {e:?}")),
        _ if peak > CASE_PEAK_LIMIT => Some(format!("allocated {} at its peak", mb(peak))),
        _ => None,
    };
    let error = outcome.ok().and_then(Result::err).map(|e| e.to_string());
    Outcome { problem, error, peak, in_tract: IN_TRACT.get() }
}

/// Runs `cases` mutated inputs through `run`, then fails listing the first failures. What went
/// wrong inside tract's analysis of an ONNX graph that passed our checks is listed apart, and
/// fails the run only with `FUZZ_STRICT=1` (see [`onnx_tract`]).
fn fuzz(target: &str, corpus: &Corpus, cases: usize, mut run: impl FnMut(&[u8]) -> Result<()>) {
    let seed = base_seed();
    let only = std::env::var("FUZZ_CASE").ok();
    let only: Option<usize> = match only.as_deref().and_then(|v| v.split_once(':')) {
        Some((t, case)) if t == target => Some(case.parse().expect("FUZZ_CASE=target:case")),
        Some(_) => return,
        None => None,
    };
    let strict = std::env::var_os("FUZZ_STRICT").is_some();
    let crash_dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-crashes");
    let (mut accepted, mut max_peak, mut failures, mut in_tract) = (0, 0, Vec::new(), Vec::new());
    let started = std::time::Instant::now();
    let mut ran = 0;
    for case in only.map_or(0..cases, |case| case..case + 1) {
        ran += 1;
        let (input, from, mutations) = mutate(&mut case_rng(seed, target, case), corpus);
        let label = format!("{target} case {case} (replay: FUZZ_SEED={seed:#x} FUZZ_CASE={target}:{case})");
        let path = crash_dir.join(format!("{target}-{seed:x}-{case}.bin"));
        let save = || {
            std::fs::create_dir_all(&crash_dir).unwrap();
            std::fs::write(&path, &input).unwrap();
        };
        if only.is_some() {
            save(); // before running it: a refused allocation aborts
        }
        let outcome = run_case(&label, &mut run, &input);
        accepted += outcome.accepted() as usize;
        max_peak = max_peak.max(outcome.peak);
        if outcome.problem.is_some() || only.is_some() {
            save();
            let report = format!(
                "{label}: {}{}\n  from seed file {from} by {mutations:?}\n  input ({} bytes) saved to {}",
                if outcome.in_tract { "inside tract's graph analysis, " } else { "" },
                outcome.problem.as_deref().unwrap_or("ok"),
                input.len(),
                path.display()
            );
            if outcome.problem.is_some() && outcome.in_tract && !strict {
                in_tract.push(report);
                continue;
            }
            eprintln!("{report}");
            failures.extend(outcome.problem.map(|_| report));
            if failures.len() >= env_usize("FUZZ_MAX_FAILURES").unwrap_or(3) {
                break;
            }
        }
    }
    println!(
        "fuzz {target}: {ran} cases in {:.1} s (FUZZ_SEED={seed:#x}), {accepted} accepted, {} refused; largest case peak {}, process peak RSS {}",
        started.elapsed().as_secs_f64(),
        ran - accepted,
        mb(max_peak),
        mb(peak_rss())
    );
    if !in_tract.is_empty() {
        println!(
            "fuzz {target}: {} graph(s) that pass our checks made tract panic or over-allocate (tract bugs, not failures without FUZZ_STRICT=1); the first:\n{}",
            in_tract.len(),
            in_tract[..in_tract.len().min(3)].join("\n")
        );
    }
    assert!(failures.is_empty(), "{} failing case(s):\n{}", failures.len(), failures.join("\n"));
}

/// Cases for a target that runs `per_100` per 100 of `FUZZ_ITERS` (at least 4).
fn cases(per_100: usize) -> usize {
    (env_usize("FUZZ_ITERS").unwrap_or(DEFAULT_ITERS) * per_100 / 100).max(4)
}

// ------------------------------------------------------------------ targets

const TEXT: &str = "Once upon a time, 42 <|im_end|> naïve café 🦀";

fn onnx_config() -> ModelConfig {
    ModelConfig::from_json(CONFIG).unwrap()
}

fn tokenizer_use(t: &TextTokenizer) -> Result<()> {
    let ids = t.encode(TEXT)?;
    t.decode(&ids)?;
    let mut stream = TextStream::default();
    for &id in &ids {
        stream.push(t, id)?;
    }
    t.end_of_text_ids();
    t.fingerprint();
    Ok(())
}

/// Every reader of a GGUF: header, Llama dimensions, tokenizer metadata, the tokenizer, each
/// tensor, and the whole load into weights.
fn gguf(bytes: &[u8]) -> Result<()> {
    let mut reader = GgufReader::new(bytes)?;
    let header = reader.header().clone();
    let _ = ModelParams::from_header(&header);
    let _ = header.tokenizer_meta();
    if let Ok(t) = TextTokenizer::from_gguf(&header) {
        tokenizer_use(&t)?;
    }
    while reader.next_tensor()?.is_some() {}
    GgufModel::read(bytes).map(drop)
}

/// A split GGUF whose middle part is the input, joined with the first and last, then loaded.
fn gguf_split(bytes: &[u8]) -> Result<()> {
    GgufModel::read(GgufParts::join(vec![SPLIT[0], bytes, SPLIT[2]])?).map(drop)
}

fn prefill(mut model: TractModel) -> Result<()> {
    let ids: Vec<u32> = (0..3).map(|i| i * 7 % model.vocab_size() as u32).collect();
    block_on(model.prefill(&ids)).map(drop)
}

fn gguf_tract(bytes: &[u8]) -> Result<()> {
    let (model, tokenizer) = TractModel::from_gguf(bytes)?;
    tokenizer_use(&tokenizer)?;
    prefill(model)
}

fn onnx_checks(bytes: &[u8]) -> Result<()> {
    let _ = OnnxDecoder::read(bytes, None);
    OnnxDecoder::read(bytes, Some(&onnx_config())).map(drop)
}

thread_local! {
    static IN_TRACT: Cell<bool> = const { Cell::new(false) };
}

/// Our checks, then tract's parser and analysis of the graph (the graph is the user's: what it
/// computes when run is not the loader's business). tract 0.23 trusts what only its analysis
/// can check (an axis against its input's rank, say) and panics on such nonsense; checking that
/// before tract would take a rank and shape inference of our own. So what goes wrong in there,
/// after our checks passed, is counted apart from our own failures: by [`IN_TRACT`].
fn onnx_tract(bytes: &[u8]) -> Result<()> {
    let config = onnx_config();
    OnnxDecoder::read(bytes, Some(&config))?;
    IN_TRACT.set(true);
    TractModel::from_bytes(bytes, Some(&config))?;
    IN_TRACT.set(false);
    Ok(())
}

fn ngram_store(bytes: &[u8]) -> Result<()> {
    let store = NgramStore::from_bytes(bytes)?;
    let _ = store.check_tokenizer(512, 0);
    let vocab = store.vocab_size() as u32;
    let history: Vec<u32> = (0..8).map(|i| i * 31 % vocab).collect();
    store.count(&history[..3])?;
    store.probability(&history[..2], history[2])?;
    let mut out = [0.0; 3];
    store.mixture(&history, &[2, 3, 4, 5, 6], &[0.1, 0.2, 0.3, 0.2, 0.2], &history[..3], &mut out);
    let mut builder = store.into_builder();
    builder.add_document(&history)?;
    builder.build().map(drop)
}

fn tokenizer_json(bytes: &[u8]) -> Result<()> {
    tokenizer_use(&TextTokenizer::from_bytes(bytes)?)
}

fn config_json(bytes: &[u8]) -> Result<()> {
    let text = std::str::from_utf8(bytes).map_err(|e| Error::Model(e.to_string()))?;
    let config = ModelConfig::from_json(text)?;
    OnnxDecoder::read(ONNX, Some(&config)).map(drop)
}

fn invalid(e: serde_json::Error) -> Error {
    Error::InvalidConfig(e.to_string())
}

/// A few steps of a chain over the tiny model's vocabulary.
fn sample(config: &SamplerConfig) -> Result<()> {
    let mut chain = Chain::new(config)?;
    for step in 0..3 {
        let record = chain.sample(&synthetic_logits(512, 5, step))?;
        chain.accept(record.token);
    }
    Ok(())
}

thread_local! {
    static STORE: NgramStore = NgramStore::from_bytes(NGRAMS).unwrap();
}

/// The JS configs parsed as wasm parses them, validated and run without a model: a sampler
/// chain, superposed decoding's decoder over synthetic logits, the score config's bound.
fn js_config(bytes: &[u8]) -> Result<()> {
    let sampler = serde_json::from_slice::<SamplerConfig>(bytes).map_err(invalid).and_then(|c| sample(&c));
    let score = serde_json::from_slice::<ScoreConfig>(bytes).map_err(invalid);
    let generate = serde_json::from_slice::<GenerateConfig>(bytes).map_err(invalid).and_then(|config| {
        sample(&config.sampler)?;
        if let Some(superposed) = &config.superposed {
            let mut decoder = SuperposedDecoder::new(superposed)?;
            let stop = config.stop_tokens.clone().unwrap_or_default();
            STORE.with(|store| -> Result<()> {
                for step in 0..3 {
                    decoder.step(&synthetic_logits(512, 9, step), &[1, 2, 3], Some(store), &stop)?;
                }
                Ok(())
            })?;
            decoder.results(&stop);
        }
        Ok(())
    });
    // Accepted when it is a valid config of any of the three.
    sampler.or(score.map(drop)).or(generate)
}

thread_local! {
    static ENGINE: RefCell<Option<Engine<TractModel>>> = const { RefCell::new(None) };
}

/// Drops the engine of [`js_config_engine`] while the thread's locals are alive: a tract model
/// dropped with them reaches for tract's own, already gone, and aborts.
struct DropsTheEngine;

impl Drop for DropsTheEngine {
    fn drop(&mut self) {
        let _ = ENGINE.try_with(|engine| engine.borrow_mut().take());
    }
}

/// Runs `f` with this thread's tiny engine (made on first use, with its n-gram store).
fn with_engine<T>(f: impl FnOnce(&mut Engine<TractModel>) -> T) -> T {
    ENGINE.with(|engine| {
        let mut engine = engine.borrow_mut();
        f(engine.get_or_insert_with(|| {
            let mut engine = tiny::engine();
            engine.set_ngram_store(Some(NgramStore::from_bytes(NGRAMS).unwrap())).unwrap();
            engine
        }))
    })
}

/// The JS configs through the engine as the wasm API runs them: a score, or `start` and two
/// steps of a generation (a sampler config alone: with the other settings' defaults).
fn js_config_engine(bytes: &[u8]) -> Result<()> {
    with_engine(|engine| {
        let score = serde_json::from_slice::<ScoreConfig>(bytes).map_err(invalid);
        let score = score.and_then(|config| block_on(engine.score(PROMPT, &config)).map(drop));
        let sampler = serde_json::from_slice::<SamplerConfig>(bytes).map(|sampler| GenerateConfig { sampler, ..Default::default() });
        let generate = serde_json::from_slice::<GenerateConfig>(bytes).or(sampler).map_err(invalid).and_then(|config| {
            let mut generation = block_on(engine.start(PROMPT, &config))?;
            for _ in 0..2 {
                block_on(engine.step(&mut generation))?;
            }
            Ok(())
        });
        score.or(generate)
    })
}

thread_local! {
    static TOKENIZER_JSON: TextTokenizer = TextTokenizer::from_bytes(TOKENIZER).unwrap();
}

/// Text as JS passes it (a prompt, a corpus for a personal n-gram store): tokenized, decoded,
/// and built into a store that must read back as itself.
fn text(bytes: &[u8]) -> Result<()> {
    let text = String::from_utf8_lossy(bytes);
    TOKENIZER_JSON.with(|tokenizer| {
        let ids = tokenizer.encode(&text)?;
        tokenizer.decode(&ids)?;
        let mut builder = NgramBuilder::for_tokenizer(tokenizer)?;
        builder.add_text(tokenizer, &text)?;
        let store = builder.build()?;
        assert_eq!(NgramStore::from_bytes(&store.to_bytes())?, store, "a built store reads back as itself");
        Ok(())
    })
}

/// Token ids as JS passes them (little-endian u32s here), decoded and scored by the engine.
fn ids(bytes: &[u8]) -> Result<()> {
    let ids: Vec<u32> = bytes.chunks_exact(4).map(|b| u32::from_le_bytes(b.try_into().unwrap())).collect();
    with_engine(|engine| {
        engine.tokenizer().decode(&ids)?;
        block_on(engine.log_probs(&ids)).map(drop)
    })
}

/// Each target: its name (also the prefix of its regression inputs), what it runs, and its
/// cases per 100 of `FUZZ_ITERS`: about as many as take each the same time, the tract loaders
/// (10 to 15 ms a case in debug) and the text (2 ms) fewest.
type Run = fn(&[u8]) -> Result<()>;

const TARGETS: [(&str, Run, usize); 12] = [
    ("gguf", gguf, 100),
    ("gguf-split", gguf_split, 100),
    ("gguf-tract", gguf_tract, 5),
    ("onnx-checks", onnx_checks, 100),
    ("onnx-tract", onnx_tract, 5),
    ("ngram", ngram_store, 1000),
    ("tokenizer-json", tokenizer_json, 100),
    ("config-json", config_json, 100),
    ("js-config", js_config, 400),
    ("js-config-engine", js_config_engine, 50),
    ("text", text, 10),
    ("ids", ids, 50),
];

/// Offsets of the tags, varints and length prefixes of a protobuf message, nested messages
/// included (`None` unless `buf` parses as one): the bytes of tensor data are left out.
fn protobuf_fields(buf: &[u8], base: usize) -> Option<Vec<usize>> {
    let mut out = Vec::new();
    let mut i = 0;
    let read_varint = |i: &mut usize| -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *buf.get(*i)?;
            *i += 1;
            v |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    };
    while i < buf.len() {
        out.push(base + i);
        let tag = read_varint(&mut i)?;
        out.push(base + i);
        match tag & 7 {
            0 => drop(read_varint(&mut i)?),
            1 => i += 8,
            5 => i += 4,
            2 => {
                let len = read_varint(&mut i)? as usize;
                let body = buf.get(i..i.checked_add(len)?)?;
                out.extend(protobuf_fields(body, base + i).unwrap_or_default());
                i += len;
            }
            _ => return None,
        }
    }
    (i == buf.len()).then_some(out)
}

fn json_seeds() -> Vec<Vec<u8>> {
    let mut configs: Vec<serde_json::Value> = Vec::new();
    for fixture in [common::FIXTURE_JSON, tiny::GENERATION_FIXTURE, tiny::GGUF_GENERATION_FIXTURE, tiny::SUPERPOSED_FIXTURE] {
        let cases: Vec<serde_json::Value> = serde_json::from_str(fixture).unwrap();
        configs.extend(cases.into_iter().map(|c| c["config"].clone()));
    }
    // Every field, set: the mutations then reach each one.
    let sampler = SamplerConfig {
        min_p: Some(0.05),
        typical_p: Some(0.9),
        mirostat: Some(MirostatConfig { version: 2, tau: 3.0, eta: 0.1 }),
        penalties: PenaltyConfig { last_n: 16, repetition: 1.1, presence: 0.2, frequency: 0.1 },
        logit_bias: vec![TokenBias { token: 5, bias: -1.0 }, TokenBias { token: 6, bias: f32::NEG_INFINITY }],
        ..SamplerConfig::default()
    };
    let superposed = SuperposedConfig { token_sample: Some(5), ..SuperposedConfig::default() };
    let generate = GenerateConfig { max_tokens: 4, stop_tokens: Some(vec![2]), sampler, superposed: Some(superposed), ..Default::default() };
    configs.push(serde_json::to_value(generate).unwrap());
    configs.push(serde_json::to_value(ScoreConfig { context: "Once upon".into(), top_alternatives: 5 }).unwrap());
    let mut seeds: Vec<Vec<u8>> = configs.iter().map(|c| serde_json::to_vec(c).unwrap()).collect();
    seeds.sort();
    seeds.dedup();
    seeds
}

fn corpus(target: &str) -> Corpus {
    match target {
        "gguf" | "gguf-tract" => {
            let header_len = GgufReader::new(GGUF).unwrap().header().data_offset as usize;
            Corpus::new(Format::Binary, vec![(GGUF.to_vec(), (0..header_len).collect())])
        }
        "gguf-split" => {
            let header_len = GgufReader::new(SPLIT[1]).unwrap().header().data_offset as usize;
            Corpus::new(Format::Binary, vec![(SPLIT[1].to_vec(), (0..header_len).collect())])
        }
        "onnx-checks" | "onnx-tract" => Corpus::new(Format::Protobuf, vec![(ONNX.to_vec(), protobuf_fields(ONNX, 0).unwrap())]),
        "ngram" => {
            // A second valid store, built from half the corpus, to splice from.
            let tokenizer = TextTokenizer::from_bytes(TOKENIZER).unwrap();
            let mut builder = NgramBuilder::for_tokenizer(&tokenizer).unwrap();
            builder.add_text(&tokenizer, &NGRAM_CORPUS[..NGRAM_CORPUS.len() / 2]).unwrap();
            let other = builder.build().unwrap().to_bytes();
            Corpus::new(Format::Binary, [NGRAMS.to_vec(), other].into_iter().map(|s| (s, (0..40).collect())).collect())
        }
        "tokenizer-json" => {
            let header = GgufReader::new(GGUF).unwrap().into_header();
            let from_gguf = serde_json::to_vec(&gguf_tokenizer_json(&header).unwrap()).unwrap();
            Corpus::whole(Format::Json, vec![TOKENIZER.to_vec(), from_gguf])
        }
        "config-json" => {
            let compact = serde_json::to_vec(&serde_json::from_str::<serde_json::Value>(CONFIG).unwrap()).unwrap();
            Corpus::whole(Format::Json, vec![CONFIG.as_bytes().to_vec(), compact])
        }
        "js-config" | "js-config-engine" => Corpus::whole(Format::Json, json_seeds()),
        "text" => Corpus::whole(Format::Json, [NGRAM_CORPUS, TEXT, PROMPT].map(|t| t.as_bytes().to_vec()).to_vec()),
        "ids" => {
            let ids = TextTokenizer::from_bytes(TOKENIZER).unwrap().encode(PROMPT).unwrap();
            Corpus::whole(Format::Binary, vec![ids.iter().flat_map(|id| id.to_le_bytes()).collect()])
        }
        other => panic!("no target {other}"),
    }
}

fn fuzz_target(name: &str) {
    let _engine = DropsTheEngine;
    let &(_, run, per_100) = TARGETS.iter().find(|t| t.0 == name).unwrap();
    fuzz(name, &corpus(name), cases(per_100), run);
}

#[test]
fn fuzz_gguf() {
    fuzz_target("gguf");
}

#[test]
fn fuzz_gguf_split() {
    fuzz_target("gguf-split");
}

#[test]
fn fuzz_gguf_tract() {
    fuzz_target("gguf-tract");
}

#[test]
fn fuzz_onnx_checks() {
    fuzz_target("onnx-checks");
}

#[test]
fn fuzz_onnx_tract() {
    fuzz_target("onnx-tract");
}

#[test]
fn fuzz_ngram_store() {
    fuzz_target("ngram");
}

#[test]
fn fuzz_tokenizer_json() {
    fuzz_target("tokenizer-json");
}

#[test]
fn fuzz_config_json() {
    fuzz_target("config-json");
}

#[test]
fn fuzz_js_configs() {
    fuzz_target("js-config");
}

#[test]
fn fuzz_js_configs_through_the_engine() {
    fuzz_target("js-config-engine");
}

#[test]
fn fuzz_text() {
    fuzz_target("text");
}

#[test]
fn fuzz_token_ids() {
    fuzz_target("ids");
}

#[test]
fn the_seeds_are_valid() {
    let _engine = DropsTheEngine;
    for (name, run, _) in TARGETS {
        for (i, seed) in corpus(name).seeds.iter().enumerate() {
            let outcome = run_case(name, &mut |b| run(b), seed);
            assert!(outcome.accepted(), "{name} seed {i}: {:?}", outcome.problem.or(outcome.error));
        }
    }
}

/// The inputs found crashing a target (`tests/fixtures/fuzz/<target>-….bin`) stay fixed.
#[test]
fn fuzz_regressions_stay_fixed() {
    let _engine = DropsTheEngine;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/fuzz");
    let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(!files.is_empty(), "no regression inputs in {dir}");
    let mut failures = Vec::new();
    for path in files {
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        // The longest target name that prefixes the file's ("gguf-tract-…" is not "gguf").
        let &(_, run, _) = TARGETS
            .iter()
            .filter(|t| file.starts_with(&format!("{}-", t.0)))
            .max_by_key(|t| t.0.len())
            .unwrap_or_else(|| panic!("{file} names no target"));
        let problem = run_case(&file, &mut |b| run(b), &std::fs::read(&path).unwrap()).problem;
        failures.extend(problem.map(|p| format!("{file}: {p}")));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `bytes` with `value` written at `at`.
fn patched(bytes: &[u8], at: usize, value: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[at..at + value.len()].copy_from_slice(value);
    out
}

/// Where the value of GGUF metadata key `key` starts (after its u32 type).
fn gguf_value_at(key: &str) -> usize {
    let mut needle = (key.len() as u64).to_le_bytes().to_vec();
    needle.extend(key.as_bytes());
    GGUF.windows(needle.len()).position(|w| w == needle).unwrap() + needle.len() + 4
}

/// Where the dims of GGUF tensor `name` start in its record (after its u32 dim count).
fn gguf_dims_at(name: &str) -> usize {
    let header_len = GgufReader::new(GGUF).unwrap().header().data_offset as usize;
    let mut needle = (name.len() as u64).to_le_bytes().to_vec();
    needle.extend(name.as_bytes());
    let records = GGUF[..header_len].windows(needle.len()).rposition(|w| w == needle).unwrap();
    records + needle.len() + 4
}

/// The tiny ONNX with its graph edited.
fn onnx_with(edit: impl FnOnce(&mut tract_onnx::pb::GraphProto)) -> Vec<u8> {
    use prost::Message;
    let mut proto = tract_onnx::pb::ModelProto::decode(ONNX).unwrap();
    edit(proto.graph.as_mut().unwrap());
    proto.encode_to_vec()
}

/// The tiny ONNX with the dims of initializer `name` replaced.
fn onnx_with_dims(name: &str, dims: &[i64]) -> Vec<u8> {
    onnx_with(|graph| graph.initializer.iter_mut().find(|t| t.name == name).unwrap().dims = dims.to_vec())
}

/// What tract's ONNX parser trusts and our checks refuse first (each made tract panic or
/// allocate without bound when the fuzzer found it).
#[test]
fn onnx_graphs_tract_would_choke_on_are_refused() {
    let node = |name: &'static str| move |g: &mut tract_onnx::pb::GraphProto| g.node.iter().position(|n| n.name == name).unwrap();
    let cases: [(&str, Vec<u8>, &str); 3] = [
        ("a Transpose without input", onnx_with(|g| { let i = node("/Transpose_88")(g); g.node[i].input.clear() }), "(Transpose) has no inputs"),
        ("strings as raw bytes", onnx_with(|g| g.initializer.iter_mut().find(|t| t.name == "c.ax2").unwrap().data_type = 8), "holds strings stored as raw bytes"),
        ("a perm that is not a permutation", onnx_with(|g| { let i = node("/Transpose_114")(g); g.node[i].attribute[0].ints = vec![0, 1, 3, 1] }), "(Transpose) has perm [0, 1, 3, 1], which is not a permutation"),
    ];
    for (what, bytes, expected) in cases {
        let Outcome { problem, error, .. } = run_case(what, &mut onnx_tract, &bytes);
        assert_eq!(problem, None, "{what}");
        let error = error.unwrap_or_else(|| panic!("{what}: accepted"));
        assert!(error.contains(expected), "{what}: {error:?} lacks {expected:?}");
    }
}

fn json_with(json: &[u8], pointer: &str, value: serde_json::Value) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(json).unwrap();
    *v.pointer_mut(pointer).unwrap_or_else(|| panic!("{pointer}")) = value;
    serde_json::to_vec(&v).unwrap()
}

/// Inputs whose declared sizes ask for gigabytes (or more) are refused before anything of that
/// size is allocated; parameters that merely bound something (a context length, a history
/// length, a top-k) are accepted without allocating for them either.
#[test]
fn declared_gigabytes_are_refused_before_allocating() {
    let _engine = DropsTheEngine;
    let baseline = peak_rss();
    let u32le = |v: u32| v.to_le_bytes().to_vec();
    let u64le = |v: u64| v.to_le_bytes().to_vec();
    let tokens = gguf_value_at("tokenizer.ggml.tokens");
    let embd = gguf_dims_at("token_embd.weight");
    let ngrams = |at: usize, v: &[u8]| patched(NGRAMS, at, v);
    let generate = |pointer: &str, value: serde_json::Value| json_with(br#"{"maxTokens": 2, "sampler": {"topK": 40, "penalties": {"lastN": 64, "repetition": 1.1}}, "superposed": null}"#, pointer, value);
    use serde_json::json;
    // (what, target, input, expected error message; `None`: accepted)
    let cases: Vec<(&str, &str, Vec<u8>, Option<&str>)> = vec![
        ("GGUF: 2^40 tensors", "gguf", patched(GGUF, 8, &u64le(1 << 40)), Some("claims 1099511627776 tensors")),
        ("GGUF: 2^64 - 1 metadata entries", "gguf", patched(GGUF, 16, &u64le(u64::MAX)), Some("metadata entries")),
        ("GGUF: a key of 2^60 bytes", "gguf", patched(GGUF, 24, &u64le(1 << 60)), Some("a string of 1152921504606846976 bytes")),
        ("GGUF: 2^40 tokens", "gguf", patched(GGUF, tokens + 4, &u64le(1 << 40)), Some("an array of 1099511627776 string values")),
        ("GGUF: a token of 2^40 bytes", "gguf", patched(GGUF, tokens + 12, &u64le(1 << 40)), Some("a string of 1099511627776 bytes")),
        ("GGUF: token_embd 2^40 x 2^20", "gguf", patched(GGUF, embd, &[u64le(1 << 40), u64le(1 << 20)].concat()), Some("overlap")),
        ("GGUF: 2^32 - 1 layers", "gguf", patched(GGUF, gguf_value_at("llama.block_count"), &u32le(u32::MAX)), Some("`llama.block_count` is 4294967295")),
        ("GGUF: embedding length 2^32 - 1", "gguf", patched(GGUF, gguf_value_at("llama.embedding_length"), &u32le(u32::MAX)), Some("embedding length 4294967295")),
        ("GGUF: context of 2^32 - 1", "gguf-tract", patched(GGUF, gguf_value_at("llama.context_length"), &u32le(u32::MAX)), None),
        ("n-gram store: 2^32 - 2 tokens", "ngram", ngrams(32, &u64le(u32::MAX as u64 - 1)), Some("length does not match")),
        ("n-gram store: 2^62 tokens", "ngram", ngrams(32, &u64le(1 << 62)), Some("length does not match")),
        ("ONNX: embeddings 2^31 x 2^31", "onnx-checks", onnx_with_dims("model.embed_tokens.weight", &[1 << 31, 1 << 31]), Some("for 4611686018427387904 elements")),
        ("ONNX: embeddings 512 x 2^40", "onnx-checks", onnx_with_dims("model.embed_tokens.weight", &[512, 1 << 40]), Some("for 562949953421312 elements")),
        ("ONNX: output head 64 x 2^40", "onnx-tract", onnx_with_dims("lm_head.weight_t", &[64, 1 << 40]), Some("does not match shape")),
        ("config.json: context of 2^63", "config-json", json_with(CONFIG.as_bytes(), "/context_length", json!(1u64 << 63)), None),
        ("tokenizer.json: token id 2^32 - 1", "tokenizer-json", json_with(TOKENIZER, "/added_tokens/0/id", json!(u32::MAX)), None),
        ("config: penalties over the last 2^40 tokens", "js-config-engine", generate("/sampler/penalties/lastN", json!(1u64 << 40)), None),
        ("config: top-k 2^64 - 1", "js-config-engine", generate("/sampler/topK", json!(u64::MAX)), None),
        ("config: 2^62 tokens per superposed draft", "js-config", generate("/superposed", json!({"tokenSample": 1u64 << 62, "alpha": 0})), None),
        ("config: 2^63 new tokens", "js-config-engine", generate("/maxTokens", json!(1u64 << 63)), None),
    ];
    for (what, target, input, expected) in cases {
        let &(_, run, _) = TARGETS.iter().find(|t| t.0 == target).unwrap();
        let Outcome { problem, error, peak, .. } = run_case(what, &mut |b| run(b), &input);
        let said = problem.as_deref().or(error.as_deref()).unwrap_or("accepted");
        println!("{what}: {said} at a peak of {}", mb(peak));
        assert_eq!(problem, None, "{what}");
        match expected {
            None => assert_eq!(error, None, "{what}"),
            Some(needle) => {
                let error = error.unwrap_or_else(|| panic!("{what}: accepted"));
                assert!(error.contains(needle), "{what}: {error:?} lacks {needle:?}");
            }
        }
    }
    let rss = peak_rss();
    println!("peak RSS {} (at the start {})", mb(rss), mb(baseline));
    assert!(rss < baseline + (1 << 30), "peak RSS {} over a start of {}", mb(rss), mb(baseline));
}

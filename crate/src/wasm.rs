//! The JS-facing API: thin wrappers that convert at the boundary with serde-wasm-bindgen and
//! turn core errors into JS `Error`s carrying the same message.

use crate::chat::{checked_source, ChatMessage};
use crate::generate::{Engine, GenerateConfig, Generation};
use crate::model::auto::{AutoModel, Backend, BackendInfo};
use crate::model::gguf::split::GgufParts;
use crate::model::webgpu::GpuOptions;
use crate::model::weights::GgufModel;
use crate::model::onnx::{data_files, DataFile};
use crate::model::{LanguageModel, ModelConfig, TractModel};
use crate::ngram::{NgramBuilder, NgramStore};
use crate::sampling::{Chain, SamplerConfig};
use crate::score::ScoreConfig;
use crate::summary::ModelSummary;
use crate::tokenizer::TextTokenizer;
use crate::Error;
use serde::{de::DeserializeOwned, Serialize};
use std::cell::{Cell, RefCell, RefMut};
use std::ops::{Deref, DerefMut};
use std::rc::Rc;
use std::sync::Arc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

#[wasm_bindgen(start)]
fn start() {
    std::panic::set_hook(Box::new(|info| {
        // The module traps right after this hook: record what happened and reject the promises
        // in flight, which would otherwise never settle, then let the console say where.
        fail_for_good(info.to_string());
        console_error_panic_hook::hook(info);
    }));
}

// ---- after a panic ----
// A panic in wasm traps: the module's memory is left as it was mid-call (a RefCell borrowed, a
// cache half written) and no later call can be trusted. Every entry point checks for it first.

thread_local! {
    static FAILURE: RefCell<Option<String>> = const { RefCell::new(None) };
    /// The reject functions of the promises in flight, by call.
    static IN_FLIGHT: RefCell<Vec<(u64, js_sys::Function)>> = const { RefCell::new(Vec::new()) };
    static NEXT_CALL: Cell<u64> = const { Cell::new(0) };
    static FAILURE_LISTENERS: RefCell<Vec<js_sys::Function>> = const { RefCell::new(Vec::new()) };
}

/// The error every call gets once the module has failed: an `Error` named `EngineFailedError`,
/// so that callers (the page's worker) can tell it from a refused input.
fn failed_error(what: &str) -> JsValue {
    let error = js_sys::Error::new(&format!("the engine failed ({what}) and cannot be used any more: load the model again in a new worker or page"));
    error.set_name("EngineFailedError");
    let _ = js_sys::Reflect::set(&error, &"code".into(), &"EngineFailed".into());
    error.into()
}

fn fail_for_good(what: String) {
    let error = failed_error(&what);
    // try_borrow: the panic may have happened with either borrowed.
    let _ = FAILURE.try_with(|f| f.try_borrow_mut().map(|mut f| *f = Some(what)));
    if let Ok(Ok(mut calls)) = IN_FLIGHT.try_with(|c| c.try_borrow_mut().map(|mut calls| std::mem::take(&mut *calls))) {
        for (_, reject) in calls.drain(..) {
            let _ = reject.call1(&JsValue::NULL, &error);
        }
    }
    if let Ok(Ok(listeners)) = FAILURE_LISTENERS.try_with(|l| l.try_borrow().map(|l| l.clone())) {
        for listener in listeners {
            let _ = listener.call1(&JsValue::NULL, &error);
        }
    }
}

/// Calls `listener` with the `EngineFailedError` when the module panics, or at once if it
/// already has. A panic in a call that no promise waits on (a synchronous call, or one made
/// between requests) would otherwise go unseen until the next call: a worker uses this to
/// report its failure as it happens.
#[wasm_bindgen(js_name = onEngineFailure)]
pub fn on_engine_failure(
    #[wasm_bindgen(unchecked_param_type = "(error: Error & { code: \"EngineFailed\" }) => void")] listener: js_sys::Function,
) {
    match alive() {
        Err(error) => {
            let _ = listener.call1(&JsValue::NULL, &error);
        }
        Ok(()) => FAILURE_LISTENERS.with(|l| l.borrow_mut().push(listener)),
    }
}

/// Errs with the failure once the module has panicked.
fn alive() -> Result<(), JsValue> {
    match FAILURE.with(|f| f.borrow().clone()) {
        Some(what) => Err(failed_error(&what)),
        None => Ok(()),
    }
}

/// Runs `future` as a JS promise that also rejects (with the failure) if the module panics while
/// it is in flight, and rejects at once if it already has.
fn guarded(future: impl std::future::Future<Output = Result<JsValue, JsValue>> + 'static) -> js_sys::Promise {
    if let Err(error) = alive() {
        return js_sys::Promise::reject(&error);
    }
    let id = NEXT_CALL.with(|n| n.replace(n.get() + 1));
    let mut settle = None;
    let promise = js_sys::Promise::new(&mut |resolve, reject| settle = Some((resolve, reject)));
    let (resolve, reject) = settle.expect("the Promise executor runs at once");
    IN_FLIGHT.with(|c| c.borrow_mut().push((id, reject.clone())));
    wasm_bindgen_futures::spawn_local(async move {
        let result = future.await;
        IN_FLIGHT.with(|c| c.borrow_mut().retain(|(call, _)| *call != id));
        let _ = match result {
            Ok(value) => resolve.call1(&JsValue::NULL, &value),
            Err(error) => reject.call1(&JsValue::NULL, &error),
        };
    });
    promise
}

/// Panics on purpose, for the tests of what a trap leaves behind (the page's worker restart,
/// the clear error of every later call). Not part of the API.
#[doc(hidden)]
#[wasm_bindgen(js_name = __panicForTesting)]
pub fn panic_for_testing(message: &str) {
    panic!("{message}");
}

/// A JS `Error` with the core error's message, its stable `code` (see [`Error::code`]) and, for
/// a parameter out of range, the `field` it concerns.
fn js_error(error: Error) -> JsValue {
    let js = js_sys::Error::new(&error.to_string());
    let _ = js_sys::Reflect::set(&js, &"code".into(), &error.code().into());
    if let Error::InvalidParameter { name, .. } = &error {
        let _ = js_sys::Reflect::set(&js, &"field".into(), &(*name).into());
    }
    js.into()
}

/// What a cancelled or aborted `generate()` rejects with: a `DOMException` named "AbortError",
/// as `fetch` rejects, with `code` "Cancelled" like the other errors, and the steps it made
/// before the abort in `steps`.
fn abort_error(steps: js_sys::Array) -> JsValue {
    let message = JsValue::from(Error::Cancelled.to_string());
    let dom_exception = js_sys::Reflect::get(&js_sys::global(), &"DOMException".into())
        .ok()
        .and_then(|c| c.dyn_into::<js_sys::Function>().ok())
        .and_then(|c| js_sys::Reflect::construct(&c, &js_sys::Array::of2(&message, &"AbortError".into())).ok());
    let error = dom_exception.unwrap_or_else(|| {
        let error = js_error(Error::Cancelled);
        let _ = js_sys::Reflect::set(&error, &"name".into(), &"AbortError".into());
        error
    });
    let object = js_sys::Object::from(error);
    // DOMException's own `code` is a getter without a setter on its prototype: shadow it.
    for (key, value) in [("code", JsValue::from(Error::Cancelled.code())), ("steps", steps.into())] {
        let descriptor = js_sys::Object::new();
        let _ = js_sys::Reflect::set(&descriptor, &"value".into(), &value);
        let _ = js_sys::Reflect::set(&descriptor, &"enumerable".into(), &true.into());
        js_sys::Object::define_property(&object, &key.into(), &descriptor);
    }
    object.into()
}

fn to_js(value: &impl Serialize) -> Result<JsValue, JsValue> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| js_error(Error::Model(format!("cannot hand the result to JS: {e}"))))
}

fn config_from_js<T: DeserializeOwned + Serialize + Default>(config: JsValue) -> Result<T, JsValue> {
    if config.is_undefined() || config.is_null() {
        return Ok(T::default());
    }
    let invalid = |e: &dyn std::fmt::Display| js_error(Error::InvalidConfig(e.to_string()));
    let parsed: T = serde_wasm_bindgen::from_value(config.clone()).map_err(|e| invalid(&e))?;
    // serde-wasm-bindgen reads only the fields it knows, so a misspelt `topp` would be dropped
    // silently; compare the keys given with those of the parsed config instead.
    let mut given: serde_json::Value = serde_wasm_bindgen::from_value(config).map_err(|e| invalid(&e))?;
    accept_renamed_fields(&mut given);
    let known = serde_json::to_value(&parsed).map_err(|e| invalid(&e))?;
    match unknown_key(&given, &known) {
        Some(key) => Err(invalid(&format!("unknown field `{key}`"))),
        None => Ok(parsed),
    }
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console)]
    fn warn(message: &str);
}

/// Old config field names that are still accepted (serde aliases), and what replaced them.
const RENAMED_FIELDS: [(&str, &str); 1] = [("topN", "topAlternatives")];

/// Warns about each old field name in `given` and renames it, so that the unknown-field check
/// compares it with the parsed config's new name.
fn accept_renamed_fields(given: &mut serde_json::Value) {
    use serde_json::Value::{Array, Object};
    match given {
        Object(fields) => {
            for (old, new) in RENAMED_FIELDS {
                if let Some(value) = fields.remove(old) {
                    warn(&format!("decoding-playground: `{old}` is deprecated, use `{new}` (the same setting)"));
                    fields.entry(new).or_insert(value);
                }
            }
            fields.values_mut().for_each(accept_renamed_fields);
        }
        Array(items) => items.iter_mut().for_each(accept_renamed_fields),
        _ => {}
    }
}

/// The first key path in `given` that `known` lacks, looking into nested objects and arrays.
fn unknown_key(given: &serde_json::Value, known: &serde_json::Value) -> Option<String> {
    use serde_json::Value::{Array, Object};
    match (given, known) {
        (Object(given), Object(known)) => given.iter().find_map(|(key, value)| match known.get(key) {
            None => Some(key.clone()),
            Some(known) => unknown_key(value, known).map(|inner| format!("{key}.{inner}")),
        }),
        (Array(given), Array(known)) => given
            .iter()
            .zip(known)
            .enumerate()
            .find_map(|(i, (g, k))| unknown_key(g, k).map(|inner| format!("{i}.{inner}"))),
        _ => None,
    }
}

/// A sampler chain and the state of one generation.
#[wasm_bindgen]
pub struct Sampler {
    chain: Chain,
    ignored: Vec<&'static str>,
}

#[wasm_bindgen]
impl Sampler {
    /// Builds a chain from a config object (camelCase fields; missing ones take defaults).
    #[wasm_bindgen(constructor)]
    pub fn new(#[wasm_bindgen(unchecked_optional_param_type = "SamplerConfig")] config: JsValue) -> Result<Sampler, JsValue> {
        alive()?;
        let config: SamplerConfig = config_from_js(config)?;
        let chain = Chain::new(&config).map_err(js_error)?;
        Ok(Sampler { chain, ignored: config.ignored_settings() })
    }

    /// Picks the next token from one step's logits; returns the step record.
    #[wasm_bindgen(unchecked_return_type = "StepRecord")]
    pub fn sample(&mut self, logits: &[f32]) -> Result<JsValue, JsValue> {
        alive()?;
        to_js(&self.chain.sample(logits).map_err(js_error)?)
    }

    /// Feeds a token the chain did not choose (the prompt) to the penalty history.
    pub fn accept(&mut self, token: u32) {
        self.chain.accept(token);
    }

    /// Starts a new generation with the same seed.
    pub fn reset(&mut self) {
        self.chain.reset();
    }

    /// The samplers in the order they run.
    #[wasm_bindgen(getter)]
    pub fn stages(&self) -> Vec<String> {
        self.chain.stages().into_iter().map(String::from).collect()
    }

    /// Settings present in the config that this chain ignores (e.g. topK under Mirostat).
    #[wasm_bindgen(getter, js_name = ignoredSettings)]
    pub fn ignored_settings(&self) -> Vec<String> {
        self.ignored.iter().map(|s| s.to_string()).collect()
    }
}

/// Settings in a generate config that the generation will not use, e.g. `["sampler.topK"]` for
/// a superposed config that also sets a top-k (superposed decoding replaces the sampler chain),
/// or for Mirostat (see `Sampler.ignoredSettings`). Throws on an invalid config.
#[wasm_bindgen(js_name = ignoredSettings)]
pub fn ignored_settings(#[wasm_bindgen(unchecked_param_type = "GenerateConfig")] config: JsValue) -> Result<Vec<String>, JsValue> {
    alive()?;
    Ok(config_from_js::<GenerateConfig>(config)?.ignored_settings())
}

/// The default config (top-k 40 → top-p 0.95 → temperature 0.8) as a plain object.
#[wasm_bindgen(js_name = defaultSamplerConfig, unchecked_return_type = "SamplerConfig")]
pub fn default_sampler_config() -> Result<JsValue, JsValue> {
    to_js(&SamplerConfig::default())
}

/// How `Model.fromGguf` places the model. camelCase in JS; missing fields take defaults.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, tsify::Tsify)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
#[tsify(missing_as_null)]
pub struct LoadOptions {
    /// `"auto"` (the default): WebGPU when the browser gives a hardware adapter that takes the
    /// model, else the CPU (tract, wasm SIMD); a software adapter (SwiftShader, lavapipe, WARP)
    /// is slower than the CPU and is used only with `forceFallbackAdapter`. A GPU failure
    /// mid-run moves to the CPU, so the CPU's copy of the weights is kept meanwhile
    /// (`backend.fallbackWeightBytes`). `"webgpu"`: the
    /// GPU or an error. `"cpu"`: never the GPU.
    pub backend: Backend,
    /// Caps the context (the positions the KV cache holds), on either backend, to bound its
    /// memory (`kvCacheBytesPerToken` each). Default: the model's context; on the GPU at most
    /// 4096.
    pub context_length: Option<usize>,
    /// Ask for the browser's software fallback adapter (SwiftShader) even when a GPU exists;
    /// `auto` then runs on it.
    pub force_fallback_adapter: bool,
}

/// Which generation, if any, owns the model's cache: one from `start()`, stepped by `next()`,
/// or one a `generate()` call drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Run {
    Idle,
    Stepped,
    Driven,
}

/// What `Model` shares with the futures of its async calls.
struct Inner {
    engine: RefCell<Engine<AutoModel>>,
    /// The engine's own tokenizer: text in and out never waits on a step.
    tokenizer: Arc<TextTokenizer>,
    chat_template: RefCell<Option<String>>,
    /// What the file says the model is; fixed at load.
    summary: ModelSummary,
    properties: RefCell<Properties>,
    generation: RefCell<Option<Generation>>,
    run: Cell<Run>,
    cancelled: Cell<bool>,
}

/// The model's properties as of the last call that let go of the engine. A step on the GPU
/// holds the engine across the await of its read-back, and a page reads properties (a worker
/// sends them with every reply) whenever it likes: they must never wait for, or fail on, a step.
struct Properties {
    vocab_size: usize,
    context_length: usize,
    weight_types: Vec<String>,
    kv_cache_bytes_per_token: usize,
    /// Changes when a GPU failure moves the model to the CPU.
    backend: BackendInfo,
    reuse_prefix: bool,
    ngram_store_tokens: usize,
}

impl Properties {
    fn of(engine: &Engine<AutoModel>) -> Self {
        let model = engine.model();
        Properties {
            vocab_size: model.vocab_size(),
            context_length: model.context_length(),
            weight_types: model.weight_types().iter().map(|t| t.to_string()).collect(),
            kv_cache_bytes_per_token: model.kv_cache_bytes_per_token(),
            backend: model.info(),
            reuse_prefix: engine.reuses_prefix(),
            ngram_store_tokens: engine.ngram_store().map_or(0, |s| s.len()),
        }
    }
}

/// The engine, borrowed by one call; letting go of it brings the properties up to date.
struct EngineGuard<'a> {
    engine: RefMut<'a, Engine<AutoModel>>,
    properties: &'a RefCell<Properties>,
}

impl Deref for EngineGuard<'_> {
    type Target = Engine<AutoModel>;
    fn deref(&self) -> &Self::Target {
        &self.engine
    }
}

impl DerefMut for EngineGuard<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.engine
    }
}

impl Drop for EngineGuard<'_> {
    fn drop(&mut self) {
        let properties = Properties::of(&self.engine);
        *self.properties.borrow_mut() = properties;
    }
}

impl Inner {
    /// The engine, or a clear error while another call (a step, `score`, `logProbs`) holds it
    /// across an await.
    fn engine(&self) -> Result<EngineGuard<'_>, JsValue> {
        alive()?;
        let engine = self.engine.try_borrow_mut().map_err(|_| js_error(Error::BusyCall))?;
        Ok(EngineGuard { engine, properties: &self.properties })
    }

    /// The engine for a call that would interleave with a generation (another generation,
    /// `score`, `logProbs`, an n-gram store change): refused while one runs.
    fn idle_engine(&self) -> Result<EngineGuard<'_>, JsValue> {
        alive()?;
        if self.run.get() != Run::Idle {
            return Err(js_error(Error::Busy));
        }
        self.engine()
    }

    fn cancel(&self) {
        self.cancelled.set(true);
        // A step in flight holds the generation; it ends it when it sees the flag.
        if self.run.get() == Run::Stepped && self.engine.try_borrow_mut().is_ok() {
            self.end_generation();
        }
    }

    fn end_generation(&self) {
        *self.generation.borrow_mut() = None;
        self.run.set(Run::Idle);
    }

    /// After a step that ended the generation (its slot is empty): a `start()`ed one is over;
    /// a `generate()` call ends its own when its loop returns.
    fn step_ended(&self) {
        if self.run.get() == Run::Stepped {
            self.run.set(Run::Idle);
        }
    }
}

/// A language model with its tokenizer, and at most one generation in progress. The calls that
/// run the model (`start`, `next`, `generate`, `score`, `logProbs`) return promises: on WebGPU
/// the logits come back asynchronously.
///
/// One model, many callers: while a generation runs (from `generate()` until it settles, or from
/// `start()` until `next()` has returned its last step), every call that would interleave with
/// it (`generate`, `start`, `score`, `logProbs`, an n-gram store change, `reusePrefix`) rejects
/// with "a generation is running on this model: await it or cancel it first". `cancel()` ends
/// it from anywhere, within a step. The properties, `encode`, `decode` and the chat template
/// never wait: they answer while a step awaits the GPU.
#[wasm_bindgen]
pub struct Model {
    inner: Rc<Inner>,
}

#[wasm_bindgen]
impl Model {
    /// Loads a model from the bytes of its `model.onnx` and `tokenizer.json` and the text of
    /// its `config.json` (ours or Hugging Face's; null: the dimensions from the graph and a
    /// context of 2048), on the CPU. `options.externalData` holds the data files the graph's
    /// weights are in, by the name it gives them (`{ "model.onnx_data": bytes }`);
    /// `options.generationConfigJson` a `generation_config.json`, for its `eos_token_id`. The
    /// bytes are read in chunks, never copied whole into wasm memory, which never shrinks: that
    /// copy would add the files' size to the peak for good.
    #[wasm_bindgen(constructor)]
    pub fn new(
        onnx: js_sys::Uint8Array,
        #[wasm_bindgen(js_name = tokenizerJson)] tokenizer_json: &[u8],
        #[wasm_bindgen(js_name = configJson)] config_json: Option<String>,
        #[wasm_bindgen(unchecked_optional_param_type = "OnnxOptions")] options: JsValue,
    ) -> Result<Model, JsValue> {
        alive()?;
        let config = config_json.as_deref().map(ModelConfig::from_json).transpose().map_err(js_error)?;
        let data = js_data_files(&options)?;
        let model = TractModel::from_buf_with_data(JsChunks::new(onnx), &mut data_files(&data), config.as_ref()).map_err(js_error)?;
        let mut tokenizer = TextTokenizer::from_bytes(tokenizer_json).map_err(js_error)?;
        let generation = js_sys::Reflect::get(&options, &"generationConfigJson".into()).ok().and_then(|v| v.as_string());
        let eos: Vec<u32> = [config_json.as_deref(), generation.as_deref()].into_iter().flatten().flat_map(ModelConfig::eos_token_ids).collect();
        tokenizer.set_eos_ids(&eos);
        Self::with(AutoModel::cpu(model), tokenizer, ModelSummary::from_onnx(config_json.as_deref(), tokenizer_json))
    }

    /// Loads a Llama-family model from the bytes of one `.gguf` file, which holds the weights
    /// (kept in their own precision: F32, F16, BF16 and the block types of llama.cpp's common
    /// files) and the tokenizer, or from the bytes of every part of a split one
    /// (`name-00001-of-00003.gguf`, … as gguf-split writes them; in any order), and places it on
    /// WebGPU or the CPU as `options.backend` says (see `LoadOptions`). The bytes are read in
    /// chunks; each tensor's bytes are dropped once its blocks are in place.
    #[wasm_bindgen(js_name = fromGguf, unchecked_return_type = "Promise<Model>")]
    pub fn from_gguf(
        #[wasm_bindgen(unchecked_param_type = "Uint8Array | Uint8Array[]")] gguf: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "LoadOptions")] options: JsValue,
    ) -> js_sys::Promise {
        guarded(async move {
            let options: LoadOptions = config_from_js(options)?;
            let parts: Vec<JsChunks> = if js_sys::Array::is_array(&gguf) {
                js_sys::Array::from(&gguf).iter().map(|part| part.dyn_into().map(JsChunks::new)).collect::<Result<_, _>>()
            } else {
                gguf.dyn_into().map(|one| vec![JsChunks::new(one)])
            }
            .map_err(|_| js_error(Error::InvalidConfig("fromGguf takes a Uint8Array, or an array of them (the parts of a split GGUF)".into())))?;
            let gguf = GgufParts::join(parts).map_err(js_error)?;
            let summary = ModelSummary::from_gguf(gguf.header());
            let GgufModel { weights, tokenizer } = GgufModel::read(gguf).map_err(js_error)?;
            let gpu = GpuOptions { force_fallback_adapter: options.force_fallback_adapter, context_length: options.context_length };
            let model = AutoModel::load(weights, options.backend, &gpu).await.map_err(js_error)?;
            Ok(Self::with(model, tokenizer, summary)?.into())
        })
    }

    fn with(model: AutoModel, tokenizer: TextTokenizer, summary: ModelSummary) -> Result<Model, JsValue> {
        let engine = Engine::new(model, tokenizer).map_err(js_error)?;
        let inner = Inner {
            tokenizer: engine.shared_tokenizer(),
            chat_template: RefCell::new(engine.tokenizer().chat_template().map(str::to_string)),
            summary,
            properties: RefCell::new(Properties::of(&engine)),
            engine: RefCell::new(engine),
            generation: RefCell::default(),
            run: Cell::new(Run::Idle),
            cancelled: Cell::default(),
        };
        Ok(Model { inner: Rc::new(inner) })
    }

    /// The properties, which never wait on a step; after a trap, the failure, as every call.
    fn properties(&self) -> Result<std::cell::Ref<'_, Properties>, JsValue> {
        alive()?;
        Ok(self.inner.properties.borrow())
    }

    #[wasm_bindgen(getter, js_name = vocabSize)]
    pub fn vocab_size(&self) -> Result<usize, JsValue> {
        Ok(self.properties()?.vocab_size)
    }

    /// How the weights are held in memory: the GGUF's own block types, e.g. `["Q4_1", "Q8_0"]`,
    /// or, for an ONNX model, how tract holds its graph's weights (e.g. `["INT8"]`, `["Q4_0"]`).
    #[wasm_bindgen(getter, js_name = weightTypes)]
    pub fn weight_types(&self) -> Result<Vec<String>, JsValue> {
        Ok(self.properties()?.weight_types.clone())
    }

    /// The architecture the file names: a GGUF's `general.architecture` ("llama", "qwen3", …),
    /// an ONNX export's config.json `model_type`; undefined when it names none.
    #[wasm_bindgen(getter)]
    pub fn architecture(&self) -> Result<Option<String>, JsValue> {
        alive()?;
        Ok(self.inner.summary.architecture.clone())
    }

    /// The number of weights: every tensor's elements (a GGUF's; undefined for an ONNX model).
    #[wasm_bindgen(getter, js_name = parameterCount)]
    pub fn parameter_count(&self) -> Result<Option<f64>, JsValue> {
        alive()?;
        // A Number: exact below 2^53, far beyond what wasm memory holds.
        Ok(self.inner.summary.parameter_count.map(|n| n as f64))
    }

    /// The tokenizer's kind in words: "byte-level BPE (smollm)" (with a GGUF's pre-tokenizer),
    /// "SentencePiece", …; undefined when the files do not say.
    #[wasm_bindgen(getter, js_name = tokenizerKind)]
    pub fn tokenizer_kind(&self) -> Result<Option<String>, JsValue> {
        alive()?;
        Ok(self.inner.summary.tokenizer_kind.clone())
    }

    /// Which backend runs the model (`"webgpu"` or `"cpu"`), on which adapter, and why not on the
    /// GPU when WebGPU was wanted (`fallbackReason`).
    #[wasm_bindgen(getter, unchecked_return_type = "BackendInfo")]
    pub fn backend(&self) -> Result<JsValue, JsValue> {
        to_js(&self.properties()?.backend)
    }

    /// When true, `start` and `score` feed only what follows the prefix their tokens share with
    /// the previous call's (autocomplete: a keystroke costs its new tokens). Off by default: a
    /// prompt fed in pieces gives logits that differ from one prefill's in the last bits, and
    /// the same seed must give the same tokens whatever ran before.
    #[wasm_bindgen(getter, js_name = reusePrefix)]
    pub fn reuse_prefix(&self) -> Result<bool, JsValue> {
        Ok(self.properties()?.reuse_prefix)
    }

    #[wasm_bindgen(setter, js_name = reusePrefix)]
    pub fn set_reuse_prefix(&self, reuse: bool) -> Result<(), JsValue> {
        self.inner.idle_engine()?.set_reuse_prefix(reuse);
        Ok(())
    }

    /// The most tokens a sequence can hold: the model's context, or less where `contextLength`
    /// capped it at load. A generation that reaches it ends with `finish: "context"`.
    #[wasm_bindgen(getter, js_name = contextLength)]
    pub fn context_length(&self) -> Result<usize, JsValue> {
        Ok(self.properties()?.context_length)
    }

    /// Bytes of KV cache per token in the sequence: at the full context it takes
    /// `contextLength` times this.
    #[wasm_bindgen(getter, js_name = kvCacheBytesPerToken)]
    pub fn kv_cache_bytes_per_token(&self) -> Result<usize, JsValue> {
        Ok(self.properties()?.kv_cache_bytes_per_token)
    }

    pub fn encode(&self, text: &str) -> Result<Vec<u32>, JsValue> {
        alive()?;
        self.inner.tokenizer.encode(text).map_err(js_error)
    }

    pub fn decode(&self, ids: &[u32]) -> Result<String, JsValue> {
        alive()?;
        self.inner.tokenizer.decode(ids).map_err(js_error)
    }

    /// The model's chat template (Jinja), from the GGUF's `tokenizer.chat_template` or set with
    /// `setChatTemplate`; `undefined` when it has none.
    #[wasm_bindgen(getter, js_name = chatTemplate)]
    pub fn chat_template(&self) -> Result<Option<String>, JsValue> {
        alive()?;
        Ok(self.inner.chat_template.borrow().clone())
    }

    /// Sets the chat template (e.g. `chat_template` from an HF `tokenizer_config.json`), or
    /// removes it with `null`. Throws (code "ChatTemplate") if it does not compile.
    #[wasm_bindgen(js_name = setChatTemplate)]
    pub fn set_chat_template(&self, source: Option<String>) -> Result<(), JsValue> {
        alive()?;
        *self.inner.chat_template.borrow_mut() = checked_source(source.as_deref()).map_err(js_error)?;
        Ok(())
    }

    /// The prompt for a conversation, rendered by the model's chat template as HF's
    /// `apply_chat_template` renders it. `addGenerationPrompt` (default true, unlike HF's
    /// default: the prompt is meant to be generated from) ends it with the assistant's turn.
    #[wasm_bindgen(js_name = applyChatTemplate)]
    pub fn apply_chat_template(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ChatMessage[]")] messages: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "{ addGenerationPrompt?: boolean }")] options: JsValue,
    ) -> Result<String, JsValue> {
        let messages: Vec<ChatMessage> = serde_wasm_bindgen::from_value(messages).map_err(|e| {
            js_error(Error::InvalidConfig(format!("messages must be an array of {{ role, content }} strings: {e}")))
        })?;
        let add_generation_prompt = js_sys::Reflect::get(&options, &"addGenerationPrompt".into())
            .ok()
            .and_then(|v| v.as_bool())
            .unwrap_or(true);
        alive()?;
        let template = self.inner.chat_template.borrow();
        self.inner.tokenizer.render_chat(template.as_deref(), &messages, add_generation_prompt).map_err(js_error)
    }

    /// Sets the n-gram store superposed decoding uses, from the bytes of a store file (or
    /// clears it with `null`). Refuses a corrupt store or one built with another tokenizer.
    #[wasm_bindgen(js_name = setNgramStore)]
    pub fn set_ngram_store(&self, bytes: Option<Vec<u8>>) -> Result<(), JsValue> {
        let mut engine = self.inner.idle_engine()?;
        let store = bytes.map(|b| NgramStore::from_bytes(&b)).transpose().map_err(js_error)?;
        engine.set_ngram_store(store).map_err(js_error)
    }

    /// Builds an n-gram store from `text` (paragraphs separated by blank lines) with this
    /// model's tokenizer and makes it the current one; with `extend`, the text is added to the
    /// current store instead of replacing it. Returns the store's bytes, e.g. to cache them.
    #[wasm_bindgen(js_name = buildNgramStore)]
    pub fn build_ngram_store(&self, text: &str, extend: bool) -> Result<Vec<u8>, JsValue> {
        let mut engine = self.inner.idle_engine()?;
        // Tokenize first, so that an error leaves the current store in place.
        let mut builder = NgramBuilder::for_tokenizer(engine.tokenizer()).map_err(js_error)?;
        builder.add_text(engine.tokenizer(), text).map_err(js_error)?;
        if let Some(current) = engine.take_ngram_store().filter(|_| extend) {
            let mut merged = current.into_builder();
            merged.append(builder).map_err(js_error)?;
            builder = merged;
        }
        let store = builder.build().map_err(js_error)?;
        let bytes = store.to_bytes();
        engine.set_ngram_store(Some(store)).map_err(js_error)?;
        Ok(bytes)
    }

    /// Corpus tokens in the current n-gram store (0 when there is none).
    #[wasm_bindgen(getter, js_name = ngramStoreTokens)]
    pub fn ngram_store_tokens(&self) -> Result<usize, JsValue> {
        Ok(self.properties()?.ngram_store_tokens)
    }

    /// Teacher-forced natural-log probabilities of `ids[1..]`, each given the ids before it (one
    /// prefill); `exp(-mean)` is the perplexity.
    #[wasm_bindgen(js_name = logProbs, unchecked_return_type = "Promise<Float64Array>")]
    pub fn log_probs(&self, ids: Vec<u32>) -> js_sys::Promise {
        let inner = self.inner.clone();
        guarded(async move {
            let mut engine = inner.idle_engine()?;
            let values = engine.log_probs(&ids).await.map_err(js_error)?;
            Ok(js_sys::Float64Array::from(&values[..]).into())
        })
    }

    /// Scores `text` (after `config.context`, which conditions it but is not scored),
    /// teacher-forced: every token's probability, surprise, rank, entropy and top alternatives,
    /// and the text's perplexity. Memory stays flat however long the text (32 positions per
    /// model call); the text and context must fit the context length. With `reusePrefix`, feeds
    /// only what follows the prefix shared with the previous call.
    #[wasm_bindgen(unchecked_return_type = "Promise<ScoreResult>")]
    pub fn score(
        &self,
        text: String,
        #[wasm_bindgen(unchecked_optional_param_type = "ScoreConfig")] config: JsValue,
    ) -> js_sys::Promise {
        let inner = self.inner.clone();
        guarded(async move {
            let config: ScoreConfig = config_from_js(config)?;
            let mut engine = inner.idle_engine()?;
            to_js(&engine.score(&text, &config).await.map_err(js_error)?)
        })
    }

    /// Prefills the prompt and readies a generation; take its steps with `next()`.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn start(
        &self,
        prompt: String,
        #[wasm_bindgen(unchecked_optional_param_type = "GenerateConfig")] config: JsValue,
    ) -> js_sys::Promise {
        let inner = self.inner.clone();
        guarded(async move {
            start_generation(&inner, &prompt, config, Run::Stepped).await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// The next step of the generation `start()` readied, or `undefined` once it has ended:
    /// with `kind: "token"`, a step record plus `text` and, on the last one, `finish`; with
    /// `kind: "drafts"` (superposed decoding), the draft tree's new nodes and, on the last one,
    /// `drafts` and `finish`.
    #[wasm_bindgen(unchecked_return_type = "Promise<Step | undefined>")]
    pub fn next(&self) -> js_sys::Promise {
        let inner = self.inner.clone();
        guarded(async move {
            match inner.run.get() {
                Run::Driven => Err(js_error(Error::Busy)),
                Run::Idle => Ok(JsValue::UNDEFINED),
                Run::Stepped => next_step(&inner).await,
            }
        })
    }

    /// Ends the generation in progress: a running `generate()` stops after the current step
    /// and rejects with "generation was cancelled"; a `start()`ed one takes no more steps.
    pub fn cancel(&self) {
        self.inner.cancel();
    }

    /// The generation's steps as an async iterator:
    /// `for await (const step of model.stream(prompt, config, { signal })) { ... }`. Nothing
    /// runs until the loop asks for the first step, so bad input rejects there, never throws
    /// here. Leaving the loop early cancels the generation; an aborted `signal` ends it with an
    /// AbortError (`code` "Cancelled") at the next step.
    pub fn stream(
        &self,
        prompt: String,
        #[wasm_bindgen(unchecked_optional_param_type = "GenerateConfig")] config: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "{ signal?: AbortSignal }")] options: JsValue,
    ) -> StepStream {
        let signal = js_sys::Reflect::get(&options, &"signal".into()).ok().and_then(|s| s.dyn_into::<js_sys::Object>().ok());
        let request = RefCell::new(Some((prompt, config)));
        StepStream { state: Rc::new(StreamState { inner: self.inner.clone(), request, signal, done: Cell::new(false) }) }
    }

    /// Runs a whole generation, calling `onStep(step)` for each token and yielding to the event
    /// loop between tokens, so a page or worker stays responsive. Resolves to the array of
    /// steps. After `cancel()`, or when `signal` (an AbortSignal) aborts, it rejects with a
    /// `DOMException` named "AbortError" (`code` "Cancelled") whose `steps` holds the steps made.
    #[wasm_bindgen(unchecked_return_type = "Promise<Step[]>")]
    pub fn generate(
        &self,
        prompt: String,
        #[wasm_bindgen(unchecked_optional_param_type = "GenerateConfig")] config: JsValue,
        #[wasm_bindgen(js_name = onStep, unchecked_optional_param_type = "((step: Step) => void) | null")] on_step: Option<js_sys::Function>,
        #[wasm_bindgen(unchecked_optional_param_type = "{ readonly aborted: boolean } | null")] signal: Option<js_sys::Object>,
    ) -> js_sys::Promise {
        let inner = self.inner.clone();
        guarded(async move {
            if is_aborted(signal.as_ref()) {
                return Err(abort_error(js_sys::Array::new()));
            }
            start_generation(&inner, &prompt, config, Run::Driven).await?;
            let result = drive(&inner, on_step.as_ref(), signal.as_ref()).await;
            inner.end_generation();
            result
        })
    }
}

/// What `model.stream()` returns: an async iterator over one generation's steps.
#[wasm_bindgen]
pub struct StepStream {
    state: Rc<StreamState>,
}

struct StreamState {
    inner: Rc<Inner>,
    /// The prompt and config, until the first `next()` starts the generation.
    request: RefCell<Option<(String, JsValue)>>,
    signal: Option<js_sys::Object>,
    done: Cell<bool>,
}

#[wasm_bindgen]
impl StepStream {
    /// `for await` asks for the iterator: it is the stream itself.
    #[wasm_bindgen(js_name = "[Symbol.asyncIterator]")]
    pub fn async_iterator(&self) -> StepStream {
        StepStream { state: self.state.clone() }
    }

    /// The next step (`{ value: step, done: false }`), or `{ done: true }` once the generation
    /// has ended. Rejects with the generation's error, or with an AbortError once the signal
    /// has aborted.
    #[wasm_bindgen(unchecked_return_type = "Promise<IteratorResult<Step, undefined>>")]
    pub fn next(&self) -> js_sys::Promise {
        let state = self.state.clone();
        guarded(async move {
            if state.done.get() {
                return Ok(iterator_result(JsValue::UNDEFINED, true));
            }
            let request = state.request.borrow_mut().take();
            let outcome = async {
                if is_aborted(state.signal.as_ref()) {
                    return Err(abort_error(js_sys::Array::new()));
                }
                if let Some((prompt, config)) = request {
                    start_generation(&state.inner, &prompt, config, Run::Stepped).await?;
                }
                next_step(&state.inner).await
            }
            .await;
            match outcome {
                Ok(step) if !step.is_undefined() => Ok(iterator_result(step, false)),
                outcome => {
                    state.finish();
                    outcome.map(|_| iterator_result(JsValue::UNDEFINED, true))
                }
            }
        })
    }

    /// Leaving a `for await` loop early (`break`, `return`, a throw) calls this: it cancels the
    /// generation.
    #[wasm_bindgen(js_name = "return", unchecked_return_type = "Promise<IteratorResult<Step, undefined>>")]
    pub fn return_(&self) -> js_sys::Promise {
        self.state.finish();
        js_sys::Promise::resolve(&iterator_result(JsValue::UNDEFINED, true))
    }
}

impl StreamState {
    fn finish(&self) {
        let started = self.request.borrow_mut().take().is_none();
        let was_done = self.done.replace(true);
        if started && !was_done && self.inner.run.get() == Run::Stepped {
            self.inner.cancel();
        }
    }
}

fn iterator_result(value: JsValue, done: bool) -> JsValue {
    let result = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&result, &"value".into(), &value);
    let _ = js_sys::Reflect::set(&result, &"done".into(), &done.into());
    result.into()
}

async fn start_generation(inner: &Inner, prompt: &str, config: JsValue, run: Run) -> Result<(), JsValue> {
    let config: GenerateConfig = config_from_js(config)?;
    let mut engine = inner.idle_engine()?;
    let generation = engine.start(prompt, &config).await.map_err(js_error)?;
    inner.cancelled.set(false);
    *inner.generation.borrow_mut() = Some(generation);
    inner.run.set(run);
    Ok(())
}

/// `generate()`'s loop: every step, handed to `on_step`, until the end or a cancel.
async fn drive(inner: &Inner, on_step: Option<&js_sys::Function>, signal: Option<&js_sys::Object>) -> Result<JsValue, JsValue> {
    let steps = js_sys::Array::new();
    loop {
        let step = next_step(inner).await?;
        if step.is_undefined() {
            return Ok(steps.into());
        }
        if let Some(on_step) = on_step {
            on_step.call1(&JsValue::NULL, &step)?;
        }
        steps.push(&step);
        yield_to_event_loop().await;
        if inner.cancelled.get() || is_aborted(signal) {
            return Err(abort_error(steps));
        }
    }
}

/// One step of the generation in progress; ends it on its last step, an error or a cancel.
async fn next_step(inner: &Inner) -> Result<JsValue, JsValue> {
    let mut engine = inner.engine()?;
    let Some(mut current) = inner.generation.borrow_mut().take() else { return Ok(JsValue::UNDEFINED) };
    let step = engine.step(&mut current).await;
    // A failed step, like the last one, leaves the generation finished.
    let cancelled = inner.run.get() == Run::Stepped && inner.cancelled.get();
    if current.is_finished() || cancelled {
        inner.step_ended();
    } else {
        *inner.generation.borrow_mut() = Some(current);
    }
    match step.map_err(js_error)? {
        Some(step) => to_js(&step),
        None => Ok(JsValue::UNDEFINED),
    }
}

/// A JS `Uint8Array` read as a [`Buf`], one chunk at a time.
/// A JS byte array as an external data file, read a tensor at a time.
struct JsDataFile(js_sys::Uint8Array);

impl DataFile for JsDataFile {
    fn len(&self) -> u64 {
        self.0.length() as u64
    }
    fn bytes(&self, start: u64, end: u64) -> Vec<u8> {
        self.0.subarray(start as u32, end as u32).to_vec()
    }
}

#[wasm_bindgen(typescript_custom_section)]
const ONNX_OPTIONS: &str = r#"
/** What `new Model(onnx, tokenizerJson, configJson, options)` takes besides the three files. */
export interface OnnxOptions {
  /** The data files the graph keeps its weights in, by the name it gives them ({ "model.onnx_data": bytes }). */
  externalData?: Record<string, Uint8Array>;
  /** A Hugging Face generation_config.json, for its eos_token_id. */
  generationConfigJson?: string;
}
"#;

/// `options.externalData` (an object of name → Uint8Array) as data files.
fn js_data_files(options: &JsValue) -> Result<Vec<(String, JsDataFile)>, JsValue> {
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

/// The external data files an ONNX graph names (`["model.onnx_data"]`; none for one protobuf),
/// to fetch beside it.
#[wasm_bindgen(js_name = externalDataFiles)]
pub fn external_data_files(onnx: js_sys::Uint8Array) -> Result<Vec<String>, JsValue> {
    crate::model::onnx::external_data_files(JsChunks::new(onnx)).map_err(js_error)
}

struct JsChunks {
    array: js_sys::Uint8Array,
    chunk: Vec<u8>,
    /// Where `chunk` starts in `array`, and how much of it is consumed.
    chunk_start: usize,
    consumed: usize,
}

impl JsChunks {
    const CHUNK: usize = 1 << 20;

    fn new(array: js_sys::Uint8Array) -> Self {
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

fn is_aborted(signal: Option<&js_sys::Object>) -> bool {
    signal
        .and_then(|s| js_sys::Reflect::get(s, &"aborted".into()).ok())
        .and_then(|v| v.as_bool())
        .unwrap_or(false)
}

/// Waits for a macrotask (`setTimeout(0)`): a microtask would not let a worker receive a
/// "stop" message or a page repaint.
async fn yield_to_event_loop() {
    let promise = js_sys::Promise::new(&mut |resolve, _reject| {
        let set_timeout = js_sys::Reflect::get(&js_sys::global(), &"setTimeout".into())
            .ok()
            .and_then(|f| f.dyn_into::<js_sys::Function>().ok());
        let scheduled = set_timeout.map(|f| f.call2(&JsValue::NULL, &resolve, &0.into()).is_ok());
        if scheduled != Some(true) {
            let _ = resolve.call0(&JsValue::NULL);
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

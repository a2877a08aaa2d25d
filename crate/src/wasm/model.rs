//! The `Model` export and what it shares with its calls' futures: which generation owns the
//! cache (`Run`), the calls it refuses meanwhile, the properties that never wait on a step, the
//! tokenizer, chat template and n-gram store, and scoring.

use super::convert::{config_from_js, js_error, to_js};
use super::failure::{alive, guarded};
use crate::chat::{checked_source, ChatMessage};
use crate::generate::{Engine, Generation};
use crate::model::auto::{AutoModel, BackendInfo};
use crate::model::LanguageModel;
use crate::ngram::{NgramBuilder, NgramStore};
use crate::score::ScoreConfig;
use crate::summary::ModelSummary;
use crate::tokenizer::TextTokenizer;
use crate::Error;
use std::cell::{Cell, RefCell, RefMut};
use std::ops::{Deref, DerefMut};
use std::rc::Rc;
use std::sync::Arc;
use wasm_bindgen::prelude::*;

/// Which generation, if any, owns the model's cache: one from `start()`, stepped by `next()`,
/// or one a `generate()` call drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Run {
    Idle,
    Stepped,
    Driven,
}

/// What `Model` shares with the futures of its async calls.
pub(super) struct Inner {
    pub(super) engine: RefCell<Engine<AutoModel>>,
    /// The engine's own tokenizer: text in and out never waits on a step.
    pub(super) tokenizer: Arc<TextTokenizer>,
    pub(super) chat_template: RefCell<Option<String>>,
    /// What the file says the model is; fixed at load.
    pub(super) summary: ModelSummary,
    pub(super) properties: RefCell<Properties>,
    pub(super) generation: RefCell<Option<Generation>>,
    pub(super) run: Cell<Run>,
    /// How many times `cancel()` was called: a generation is cancelled once this moves past the
    /// count it saw when it was called (`run_mark`), so a cancel made before its first await
    /// still counts, and one made before the call does not.
    pub(super) cancels: Cell<u64>,
    pub(super) run_mark: Cell<u64>,
}

/// The model's properties as of the last call that let go of the engine. A step on the GPU
/// holds the engine across the await of its read-back, and a page reads properties (a worker
/// sends them with every reply) whenever it likes: they must never wait for, or fail on, a step.
pub(super) struct Properties {
    vocab_size: usize,
    context_length: usize,
    weight_types: Vec<String>,
    kv_cache_bytes_per_token: usize,
    /// Changes when a GPU failure moves the model to the CPU.
    backend: BackendInfo,
    reuse_prefix: bool,
    ngram_store_tokens: usize,
    prefix_budget: usize,
    /// Bytes and positions of the kept cache rows.
    prefix_store: (usize, usize),
}

impl Properties {
    pub(super) fn of(engine: &Engine<AutoModel>) -> Self {
        let model = engine.model();
        Properties {
            vocab_size: model.vocab_size(),
            context_length: model.context_length(),
            weight_types: model.weight_types().iter().map(|t| t.to_string()).collect(),
            kv_cache_bytes_per_token: model.kv_cache_bytes_per_token(),
            backend: model.info(),
            reuse_prefix: engine.reuses_prefix(),
            ngram_store_tokens: engine.ngram_store().map_or(0, |s| s.len()),
            prefix_budget: engine.prefix_budget(),
            prefix_store: engine.prefix_store_size(),
        }
    }
}

/// The engine, borrowed by one call; letting go of it brings the properties up to date.
pub(super) struct EngineGuard<'a> {
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
        *self.properties.borrow_mut() = Properties::of(&self.engine);
    }
}

impl Inner {
    /// The engine, or a clear error while another call (a step, `score`, `logProbs`) holds it
    /// across an await.
    pub(super) fn engine(&self) -> Result<EngineGuard<'_>, JsValue> {
        alive()?;
        let engine = self.engine.try_borrow_mut().map_err(|_| js_error(Error::BusyCall))?;
        Ok(EngineGuard { engine, properties: &self.properties })
    }

    /// The engine for a call that would interleave with a generation (another generation,
    /// `score`, `logProbs`, an n-gram store change): refused while one runs.
    pub(super) fn idle_engine(&self) -> Result<EngineGuard<'_>, JsValue> {
        alive()?;
        if self.run.get() != Run::Idle {
            return Err(js_error(Error::Busy));
        }
        self.engine()
    }

    /// Brings the properties up to date from an engine a call still holds: `generate()` holds it
    /// for the whole generation, and a GPU failure may move the model to the CPU mid-way.
    pub(super) fn refresh_properties(&self, engine: &Engine<AutoModel>) {
        *self.properties.borrow_mut() = Properties::of(engine);
    }

    pub(super) fn cancel(&self) {
        self.cancels.set(self.cancels.get() + 1);
        // A step in flight holds the generation; it ends it when it sees the flag.
        if self.run.get() == Run::Stepped && self.engine.try_borrow_mut().is_ok() {
            self.end_generation();
        }
    }

    /// Whether `cancel()` was called since the generation in progress was called.
    pub(super) fn cancelled(&self) -> bool {
        self.cancels.get() != self.run_mark.get()
    }

    pub(super) fn end_generation(&self) {
        *self.generation.borrow_mut() = None;
        self.run.set(Run::Idle);
    }

    /// After a step that ended the generation (its slot is empty): a `start()`ed one is over;
    /// a `generate()` call ends its own when its loop returns.
    pub(super) fn step_ended(&self) {
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
    pub(super) inner: Rc<Inner>,
}

#[wasm_bindgen]
impl Model {
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

    /// The most memory (bytes; wasm memory on the CPU, GPU memory on WebGPU) that the KV-cache
    /// rows of earlier runs may take, which `fork()` takes a branch's prefix from instead of
    /// computing it again. A prefix that runs share is held once; the least recently used go
    /// first. 0 keeps none. 256 MiB by default.
    #[wasm_bindgen(getter, js_name = prefixCacheBytes)]
    pub fn prefix_cache_bytes(&self) -> Result<usize, JsValue> {
        Ok(self.properties()?.prefix_budget)
    }

    #[wasm_bindgen(setter, js_name = prefixCacheBytes)]
    pub fn set_prefix_cache_bytes(&self, bytes: usize) -> Result<(), JsValue> {
        self.inner.idle_engine()?.set_prefix_budget(bytes);
        Ok(())
    }

    /// The memory the kept rows take now.
    #[wasm_bindgen(getter, js_name = prefixCacheHeldBytes)]
    pub fn prefix_cache_held_bytes(&self) -> Result<usize, JsValue> {
        Ok(self.properties()?.prefix_store.0)
    }

    /// The positions the kept rows hold; a prefix that runs share counts once.
    #[wasm_bindgen(getter, js_name = prefixCachePositions)]
    pub fn prefix_cache_positions(&self) -> Result<usize, JsValue> {
        Ok(self.properties()?.prefix_store.1)
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
}

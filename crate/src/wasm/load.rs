//! Loading a `Model`: from an ONNX export's files or from a GGUF (one file or its split parts),
//! with the options each takes.

use super::bytes::{js_data_files, JsChunks};
use super::convert::{config_from_js, js_error};
use super::failure::{alive, guarded};
use super::model::{Inner, Model, Properties, Run};
use crate::generate::Engine;
use crate::model::auto::{AutoModel, Backend};
use crate::model::gguf::split::GgufParts;
use crate::model::onnx::data_files;
use crate::model::webgpu::GpuOptions;
use crate::model::weights::GgufModel;
use crate::model::{ModelConfig, TractModel};
use crate::summary::ModelSummary;
use crate::tokenizer::TextTokenizer;
use crate::Error;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

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

    /// Loads a model (llama, qwen2, qwen3, gemma3 or phi3) from the bytes of one `.gguf` file,
    /// which holds the weights (kept in their own precision: F32, F16, BF16 and the block types
    /// of llama.cpp's common files), the tokenizer and the chat template, or from the bytes of every part of a split one
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
            cancels: Cell::default(),
            run_mark: Cell::default(),
        };
        Ok(Model { inner: Rc::new(inner) })
    }
}

/// The external data files an ONNX graph names (`["model.onnx_data"]`; none for one protobuf),
/// to fetch beside it.
#[wasm_bindgen(js_name = externalDataFiles)]
pub fn external_data_files(onnx: js_sys::Uint8Array) -> Result<Vec<String>, JsValue> {
    crate::model::onnx::external_data_files(JsChunks::new(onnx)).map_err(js_error)
}

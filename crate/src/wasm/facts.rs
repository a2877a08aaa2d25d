//! What the engine is before any model loads: its default configs, its stage orders and what it
//! reads. A page shows these (form defaults, the drop zone's help) instead of copying them; the
//! npm package also snapshots them at build time into constants (see scripts/engine-facts.mjs),
//! so that a page can read them without instantiating the engine on its own thread.

use super::convert::to_js;
use crate::model::arch::ARCHITECTURES;
use crate::model::formats::GgmlType;
use crate::sampling::{DryConfig, MirostatConfig, SamplerConfig, Stage};
use crate::superposed::SuperposedConfig;
use serde::Serialize;
use wasm_bindgen::prelude::*;

/// The stage orders a sampler config's `order` is usually set to.
#[derive(Serialize, tsify::Tsify)]
#[serde(rename_all = "camelCase")]
pub struct StageOrders {
    /// llama.cpp's: truncate on the untempered model, apply temperature last (the default).
    pub llama_cpp: Vec<Stage>,
    /// Hugging Face transformers': temperature first, then truncation.
    pub hugging_face: Vec<Stage>,
}

/// The default config (top-k 40 → top-p 0.95 → temperature 0.8) as a plain object.
#[wasm_bindgen(js_name = defaultSamplerConfig, unchecked_return_type = "SamplerConfig")]
pub fn default_sampler_config() -> Result<JsValue, JsValue> {
    to_js(&SamplerConfig::default())
}

/// DRY's default config when it is switched on (llama.cpp's, with the multiplier its
/// documentation suggests, and its sequence breakers).
#[wasm_bindgen(js_name = defaultDryConfig, unchecked_return_type = "DryConfig")]
pub fn default_dry_config() -> Result<JsValue, JsValue> {
    to_js(&DryConfig::default())
}

/// Mirostat's default config (v2, τ 5 bits, η 0.1, as llama.cpp ships it).
#[wasm_bindgen(js_name = defaultMirostatConfig, unchecked_return_type = "MirostatConfig")]
pub fn default_mirostat_config() -> Result<JsValue, JsValue> {
    to_js(&MirostatConfig::default())
}

/// Superposed decoding's default config (the reference's k = 3 configuration, α 0.54).
#[wasm_bindgen(js_name = defaultSuperposedConfig, unchecked_return_type = "SuperposedConfig")]
pub fn default_superposed_config() -> Result<JsValue, JsValue> {
    to_js(&SuperposedConfig::default())
}

/// llama.cpp's and Hugging Face's orders of the sampler stages, each listing every stage.
#[wasm_bindgen(js_name = stageOrders, unchecked_return_type = "StageOrders")]
pub fn stage_orders() -> Result<JsValue, JsValue> {
    to_js(&StageOrders { llama_cpp: Stage::LLAMA_CPP_ORDER.to_vec(), hugging_face: Stage::HF_ORDER.to_vec() })
}

/// The GGUF architectures (`general.architecture`) the engine runs, e.g. "llama".
#[wasm_bindgen(js_name = supportedArchitectures)]
pub fn supported_architectures() -> Vec<String> {
    ARCHITECTURES.iter().map(|a| a.name.to_string()).collect()
}

/// The GGUF tensor types the engine reads, by ggml's names ("Q4_K", "F16", …).
#[wasm_bindgen(js_name = supportedWeightTypes)]
pub fn supported_weight_types() -> Vec<String> {
    GgmlType::supported().map(|t| t.name().to_string()).collect()
}

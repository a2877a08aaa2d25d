//! The JS-facing API: thin wrappers that convert at the boundary with serde-wasm-bindgen and
//! turn core errors into JS `Error`s carrying the same message.

use crate::sampling::{Chain, SamplerConfig};
use serde::Serialize;
use wasm_bindgen::prelude::*;

#[wasm_bindgen(start)]
fn start() {
    // A panic in wasm kills the module; at least let it say where.
    console_error_panic_hook::set_once();
}

fn js_error(error: impl std::fmt::Display) -> JsError {
    JsError::new(&error.to_string())
}

fn to_js(value: &impl Serialize) -> Result<JsValue, JsError> {
    value.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).map_err(js_error)
}

fn config_from_js(config: JsValue) -> Result<SamplerConfig, JsError> {
    if config.is_undefined() || config.is_null() {
        return Ok(SamplerConfig::default());
    }
    let invalid = |e: &dyn std::fmt::Display| js_error(format!("invalid config: {e}"));
    let parsed: SamplerConfig = serde_wasm_bindgen::from_value(config.clone()).map_err(|e| invalid(&e))?;
    // serde-wasm-bindgen reads only the fields it knows, so a misspelt `topp` would be dropped
    // silently; compare the keys given with those of the parsed config instead.
    let given: serde_json::Value = serde_wasm_bindgen::from_value(config).map_err(|e| invalid(&e))?;
    let known = serde_json::to_value(&parsed).map_err(|e| invalid(&e))?;
    match unknown_key(&given, &known) {
        Some(key) => Err(invalid(&format!("unknown field `{key}`"))),
        None => Ok(parsed),
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
    pub fn new(config: JsValue) -> Result<Sampler, JsError> {
        let config = config_from_js(config)?;
        let chain = Chain::new(&config).map_err(js_error)?;
        Ok(Sampler { chain, ignored: config.ignored_settings() })
    }

    /// Picks the next token from one step's logits; returns the step record.
    pub fn sample(&mut self, logits: &[f32]) -> Result<JsValue, JsError> {
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

/// The default config (top-k 40 → top-p 0.95 → temperature 0.8) as a plain object.
#[wasm_bindgen(js_name = defaultSamplerConfig)]
pub fn default_sampler_config() -> Result<JsValue, JsError> {
    to_js(&SamplerConfig::default())
}

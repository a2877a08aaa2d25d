//! The `Sampler` export (a sampler chain on its own) and `ignoredSettings` beside it.

use super::convert::{config_from_js, js_error, to_js};
use super::failure::alive;
use crate::generate::GenerateConfig;
use crate::sampling::{Chain, SamplerConfig};
use wasm_bindgen::prelude::*;

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

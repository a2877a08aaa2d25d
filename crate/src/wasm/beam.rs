//! `beamSearch()` on a `Model`: the engine's beam search, each step handed to `onStep`.

use super::convert::to_js;
use super::failure::guarded;
use super::generation::StepSink;
use super::model::Model;
use crate::beam::BeamConfig;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
impl Model {
    /// Beam search after `prompt`, as Hugging Face's beam scorer does it: `beams` beams, the
    /// `lengthPenalty` exponent, `earlyStopping` true, false or "never". `onStep` gets each
    /// step: the candidates kept as beams, those that finished a hypothesis and those pruned,
    /// each with its parent, token, text, log probability and score. Resolves to the finished
    /// hypotheses, best first. Cancels as `generate()` does.
    #[wasm_bindgen(js_name = beamSearch, unchecked_return_type = "Promise<Hypothesis[]>")]
    pub fn beam_search(
        &self,
        prompt: String,
        #[wasm_bindgen(unchecked_optional_param_type = "BeamConfig")] config: JsValue,
        #[wasm_bindgen(js_name = onStep, unchecked_optional_param_type = "((step: BeamStep) => void) | null")] on_step: Option<js_sys::Function>,
        #[wasm_bindgen(unchecked_optional_param_type = "{ readonly aborted: boolean } | null")] signal: Option<js_sys::Object>,
    ) -> js_sys::Promise {
        let inner = self.inner.clone();
        let mark = inner.cancels.get();
        guarded(async move {
            let (config, mut engine, mut sink) = StepSink::begin::<BeamConfig>(&inner, mark, config, on_step, signal)?;
            let result = engine.beam_search(&prompt, &config, async |engine, step| sink.hand(engine, &step).await).await;
            sink.finish(result, |_, hypotheses| to_js(&hypotheses))
        })
    }
}

//! A generation on a `Model`: `start()` and `next()` one step at a time, `generate()` on
//! `Engine::run`'s loop, and `cancel()`.

use super::convert::{abort_error, config_from_js, js_error, to_js};
use super::failure::guarded;
use super::model::{EngineGuard, Inner, Model, Run};
use crate::generate::GenerateConfig;
use crate::Error;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use std::ops::ControlFlow;

#[wasm_bindgen]
impl Model {
    /// Prefills the prompt and readies a generation; take its steps with `next()`.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn start(
        &self,
        prompt: String,
        #[wasm_bindgen(unchecked_optional_param_type = "GenerateConfig")] config: JsValue,
    ) -> js_sys::Promise {
        let inner = self.inner.clone();
        let mark = inner.cancels.get();
        guarded(async move {
            start_generation(&inner, &prompt, config, mark).await?;
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
        self.drive(prompt, Vec::new(), config, on_step, signal)
    }

    /// `generate()` from a branch point: after `prompt`, the `tokens` are taken as already
    /// generated (a run's first tokens, then an alternative to its next one), and the
    /// generation goes on from there, with the sampler starting afresh from its seed. The
    /// prefix comes from the cache rows the model keeps of earlier runs
    /// (`prefixCacheBytes`), and the rest is fed as a run feeds it, so a branch on a run's
    /// own token goes on as the run did. Resolves to the branch's steps.
    #[wasm_bindgen(unchecked_return_type = "Promise<Step[]>")]
    pub fn fork(
        &self,
        prompt: String,
        tokens: Vec<u32>,
        #[wasm_bindgen(unchecked_optional_param_type = "GenerateConfig")] config: JsValue,
        #[wasm_bindgen(js_name = onStep, unchecked_optional_param_type = "((step: Step) => void) | null")] on_step: Option<js_sys::Function>,
        #[wasm_bindgen(unchecked_optional_param_type = "{ readonly aborted: boolean } | null")] signal: Option<js_sys::Object>,
    ) -> js_sys::Promise {
        self.drive(prompt, tokens, config, on_step, signal)
    }
}

impl Model {
    fn drive(&self, prompt: String, tokens: Vec<u32>, config: JsValue, on_step: Option<js_sys::Function>, signal: Option<js_sys::Object>) -> js_sys::Promise {
        let inner = self.inner.clone();
        let mark = inner.cancels.get();
        guarded(async move {
            let (config, mut engine, mut sink) = StepSink::begin::<GenerateConfig>(&inner, mark, config, on_step, signal)?;
            let result = engine.run_after(&prompt, &tokens, &config, async |engine, step| sink.hand(engine, &step).await).await;
            sink.finish(result, |steps, ()| Ok(steps.into()))
        })
    }
}

/// What a driven call (`generate()`, `beamSearch()`) does with each step: hands it to
/// `onStep`, keeps it, yields to the event loop, and says whether to go on (not after a
/// `cancel()`, an aborted signal or a throwing callback).
pub(super) struct StepSink<'a> {
    inner: &'a Inner,
    on_step: Option<js_sys::Function>,
    signal: Option<js_sys::Object>,
    steps: js_sys::Array,
    thrown: Option<JsValue>,
}

impl<'a> StepSink<'a> {
    /// Starts a driven call: refuses an aborted signal, reads its config, holds the engine
    /// (idle) and marks it driven. `mark`: `cancels` when the call was made.
    pub(super) fn begin<C: serde::de::DeserializeOwned + serde::Serialize + Default>(
        inner: &'a Inner,
        mark: u64,
        config: JsValue,
        on_step: Option<js_sys::Function>,
        signal: Option<js_sys::Object>,
    ) -> Result<(C, EngineGuard<'a>, Self), JsValue> {
        if is_aborted(signal.as_ref()) {
            return Err(abort_error(js_sys::Array::new()));
        }
        let config = config_from_js(config)?;
        let engine = inner.idle_engine()?;
        inner.run_mark.set(mark);
        inner.run.set(Run::Driven);
        Ok((config, engine, Self { inner, on_step, signal, steps: js_sys::Array::new(), thrown: None }))
    }

    pub(super) async fn hand(&mut self, engine: &crate::generate::Engine<crate::model::auto::AutoModel>, step: &impl serde::Serialize) -> ControlFlow<()> {
        self.inner.refresh_properties(engine);
        let handed = to_js(step).and_then(|step| {
            self.on_step.as_ref().map_or(Ok(JsValue::UNDEFINED), |f| f.call1(&JsValue::NULL, &step))?;
            self.steps.push(&step);
            Ok(())
        });
        if let Err(error) = handed {
            self.thrown = Some(error);
            return ControlFlow::Break(());
        }
        yield_to_event_loop().await;
        match self.inner.cancelled() || is_aborted(self.signal.as_ref()) {
            true => ControlFlow::Break(()),
            false => ControlFlow::Continue(()),
        }
    }

    /// The call's outcome: `ok(steps, value)`, the callback's own error, or an AbortError that
    /// holds the steps made.
    pub(super) fn finish<T>(self, result: crate::Result<T>, ok: impl FnOnce(js_sys::Array, T) -> Result<JsValue, JsValue>) -> Result<JsValue, JsValue> {
        self.inner.run.set(Run::Idle);
        match (self.thrown, result) {
            (Some(error), _) => Err(error),
            (None, Ok(value)) => ok(self.steps, value),
            (None, Err(Error::Cancelled)) => Err(abort_error(self.steps)),
            (None, Err(error)) => Err(js_error(error)),
        }
    }
}

/// `mark`: `cancels` when the call was made.
pub(super) async fn start_generation(inner: &Inner, prompt: &str, config: JsValue, mark: u64) -> Result<(), JsValue> {
    let config: GenerateConfig = config_from_js(config)?;
    let mut engine = inner.idle_engine()?;
    let generation = engine.start(prompt, &config).await.map_err(js_error)?;
    inner.run_mark.set(mark);
    *inner.generation.borrow_mut() = Some(generation);
    inner.run.set(Run::Stepped);
    Ok(())
}

/// One step of the generation in progress; ends it on its last step, an error or a cancel.
pub(super) async fn next_step(inner: &Inner) -> Result<JsValue, JsValue> {
    let mut engine = inner.engine()?;
    let Some(mut current) = inner.generation.borrow_mut().take() else { return Ok(JsValue::UNDEFINED) };
    let step = engine.step(&mut current).await;
    // A failed step, like the last one, leaves the generation finished.
    let cancelled = inner.run.get() == Run::Stepped && inner.cancelled();
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

pub(super) fn is_aborted(signal: Option<&js_sys::Object>) -> bool {
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

//! The step stream: `model.stream()`'s async iterator over one generation's steps.

use super::convert::abort_error;
use super::failure::guarded;
use super::generation::{is_aborted, next_step, start_generation};
use super::model::{Inner, Model, Run};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

#[wasm_bindgen]
impl Model {
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
        let mark = state.inner.cancels.get();
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
                    start_generation(&state.inner, &prompt, config, mark).await?;
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

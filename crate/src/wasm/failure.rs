//! What happens after a panic: the panic hook, the failure every later call gets, and the
//! promises that reject with it.

use std::cell::{Cell, RefCell};
use wasm_bindgen::prelude::*;

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
pub(super) fn alive() -> Result<(), JsValue> {
    match FAILURE.with(|f| f.borrow().clone()) {
        Some(what) => Err(failed_error(&what)),
        None => Ok(()),
    }
}

/// Runs `future` as a JS promise that also rejects (with the failure) if the module panics while
/// it is in flight, and rejects at once if it already has.
pub(super) fn guarded(future: impl std::future::Future<Output = Result<JsValue, JsValue>> + 'static) -> js_sys::Promise {
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

//! Conversion at the boundary: core errors to JS `Error`s, results to JS values, and JS config
//! objects to Rust configs (unknown fields refused, renamed ones accepted with a warning).

use crate::Error;
use serde::{de::DeserializeOwned, Serialize};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// A JS `Error` with the core error's message, its stable `code` (see [`Error::code`]) and, for
/// a parameter out of range, the `field` it concerns.
pub(super) fn js_error(error: Error) -> JsValue {
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
pub(super) fn abort_error(steps: js_sys::Array) -> JsValue {
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

pub(super) fn to_js(value: &impl Serialize) -> Result<JsValue, JsValue> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| js_error(Error::Model(format!("cannot hand the result to JS: {e}"))))
}

pub(super) fn config_from_js<T: DeserializeOwned + Serialize + Default>(config: JsValue) -> Result<T, JsValue> {
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

/// Old config field names that are still accepted (serde aliases), what replaced them, and the
/// version that stops accepting them (remove the entry and its `#[serde(alias)]` then).
const RENAMED_FIELDS: [(&str, &str, &str); 1] = [("topN", "topAlternatives", "0.2.0")];

/// Warns about each old field name in `given` and renames it, so that the unknown-field check
/// compares it with the parsed config's new name.
fn accept_renamed_fields(given: &mut serde_json::Value) {
    use serde_json::Value::{Array, Object};
    match given {
        Object(fields) => {
            for (old, new, removed_in) in RENAMED_FIELDS {
                if let Some(value) = fields.remove(old) {
                    warn(&format!(
                        "decoding-playground: `{old}` is deprecated and goes in {removed_in}: use `{new}` (the same setting)"
                    ));
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

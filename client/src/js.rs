//! What the browser throws, as this crate's [`Error`].

use wasm_bindgen::prelude::*;

use crate::error::Error;

/// The browser's exception `value`, as [`Error::Js`].
pub(crate) fn error(value: JsValue) -> Error {
    Error::Js(describe(&value))
}

#[wasm_bindgen]
extern "C" {
    /// The text of a JavaScript exception: `String(value)`, which is `name: message` for an
    /// `Error`. (JavaScript's, not `format!`: that would pull `Debug` into every build.)
    #[wasm_bindgen(js_name = String)]
    pub(crate) fn describe(value: &JsValue) -> String;
}

//! What the browser throws, as this crate's [`Error`]; and bytes from JavaScript, as a `Vec`.

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

    /// The bytes of a `Uint8Array`, copied into Rust once, by the glue, straight into a `Vec`
    /// of ours: `Object`, which hands an object back as it is, only gives the glue the view.
    /// (`Uint8Array::to_vec` asks the length three times and asserts it, which pulls integer
    /// `Debug` into the page.)
    #[wasm_bindgen(js_name = Object)]
    pub(crate) fn bytes(view: &js_sys::Uint8Array) -> Vec<u8>;
}

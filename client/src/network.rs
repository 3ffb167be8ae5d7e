//! Following the browser (`Builder::follow_network`): its `online` and `offline` events, and
//! the page becoming visible again. Built only into applications that ask for it.

use std::rc::Rc;

use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;

use crate::tracked::Tracked;

/// What the browser said.
pub(crate) enum Change {
    Online,
    Offline,
    /// The page is visible again.
    Visible,
}

/// Listens to the global scope's `online` and `offline`, and to the page's visibility (a
/// worker has no page to hide), telling `tell`; until the result is dropped.
pub(crate) fn listen(tell: impl Fn(Change) + 'static) -> Box<dyn std::any::Any> {
    let tell: Rc<dyn Fn(Change)> = Rc::new(tell);
    let global: web_sys::EventTarget = js_sys::global().unchecked_into();
    let mut listeners = Vec::new();
    for event in ["online", "offline"] {
        listeners.push(Listener::new(&global, event, tell.clone()));
    }
    let document = js_sys::Reflect::get(&global, &"document".into()).ok();
    if let Some(document) = document.filter(|document| document.is_object()) {
        let document: web_sys::EventTarget = document.unchecked_into();
        listeners.push(Listener::new(&document, "visibilitychange", tell));
    }
    Box::new(listeners)
}

/// A listener for one of the browser's events, removed when dropped.
struct Listener {
    target: web_sys::EventTarget,
    event: &'static str,
    closure: Tracked<Closure<dyn FnMut(web_sys::Event)>>,
}

impl Listener {
    fn new(target: &web_sys::EventTarget, event: &'static str, tell: Rc<dyn Fn(Change)>) -> Self {
        let closure = Closure::<dyn FnMut(_)>::new(move |_: web_sys::Event| {
            let change = match event {
                "online" => Change::Online,
                "offline" => Change::Offline,
                _ if is_visible() => Change::Visible,
                _ => return,
            };
            tell(change);
        });
        let _ = target.add_event_listener_with_callback(event, closure.as_ref().unchecked_ref());
        Listener {
            target: target.clone(),
            event,
            closure: Tracked::new(closure),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let callback = self.closure.as_ref().unchecked_ref();
        let _ = (self.target).remove_event_listener_with_callback(self.event, callback);
    }
}

/// Whether the page is visible (`document.visibilityState`).
fn is_visible() -> bool {
    let global = js_sys::global();
    let state = js_sys::Reflect::get(&global, &"document".into())
        .and_then(|document| js_sys::Reflect::get(&document, &"visibilityState".into()));
    state.ok().and_then(|state| state.as_string()).as_deref() == Some("visible")
}

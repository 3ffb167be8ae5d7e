//! The echo page of `www/index.html`: the seed chapter's page, driven from Rust through the
//! public API of the `wasm-websocket` crate and nothing else.
//!
//! This crate is the application, so it makes the choices a library must leave to it: it
//! installs `console_error_panic_hook` and sets the global allocator (talc, smaller than
//! Rust's default in the page's wasm).
//!
//! It logs the seed's lines (`connected to …`, `message received: …`,
//! `connection closed (code)`) both on the page, with times, and to the console.

use std::cell::RefCell;
use std::rc::Rc;

use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{Document, Element, HtmlButtonElement, HtmlInputElement};

use wasm_websocket::{CloseEvent, Error, Message, Reconnect, Reconnecting, State, WebSocket};

/// The page's elements, looked up once.
struct Page {
    document: Document,
    status: Element,
    log: Element,
    message: HtmlInputElement,
    send: HtmlButtonElement,
    connect: HtmlButtonElement,
}

/// The page's state: the socket, if any, and the listeners that must live as long as the page.
struct Demo {
    page: Rc<Page>,
    url: String,
    socket: Option<WebSocket>,
    _listeners: [Closure<dyn FnMut(web_sys::Event)>; 2],
}

// The page's globals, bound directly: `web_sys::window()` would look the global object up
// at run time, which costs the demo more code.
#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(thread_local_v2, js_name = document)]
    static DOCUMENT: Document;
    #[wasm_bindgen(thread_local_v2, js_name = location)]
    static LOCATION: web_sys::Location;
}

thread_local! {
    static DEMO: RefCell<Option<Demo>> = const { RefCell::new(None) };
}

/// Starts the page: wires the form and the Connect button, and connects to the server that
/// served the page, or to the `?url=` parameter when given.
#[wasm_bindgen]
pub fn start_demo() -> Result<(), JsValue> {
    console_error_panic_hook::set_once();
    let document = DOCUMENT.with(Document::clone);
    let find = |id: &str| {
        document
            .get_element_by_id(id)
            // The id of the element that is missing.
            .ok_or_else(|| JsValue::from_str(id))
    };
    let page = Page {
        status: find("status")?,
        log: find("log")?,
        // www/index.html's <input> and <button>s: not checked at run time, which costs size.
        message: find("message")?.unchecked_into(),
        send: find("send")?.unchecked_into(),
        connect: find("connect")?.unchecked_into(),
        document: document.clone(),
    };
    let url = LOCATION.with(server_url)?;
    find("url")?.set_text_content(Some(&url));

    let submit = Closure::<dyn FnMut(_)>::new(|event: web_sys::Event| {
        event.prevent_default();
        with_demo(Demo::send);
    });
    find("form")?.add_event_listener_with_callback("submit", submit.as_ref().unchecked_ref())?;
    let toggle = Closure::<dyn FnMut(_)>::new(|_: web_sys::Event| with_demo(Demo::toggle));
    page.connect
        .add_event_listener_with_callback("click", toggle.as_ref().unchecked_ref())?;

    // `try_with`: `with` would carry a panic for a thread-local used after its destruction,
    // which cannot happen on the page's one thread.
    let _ = DEMO.try_with(|demo| {
        *demo.borrow_mut() = Some(Demo {
            page: Rc::new(page),
            url,
            socket: None,
            _listeners: [submit, toggle],
        });
    });
    with_demo(Demo::connect);
    Ok(())
}

fn with_demo(action: impl FnOnce(&mut Demo)) {
    let _ = DEMO.try_with(|demo| {
        if let Some(demo) = demo.borrow_mut().as_mut() {
            action(demo);
        }
    });
}

/// `?url=` if given; otherwise the WebSocket at `/` of the server that served the page.
fn server_url(location: &web_sys::Location) -> Result<String, JsValue> {
    let query = web_sys::UrlSearchParams::new_with_str(&location.search()?)?;
    if let Some(url) = query.get("url") {
        return Ok(url);
    }
    let scheme = if location.protocol()? == "https:" {
        "wss"
    } else {
        "ws"
    };
    let host = location.host()?;
    if host.is_empty() {
        // Opened from a file: the seed's address.
        return Ok("ws://127.0.0.1:1234/".to_owned());
    }
    Ok([scheme, "://", &host, "/"].concat())
}

impl Demo {
    fn connect(&mut self) {
        self.page.log("", &["connecting to ", &self.url].concat());
        let page = self.page.clone();
        let on_open = move |socket: &WebSocket| {
            page.log("", &["connected to ", &socket.url()].concat());
            page.show(State::Open);
        };
        let page = self.page.clone();
        let on_message = move |_: &WebSocket, message| match message {
            Message::Text(text) => page.log("", &["message received: ", &text].concat()),
            Message::Binary(data) => {
                let size = decimal(data.len() as u32);
                page.log(
                    "",
                    &["message received: ", &size, " bytes of binary"].concat(),
                );
            }
        };
        let page = self.page.clone();
        let on_error = move |_: &WebSocket| page.log("error", "connection error");
        let page = self.page.clone();
        let on_close = move |_: &WebSocket, event: CloseEvent| {
            let mut line = ["connection closed (", &decimal(event.code.into()), ")"].concat();
            if !event.reason.is_empty() {
                line.push_str(": ");
                line.push_str(&event.reason);
            }
            page.log(if event.was_clean { "" } else { "error" }, &line);
            page.show(State::Closed);
        };
        let page = self.page.clone();
        let on_reconnect = move |_: &WebSocket, next: Reconnecting| {
            // u32, not as_millis's u128: formatting u128 costs a kilobyte of wasm.
            let millis = decimal(next.delay.as_millis() as u32);
            let attempt = decimal(next.attempt);
            let line = ["reconnecting (attempt ", &attempt, ") in ", &millis, " ms"];
            page.log("", &line.concat());
            page.show(State::Reconnecting);
        };
        let connecting = WebSocket::builder(&self.url)
            .reconnect(Reconnect::new().max_attempts(5))
            .on_open(on_open)
            .on_message(on_message)
            .on_error(on_error)
            .on_close(on_close)
            .on_reconnect(on_reconnect)
            .connect();
        match connecting {
            Ok(socket) => {
                self.socket = Some(socket);
                self.page.show(State::Connecting);
            }
            Err(error) => {
                self.page.log("error", explain(&error));
                self.page.show(State::Closed);
            }
        }
    }

    fn toggle(&mut self) {
        match self.socket.as_ref().map(WebSocket::state) {
            Some(State::Connecting | State::Open | State::Reconnecting) => {
                if let Some(socket) = &self.socket {
                    // 1000 is always a valid code: nothing to report.
                    let _ = socket.close();
                    self.page.show(socket.state());
                }
            }
            _ => self.connect(),
        }
    }

    fn send(&mut self) {
        let text = self.page.message.value();
        let result = match &self.socket {
            Some(socket) => socket.send(&text),
            None => Err(Error::NotOpen(State::Closed)),
        };
        match result {
            Ok(_) => self.page.log("sent", &["sent: ", &text].concat()),
            Err(error) => self.page.log("error", explain(&error)),
        }
    }
}

/// `n` in decimal, for every number the page shows. (By hand: `to_string` would bring a
/// formatter per integer type into the page's wasm.)
fn decimal(mut n: u32) -> String {
    let mut digits = String::new();
    loop {
        digits.insert(0, char::from(b'0' + (n % 10) as u8));
        n /= 10;
        if n == 0 {
            return digits;
        }
    }
}

/// What went wrong, in the page's words. (The errors' own `Display` says more, in more
/// bytes of wasm: each formatted message is code and text the page would carry. The page shows
/// the URL and the state beside the log.)
fn explain(error: &Error) -> &'static str {
    match error {
        Error::InvalidUrl { .. } => "invalid WebSocket URL",
        Error::NotOpen(_) => "not connected",
        _ => "the browser refused",
    }
}

impl Page {
    /// Adds a line to the page's log, with the time, and to the console.
    fn log(&self, class: &str, text: &str) {
        web_sys::console::log_1(&text.into());
        let Ok(line) = self.document.create_element("li") else {
            return;
        };
        if !class.is_empty() {
            line.set_class_name(class);
        }
        if let Ok(time) = self.document.create_element("time") {
            let now = js_sys::Date::new_0();
            // hh:mm:ss.mmm, local time: the ISO form of the time shifted by the zone offset.
            let offset = now.get_timezone_offset() * 60_000.0;
            let local = js_sys::Date::new(&(now.get_time() - offset).into());
            let iso = String::from(local.to_iso_string());
            let stamp = iso.get(11..23).unwrap_or_default();
            time.set_text_content(Some(stamp));
            let _ = line.append_child(&time);
        }
        let _ = line.append_child(&self.document.create_text_node(text));
        let _ = self.log.append_child(&line);
    }

    /// Shows the connection state: the status badge, and which controls can be used.
    fn show(&self, state: State) {
        self.status.set_text_content(Some(state.as_str()));
        let _ = self.status.set_attribute("data-state", state.as_str());
        self.send.set_disabled(state != State::Open);
        let active = matches!(state, State::Connecting | State::Open | State::Reconnecting);
        self.connect
            .set_text_content(Some(if active { "Disconnect" } else { "Connect" }));
        self.connect.set_disabled(state == State::Closing);
    }
}

#[cfg(all(target_family = "wasm", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

//! Architecture rules as tests, in the manner of rust-analyzer's `xtask/src/tidy.rs`: a rule
//! written as a test survives the next refactor; a rule in a document does not. They run with
//! the native tests (`cargo test -p xtask`).
//!
//! - The client's core (the socket's behaviour with no I/O) uses nothing that does I/O or
//!   shares state: no `wasm-bindgen`, `js-sys`, `web-sys`, `tokio`, futures, `Rc`, `RefCell`
//!   or `Cell`, and imports only other core modules.
//! - No transport imports the drivers, the core or the builder: transports report through the
//!   `Listener` trait.
//! - The thin driver (`thin.rs`) imports none of the full driver's parts (the core, the
//!   builder, reconnection, the queue, the heartbeat).
//! - `client/src` has no import circle.
//! - The browser's build of the client has none of the native transport's crates: tokio,
//!   permessage-deflate's `ws-deflate` and zlib (the browser compresses for the page).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The client's core: plain values, the behaviour of a socket with no I/O.
const CORE: [&str; 8] = [
    "core",
    "watch",
    "queue",
    "reconnect",
    "message",
    "payload",
    "event",
    "error",
];

/// What the core may not name: I/O, tasks and shared mutable state.
const NOT_IN_CORE: [&str; 9] = [
    "wasm_bindgen",
    "js_sys",
    "web_sys",
    "tokio",
    "futures",
    "Rc<",
    "RefCell",
    "Cell<",
    "std::rc",
];

/// The transports, and what they may not import.
/// `tunnel`, `proxy` and `http2` are the native transport's: the way to the server, its proxy,
/// and the shared HTTP/2 connections.
const TRANSPORTS: [&str; 7] = [
    "connection",
    "native",
    "tunnel",
    "proxy",
    "http2",
    "websocketstream",
    "sim",
];
const NOT_FOR_TRANSPORTS: [&str; 6] = ["socket", "thin", "handle", "core", "watch", "builder"];

/// What the thin driver (`thin.rs`) may not import: the full driver's core and its optional
/// parts, which a program that never calls the builder must not carry. (It imports `socket`
/// for the handle and the `Driver` trait, which `Shared` implements there too: an import is not
/// a reference to code, and the bench measures what a program carries.)
const NOT_FOR_THIN: [&str; 8] = [
    "builder",
    "core",
    "watch",
    "queue",
    "reconnect",
    "heartbeat",
    "network",
    "handle",
];

/// Each module of `client/src` (by file stem; `lib` left out: it only declares and
/// re-exports) and its source, tests left out (a test module may use anything); with the
/// simulated transport of `client/src/tests/sim.rs`, which the transports' rule holds too.
fn client_modules() -> BTreeMap<String, String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../client/src");
    let mut modules = read_modules(&src);
    let sim = std::fs::read_to_string(src.join("tests/sim.rs")).expect("client/src/tests/sim.rs");
    modules.insert("sim".to_owned(), sim);
    modules
}

/// The `.rs` files directly in `dir` but `lib.rs`, by file stem, each without its
/// `#[cfg(test)] mod tests`.
fn read_modules(dir: &Path) -> BTreeMap<String, String> {
    let mut modules = BTreeMap::new();
    for entry in std::fs::read_dir(dir).expect("client/src") {
        let path = entry.expect("a directory entry").path();
        let Some(stem) = path.file_stem().and_then(|stem| stem.to_str()) else {
            continue;
        };
        if path.extension().is_none_or(|ext| ext != "rs") || stem == "lib" {
            continue;
        }
        let source = std::fs::read_to_string(&path).expect("a source file");
        let code = match source.find("#[cfg(test)]\nmod tests") {
            Some(tests) => source[..tests].to_owned(),
            None => source,
        };
        modules.insert(stem.to_owned(), code);
    }
    modules
}

/// The lines of `code` that are code, not comments, without their string literals.
fn code_lines(code: &str) -> impl Iterator<Item = String> {
    code.lines()
        .map(str::trim_start)
        .filter(|line| !line.starts_with("//"))
        .map(|line| {
            let (mut kept, mut quoted, mut escaped) = (String::new(), false, false);
            for c in line.chars() {
                match (quoted, escaped, c) {
                    (true, false, '\\') => escaped = true,
                    (_, false, '"') => quoted = !quoted,
                    (true, _, _) => escaped = false,
                    (false, _, _) => kept.push(c),
                }
            }
            kept
        })
}

/// The crate modules that `code` names: `crate::NAME` anywhere (`crate::tests::NAME` for the
/// modules of the tests' folder), and the names in `use crate::{a, b::c}` lists.
fn imports(code: &str, modules: &BTreeMap<String, String>) -> BTreeSet<String> {
    let mut named = BTreeSet::new();
    for line in code_lines(code) {
        let mut rest = line.as_str();
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            rest = rest.strip_prefix("tests::").unwrap_or(rest);
            if let Some(list) = rest.strip_prefix('{') {
                let list = list.split('}').next().unwrap_or_default();
                for item in list.split(',') {
                    let name = item.trim().split("::").next().unwrap_or_default();
                    named.insert(name.to_owned());
                }
            } else {
                let name: String = (rest.chars())
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                named.insert(name);
            }
        }
    }
    named.retain(|name| modules.contains_key(name));
    named
}

#[test]
fn the_client_core_does_no_io() {
    let modules = client_modules();
    for name in CORE {
        let code = &modules[name];
        for line in code_lines(code) {
            for banned in NOT_IN_CORE {
                assert!(
                    !line.contains(banned),
                    "client/src/{name}.rs is part of the core, which does no I/O and shares no \
                     state, but names `{banned}`: {line}"
                );
            }
        }
        for import in imports(code, &modules) {
            assert!(
                CORE.contains(&import.as_str()),
                "client/src/{name}.rs is part of the core but imports `{import}`, which is not"
            );
        }
    }
}

#[test]
fn transports_report_through_the_listener_only() {
    let modules = client_modules();
    for name in TRANSPORTS {
        let Some(code) = modules.get(name) else {
            continue;
        };
        for import in imports(code, &modules) {
            assert!(
                !NOT_FOR_TRANSPORTS.contains(&import.as_str()),
                "client/src/{name}.rs is a transport but imports `{import}`: transports know \
                 the driver only as a `transport::Listener`"
            );
        }
    }
}

#[test]
fn the_thin_driver_knows_no_core() {
    let modules = client_modules();
    let code = &modules["thin"];
    for import in imports(code, &modules) {
        assert!(
            !NOT_FOR_THIN.contains(&import.as_str()),
            "client/src/thin.rs imports `{import}`: the thin driver is what a program without \
             the builder carries, and must not reach the full driver's parts"
        );
    }
}

/// What the client may depend on only natively: what the browser does for a page, and tokio.
const NATIVE_ONLY: [&str; 4] = ["tokio", "tokio-tungstenite", "ws-deflate", "flate2"];

#[test]
fn the_browser_build_has_no_native_crate() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../client/Cargo.toml");
    let manifest = std::fs::read_to_string(manifest).expect("client/Cargo.toml");
    // The sections a wasm32 build reads: `[dependencies]` and the wasm32 target's.
    let mut section = String::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            section = line.to_owned();
            continue;
        }
        let for_the_browser = section == "[dependencies]"
            || section == "[target.'cfg(target_arch = \"wasm32\")'.dependencies]";
        let name = line.split(['=', ' ', '.']).next().unwrap_or_default();
        assert!(
            !(for_the_browser && NATIVE_ONLY.contains(&name)),
            "client/Cargo.toml has `{name}` in {section}, which the browser's build reads: \
             put it under [target.'cfg(not(target_arch = \"wasm32\"))'.dependencies]"
        );
    }
    assert!(
        manifest.contains("[target.'cfg(not(target_arch = \"wasm32\"))'.dependencies]"),
        "the native section's header changed: update this rule"
    );
}

#[test]
fn the_client_has_no_import_circle() {
    let modules = client_modules();
    let graph: BTreeMap<&str, BTreeSet<String>> = (modules.iter())
        .map(|(name, code)| (name.as_str(), imports(code, &modules)))
        .collect();
    // Depth-first, with the path so far: a module met again on it closes a circle.
    fn visit<'a>(
        name: &'a str,
        graph: &'a BTreeMap<&str, BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) {
        if let Some(at) = path.iter().position(|on| *on == name) {
            panic!(
                "client/src has an import circle: {} -> {name}",
                path[at..].join(" -> ")
            );
        }
        if !done.insert(name) {
            return;
        }
        path.push(name);
        for next in &graph[name] {
            if next != name {
                visit(next, graph, path, done);
            }
        }
        path.pop();
    }
    let mut done = BTreeSet::new();
    for name in graph.keys() {
        visit(name, &graph, &mut Vec::new(), &mut done);
    }
}

#[test]
fn the_import_scanner_sees_lists_and_paths() {
    let modules: BTreeMap<String, String> = ["a", "b", "c"]
        .into_iter()
        .map(|name| (name.to_owned(), String::new()))
        .collect();
    let code = "use crate::{a::X, b};\n// crate::c in a comment\nlet x = crate::c::y();";
    let found: Vec<String> = imports(code, &modules).into_iter().collect();
    assert_eq!(found, ["a", "b", "c"]);
    assert!(imports("use crate::d::X;", &modules).is_empty());
}

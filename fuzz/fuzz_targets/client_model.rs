//! The client's core and driver on the simulated world of its model tests
//! (`client/src/tests/model.rs`): the configuration and a sequence of the model's operations
//! (the application's calls, also from inside callbacks, the server's doings, time, network
//! changes) read from the fuzzer's bytes, with every invariant of the model checked after
//! every step and at the end.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(broken) = wasm_websocket::fuzz_model(data) {
        panic!("{broken}");
    }
});

//! The echo server in the test's own process, for the native tests that stop and restart it
//! or serve it over TLS: `proxy.rs`, `http2.rs`.

#![allow(dead_code)] // Each test file uses its own part.

use std::sync::Arc;

use test_support::tls::Localhost;

/// An echo server (`wsecho`, with its test controls) on a thread and runtime of its own, on
/// `port` (0: any); stopping it drops the runtime, and with it every connection at once.
pub struct Echo {
    pub port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Echo {
    pub fn start(port: u16, config: wsecho::Config) -> Echo {
        let config = wsecho::Config {
            test_controls: true,
            ..config
        };
        let (bound, port_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let listener = wsecho::listen(&format!("127.0.0.1:{port}")).await.unwrap();
                bound.send(listener.local_addr().unwrap().port()).unwrap();
                tokio::select! {
                    () = wsecho::serve(listener, config, std::future::pending()) => {}
                    _ = stopped => {}
                }
            });
        });
        let port = port_rx.recv().unwrap();
        Echo {
            port,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// A server of `wss://` with `localhost`'s certificate (HTTP/2 offered unless `http2` is
    /// off), and these other settings.
    pub fn tls(port: u16, localhost: &Localhost, config: wsecho::Config) -> Echo {
        let tls = Some(Arc::new(localhost.server_config()));
        Echo::start(port, wsecho::Config { tls, ..config })
    }

    pub fn kill(mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        drop(self.stop.take());
    }
}

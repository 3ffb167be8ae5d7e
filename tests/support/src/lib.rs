//! What the test crates share, in one place: the server tests (`server/tests/`), the
//! end-to-end tests (`tests/`), the benchmarks (`bench/`) and `xtask`.
//!
//! - [`Spawned`]: a server process started for a test, whose address is read from the one
//!   line it prints (`listening on SCHEME://ADDR/`), and which is killed when dropped.
//! - [`browser`]: the three engines (Chromium, Firefox, WebKit), where they and their WebDriver
//!   servers are, and how the wasm-bindgen tests run in each.
//! - [`raw`]: WebSocket bytes as a client library would never send them: handshakes, masked
//!   frames, and the server's frames read back.
//! - [`rng`]: the tests' one random number generator (SplitMix64), deterministic from a seed.
//! - `deflate` (feature `deflate`, flate2): client-side permessage-deflate.
//! - `tls` (feature `tls`, rcgen and rustls): a certificate for `localhost` made on the spot,
//!   and the rustls configurations that serve it and trust it.
//!
//! Standard library only without features, since `xtask` builds it on every run.

#[cfg(feature = "deflate")]
pub mod deflate;
pub mod rng;
#[cfg(feature = "tls")]
pub mod tls;

use std::io::{self, BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};

/// A server process, killed when dropped.
#[derive(Debug)]
pub struct Spawned {
    child: Child,
    /// What it printed after `listening on `: `ws://127.0.0.1:PORT/`, `tcp://...`.
    pub url: String,
}

impl Spawned {
    /// Starts `command` with its stdout piped and reads its first line, which must be
    /// `listening on URL`; the process is killed if it is not.
    pub fn start(command: &mut Command) -> io::Result<Spawned> {
        let mut child = command.stdout(Stdio::piped()).spawn()?;
        let mut line = String::new();
        let stdout = child.stdout.take().expect("piped");
        BufReader::new(stdout).read_line(&mut line)?;
        match line.trim().strip_prefix("listening on ") {
            Some(url) => Ok(Spawned {
                url: url.to_owned(),
                child,
            }),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                let message = format!("{:?} did not start: {line:?}", command.get_program());
                Err(io::Error::other(message))
            }
        }
    }

    /// `HOST:PORT`, from the URL.
    pub fn addr(&self) -> &str {
        let rest = self
            .url
            .split_once("://")
            .map_or(&self.url[..], |(_, rest)| rest);
        rest.trim_end_matches('/')
    }

    /// The process id, for `/proc/PID/...`.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// A `kB` field of `/proc/PID/status`, such as `VmRSS` (resident now) or `VmHWM` (peak).
    pub fn status_kib(&self, field: &str) -> io::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.id()))?;
        let prefix = format!("{field}:");
        status
            .lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .and_then(|value| value.split_whitespace().next()?.parse().ok())
            .ok_or_else(|| io::Error::other(format!("no {field} in /proc/PID/status")))
    }

    /// How many files the process has open (`/proc/PID/fd`): its sockets among them.
    pub fn open_files(&self) -> io::Result<usize> {
        Ok(std::fs::read_dir(format!("/proc/{}/fd", self.id()))?.count())
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> io::Result<ExitStatus> {
        let pid = self.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status()?;
        self.child.wait()
    }

    /// Waits for the process to exit by itself.
    pub fn wait(mut self) -> io::Result<ExitStatus> {
        self.child.wait()
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The three browser engines, as Debian (and, for geckodriver, crates.io) install them, and how
/// the wasm-bindgen test runner and the end-to-end tests drive each.
pub mod browser {
    use std::path::PathBuf;

    /// Chromium.
    pub const CHROMIUM: &str = "/usr/bin/chromium";
    /// Chromium's WebDriver server, of the same version.
    pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
    /// Firefox ESR (Debian's `firefox-esr`).
    pub const FIREFOX: &str = "/usr/bin/firefox-esr";
    /// The geckodriver that `cargo xtask test` installs from crates.io (`cargo install
    /// --locked geckodriver --version ...`), pinned as the wasm-bindgen CLI is.
    pub const GECKODRIVER_VERSION: &str = "0.37.1";
    /// WebKitGTK's WebDriver server (Debian's `webkit2gtk-driver`), which starts WebKitGTK's
    /// MiniBrowser. That has no headless mode: it runs under [`XVFB_RUN`].
    pub const WEBKIT_DRIVER: &str = "/usr/bin/WebKitWebDriver";
    /// Runs a command with a virtual X display of its own (`-a`: on a free display number).
    pub const XVFB_RUN: &str = "/usr/bin/xvfb-run";

    /// Where cargo installs geckodriver: `$CARGO_HOME/bin`, by default `~/.cargo/bin`.
    pub fn geckodriver() -> PathBuf {
        let home = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))
            .unwrap_or_else(|| PathBuf::from("/root/.cargo"));
        home.join("bin/geckodriver")
    }

    /// A browser engine the tests run in.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Engine {
        /// Blink, in Debian's Chromium: the only engine with `WebSocketStream`.
        Chromium,
        /// Gecko, in Firefox ESR, through geckodriver (which adds `-headless` for the test
        /// runner; the end-to-end tests ask for it themselves).
        Firefox,
        /// WebKit (Safari's engine), in WebKitGTK's MiniBrowser under a virtual display.
        WebKit,
    }

    impl Engine {
        /// Every engine, Chromium first.
        pub const ALL: [Engine; 3] = [Engine::Chromium, Engine::Firefox, Engine::WebKit];

        /// The engine's name in lower case, as `E2E_ENGINE` takes it.
        pub fn name(self) -> &'static str {
            match self {
                Engine::Chromium => "chromium",
                Engine::Firefox => "firefox",
                Engine::WebKit => "webkit",
            }
        }

        /// The engine named `name` (as [`Engine::name`] gives it).
        pub fn from_name(name: &str) -> Option<Engine> {
            Engine::ALL.into_iter().find(|engine| engine.name() == name)
        }

        /// The engine that `E2E_ENGINE` names; Chromium when it is not set.
        pub fn from_env() -> Result<Engine, String> {
            match std::env::var("E2E_ENGINE") {
                Err(_) => Ok(Engine::Chromium),
                Ok(name) => Engine::from_name(&name).ok_or_else(|| {
                    format!("E2E_ENGINE is chromium, firefox or webkit, not {name:?}")
                }),
            }
        }

        /// The engine's WebDriver server.
        pub fn driver(self) -> PathBuf {
            match self {
                Engine::Chromium => PathBuf::from(CHROMEDRIVER),
                Engine::Firefox => geckodriver(),
                Engine::WebKit => PathBuf::from(WEBKIT_DRIVER),
            }
        }

        /// The environment that makes `cargo test --target wasm32-unknown-unknown` run
        /// wasm-bindgen tests in this engine: the runner, and the variable that names the
        /// engine's driver. The runner takes the first of GECKODRIVER, SAFARIDRIVER and
        /// CHROMEDRIVER that is set, so the others must be removed ([`DRIVER_VARIABLES`]).
        /// WebKit's runner runs under `xvfb-run -a` (cargo splits the runner's words).
        pub fn wasm_test_runner_env(self) -> [(&'static str, String); 2] {
            let runner = "wasm-bindgen-test-runner";
            let (runner, variable) = match self {
                Engine::Chromium => (runner.to_owned(), "CHROMEDRIVER"),
                Engine::Firefox => (runner.to_owned(), "GECKODRIVER"),
                // The runner's Safari path speaks plain WebDriver, which WebKitWebDriver is.
                Engine::WebKit => (format!("{XVFB_RUN} -a {runner}"), "SAFARIDRIVER"),
            };
            [
                ("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER", runner),
                (variable, self.driver().display().to_string()),
            ]
        }
    }

    /// The variables by which wasm-bindgen-test-runner picks a driver.
    pub const DRIVER_VARIABLES: [&str; 3] = ["GECKODRIVER", "SAFARIDRIVER", "CHROMEDRIVER"];

    /// The environment that makes `cargo test --target wasm32-unknown-unknown` run
    /// wasm-bindgen tests in headless Chromium.
    pub const WASM_TEST_RUNNER_ENV: [(&str, &str); 2] = [
        (
            "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER",
            "wasm-bindgen-test-runner",
        ),
        ("CHROMEDRIVER", CHROMEDRIVER),
    ];

    /// The flags that make headless Chromium reliable here (as root, no network), with a
    /// fresh profile directory.
    pub fn chromium_args(profile: &std::path::Path) -> Vec<String> {
        let mut args: Vec<String> = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ]
        .map(str::to_owned)
        .into();
        args.push(format!("--user-data-dir={}", profile.display()));
        args
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn engines_by_name_and_their_runner() {
            for engine in Engine::ALL {
                assert_eq!(Engine::from_name(engine.name()), Some(engine));
            }
            assert_eq!(Engine::from_name("safari"), None);
            let [(_, runner), (variable, _)] = Engine::WebKit.wasm_test_runner_env();
            assert!(runner.starts_with(XVFB_RUN), "{runner}");
            assert_eq!(variable, "SAFARIDRIVER");
            let [(_, runner), (variable, driver)] = Engine::Firefox.wasm_test_runner_env();
            assert_eq!(runner, "wasm-bindgen-test-runner");
            assert_eq!(variable, "GECKODRIVER");
            assert!(driver.ends_with("bin/geckodriver"), "{driver}");
        }
    }
}

/// Raw WebSocket bytes, for the cases a client library refuses to send.
pub mod raw {
    /// The two headers a valid handshake adds to [`upgrade_request`]'s: version 13 and the
    /// RFC's example key.
    pub const VERSION_AND_KEY: &str =
        "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

    /// A request for `/` with `Host: host`, `Upgrade: websocket` and `Connection: Upgrade`,
    /// then `extra` header lines (each ending in CRLF).
    pub fn upgrade_request(method: &str, host: &str, extra: &str) -> Vec<u8> {
        format!(
            "{method} / HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\n{extra}\r\n"
        )
        .into_bytes()
    }

    /// A valid handshake request, with `extra` header lines (each ending in CRLF).
    pub fn handshake_with(extra: &str) -> Vec<u8> {
        upgrade_request("GET", "127.0.0.1", &format!("{VERSION_AND_KEY}{extra}"))
    }

    /// A masked client frame (mask 0, so the payload goes as is) with a given first byte.
    pub fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
        masked_client_frame(first, payload, [0; 4])
    }

    /// A client frame with a given first byte, its payload masked with `mask` (a real mask
    /// makes a reader follow the payload's position across reads and frames).
    pub fn masked_client_frame(first: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
        let mut frame = vec![first];
        match payload.len() {
            len @ 0..=125 => frame.push(0x80 | len as u8),
            len @ 126..=65535 => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(len as u16).to_be_bytes());
            }
            len => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        frame
    }

    /// The frames of a server's unmasked byte stream: (opcode, payload); a cut-off frame
    /// last is left out.
    pub fn server_frames(bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let frames = frames_of(bytes).into_iter();
        frames
            .map(|(first, payload)| (first & 0x0f, payload))
            .collect()
    }

    /// The frames of a server's unmasked byte stream with their first byte (FIN, RSV1 to 3,
    /// opcode): (first byte, payload); a cut-off frame last is left out.
    pub fn frames_of(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let mut frames = Vec::new();
        while bytes.len() >= 2 {
            let (len, start) = match bytes[1] & 0x7f {
                126 if bytes.len() >= 4 => (u16::from_be_bytes([bytes[2], bytes[3]]) as usize, 4),
                127 if bytes.len() >= 10 => {
                    let len: [u8; 8] = bytes[2..10].try_into().expect("eight bytes");
                    (u64::from_be_bytes(len) as usize, 10)
                }
                126 | 127 => break,
                len => (len as usize, 2),
            };
            let Some(payload) = bytes.get(start..start + len) else {
                break;
            };
            frames.push((bytes[0], payload.to_vec()));
            bytes = &bytes[start + len..];
        }
        frames
    }

    /// The code of a Close frame's payload.
    pub fn close_code(payload: &[u8]) -> Option<u16> {
        (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]))
    }

    /// The code of the first Close frame the server sent after its `101` answer.
    pub fn close_code_after_handshake(answer: &[u8]) -> Option<u16> {
        let end = answer.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
        let frames = server_frames(&answer[end..]);
        let (_, payload) = frames.iter().find(|(opcode, _)| *opcode == 0x8)?;
        close_code(payload)
    }

    /// The status line of a raw HTTP answer.
    pub fn status_line(answer: &[u8]) -> String {
        let text = String::from_utf8_lossy(answer);
        text.lines().next().unwrap_or_default().to_owned()
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn server_frames_reads_every_length_form_and_stops_at_a_cut() {
            let mut bytes = vec![0x81, 2, b'h', b'i', 0x82, 126, 0, 200];
            bytes.extend_from_slice(&[1; 200]);
            bytes.extend_from_slice(&[0x88, 2, 0x03, 0xe8, 0x81, 5, b'x']);
            let frames = server_frames(&bytes);
            assert_eq!(frames.len(), 3);
            assert_eq!(frames[0], (1, b"hi".to_vec()));
            assert_eq!(frames[1].1.len(), 200);
            assert_eq!(close_code(&frames[2].1), Some(1000));
        }
    }
}

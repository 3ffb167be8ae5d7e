//! The tools the commands need, each installed only when it is missing (or not the version
//! asked for), so that a second run installs nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Result, bail};
use test_support::browser::{
    CHROMEDRIVER, CHROMIUM, FIREFOX, GECKODRIVER_VERSION, WEBKIT_DRIVER, XVFB_RUN, geckodriver,
};

use crate::{WASM_TARGET, cmd, locked_version, output, run, target_dir};

/// nginx, for the reverse-proxy test.
pub const NGINX: &str = "/usr/sbin/nginx";

/// iptables, for the network fault tests: a black hole, random loss, resets.
pub const IPTABLES: &str = "/usr/sbin/iptables";

/// tinyproxy and microsocks, the HTTP and SOCKS5 proxies the client's proxy tests
/// (`client/tests/proxy.rs`) go through.
pub const TINYPROXY: &str = "/usr/bin/tinyproxy";
pub const MICROSOCKS: &str = "/usr/bin/microsocks";

/// The wasm32 target and the wasm-bindgen CLI of exactly the version in Cargo.lock.
pub fn ensure_wasm_tools() -> Result<()> {
    let installed = output("rustup", &["target", "list", "--installed"]).unwrap_or_default();
    if !installed.lines().any(|line| line.trim() == WASM_TARGET) {
        run(cmd("rustup", &["target", "add", WASM_TARGET]))?;
    }
    let version = locked_version("wasm-bindgen")?;
    let have = output("wasm-bindgen", &["--version"]).unwrap_or_default();
    if have.split_whitespace().nth(1) != Some(version.as_str()) {
        // Optimized a little: it reads every test's wasm, and unoptimized it takes seconds.
        cargo_install("wasm-bindgen-cli", &version, Optimize::Little)?;
    }
    Ok(())
}

/// How much `cargo install` optimizes a tool: the compile is most of a new machine's install
/// time, and the tools that only start other programs gain nothing from it.
#[derive(Clone, Copy)]
enum Optimize {
    /// opt-level 0: about half the compile time of the default (wasm-pack: 60 s against 112 s).
    Not,
    /// opt-level 1.
    Little,
}

/// `cargo install --locked CRATE --version VERSION`, optimized as `optimize` says.
fn cargo_install(krate: &str, version: &str, optimize: Optimize) -> Result<()> {
    let level = match optimize {
        Optimize::Not => "0",
        Optimize::Little => "1",
    };
    let mut install = cmd(
        "cargo",
        &["install", "--locked", krate, "--version", version],
    );
    run(install.env("CARGO_PROFILE_RELEASE_OPT_LEVEL", level))
}

/// binaryen's `wasm-opt`, from npm (Debian's binaryen is too old and miscompiles), installed
/// under `target/tools`.
const BINARYEN_VERSION: &str = "132";

pub fn ensure_wasm_opt() -> Result<PathBuf> {
    let prefix = target_dir().join("tools");
    let wasm_opt = prefix.join("node_modules/.bin/wasm-opt");
    let have = output(&wasm_opt.to_string_lossy(), &["--version"]).unwrap_or_default();
    if !have.contains(&format!("version {BINARYEN_VERSION} ")) {
        let mut install = cmd("npm", &["install", "--no-save", "--no-audit", "--no-fund"]);
        install
            .arg("--prefix")
            .arg(&prefix)
            .arg(format!("binaryen@{BINARYEN_VERSION}.0.0"));
        run(install)?;
    }
    Ok(wasm_opt)
}

/// The version of Node's `ws` the deflate benchmark runs (the one measured in
/// `shared/notes/measured.md`).
const WS_VERSION: &str = "8.23.0";

/// Installs `ws` from npm under `target/tools/ws` unless it is there; its module directory.
/// A prefix of its own: `npm install --no-save` elsewhere would prune binaryen.
pub fn ensure_node_ws() -> Result<PathBuf> {
    let prefix = target_dir().join("tools/ws");
    let module = prefix.join("node_modules/ws");
    let installed = std::fs::read_to_string(module.join("package.json")).unwrap_or_default();
    if !installed.contains(&format!("\"version\": \"{WS_VERSION}\"")) {
        let mut install = cmd("npm", &["install", "--no-save", "--no-audit", "--no-fund"]);
        install
            .arg("--prefix")
            .arg(&prefix)
            .arg(format!("ws@{WS_VERSION}"));
        run(install)?;
    }
    Ok(module)
}

/// Python's `websockets` in a venv under `target/tools/pyws` (installed unless there); the
/// venv's python. It offers permessage-deflate by default: the interop check's client.
pub fn ensure_python_websockets() -> Result<PathBuf> {
    let venv = target_dir().join("tools/pyws");
    let python = venv.join("bin/python");
    let python_name = python.to_string_lossy().into_owned();
    if output(&python_name, &["-c", "import websockets"]).is_none() {
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
        run(cmd(
            &python_name,
            &["-m", "pip", "install", "--quiet", "websockets>=17,<18"],
        ))?;
    }
    Ok(python)
}

/// The version of wasm-pack the test command installs.
const WASM_PACK_VERSION: &str = "0.15.1";

/// wasm-pack, which the test command uses to check the README's wasm-pack build.
pub fn ensure_wasm_pack() -> Result<()> {
    if output("wasm-pack", &["--version"]).is_none() {
        cargo_install("wasm-pack", WASM_PACK_VERSION, Optimize::Not)?;
    }
    Ok(())
}

/// The Debian packages the tests and the benchmarks need, each with the file that shows it
/// is installed: the three browser engines and their drivers for the browser tests
/// (Chromium; Firefox ESR, whose geckodriver comes from crates.io, [`ensure_geckodriver`];
/// WebKitGTK's driver, and the virtual display its MiniBrowser needs), nginx for the
/// reverse-proxy test, tinyproxy and microsocks for the client's proxy tests, valgrind for
/// the benchmarks' instruction and allocation counts, iptables for the network fault tests.
const DEBIAN_PACKAGES: [(&str, &str); 10] = [
    ("chromium", CHROMIUM),
    ("chromium-driver", CHROMEDRIVER),
    ("firefox-esr", FIREFOX),
    ("webkit2gtk-driver", WEBKIT_DRIVER),
    ("xvfb", XVFB_RUN),
    ("nginx", NGINX),
    ("tinyproxy", TINYPROXY),
    ("microsocks", MICROSOCKS),
    ("valgrind", "/usr/bin/valgrind"),
    // The network fault tests (`server/tests/netfaults/`): drops, loss and resets.
    ("iptables", IPTABLES),
];

/// geckodriver, Firefox's WebDriver server, of the pinned version: Debian has none, so it is
/// built from crates.io (once, unoptimized: it only relays WebDriver requests).
pub fn ensure_geckodriver() -> Result<()> {
    let have = output(&geckodriver().to_string_lossy(), &["--version"]).unwrap_or_default();
    if have.split_whitespace().nth(1) != Some(GECKODRIVER_VERSION) {
        cargo_install("geckodriver", GECKODRIVER_VERSION, Optimize::Not)?;
    }
    Ok(())
}

/// The version of cargo-fuzz the fuzz step runs.
const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// cargo-fuzz, for the fuzz targets (`cargo xtask test fuzz`), on the nightly toolchain
/// libFuzzer needs. The nightly is the machine's own: nothing else can be fetched here, so a
/// machine without one is told so.
pub fn ensure_cargo_fuzz() -> Result<()> {
    let toolchains = output("rustup", &["toolchain", "list"]).unwrap_or_default();
    if !toolchains.lines().any(|line| line.starts_with("nightly")) {
        bail!("the fuzz targets need a nightly toolchain: `rustup toolchain install nightly`");
    }
    let have = output("cargo", &["fuzz", "--version"]).unwrap_or_default();
    if have.split_whitespace().nth(1) != Some(CARGO_FUZZ_VERSION) {
        cargo_install("cargo-fuzz", CARGO_FUZZ_VERSION, Optimize::Not)?;
    }
    Ok(())
}

pub fn ensure_debian_packages() -> Result<()> {
    let missing: Vec<&str> = DEBIAN_PACKAGES
        .iter()
        .filter(|(_, file)| !Path::new(file).exists())
        .map(|(package, _)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if output("id", &["-u"]).as_deref().map(str::trim) != Some("0") {
        bail!(
            "missing: run `apt-get install {}` as root",
            missing.join(" ")
        );
    }
    run(cmd("apt-get", &["update", "-qq"]))?;
    let mut install = cmd("apt-get", &["install", "-y", "-qq"]);
    install
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive");
    run(install)
}

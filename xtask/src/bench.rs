//! `cargo xtask bench`: the benchmarks, which write BENCHMARKS.md; and the programs of
//! scenario 8 (`bench/peers/`), built here since the tools to build a page are here.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Result, ensure};

use crate::build::{build_client, shrink};
use crate::tools::{ensure_debian_packages, ensure_geckodriver, ensure_node_ws, ensure_wasm_tools};
use crate::{WASM_TARGET, cmd, locked_version, locked_version_in, root, run, target_dir};

/// Builds the servers and the load generator for release and writes BENCHMARKS.md: every
/// scenario, or only `scenarios` (their sections replaced in the file).
pub fn bench(scenarios: &[&str]) -> Result<()> {
    ensure_debian_packages()?;
    // Scenarios 5 and 8 run in Firefox too.
    ensure_geckodriver()?;
    // Scenario 6 measures the demo as this builds it; scenario 5 runs a wasm test.
    build_client()?;
    run(cmd(
        "cargo",
        &["build", "--release", "-p", "wsecho", "-p", "bench"],
    ))?;
    let mut bench = Command::new(target_dir().join("release/bench"));
    bench.arg("--root").arg(root());
    if !scenarios.is_empty() {
        bench.arg("--only").arg(scenarios.join(","));
    }
    if scenarios.is_empty() || scenarios.iter().any(|s| ["8", "peers"].contains(s)) {
        bench.arg("--peers").arg(build_peers()?);
    }
    // Scenario 7's baseline: Node's ws with permessage-deflate.
    bench.env("BENCH_NODE_WS", ensure_node_ws()?);
    run(bench.arg("--write").arg(root().join("BENCHMARKS.md")))
}

/// Builds every program of `bench/peers` (each crate there but `common`) as the page is
/// built: release (that workspace's profile: opt-level "z", LTO, one codegen unit),
/// `wasm-bindgen --target web`, then `wasm-opt -Oz`; into `target/peers/www/NAME/peer.js`
/// and `peer_bg.wasm`, beside the driver page and the plain JavaScript program. Returns
/// that directory.
fn build_peers() -> Result<PathBuf> {
    ensure_wasm_tools()?;
    let dir = root().join("bench/peers");
    let (cli, peers) = (
        locked_version("wasm-bindgen")?,
        locked_version_in(&dir.join("Cargo.lock"), "wasm-bindgen")?,
    );
    ensure!(
        cli == peers,
        "bench/peers/Cargo.lock has wasm-bindgen {peers}, the CLI is {cli} (the root lock's): \
         run `cargo update -p wasm-bindgen --precise {cli}` in bench/peers"
    );
    let target = target_dir().join("peers");
    let mut build = cmd(
        "cargo",
        &["build", "--release", "--locked", "--target", WASM_TARGET],
    );
    build.current_dir(&dir).env("CARGO_TARGET_DIR", &target);
    run(build)?;
    let www = target.join("www");
    for entry in std::fs::read_dir(&dir)? {
        let program = entry?.path();
        let name = program.file_name().unwrap_or_default().to_string_lossy();
        if name == "common" || !program.join("src/lib.rs").exists() {
            continue;
        }
        let wasm = target.join(format!(
            "{WASM_TARGET}/release/peer_{}.wasm",
            name.replace('-', "_")
        ));
        let mut bindgen = cmd(
            "wasm-bindgen",
            &["--target", "web", "--out-name", "peer", "--out-dir"],
        );
        bindgen.arg(www.join(&*name)).arg(&wasm);
        run(bindgen)?;
        shrink(&www.join(&*name).join("peer_bg.wasm"))?;
    }
    for file in ["index.html", "plain.js", "messages.js"] {
        std::fs::copy(dir.join(file), www.join(file))?;
    }
    Ok(www)
}

//! `cargo xtask bench`: the benchmarks, which write BENCHMARKS.md.

use std::process::Command;

use anyhow::Result;

use crate::build::build_client;
use crate::tools::{ensure_debian_packages, ensure_geckodriver, ensure_node_ws};
use crate::{cmd, root, run, target_dir};

/// Builds the servers and the load generator for release and writes BENCHMARKS.md.
pub fn bench() -> Result<()> {
    ensure_debian_packages()?;
    // Scenario 5 runs in Firefox too.
    ensure_geckodriver()?;
    // Scenario 6 measures the demo as this builds it; scenario 5 runs a wasm test.
    build_client()?;
    run(cmd(
        "cargo",
        &["build", "--release", "-p", "wsecho", "-p", "bench"],
    ))?;
    let mut bench = Command::new(target_dir().join("release/bench"));
    bench.arg("--root").arg(root());
    // Scenario 7's baseline: Node's ws with permessage-deflate.
    bench.env("BENCH_NODE_WS", ensure_node_ws()?);
    run(bench.arg("--write").arg(root().join("BENCHMARKS.md")))
}

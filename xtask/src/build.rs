//! `cargo xtask build`: the page's client, built for release into `www/pkg/`.

use std::path::Path;
use std::process::Command;

use anyhow::Result;

use crate::tools::{ensure_wasm_opt, ensure_wasm_tools};
use crate::{WASM_TARGET, cmd, root, run, target_dir};

/// The page's crate (`www/`), and the stem of the files wasm-bindgen makes of it.
pub const PAGE: &str = "echo-page";
pub const PAGE_FILES: &str = "echo_page";

/// Builds the page's crate (`www/`, on the client library) for release and generates its
/// JavaScript glue into `www/pkg/`, the same files `wasm-pack build www --target web` makes,
/// then shrinks the wasm with `wasm-opt`.
pub fn build_client() -> Result<()> {
    ensure_wasm_tools()?;
    let args = [
        "build",
        "--release",
        "--lib",
        "-p",
        PAGE,
        "--target",
        WASM_TARGET,
    ];
    run(cmd("cargo", &args))?;
    let wasm = target_dir().join(format!("{WASM_TARGET}/release/{PAGE_FILES}.wasm"));
    let out = root().join("www/pkg");
    let mut bindgen = cmd("wasm-bindgen", &["--target", "web", "--out-dir"]);
    bindgen.arg(&out).arg(&wasm);
    run(&mut bindgen)?;
    let wasm = out.join(format!("{PAGE_FILES}_bg.wasm"));
    shrink(&wasm)?;
    let size = std::fs::metadata(&wasm)?.len();
    eprintln!("built {} ({size} bytes of wasm)", out.display());
    Ok(())
}

/// Shrinks a wasm-bindgen module for download with `wasm-opt -Oz`, in place. The flags are
/// safe for Rust's output (nothing lives in the first kilobyte of memory) and the wasm
/// features are those rustc's wasm32 target enables.
pub fn shrink(wasm: &Path) -> Result<()> {
    let mut optimize = Command::new(ensure_wasm_opt()?);
    optimize
        .args([
            "-Oz",
            "--converge",
            "--low-memory-unused",
            "--strip-producers",
            "--strip-target-features",
            "--enable-bulk-memory",
            "--enable-mutable-globals",
            "--enable-nontrapping-float-to-int",
            "--enable-sign-ext",
            "--enable-reference-types",
            "--enable-multivalue",
        ])
        .arg(wasm)
        .arg("-o")
        .arg(wasm);
    run(optimize)
}

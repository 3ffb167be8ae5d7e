//! Scenario 6: the demo's size, raw and gzipped.

use std::path::Path;

use anyhow::{Context, Result};

/// Scenario 6: the demo as `cargo xtask build` leaves it in `www/pkg`.
pub fn section(pkg: &Path) -> Result<String> {
    let mut section = String::from(
        "\n### 6: the demo's size\n\n\
         `cargo xtask build`: release profile (opt-level \"z\", LTO), wasm-bindgen, then \
         `wasm-opt -Oz` (binaryen from npm).\n\n\
         | file | raw | gzip -9 |\n|---|---|---|\n",
    );
    for file in ["echo_page_bg.wasm", "echo_page.js"] {
        let bytes = std::fs::read(pkg.join(file))
            .with_context(|| format!("no {file} in {}: run cargo xtask build", pkg.display()))?;
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut gzip, &bytes)?;
        let gzipped = gzip.finish()?.len();
        section.push_str(&format!(
            "| {file} | {} B | {gzipped} B ({:.1} KiB) |\n",
            bytes.len(),
            gzipped as f64 / 1024.0
        ));
    }
    eprint!("{section}");
    Ok(section)
}

//! `cargo xtask bench`: builds in release mode (xtask does), then runs every scenario against
//! our server and the baselines, each five times, and prints one table (medians of five, and
//! how far the runs spread), which `--write FILE` also writes with the machine and the date.
//!
//! Every server runs on core 0 and the load generator on core 1 (`counters`), so that neither
//! takes the other's time. One module a scenario: 1 to 3 (`round_trips`): echo throughput and
//! latency under load, with the server's CPU time in nanoseconds and its context switches per
//! message; for 2 and 3 also a short fixed run of each server under callgrind, for user-space
//! instructions and allocations per message, which the machine's load does not move
//! (`callgrind`); 4 (`idle`): idle connections held (memory per connection, after close, and a
//! million-connection estimate); 4b (`after_traffic`): idle connections after one message of
//! 2 KiB, 64 KiB or 512 KiB; 5 (`browser`): the wasm client against plain JavaScript in
//! Chromium and Firefox, and 5b (`transports`) its other transports; 6 (`size`): the demo's
//! sizes; 7 (`deflate`): permessage-deflate, against Node's `ws`; 8 (`peers`): the client
//! beside its peers (gloo-net, ws_stream_wasm, tokio-tungstenite-wasm) and plain JavaScript,
//! the same program on each, in Chromium and Firefox; 9 (`soak`): 10,000 connections sending
//! a message a second each for ten minutes, without and with deflate; 10 (`http2`): 1,000
//! sockets of the client crate natively, over one HTTP/2 connection and over one connection
//! each. The servers are `targets`; `stats` makes
//! each figure a median over the runs, `report` the tables and the file, and `charts` the SVG
//! charts beside it (`bench/charts/`).

use std::path::PathBuf;

use anyhow::{Context, Result, bail, ensure};
use bench::Wire;
use bench::counters;
use test_support::browser::Engine;

mod after_traffic;
mod browser;
mod charts;
mod deflate;
mod http2;
mod idle;
mod peers;
mod report;
mod round_trips;
mod size;
mod soak;
mod stats;
mod targets;
mod transports;

use charts::Scale;
use targets::Target;

fn main() -> Result<()> {
    let usage = "usage: bench --root WORKSPACE [--write FILE] [--only 1,4,4b,10,...] \
                 [--server NAME] [--callgrind-only] [--peers DIR]";
    let (mut root, mut write, mut only, mut server, mut peers) = (None, None, None, None, None);
    let mut callgrind_only = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--callgrind-only" {
            callgrind_only = true;
            continue;
        }
        match (arg.as_str(), args.next()) {
            ("--server", Some(name)) => server = Some(name),
            ("--root", Some(dir)) => root = Some(PathBuf::from(dir)),
            ("--write", Some(file)) => write = Some(PathBuf::from(file)),
            ("--only", Some(list)) => only = Some(list),
            // Scenario 8's programs, as `cargo xtask bench` builds them.
            ("--peers", Some(dir)) => peers = Some(PathBuf::from(dir)),
            _ => bail!(usage),
        }
    }
    let root = root.context(usage)?;
    // `--only`, `--server` and `--callgrind-only` are for working on one scenario or server
    // (the server's program name, e.g. `wsecho`); a report needs every server, and with
    // `--only` replaces only the sections it ran.
    ensure!(
        write.is_none() || (server.is_none() && !callgrind_only),
        usage
    );
    let charts = write.as_ref().map(|_| root.join("bench/charts"));
    let wanted = |name: &str| {
        (only.as_ref()).is_none_or(|list| list.split(',').any(|wanted| wanted == name))
    };
    // The generator's core; every server gets the other one (`Target::spawn`). Set before
    // the runtime starts, so that any thread it makes inherits it.
    if counters::can_pin() {
        counters::pin_current_thread(&[counters::LOAD_CORE])?;
    }
    let here = std::env::current_exe()?;
    let dir = here.parent().context("the binary's directory")?;
    let targets = targets::all(dir);
    let chosen =
        |target: &&Target| (server.as_ref()).is_none_or(|name| target.program.ends_with(name));
    // The load generator gets one thread; the server gets the other core.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let scenarios = (round_trips::SCENARIOS.iter()).filter(|s| wanted(&s.name[..1]));
    let chosen_targets: Vec<&Target> = targets.iter().filter(chosen).collect();
    let rows = round_trips::rows(&runtime, scenarios, &chosen_targets, dir, callgrind_only)?;
    let mut report = report::table(&rows);
    if !rows.is_empty() {
        report.push_str(&report::ratios(&rows));
        report.push_str(&report::targets_section(&rows));
        report.push_str(&report::spread_section(&rows));
        if let Some(charts) = &charts {
            report.push_str(&report::cpu_chart(
                &rows,
                &charts.join("cpu-per-message.svg"),
            )?);
        }
    }
    if wanted("4") {
        report.push_str(&idle::section(&runtime, &targets)?);
    }
    if wanted("4b") {
        let websockets: Vec<&Target> = (targets.iter())
            .filter(|target| matches!(target.wire, Wire::WebSocket))
            .collect();
        let deflated = Target {
            name: "wsecho (ours), --deflate",
            args: &["--addr", "127.0.0.1:0", "--prefix", "", "--deflate"],
            ..websockets.last().copied().context("ours")?.clone()
        };
        let websockets: Vec<&Target> = websockets.into_iter().filter(chosen).collect();
        let (section, figures) = after_traffic::section(&runtime, &websockets, &deflated)?;
        report.push_str(&section);
        if let Some(charts) = &charts {
            let groups = (after_traffic::SIZE_LABELS.iter().enumerate())
                .map(|(i, size)| {
                    let bars = figures.iter().map(|(name, kib)| (*name, kib[i])).collect();
                    (format!("after {size}"), bars)
                })
                .collect();
            let panel = charts::Panel {
                title: "4b: memory per idle connection after one message".to_owned(),
                groups,
            };
            let file = charts.join("memory-after-traffic.svg");
            charts::grouped_bars(
                &file,
                &[panel],
                "KiB per connection (RSS)",
                None,
                Scale::Log,
            )?;
        }
    }
    if wanted("5") {
        let ours = targets.last().expect("ours is the last target");
        report.push_str(&browser::section(&root, ours, Engine::Chromium)?);
        report.push_str(&browser::section(&root, ours, Engine::Firefox)?);
        let server = ours.start()?;
        report.push_str(&transports::section(
            &root,
            &format!("ws://{}/", server.addr),
        )?);
    }
    if wanted("6") {
        report.push_str(&size::section(&root.join("www/pkg"))?);
    }
    if wanted("7") {
        report.push_str(&deflate::section(&runtime, dir)?);
    }
    if wanted("8") || wanted("peers") {
        let ours = targets.last().expect("ours is the last target");
        let www = peers.context("scenario 8 needs --peers DIR: run it with cargo xtask bench")?;
        let (section, figures) = peers::section(&runtime, ours, &www, &root)?;
        report.push_str(&section);
        if let Some(charts) = &charts {
            let panels: Vec<charts::Panel> = (figures.ratios().into_iter())
                .map(|(engine, groups)| charts::Panel {
                    title: format!("8: time as a ratio to plain JavaScript, in {engine}"),
                    groups,
                })
                .collect();
            let file = charts.join("peers.svg");
            let reference = Some((1.0, "plain JavaScript"));
            charts::grouped_bars(
                &file,
                &panels,
                "time / plain JavaScript's",
                reference,
                Scale::Linear,
            )?;
        }
    }
    if wanted("9") {
        let ours = targets.last().expect("ours is the last target");
        report.push_str(&soak::section(&runtime, ours, charts.as_deref())?);
    }
    if wanted("10") {
        report.push_str(&http2::section(&runtime, dir)?);
    }
    println!("{report}");
    match write {
        Some(file) if only.is_some() => report::update_report(&file, &report)?,
        Some(file) => report::write_report(&file, &report)?,
        None => {}
    }
    Ok(())
}

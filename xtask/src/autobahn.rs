//! The Autobahn TestSuite through kosoku: its fuzzing server for the wasm client in Chromium,
//! and the report's counts.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::{Killed, output, run};

/// Cases that Chromium decides before any script sees them: the server sends a Close with an
/// invalid code (7.9.x), and Chromium fails the connection itself. A plain JavaScript client
/// fails exactly these too, so they are the browser's, not this crate's.
pub const DECIDED_BY_CHROMIUM: [&str; 7] = [
    "7.9.1", "7.9.2", "7.9.3", "7.9.6", "7.9.7", "7.9.8", "7.9.9",
];

/// Cases that can crash Chromium's renderer on `WebSocketStream` (Chromium 156): the server
/// sends a valid message and then breaks the protocol at once (3.2-3.4: reserved bits; 4.1.3-
/// 4.2.5: reserved opcodes; 5.15: a continuation after the last fragment). The client's echo
/// of the valid message is then a write still pending when the browser fails the connection,
/// and such a write crashes the page ("tab crashed"). Plain JavaScript that echoes on
/// `WebSocketStream` crashes on each of them alone too; `WebSocket` does not. So on
/// `WebSocketStream` they run each in a page of its own, where a crash costs one case, not
/// the run.
pub const CRASH_CHROMIUM_ON_STREAM: [&str; 10] = [
    "3.2", "3.3", "3.4", "4.1.3", "4.1.4", "4.1.5", "4.2.3", "4.2.4", "4.2.5", "5.15",
];

/// Cases 1 to 10, and a sample of the permessage-deflate cases (12.x, 13.x): Chromium
/// negotiates compression, but all 216 of those take about ten minutes through a browser.
pub fn client_cases() -> Vec<String> {
    // The suite's other sections; it has no 8 or 11.
    let sections = [1, 2, 3, 4, 5, 6, 7, 9, 10];
    let mut cases: Vec<String> = sections.iter().map(|n| format!("{n}.*")).collect();
    let sample = ["12.1.1", "12.1.2", "12.2.1", "12.3.1", "12.4.1", "12.5.1"];
    let sample = sample
        .into_iter()
        .chain(["13.1.1", "13.1.2", "13.3.1", "13.4.1", "13.7.1"]);
    cases.extend(sample.map(str::to_owned));
    cases
}

/// The native client's cases: [`client_cases`], and more of compression, which the native
/// client negotiates itself (`Builder::deflate`): the parameters Chromium never offers
/// (13.2, 13.5 and 13.6 ask the client for `client_no_context_takeover`), fragmented
/// messages, a window of 9 bits, large binary ones. All 216 of 12.x and 13.x passed
/// natively in 327 s (on a loaded machine); this sample's 20 take about 6 s, and the native
/// run 30 to 40 s in all (it was about 15 s).
pub fn native_client_cases() -> Vec<String> {
    let mut cases = client_cases();
    let sample = [
        "12.1.11", "12.2.11", "12.4.10", "13.2.1", "13.5.1", "13.5.11", "13.6.1", "13.6.18",
        "13.7.11",
    ];
    cases.extend(sample.map(str::to_owned));
    cases
}

/// Whether `case` is one of permessage-deflate's (12.x, 13.x).
pub fn is_compression_case(case: &str) -> bool {
    case.starts_with("12.") || case.starts_with("13.")
}

/// The cases run in the engines other than Chromium, by the client and by plain JavaScript:
/// where engines differ (framing, UTF-8, close codes and reasons: sections 1 to 7 and 10) in
/// full, and samples of the large messages (9.x) and of compression (12.x, 13.x), whose
/// handling is the engine's alone; each run then takes about a minute.
pub fn engine_cases() -> Vec<String> {
    let sections = [1, 2, 3, 4, 5, 6, 7, 10];
    let mut cases: Vec<String> = sections.iter().map(|n| format!("{n}.*")).collect();
    let sample = [
        "9.1.1", "9.1.6", "9.2.1", "9.2.6", "9.3.1", "9.4.1", "9.7.1", "9.8.1", "12.1.1", "12.2.1",
        "13.1.1", "13.3.1", "13.4.1", "13.7.1",
    ];
    cases.extend(sample.map(str::to_owned));
    cases
}

/// The suite's cases, all of which the server runs.
pub const CASES: usize = 517;

/// Of which the permessage-deflate cases: 12.1 to 12.5 and 13.1 to 13.7, each 18 message
/// sizes and fragmentations.
const COMPRESSION_CASES: usize = 216;

/// The cases the test command runs against the server with `--deflate`, and how many they
/// are: every one outside compression, and of each compression group (12.1 to 13.7: the
/// payloads and the offered parameters) its 16 B, 4 KiB and fragmented 8 KiB messages, and
/// two of 128 KiB. All 216 took the debug server 256 s (kosoku's own compression most of
/// it); these take about 25 s. `cargo xtask test autobahn-server-deflate-all` runs all.
pub fn deflate_server_sample() -> (Vec<String>, usize) {
    let sections = [1, 2, 3, 4, 5, 6, 7, 9, 10];
    let mut cases: Vec<String> = sections.iter().map(|n| format!("{n}.*")).collect();
    let groups = (1..=5).map(|n| (12, n)).chain((1..=7).map(|n| (13, n)));
    for (section, group) in groups {
        cases.extend([1, 5, 11].map(|size| format!("{section}.{group}.{size}")));
    }
    cases.extend(["12.1.10", "13.1.18"].map(str::to_owned));
    let count = CASES - COMPRESSION_CASES + 12 * 3 + 2;
    (cases, count)
}

/// Installs kosoku from PyPI unless it is there.
pub fn ensure_kosoku() -> Result<()> {
    if output(&kosoku()?, &["--help"]).is_none() {
        let args = ["-m", "pip", "install", "--quiet", "kosoku"];
        run(Command::new("python3").args(args))?;
    }
    Ok(())
}

/// The `kosoku` script of `python3`'s scripts directory, which need not be on PATH (pyenv's
/// shims, for one, only learn of new scripts on a rehash).
fn kosoku() -> Result<String> {
    let code = "import sysconfig; print(sysconfig.get_path('scripts'))";
    let scripts = output("python3", &["-c", code]).context("python3 is needed for kosoku")?;
    Ok(format!("{}/kosoku", scripts.trim()))
}

/// Runs `cases` of the suite (every one for none) against the echo server at `addr`
/// (`HOST:PORT`) with kosoku's fuzzing client, two at a time, writing the report to `reports`.
pub fn run_fuzzing_client(addr: &str, cases: &[String], reports: &Path) -> Result<()> {
    let _ = std::fs::remove_dir_all(reports);
    let mut command = Command::new(kosoku()?);
    command
        .args(["-m", "fuzzingclient", addr, "-p", "2", "-o"])
        .arg(reports);
    for case in cases {
        command.args(["-i", case]);
    }
    // Its per-case lines are many; the summary is printed from the report. It exits 1 when any
    // case is not OK, UNIMPLEMENTED ones included, so the report is what is judged.
    eprintln!(
        "$ kosoku -m fuzzingclient {addr} -p 2 -o {} ({} patterns of cases)",
        reports.display(),
        if cases.is_empty() {
            "all".to_owned()
        } else {
            cases.len().to_string()
        }
    );
    command
        .stdout(Stdio::null())
        .status()
        .context("cannot run kosoku")?;
    Ok(())
}

/// kosoku's fuzzing server, killed when dropped.
pub struct FuzzingServer {
    _child: Killed,
    pub url: String,
}

impl FuzzingServer {
    /// Starts the fuzzing server on a free loopback port with `cases` but not `excluded`,
    /// writing its report to `reports`.
    pub fn start(reports: &Path, cases: &[String], excluded: &[&str]) -> Result<FuzzingServer> {
        let _ = std::fs::remove_dir_all(reports);
        let mut command = Command::new(kosoku()?);
        command
            .args(["-m", "fuzzingserver", "127.0.0.1:0", "-o"])
            .arg(reports);
        for case in cases {
            command.args(["-i", case]);
        }
        for case in excluded {
            command.args(["-x", case]);
        }
        // kosoku says where it listens on stderr; the rest of its stderr is passed on.
        let mut child = command
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start kosoku")?;
        let mut stderr = BufReader::new(child.stderr.take().expect("piped"));
        let mut line = String::new();
        stderr.read_line(&mut line)?;
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::stderr()));
        let Some(url) = line.trim().strip_prefix("fuzzingserver listening on ") else {
            let _ = child.kill();
            bail!("kosoku did not start: {line:?}");
        };
        Ok(FuzzingServer {
            url: url.to_owned(),
            _child: Killed(child),
        })
    }
}

/// The behaviour counts of one agent's report, its FAILED cases, and each case's behaviour.
#[derive(Debug, Default)]
pub struct Report {
    pub counts: BTreeMap<String, usize>,
    pub failed: Vec<String>,
    pub behaviours: BTreeMap<String, String>,
}

impl Report {
    /// Reads `index.json` of a kosoku report directory. The fuzzing server answers
    /// `updateReports` before it has written every case report and the index (once, with 312
    /// cases on a busy machine, it was still writing when read), so wait for a complete index,
    /// for a minute at most.
    pub fn read(reports: &Path, agent: &str) -> Result<Report> {
        let path = reports.join("index.json");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let report = std::fs::read_to_string(&path)
                .with_context(|| format!("no report at {}", path.display()))
                .and_then(|text| Report::parse(&text, agent));
            match report {
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(250))
                }
                report => return report,
            }
        }
    }

    fn parse(text: &str, agent: &str) -> Result<Report> {
        let index: serde_json::Value = serde_json::from_str(text)?;
        let cases = index[agent]
            .as_object()
            .with_context(|| format!("the report has no agent {agent:?}"))?;
        let mut report = Report::default();
        for (case, result) in cases {
            let behavior = result["behavior"].as_str().unwrap_or("MISSING").to_owned();
            if behavior == "FAILED" {
                report.failed.push(case.clone());
            }
            *report.counts.entry(behavior.clone()).or_default() += 1;
            report.behaviours.insert(case.clone(), behavior);
        }
        report.failed.sort();
        Ok(report)
    }

    /// Fails unless the report has all `cases`, each OK or INFORMATIONAL: nothing FAILED,
    /// NON-STRICT, UNIMPLEMENTED, or left in ERROR by the suite itself.
    pub fn require_all_passed(&self, cases: usize, reports: &Path) -> Result<()> {
        let total: usize = self.counts.values().sum();
        let passed: usize = ["OK", "INFORMATIONAL"]
            .iter()
            .filter_map(|behaviour| self.counts.get(*behaviour))
            .sum();
        if total != cases || passed != cases {
            bail!(
                "Autobahn: {} of {cases} cases, {passed} OK or INFORMATIONAL (see {})",
                total,
                reports.display()
            );
        }
        Ok(())
    }

    /// The cases where this report does worse than `yardstick` (another client's, on the same
    /// cases): FAILED where it did not, a case missing or left UNIMPLEMENTED where it ran; with
    /// both behaviours. NON-STRICT counts as OK here: it says whether the client's echo went
    /// out before the browser failed the connection, which is timing (plain JavaScript in
    /// Firefox was NON-STRICT in 14 cases in one run and 13 in the next; ours in 3.4 once).
    pub fn worse_than(&self, yardstick: &Report) -> Vec<(String, String, String)> {
        // OK and INFORMATIONAL are what a case can best be; which one is the case's, not the
        // client's.
        let rank = |behaviour: &str| match behaviour {
            "OK" | "INFORMATIONAL" | "NON-STRICT" => 2,
            "UNIMPLEMENTED" => 1,
            _ => 0,
        };
        let mut worse = Vec::new();
        for (case, theirs) in &yardstick.behaviours {
            let ours = self.behaviours.get(case).map_or("MISSING", String::as_str);
            if rank(ours) < rank(theirs) {
                worse.push((case.clone(), ours.to_owned(), theirs.clone()));
            }
        }
        worse
    }

    /// One line: every behaviour and its count.
    pub fn summary(&self) -> String {
        let counts: Vec<String> = self
            .counts
            .iter()
            .map(|(b, n)| format!("{n} {b}"))
            .collect();
        format!(
            "{} cases: {}",
            self.counts.values().sum::<usize>(),
            counts.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_behaviours_and_lists_failures() {
        let text = r#"{"agent": {
            "1.1.1": {"behavior": "OK"}, "3.2": {"behavior": "NON-STRICT"},
            "7.9.2": {"behavior": "FAILED"}, "7.9.1": {"behavior": "FAILED"},
            "1.1.2": {"behavior": "OK"}}}"#;
        let report = Report::parse(text, "agent").unwrap();
        assert_eq!(report.counts["OK"], 2);
        assert_eq!(report.counts["NON-STRICT"], 1);
        assert_eq!(report.failed, ["7.9.1", "7.9.2"]);
        assert_eq!(report.summary(), "5 cases: 2 FAILED, 1 NON-STRICT, 2 OK");
        assert!(Report::parse(text, "other").is_err());
        let reports = Path::new("reports");
        assert!(report.require_all_passed(5, reports).is_err());
        let all_ok =
            r#"{"a": {"1.1.1": {"behavior": "OK"}, "2.1": {"behavior": "INFORMATIONAL"}}}"#;
        let report = Report::parse(all_ok, "a").unwrap();
        assert!(report.require_all_passed(2, reports).is_ok());
        assert!(
            report.require_all_passed(3, reports).is_err(),
            "a case missing"
        );
    }

    #[test]
    fn worse_than_compares_case_by_case() {
        let ours = r#"{"a": {"1.1.1": {"behavior": "OK"}, "3.2": {"behavior": "FAILED"},
            "7.9.1": {"behavior": "FAILED"}, "6.4.1": {"behavior": "NON-STRICT"}}}"#;
        let theirs = r#"{"b": {"1.1.1": {"behavior": "OK"}, "3.2": {"behavior": "OK"},
            "7.9.1": {"behavior": "FAILED"}, "6.4.1": {"behavior": "OK"},
            "2.1": {"behavior": "INFORMATIONAL"}}}"#;
        let ours = Report::parse(ours, "a").unwrap();
        let theirs = Report::parse(theirs, "b").unwrap();
        let worse: Vec<String> = (ours.worse_than(&theirs).into_iter())
            .map(|(case, _, _)| case)
            .collect();
        assert_eq!(worse, ["2.1", "3.2"]);
        assert!(theirs.worse_than(&theirs).is_empty());
    }
}

//! User-space instructions and allocations, counted by valgrind's callgrind: figures that do
//! not move with the machine's load, unlike CPU time.
//!
//! A server runs under `valgrind --tool=callgrind` for a short fixed load, then gets SIGTERM;
//! callgrind writes its counts when the process ends (also on the default action of a fatal
//! signal, so the baselines need no signal handling). The file holds the total of executed
//! instructions (`summary:`) and, for every call site, how often it called what: the calls of
//! the C allocator's entry points (`malloc`, `calloc`, `realloc`, ...) are the allocations.
//! Rust's global allocator ends in these, for every server alike.
//!
//! The counts include start-up, the handshakes and the idle loop. Running the same load with
//! N and with 2N messages per connection and taking the difference leaves what N messages
//! cost: that over N is the per-message figure. The kernel's share (system calls, the TCP
//! stack) is not in it, which is most of the CPU time on loopback: it stands beside the CPU
//! time, never for it.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result};

/// The C allocator's entry points: each call is one allocation (a `realloc` one that may move).
const ALLOCATORS: [&str; 6] = [
    "malloc",
    "calloc",
    "realloc",
    "posix_memalign",
    "aligned_alloc",
    "memalign",
];

/// What one callgrind run counted, from start to exit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// User-space instructions executed (callgrind's `Ir`).
    pub instructions: u64,
    /// Calls of the allocator's entry points.
    pub allocations: u64,
}

impl Counts {
    /// Reads a callgrind output file.
    pub fn read(file: &Path) -> Result<Counts> {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("no callgrind output at {}", file.display()))?;
        Counts::parse(&text).with_context(|| format!("in {}", file.display()))
    }

    /// Parses callgrind's format: `summary: N`, and `cfn=` lines naming the function that the
    /// following `calls=COUNT ...` line calls. Names are compressed: the first mention is
    /// `(ID) name`, later ones `(ID)` alone, shared by `fn=` and `cfn=`.
    pub fn parse(text: &str) -> Result<Counts> {
        let mut names: HashMap<&str, &str> = HashMap::new();
        let mut summary = None;
        let mut allocations = 0;
        let mut callee_is_allocator = false;
        for line in text.lines() {
            if let Some(total) = line.strip_prefix("summary:") {
                summary = Some(total.trim().parse().context("summary")?);
            } else if let Some(rest) = line.strip_prefix("fn=").or(line.strip_prefix("cfn=")) {
                let name = match split_name(rest) {
                    (Some(id), Some(name)) => {
                        names.insert(id, name);
                        name
                    }
                    (Some(id), None) => names.get(id).copied().unwrap_or_default(),
                    (None, name) => name.unwrap_or_default(),
                };
                if line.starts_with("cfn=") {
                    // Recursion levels are named `malloc'2`; the function is the same.
                    let base = name.split('\'').next().unwrap_or(name);
                    callee_is_allocator = ALLOCATORS.contains(&base);
                }
            } else if let Some(rest) = line.strip_prefix("calls=") {
                if callee_is_allocator {
                    let count = rest.split_whitespace().next().unwrap_or_default();
                    allocations += count.parse::<u64>().context("calls")?;
                }
                callee_is_allocator = false;
            }
        }
        Ok(Counts {
            instructions: summary.context("no summary: line")?,
            allocations,
        })
    }
}

/// Splits a compressed name, `(ID) name`, `(ID)` or `name`, into its id and its name.
fn split_name(spec: &str) -> (Option<&str>, Option<&str>) {
    let spec = spec.trim();
    if let Some((id, name)) = spec.strip_prefix('(').and_then(|rest| rest.split_once(')')) {
        let name = name.trim();
        return (Some(id), (!name.is_empty()).then_some(name));
    }
    (None, Some(spec))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of callgrind 3.19's output, cut down.
    const SAMPLE: &str = "\
# callgrind format
version: 1
events: Ir
summary: 123456

ob=(2) ???
fn=(10) main
0 5
cfn=(12) malloc
calls=3 0
0 300
cfn=(14) free
calls=3 0
0 90
cfn=(16) realloc'2
calls=2 0
0 40

fn=(20) other
0 7
cfn=(12)
calls=4 0
0 400
cfn=(10)
calls=1 0
0 9
fn=(12)
0 700
";

    #[test]
    fn instructions_and_allocator_calls_are_read() {
        let counts = Counts::parse(SAMPLE).unwrap();
        assert_eq!(counts.instructions, 123_456);
        // 3 + 4 malloc (the second by its compressed name) + 2 realloc; free and main not.
        assert_eq!(counts.allocations, 9);
    }

    #[test]
    fn output_without_a_summary_is_an_error() {
        let error = Counts::parse("events: Ir\n").unwrap_err();
        assert!(error.to_string().contains("summary"), "{error}");
    }
}

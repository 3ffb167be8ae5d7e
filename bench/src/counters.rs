//! What the kernel counts for a server process, read so that noise cannot hide a difference:
//! CPU time in nanoseconds and context switches, summed over all of its threads, and the
//! cores it and the load generator run on.
//!
//! `/proc/PID/stat` reports CPU time in 10 ms ticks, which on a run of a second or two moves a
//! per-message figure by several per cent; `/proc/PID/task/TID/schedstat` has each thread's
//! time on a CPU in nanoseconds. The file under `/proc/PID/` alone covers the main thread
//! only, so every thread is read. Threads that end during a run take their time with them;
//! the servers' workers live for the whole process, so only short-lived blocking threads
//! (none run while echoing) could be missed.

use std::collections::HashMap;
use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// The core the servers run on; the load generator runs on [`LOAD_CORE`].
pub const SERVER_CORE: usize = 0;
/// The core the load generator runs on.
pub const LOAD_CORE: usize = 1;

/// The machine's cores online. Not `available_parallelism`, which follows this thread's
/// affinity: once the generator has pinned itself, that says 1.
pub fn cores() -> usize {
    // SAFETY: `sysconf` only reads a system setting.
    let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(online).unwrap_or(1).max(1)
}

/// Whether this machine has the two cores that pinning needs.
pub fn can_pin() -> bool {
    cores() >= 2
}

/// Runs the calling thread (and the threads it starts afterwards) on `cores` only.
pub fn pin_current_thread(cores: &[usize]) -> io::Result<()> {
    // SAFETY: `cpu_set_t` is plain data, for which all zeroes is the empty set; `CPU_SET`
    // writes inside it (it checks the index), and `sched_setaffinity` reads `size` bytes of it.
    let result = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &core in cores {
            libc::CPU_SET(core, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if result != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Makes `command`'s process run on `cores` only, from its first instruction: set between
/// fork and exec, so every thread it ever starts inherits it (setting it on a running process
/// would move its main thread only).
pub fn pin_command(command: &mut Command, cores: &[usize]) {
    let cores = cores.to_vec();
    // SAFETY: the closure runs in the child between fork and exec; it only makes one system
    // call and allocates nothing (`cores` was allocated before the fork).
    unsafe {
        command.pre_exec(move || pin_current_thread(&cores));
    }
}

/// Every core of the machine: what a child that is not measured (the browser benchmark's
/// compiler and Chromium) gets back after the generator pinned itself.
pub fn all_cores() -> Vec<usize> {
    (0..cores()).collect()
}

/// A snapshot of a process's counters, thread by thread.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Thread id to (nanoseconds on a CPU, context switches).
    threads: HashMap<u32, (u64, u64)>,
}

/// What a process used between two snapshots.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Used {
    /// Time on a CPU, user and system, in nanoseconds.
    pub cpu_ns: u64,
    /// Context switches, voluntary and involuntary together.
    pub switches: u64,
}

impl Snapshot {
    /// Reads every thread of `pid`.
    pub fn of(pid: u32) -> io::Result<Snapshot> {
        let mut threads = HashMap::new();
        for entry in std::fs::read_dir(format!("/proc/{pid}/task"))? {
            let entry = entry?;
            let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
                continue;
            };
            // A thread may end between the listing and the reads: skip it.
            let (Ok(schedstat), Ok(status)) = (
                std::fs::read_to_string(entry.path().join("schedstat")),
                std::fs::read_to_string(entry.path().join("status")),
            ) else {
                continue;
            };
            threads.insert(
                tid,
                (parse_schedstat(&schedstat)?, parse_switches(&status)?),
            );
        }
        Ok(Snapshot { threads })
    }

    /// What was used from `earlier` to this snapshot: threads started since count from zero,
    /// threads that ended are gone from both sums.
    pub fn since(&self, earlier: &Snapshot) -> Used {
        let mut used = Used::default();
        for (tid, &(cpu, switches)) in &self.threads {
            let (cpu_before, switches_before) =
                earlier.threads.get(tid).copied().unwrap_or_default();
            used.cpu_ns += cpu.saturating_sub(cpu_before);
            used.switches += switches.saturating_sub(switches_before);
        }
        used
    }
}

/// The first field of `schedstat`: time spent on a CPU, in nanoseconds.
fn parse_schedstat(text: &str) -> io::Result<u64> {
    text.split_whitespace()
        .next()
        .and_then(|field| field.parse().ok())
        .ok_or_else(|| io::Error::other(format!("unexpected schedstat: {text:?}")))
}

/// `voluntary_ctxt_switches` + `nonvoluntary_ctxt_switches` from a `status` file.
fn parse_switches(status: &str) -> io::Result<u64> {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|value| value.trim().parse::<u64>().ok())
            .ok_or_else(|| io::Error::other(format!("no {name} in status")))
    };
    Ok(field("voluntary_ctxt_switches:")? + field("nonvoluntary_ctxt_switches:")?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_s_threads_are_counted_in_nanoseconds() {
        let pid = std::process::id();
        let before = Snapshot::of(pid).unwrap();
        // Work on a thread started after the first snapshot: it must be counted from zero.
        let spin = std::thread::spawn(|| {
            let started = std::time::Instant::now();
            let mut x = 0u64;
            while started.elapsed() < std::time::Duration::from_millis(30) {
                x = std::hint::black_box(x.wrapping_add(1));
            }
            // Keeps the thread alive for the second snapshot.
            std::thread::sleep(std::time::Duration::from_millis(200));
        });
        std::thread::sleep(std::time::Duration::from_millis(100));
        let used = Snapshot::of(pid).unwrap().since(&before);
        spin.join().unwrap();
        // 30 ms of spinning, read in nanoseconds: more than 20 ms, and not a multiple of a
        // 10 ms tick.
        assert!(used.cpu_ns > 20_000_000, "{used:?}");
        assert_ne!(used.cpu_ns % 10_000_000, 0, "{used:?}");
        assert!(used.switches >= 1, "{used:?}");
    }

    #[test]
    fn a_malformed_file_is_an_error() {
        assert!(parse_schedstat("").is_err());
        assert!(parse_switches("voluntary_ctxt_switches: 3\n").is_err());
        assert_eq!(
            parse_switches("voluntary_ctxt_switches:\t3\nnonvoluntary_ctxt_switches:\t4\n")
                .unwrap(),
            7
        );
        assert_eq!(parse_schedstat("123 456 7\n").unwrap(), 123);
    }

    #[test]
    fn a_pinned_child_runs_on_its_core_only() {
        if !can_pin() {
            return;
        }
        // A pinned thread still sees every core, so that what it starts can be pinned
        // elsewhere (the generator pins itself first, then starts the servers).
        let (cores_seen, can_pin_still) = std::thread::spawn(|| {
            pin_current_thread(&[LOAD_CORE]).unwrap();
            (cores(), can_pin())
        })
        .join()
        .unwrap();
        assert!(cores_seen >= 2 && can_pin_still);
        let mut command = Command::new("grep");
        command.args(["Cpus_allowed_list", "/proc/self/status"]);
        pin_command(&mut command, &[SERVER_CORE]);
        let output = command.output().unwrap();
        let text = String::from_utf8(output.stdout).unwrap();
        assert_eq!(text.split_whitespace().last(), Some("0"), "{text}");
    }
}

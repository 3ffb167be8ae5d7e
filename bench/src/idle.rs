//! Scenario 4: idle connections held open, all from one load-generator process: resident
//! memory per connection, what is left after they close, and what a million would take.

use std::net::IpAddr;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::targets::Target;

/// Connections held in each run.
const IDLE: usize = 19_000;

/// One run of scenario 4: the server's resident memory before, with every connection held
/// (before any message), and two seconds after they closed.
struct Idle {
    before: u64,
    held: u64,
    after: u64,
    /// The kernel's slab memory (sockets and their files) grown while held, both ends.
    kernel: u64,
}

impl Idle {
    fn per_connection(&self) -> f64 {
        (self.held.saturating_sub(self.before)) as f64 / IDLE as f64
    }

    /// Kernel memory per connection at one end: both ends live on this machine.
    fn kernel_per_connection(&self) -> f64 {
        self.kernel as f64 / IDLE as f64 / 2.0
    }
}

/// The kernel's slab memory, from `/proc/meminfo`.
fn slab_kib() -> Result<u64> {
    let info = std::fs::read_to_string("/proc/meminfo")?;
    let line = info
        .lines()
        .find(|l| l.starts_with("Slab:"))
        .context("Slab")?;
    Ok(line.split_whitespace().nth(1).context("Slab")?.parse()?)
}

fn idle(runtime: &tokio::runtime::Runtime, target: &Target, source: IpAddr) -> Result<Idle> {
    let server = target.start()?;
    std::thread::sleep(Duration::from_millis(200));
    let (before, slab_before) = (server.rss_kib()?, slab_kib()?);
    let mut held = runtime.block_on(bench::open_idle(&server.addr, source, target.wire, IDLE))?;
    std::thread::sleep(Duration::from_secs(1));
    let (held_rss, slab_held) = (server.rss_kib()?, slab_kib()?);
    runtime.block_on(bench::echo_each(&mut held))?;
    drop(held);
    std::thread::sleep(Duration::from_secs(2));
    Ok(Idle {
        before,
        held: held_rss,
        after: server.rss_kib()?,
        kernel: slab_held.saturating_sub(slab_before),
    })
}

pub fn section(runtime: &tokio::runtime::Runtime, targets: &[Target]) -> Result<String> {
    let mut section = format!(
        "\n### 4: {IDLE} idle connections\n\n\
         Opened {WAVE} at a time from one process (each run from a loopback address of its own), \
         then left idle; resident memory (VmRSS) read after a second; then one 32-byte round \
         trip on every connection proves all are held; then they close. Median of {IDLE_RUNS}.\n\n\
         | server | RSS per connection | RSS before | RSS with {IDLE} held | RSS 2 s after close |\n\
         |---|---|---|---|---|\n",
        WAVE = bench::WAVE,
    );
    let mut source = 0;
    let mut ours = None;
    for target in targets {
        let mut runs = Vec::new();
        for _ in 0..IDLE_RUNS {
            source += 1;
            runs.push(idle(runtime, target, IpAddr::from([127, 0, 1, source]))?);
        }
        runs.sort_by(|a, b| a.per_connection().total_cmp(&b.per_connection()));
        let run = runs.swap_remove(runs.len() / 2);
        let mib = |kib: u64| format!("{:.1} MiB", kib as f64 / 1024.0);
        let row = format!(
            "| {} | {:.1} KiB | {} | {} | {} |\n",
            target.name,
            run.per_connection(),
            mib(run.before),
            mib(run.held),
            mib(run.after),
        );
        eprint!("{row}");
        section.push_str(&row);
        ours = Some(run);
    }
    if let Some(ours) = ours {
        section.push_str(&million(&ours));
    }
    Ok(section)
}

/// What a million connections would take, from our server's figures.
fn million(ours: &Idle) -> String {
    let (process, kernel) = (ours.per_connection(), ours.kernel_per_connection());
    let gib = |kib: f64| kib * 1e6 / (1024.0 * 1024.0);
    format!(
        "\nA million connections, from these figures: our server holds {process:.1} KiB per idle \
         connection, so {:.1} GiB of process memory, and the kernel another {kernel:.1} KiB per \
         socket (slab growth while held, halved since both ends are on this machine), {:.1} GiB: \
         about {:.0} GiB in all, before any message is in flight (a busy connection borrows a \
         32 KiB read buffer while data waits, and its messages). Beyond memory: an open-file \
         limit above a million (`ulimit -n`, `fs.nr_open`; the server raises its soft limit \
         to the hard one and sizes `--max-connections` from it), clients spread over enough \
         addresses (about 28,000 ports per client address and server address), and CPU for \
         the keepalive: a ping after 30 s of silence is {:.0} pings a second for a million \
         idle connections.\n",
        gib(process),
        gib(kernel),
        (gib(process) + gib(kernel)).ceil(),
        1e6 / 30.0,
    )
}

const IDLE_RUNS: usize = 2;

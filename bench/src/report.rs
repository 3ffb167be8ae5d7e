//! The report: the round trips' table, their ratios, the targets they are held to and how far
//! the runs spread, and the file `--write` makes of it all with the machine and the date (or,
//! from a run of some scenarios only, the sections it replaces in that file). It uses
//! `round_trips`' rows and scenarios; `round_trips` formats its own rows, so the dependency goes
//! one way.

use std::path::Path;
use std::process::Command;

use anyhow::Result;
use bench::counters;

use crate::round_trips::{RUNS, Row, SCENARIOS};
use crate::stats::Figure;
use crate::targets::FASTWEBSOCKETS;

/// A command's output, trimmed; empty if it cannot run.
pub fn command_output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .unwrap_or_default()
}

pub fn table(rows: &[Row]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let mut table = String::from(
        "### 1 to 3: round trips\n\n\
         | scenario | server | round trips/s | MB/s (both ways) | server CPU per message | \
         context switches per 1,000 messages | instructions per message (callgrind) | \
         allocations per message (callgrind) | p50 | p99 |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    for row in rows {
        table.push_str(&row.line());
        table.push('\n');
    }
    table
}

/// The rows of one scenario, in the targets' order: the TCP floor first, ours last.
fn scenarios(rows: &[Row]) -> Vec<Vec<&Row>> {
    let mut names: Vec<&str> = rows.iter().map(|row| row.scenario).collect();
    names.dedup();
    names
        .into_iter()
        .map(|name| rows.iter().filter(|row| row.scenario == name).collect())
        .collect()
}

/// Ours against the best WebSocket baseline and the TCP floor, scenario by scenario.
pub fn ratios(rows: &[Row]) -> String {
    let mut text = String::from(
        "\nRatios in this run: ours / the best WebSocket baseline in messages per second, and \
         ours / the plain TCP echo and / the best baseline in server CPU per message.\n\n\
         | scenario | throughput vs best | CPU vs TCP floor | CPU vs best baseline |\n\
         |---|---|---|---|\n",
    );
    for rows in scenarios(rows) {
        // `--server` leaves out the others: no ratios then.
        let [tcp, baselines @ .., ours] = &rows[..] else {
            continue;
        };
        if baselines.is_empty() {
            continue;
        }
        let fastest = baselines
            .iter()
            .map(|row| row.per_second.median)
            .fold(0.0, f64::max);
        let leanest = baselines
            .iter()
            .map(|row| row.cpu_per_message.median)
            .fold(f64::INFINITY, f64::min);
        let cpu = ours.cpu_per_message.median;
        text.push_str(&format!(
            "| {} | {:.2}x | {:.2}x | {:.2}x |\n",
            ours.scenario,
            ours.per_second.median / fastest,
            cpu / tcp.cpu_per_message.median,
            cpu / leanest,
        ));
    }
    text
}

/// The target our server is held to, scenario by scenario (issue 16), from this run's
/// medians: server CPU per message against the TCP floor, and CPU, instructions and
/// messages per second against fastwebsockets.
pub fn targets_section(rows: &[Row]) -> String {
    let mut text = String::from(
        "\nTargets (issue 16), medians of this run: ours / the TCP floor in server CPU per \
         message (at most 1.2x in scenario 2, 1.3x in 3); ours / fastwebsockets in server CPU \
         and in instructions per message (at most 0.90x) and in messages per second (at \
         least 1.05x).\n\n\
         | scenario | CPU vs TCP floor | CPU vs fastwebsockets | instructions vs fastwebsockets | \
         messages/s vs fastwebsockets |\n\
         |---|---|---|---|---|\n",
    );
    for rows in scenarios(rows) {
        let (Some(tcp), Some(ours)) = (rows.first(), rows.last()) else {
            continue;
        };
        let Some(fast) = rows.iter().find(|row| row.target == FASTWEBSOCKETS) else {
            continue;
        };
        let floor_limit = match ours.scenario.chars().next() {
            Some('2') => 1.2,
            Some('3') => 1.3,
            _ => continue,
        };
        let mark = |ratio: f64, met: bool| {
            format!("{ratio:.2}x ({})", if met { "met" } else { "not met" })
        };
        let cpu = ours.cpu_per_message.median;
        let floor = cpu / tcp.cpu_per_message.median;
        let against_fast = cpu / fast.cpu_per_message.median;
        let instructions = match (ours.instructions, fast.instructions) {
            (Some(ours), Some(fast)) => {
                let ratio = ours.median / fast.median;
                mark(ratio, ratio <= 0.9)
            }
            _ => "-".to_owned(),
        };
        let rate = ours.per_second.median / fast.per_second.median;
        text.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            ours.scenario,
            mark(floor, floor <= floor_limit),
            mark(against_fast, against_fast <= 0.9),
            instructions,
            mark(rate, rate >= 1.05),
        ));
    }
    text
}

/// How far each figure moved across the runs, and which figure is steadiest.
pub fn spread_section(rows: &[Row]) -> String {
    let mut text = format!(
        "\n### Spread across the {RUNS} runs\n\n\
         The lowest and the highest run of each figure, as a percentage of its median \
         (allocations per message: the lowest and the highest figure).\n\n\
         | scenario | server | round trips/s | server CPU per message | context switches | \
         instructions per message | allocations per message |\n\
         |---|---|---|---|---|---|---|\n",
    );
    let spread = |figure: Option<Figure>| figure.map_or_else(|| "-".to_owned(), |f| f.spread());
    // Near zero, a percentage says nothing: allocations are shown as their range.
    let range = |figure: Option<Figure>| {
        figure.map_or_else(|| "-".to_owned(), |f| format!("{:.2}..{:.2}", f.min, f.max))
    };
    for row in rows {
        text.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            row.scenario,
            row.target,
            row.per_second.spread(),
            row.cpu_per_message.spread(),
            row.switches.spread(),
            spread(row.instructions),
            range(row.allocations),
        ));
    }
    // The widest spread of each figure over all rows: the steadiest has the narrowest.
    let widest = |figure: &dyn Fn(&Row) -> Option<Figure>| {
        rows.iter()
            .filter_map(figure)
            .map(|figure| figure.width())
            .fold(None, |widest: Option<f64>, width| {
                Some(widest.map_or(width, |w| w.max(width)))
            })
    };
    let mut figures: Vec<(&str, f64)> = [
        ("round trips/s", widest(&|row| Some(row.per_second))),
        (
            "server CPU per message",
            widest(&|row| Some(row.cpu_per_message)),
        ),
        ("context switches", widest(&|row| Some(row.switches))),
        ("instructions per message", widest(&|row| row.instructions)),
    ]
    .into_iter()
    .filter_map(|(name, width)| Some((name, width?)))
    .collect();
    figures.sort_by(|a, b| a.1.total_cmp(&b.1));
    let order: Vec<String> = figures
        .iter()
        .map(|(name, width)| format!("{name} ({:.1}%)", width * 100.0))
        .collect();
    text.push_str(&format!(
        "\nFrom steadiest to least steady, by the widest spread (max - min, as a percentage \
         of the median) over all rows: {}. The targets are judged on the medians of the same \
         run; instructions per message, which the machine's load does not move, decide between \
         two changes of the server.\n",
        order.join(", ")
    ));
    text
}

/// The chart of server CPU per message, scenario by scenario (1 to 3), into `file`; the line
/// that embeds it.
pub fn cpu_chart(rows: &[Row], file: &Path) -> Result<String> {
    let panel = crate::charts::Panel {
        title: "1 to 3: server CPU per message".to_owned(),
        groups: (scenarios(rows).into_iter())
            .map(|rows| {
                let bars = (rows.iter())
                    .map(|row| (row.target, row.cpu_per_message.median / 1000.0))
                    .collect();
                (rows[0].scenario.to_owned(), bars)
            })
            .collect(),
    };
    let scale = crate::charts::Scale::Linear;
    crate::charts::grouped_bars(file, &[panel], "µs of server CPU per message", None, scale)?;
    Ok(
        "\n![Server CPU per message in scenarios 1 to 3, per server]\
        (bench/charts/cpu-per-message.svg)\n"
            .to_owned(),
    )
}

/// Replaces the sections of `file` (each from a `### ` heading to the next) whose headings
/// `report` has with `report`'s, and adds the others at the end: a run of some scenarios
/// updates their figures and leaves the others as the last full run wrote them.
pub fn update_report(file: &Path, report: &str) -> Result<()> {
    let mut text = std::fs::read_to_string(file)?;
    for section in sections(report) {
        let heading = section.lines().next().unwrap_or_default();
        let old = sections(&text)
            .into_iter()
            .find(|old| old.lines().next() == Some(heading));
        text = match old {
            Some(old) => text.replacen(old, section, 1),
            None => format!("{}\n\n{}", text.trim_end(), section),
        };
    }
    let text = format!("{}\n", text.trim_end());
    std::fs::write(file, text)?;
    Ok(())
}

/// The `### ` sections of a report, each from its heading to the next heading (or the end),
/// without the blank lines that end it.
fn sections(text: &str) -> Vec<&str> {
    let starts: Vec<usize> = (text.match_indices("### "))
        .map(|(at, _)| at)
        .filter(|&at| at == 0 || text[..at].ends_with('\n'))
        .collect();
    (starts.iter().enumerate())
        .map(|(i, &start)| {
            let end = starts.get(i + 1).copied().unwrap_or(text.len());
            text[start..end].trim_end()
        })
        .collect()
}

pub fn write_report(file: &Path, table: &str) -> Result<()> {
    let run = command_output;
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            let line = info.lines().find(|line| line.starts_with("model name"))?;
            Some(line.split_once(':')?.1.trim().to_owned())
        })
        .unwrap_or_default();
    let report = format!(
        "# Benchmarks\n\n`cargo xtask bench`, {date}, on {cores} cores ({cpu}), {kernel}.\n\
         Loopback; the load generator (ours, one thread, every reply verified) runs on core \
         {LOAD} and every server on core {SERVER} (`sched_setaffinity`{pinned}). Medians of {RUNS} \
         runs, the servers taking turns run by run; how far the runs spread is at the end of the \
         round trips. Server CPU is the time \
         on a CPU of all its threads, in nanoseconds (the first field of \
         `/proc/PID/task/*/schedstat`), and context switches are voluntary + involuntary \
         (`/proc/PID/task/*/status`), both divided by messages. Instructions (user space only; \
         the kernel's share, most of the CPU time on loopback, is not in it) and allocations \
         (calls of `malloc`, `calloc`, `realloc` and the aligned allocators) are counted by \
         `valgrind --tool=callgrind` on a short fixed run of scenarios 2 and 3 ({short_2} round \
         trips per connection in 2, {short_3} in 3), run again with twice the round trips: the \
         difference over the extra messages is the figure per message, without start-up, \
         handshakes and idling; glibc's `memcpy` and `memset` are held to their vector loops \
         there (`GLIBC_TUNABLES`), since callgrind counts `rep movsb` a byte at a time. \
         Compare within one run.\n\n{table}",
        date = run("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        cores = counters::cores(),
        short_2 = SCENARIOS[1].callgrind_round_trips.unwrap_or_default(),
        short_3 = SCENARIOS[2].callgrind_round_trips.unwrap_or_default(),
        LOAD = counters::LOAD_CORE,
        SERVER = counters::SERVER_CORE,
        pinned = if counters::can_pin() {
            ""
        } else {
            ": not done, fewer than 2 cores"
        },
        kernel = run("uname", &["-sr"]),
    );
    std::fs::write(file, report)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_run_replaces_its_sections_only() {
        let file = std::env::temp_dir().join(format!("bench-report-{}.md", std::process::id()));
        std::fs::write(
            &file,
            "# B\n\nintro\n\n### 1: a\n\nold a\n\n### 2: b\n\nold b\n",
        )
        .unwrap();
        update_report(&file, "\n### 2: b\n\nnew b\n\n### 8: c\n\nnew c\n").unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        std::fs::remove_file(&file).unwrap();
        assert_eq!(
            text,
            "# B\n\nintro\n\n### 1: a\n\nold a\n\n### 2: b\n\nnew b\n\n### 8: c\n\nnew c\n"
        );
    }
}

//! On-call schedules (W1.10): reading a schedule of 10,000 shifts again
//! after a change (open, checks, read, parse, index), against reading the
//! same file and splitting its lines into fields alone; and what every
//! lookup on a request's path costs to see whether the file changed (two
//! `stat`s), against a bare `stat` and the in-memory lookup alone.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jitd::clock::SystemClock;
use jitd::config::OnCallSchedule;
use jitd::core::oncall::{parse, OnCall};
use jitd::oncall::Rosters;
use serde_json::{json, Value};

use crate::stats::median;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// `shifts` eight-hour shifts from a year ago on, 200 people in turn, every
/// tenth overlapping the next by an hour, at UTC+01:00.
fn shift_file(shifts: usize, start: i64) -> String {
    let mut text = String::from("# jit-bench: a year and more of shifts\n");
    for i in 0..shifts {
        let from = start + i as i64 * 8 * 3600;
        let to = from + 8 * 3600 + if i % 10 == 0 { 3600 } else { 0 };
        // The wall time an hour ahead of UTC, with the offset that says so.
        let at = |t: i64| {
            let local = jitd::core::model::rfc3339(t + 3600);
            format!("{}+01:00", local.trim_end_matches('Z'))
        };
        text.push_str(&format!("user{:03} {} {}\n", i % 200, at(from), at(to)));
    }
    text
}

/// Microseconds per call of `op`, the median of `rounds` rounds of `calls`.
fn per_call_us(rounds: usize, calls: usize, mut op: impl FnMut(usize)) -> f64 {
    let mut samples = Vec::new();
    for _ in 0..rounds {
        let t0 = Instant::now();
        for i in 0..calls {
            op(i);
        }
        samples.push(t0.elapsed().as_secs_f64() * 1e6 / calls as f64);
    }
    median(samples)
}

pub fn run(dir: &Path, shifts: usize, runs: usize) -> Result<Value, BoxError> {
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    let file = dir.join("primary.shifts");
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() as i64;
    let start = now - 365 * 86_400;
    std::fs::write(&file, shift_file(shifts, start))?;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644))?;
    let bytes = std::fs::metadata(&file)?.len();
    // Older than jitd's "racy" second: lookups trust the stat.
    std::thread::sleep(Duration::from_millis(1100));
    let config = BTreeMap::from([("primary".to_owned(), OnCallSchedule { file: file.clone() })]);

    let (mut read_ms, mut parse_ms, mut reload_ms) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        // Baseline: the same bytes read and split into fields, nothing checked.
        let t0 = Instant::now();
        let text = std::fs::read_to_string(&file)?;
        let fields = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split_whitespace().count())
            .sum::<usize>();
        std::hint::black_box(fields);
        read_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
        let t0 = Instant::now();
        std::hint::black_box(parse(text.as_bytes())?);
        parse_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
        // What jitd does when the file changed: directory and file opened
        // and checked, read, parsed, indexed.
        let t0 = Instant::now();
        let rosters = Rosters::new(&config, Arc::new(SystemClock));
        reload_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
        std::hint::black_box(rosters);
    }

    let rosters = Rosters::new(&config, Arc::new(SystemClock));
    let schedule = parse(&std::fs::read(&file)?)?;
    let at = |i: usize| start + (i as i64 * 7919) % (shifts as i64 * 8 * 3600);
    let user = |i: usize| format!("user{:03}", i % 200);
    let users: Vec<String> = (0..200).map(user).collect();
    let (rounds, calls) = (9, 20_000);
    let lookup_us = per_call_us(rounds, calls, |i| {
        std::hint::black_box(rosters.is_on_call("primary", &users[i % 200], at(i)));
    });
    let memory_us = per_call_us(rounds, calls, |i| {
        std::hint::black_box(schedule.is_on_call(&users[i % 200], at(i)));
    });
    let stat_us = per_call_us(rounds, calls, |_| {
        std::hint::black_box(std::fs::symlink_metadata(&file).is_ok());
    });
    let hits = (0..1000)
        .filter(|&i| rosters.is_on_call("primary", &users[i % 200], at(i)))
        .count();
    Ok(json!({
        "shifts": shifts,
        "bytes": bytes,
        "runs": runs,
        "read_split_ms": median(read_ms),
        "parse_ms": median(parse_ms),
        "reload_ms": median(reload_ms),
        "lookup_calls": rounds * calls,
        "lookup_us": lookup_us,
        "in_memory_us": memory_us,
        "stat_us": stat_us,
        "hits_per_1000": hits,
    }))
}

//! Runs N PAM transactions through libpam in one process (threat T10):
//! `pam-loop SERVICE USER N [session]`, account checks only, or each
//! followed by a session opened and closed, as sudo does. Prints thread and descriptor counts before and
//! after, the results and per-call latencies (microseconds), one `key=value`
//! line.

use std::time::Instant;

use jit_bench::pam::{transaction, Stack};

fn count(dir: &str) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let stack = match args.get(4).map(String::as_str) {
        None => Stack::Account,
        Some("session") => Stack::AccountAndSession,
        Some(_) => usage(),
    };
    if !(4..=5).contains(&args.len()) {
        usage();
    }
    let (service, user) = (&args[1], &args[2]);
    let Ok(n) = args[3].parse::<usize>() else {
        usage()
    };
    let (threads_before, fds_before) = (count("/proc/self/task"), count("/proc/self/fd"));
    let mut latencies = Vec::with_capacity(n);
    let (mut ok, mut denied, mut other) = (0, 0, 0);
    for _ in 0..n {
        let started = Instant::now();
        let rc = transaction(service, user, stack);
        latencies.push(started.elapsed().as_micros() as u64);
        match rc {
            0 => ok += 1,
            6 | 10 | 9 => denied += 1, // PERM_DENIED, USER_UNKNOWN, AUTHINFO_UNAVAIL
            _ => other += 1,
        }
    }
    let (threads_after, fds_after) = (count("/proc/self/task"), count("/proc/self/fd"));
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    println!(
        "threads_before={threads_before} threads_after={threads_after} fds_before={fds_before} \
         fds_after={fds_after} ok={ok} denied={denied} other={other} p50_us={} p99_us={} max_us={}",
        pct(0.5),
        pct(0.99),
        latencies.last().copied().unwrap_or(0)
    );
}

fn usage() -> ! {
    eprintln!("usage: pam-loop SERVICE USER N [session]");
    std::process::exit(2);
}

//! The persistence snapshot of a privileged grant's start and end (W3
//! item 6): its time and memory on this host, against reading and hashing
//! the same files alone (what no snapshot can avoid).

use crate::stats::median;
use std::time::Instant;

use ring::digest::{digest, SHA256};
use serde_json::{json, Value};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

pub fn run(runs: usize) -> Result<Value, BoxError> {
    let rss_before = kib("VmRSS:");
    let fingerprint = |bytes: &[u8]| format!("{:?}", digest(&SHA256, bytes));
    let (mut snap_ms, mut read_ms) = (Vec::new(), Vec::new());
    let mut entries = 0;
    let mut truncated = false;
    for _ in 0..runs {
        let t0 = Instant::now();
        let snapshot = jitd::persistence::take(&fingerprint);
        snap_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
        entries = snapshot.entries.len();
        truncated = snapshot.truncated;
        // Baseline: the same files, read and hashed, no walking.
        let t0 = Instant::now();
        for path in snapshot.entries.keys().filter(|k| k.starts_with('/')) {
            if let Ok(bytes) = std::fs::read(path) {
                std::hint::black_box(digest(&SHA256, &bytes[..bytes.len().min(1 << 20)]));
            }
        }
        read_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(json!({
        "runs": runs,
        "entries": entries,
        "truncated": truncated,
        "snapshot_ms": median(snap_ms),
        "read_ms": median(read_ms),
        "extra_rss_kib": kib("VmHWM:").saturating_sub(rss_before),
    }))
}

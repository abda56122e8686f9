//! Where jitd's memory goes at start-up: replays what `Engine::reload` does
//! (load every open request, fill the grant index and the deadlines) and
//! prints VmRSS after each step.

use serde_json::json;
use std::path::Path;
use std::time::Duration;

use jitd::deadlines::{Deadlines, Due};
use jitd::grants::GrantIndex;
use jitd::store::{ListFilter, Store, StoreError};

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

pub fn probe(state_dir: &Path) -> Result<serde_json::Value, StoreError> {
    let start = rss_kb();
    let store = Store::open(state_dir)?;
    let opened = rss_kb();
    let open = store.requests(ListFilter::Open)?;
    let loaded = rss_kb();
    let now = open.iter().map(|r| r.requested_at).max().unwrap_or(0);
    let boot = Duration::from_secs(1000);
    let mut index = GrantIndex::default();
    let mut deadlines = Deadlines::default();
    for r in &open {
        index.insert(r.uid, &r.resource, r.id, r.expires_at.unwrap_or(now + 3600));
    }
    let index_built = rss_kb();
    for r in &open {
        let exp = r.expires_at.unwrap_or(now + 3600);
        deadlines.schedule(r.id, Due::Expire, exp, now, boot);
        // jitd also schedules a warning 15 minutes before expiry when that is still ahead.
        if exp - 900 > now {
            deadlines.schedule(r.id, Due::Warn, exp - 900, now, boot);
        }
    }
    let indexed = rss_kb();
    let count = open.len();
    drop(open);
    let dropped = rss_kb();
    // SAFETY: malloc_trim only returns free heap pages to the kernel.
    unsafe { libc::malloc_trim(0) };
    let trimmed = rss_kb();
    let kept = (index.len(), deadlines.len());
    Ok(json!({
        "requests": count,
        "index_entries": kept.0,
        "deadlines": kept.1,
        "rss_kb": {
            "start": start,
            "store_opened": opened,
            "requests_loaded": loaded,
            "grant_index_built": index_built,
            "deadlines_built": indexed,
            "requests_dropped": dropped,
            "after_malloc_trim": trimmed,
        }
    }))
}

//! Denied access (docs/design.md "Denied access"): pam_jit's account
//! check on jitd's private socket, one fresh connection per call as the
//! module makes them. `CheckAccess` (what pam_jit asks now) against
//! `CheckGrant` (what it asked before, which records nothing), for a holder
//! of a grant (the granted path, which must not change) and for a user
//! without one (the denied path: the denial counted, then written off the
//! socket's thread), in interleaved blocks. Then jitd's CPU time per call of
//! each kind, in phases of their own with time for the writes that follow,
//! and what the denials left in the database.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use pam_jit::client::{Client, ClientError};
use pam_jit::wire::Value;
use serde_json::json;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const BLOCK: usize = 500;
/// Phases of each kind for jitd's CPU time.
const CPU_ROUNDS: usize = 6;

#[derive(Clone, Copy)]
enum Kind {
    GrantHolder,
    AccessHolder,
    GrantDenied,
    AccessDenied,
}

const KINDS: [Kind; 4] = [
    Kind::GrantHolder,
    Kind::AccessHolder,
    Kind::GrantDenied,
    Kind::AccessDenied,
];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::GrantHolder => "grant_holder",
            Kind::AccessHolder => "access_holder",
            Kind::GrantDenied => "grant_denied",
            Kind::AccessDenied => "access_denied",
        }
    }
}

struct Target<'a> {
    socket: &'a str,
    holder: u32,
    denied: u32,
    resource: &'a str,
}

impl Target<'_> {
    /// One account check of `kind` on a fresh connection: its time, and
    /// whether jitd answered as expected (granted for the holder only).
    fn call(&self, kind: Kind) -> (u64, bool) {
        let (member, uid) = match kind {
            Kind::GrantHolder => ("CheckGrant", self.holder),
            Kind::AccessHolder => ("CheckAccess", self.holder),
            Kind::GrantDenied => ("CheckGrant", self.denied),
            Kind::AccessDenied => ("CheckAccess", self.denied),
        };
        let mut args = vec![Value::U32(uid), Value::Str(self.resource.into())];
        if member == "CheckAccess" {
            args.extend(["sudo", "/dev/pts/3", ""].map(|s| Value::Str(s.into())));
        }
        let start = Instant::now();
        let deadline = start + Duration::from_secs(2);
        let answer = Client::connect_private(self.socket, deadline).and_then(|c| {
            c.ok_or(ClientError::NotRunning)?
                .call_private(member, &args)
        });
        let took = start.elapsed().as_nanos() as u64;
        let granted = matches!(answer.as_deref(), Ok([Value::Bool(true), ..]));
        let answered = matches!(answer.as_deref(), Ok([Value::Bool(_), ..]));
        let holder = matches!(kind, Kind::GrantHolder | Kind::AccessHolder);
        (took, answered && granted == holder)
    }
}

/// CPU time of each of jitd's threads so far (ns, from schedstat: the
/// tick-based counters of /proc/PID/stat are too coarse for a phase).
fn cpu(pid: u32) -> Result<HashMap<u64, u64>, BoxError> {
    let mut threads = HashMap::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let entry = entry?;
        let Ok(tid) = entry.file_name().to_string_lossy().parse::<u64>() else {
            continue;
        };
        // A thread that exited meanwhile has no schedstat: it is left out.
        if let Ok(stat) = std::fs::read_to_string(entry.path().join("schedstat")) {
            let ns = stat.split_whitespace().next().unwrap_or("0").parse()?;
            threads.insert(tid, ns);
        }
    }
    Ok(threads)
}

/// The CPU time jitd's threads used between two readings of [`cpu`].
fn used(before: &HashMap<u64, u64>, after: &HashMap<u64, u64>) -> Duration {
    let ns: u64 = after
        .iter()
        .map(|(tid, ns)| ns.saturating_sub(before.get(tid).copied().unwrap_or(0)))
        .sum();
    Duration::from_nanos(ns)
}

/// Each kind's call times (nanoseconds), by name, and the facts around them.
pub struct Measured {
    pub samples: Vec<(&'static str, Vec<u64>)>,
    pub facts: serde_json::Map<String, serde_json::Value>,
}

#[allow(clippy::too_many_arguments)] // the benchmark's command line
pub fn run(
    socket: &str,
    holder: u32,
    denied: u32,
    resource: &str,
    calls: usize,
    jitd_pid: u32,
    db: &Path,
) -> Result<Measured, BoxError> {
    let target = Target {
        socket,
        holder,
        denied,
        resource,
    };
    let mut samples: Vec<Vec<u64>> = vec![Vec::with_capacity(calls); KINDS.len()];
    let mut wrong = 0usize;
    let mut sent_denials = 0u64;
    // Warm-up, then interleaved blocks.
    for kind in KINDS {
        for _ in 0..100 {
            wrong += usize::from(!target.call(kind).1);
        }
    }
    sent_denials += 100;
    while samples[0].len() < calls {
        for (i, kind) in KINDS.into_iter().enumerate() {
            for _ in 0..BLOCK {
                let (took, right) = target.call(kind);
                samples[i].push(took);
                wrong += usize::from(!right);
            }
        }
        sent_denials += BLOCK as u64;
    }
    // jitd's CPU per call, each kind alone in a phase of its own, with the
    // writes a denial causes (100 ms after a batch) inside it; the phases
    // of the kinds take turns, so that other load on the machine falls on
    // each alike.
    let mut spent = [Duration::ZERO; KINDS.len()];
    let per_phase = (calls / CPU_ROUNDS).max(1);
    for round in 0..CPU_ROUNDS {
        // Forward, then backward: no kind always follows the same one.
        let mut order: Vec<usize> = (0..KINDS.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let kind = KINDS[i];
            let before = cpu(jitd_pid)?;
            for _ in 0..per_phase {
                wrong += usize::from(!target.call(kind).1);
            }
            std::thread::sleep(Duration::from_millis(200));
            spent[i] += used(&before, &cpu(jitd_pid)?);
        }
        sent_denials += per_phase as u64;
    }
    let cpu_us: serde_json::Map<String, serde_json::Value> = KINDS
        .into_iter()
        .zip(spent)
        .map(|(kind, used)| {
            let per_call = used.as_secs_f64() * 1e6 / (per_phase * CPU_ROUNDS) as f64;
            (kind.name().to_owned(), json!(per_call))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let (rows, in_rows): (u64, u64) = conn.query_row(
        "SELECT count(*), COALESCE(SUM(json_extract(detail, '$.count')), 0)
         FROM audit WHERE event = 'access_denied'",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let (windows, in_windows): (u64, u64) = conn.query_row(
        "SELECT count(*), COALESCE(SUM(count), 0) FROM denial_windows",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let samples = KINDS
        .into_iter()
        .zip(samples)
        .map(|(kind, s)| (kind.name(), s))
        .collect();
    let mut facts = serde_json::Map::new();
    facts.insert("cpu_us".into(), serde_json::Value::Object(cpu_us));
    facts.insert("cpu_calls".into(), json!(per_phase * CPU_ROUNDS));
    facts.insert("wrong_answers".into(), json!(wrong));
    facts.insert("denials_sent".into(), json!(sent_denials));
    facts.insert("audit_rows".into(), json!(rows));
    facts.insert("window_rows".into(), json!(windows));
    facts.insert("denials_counted".into(), json!(in_rows + in_windows));
    Ok(Measured { samples, facts })
}

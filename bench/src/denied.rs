//! Denied access (docs/design.md "Denied access"): pam_jit's account
//! check on jitd's private socket, one fresh connection per call as the
//! module makes them. `CheckAccess` (what pam_jit asks now) against
//! `CheckGrant` (what it asked before, which records nothing), for a holder
//! of a grant (the granted path, which must not change) and for a user
//! without one (the denied path: the denial counted, then written off the
//! socket's thread), in interleaved blocks. Then jitd's CPU time per call of
//! each kind, in phases of their own with time for the writes that follow,
//! and what the denials left in the database.

use std::path::Path;
use std::time::{Duration, Instant};

use pam_jit::client::{Client, ClientError};
use pam_jit::wire::Value;
use serde_json::json;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const BLOCK: usize = 500;

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

/// jitd's user and system CPU time so far (its exited threads included).
fn cpu(pid: u32) -> Result<Duration, BoxError> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // After the command's closing parenthesis: state is field 3, utime 14.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11).unwrap_or(&"0").parse::<u64>()?
        + fields.get(12).unwrap_or(&"0").parse::<u64>()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Ok(Duration::from_nanos(ticks * 1_000_000_000 / hz))
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
    // jitd's CPU per call, each kind alone, with the writes a denial
    // causes (100 ms after a batch) inside its phase.
    let mut cpu_us = serde_json::Map::new();
    for kind in KINDS {
        let before = cpu(jitd_pid)?;
        for _ in 0..calls {
            wrong += usize::from(!target.call(kind).1);
        }
        std::thread::sleep(Duration::from_millis(500));
        let used = cpu(jitd_pid)?.saturating_sub(before);
        cpu_us.insert(
            kind.name().into(),
            json!(used.as_secs_f64() * 1e6 / calls as f64),
        );
    }
    sent_denials += calls as u64;
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
    facts.insert("wrong_answers".into(), json!(wrong));
    facts.insert("denials_sent".into(), json!(sent_denials));
    facts.insert("audit_rows".into(), json!(rows));
    facts.insert("window_rows".into(), json!(windows));
    facts.insert("denials_counted".into(), json!(in_rows + in_windows));
    Ok(Measured { samples, facts })
}

//! Vendor accounts (W4): from the last approval to a usable login (the
//! account made, its key written, its network rules in place), against
//! `useradd` alone in the same run; and N vendors whose access ends
//! together, until every account is locked and its rules are gone.
//!
//! Runs as root against a jitd (in a network namespace of its own) whose
//! config has `[vendors]` with alice as a sponsor, mike as her manager, sam
//! in security, a resource `vssh` with `vendors = true` and a segment
//! `db-net`. Sponsors and approvers act through `jitctl` as themselves;
//! jitd's rows are read from its database, read-only, every millisecond.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection as Db, OpenFlags};
use serde_json::{json, Value};

use crate::stats::{median, ms};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const POLL: Duration = Duration::from_millis(1);
const TIMEOUT: Duration = Duration::from_secs(120);

pub struct Plan<'a> {
    pub db: &'a Path,
    pub jitctl: &'a Path,
    /// The vendors' public key file.
    pub key: &'a Path,
    /// The pid of jitd, whose network namespace holds the rules.
    pub jitd_pid: u32,
    pub rounds: usize,
    pub together: usize,
}

/// `jitctl ARGS` as `user`; its standard output.
fn jitctl(plan: &Plan<'_>, user: &str, args: &[&str]) -> Result<String, BoxError> {
    let out = Command::new("setpriv")
        .args([
            &format!("--reuid={user}"),
            &format!("--regid={user}"),
            "--init-groups",
        ])
        .arg(plan.jitctl)
        .args(args)
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "jitctl {args:?} as {user}: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// alice sponsors vendor `name` for `secs`; its id.
fn sponsor(plan: &Plan<'_>, name: &str, secs: u64) -> Result<String, BoxError> {
    let key = plan.key.display().to_string();
    let duration = format!("{secs}s");
    let json = jitctl(
        plan,
        "alice",
        &[
            "vendor",
            "request",
            "--vendor",
            "Bench",
            "--name",
            name,
            "--email",
            "bench@vendor.example",
            "--resources",
            "vssh",
            "--segments",
            "db-net",
            "--for",
            &duration,
            "--project",
            "BENCH",
            "--reason",
            "bench",
            "--key",
            &key,
            "--json",
        ],
    )?;
    let doc: Value = serde_json::from_str(&json)?;
    Ok(doc["id"].as_u64().ok_or("no vendor id")?.to_string())
}

fn approve(plan: &Plan<'_>, user: &str, id: &str) -> Result<(), BoxError> {
    jitctl(plan, user, &["vendor", "approve", id]).map(drop)
}

fn open(db: &Path) -> Result<Db, BoxError> {
    let db = Db::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    db.busy_timeout(Duration::from_secs(5))?;
    Ok(db)
}

/// Polls until `want` vendors of `ids` have their account `host`.
async fn wait_hosts(db: &Db, ids: &[String], host: &str) -> Result<Instant, BoxError> {
    let until = Instant::now() + TIMEOUT;
    let list = ids.join(",");
    let sql = format!("SELECT COUNT(*) FROM vendors WHERE host = ?1 AND id IN ({list})");
    loop {
        let n: i64 = db.query_row(&sql, [host], |r| r.get(0))?;
        if usize::try_from(n)? >= ids.len() {
            return Ok(Instant::now());
        }
        if Instant::now() > until {
            return Err(format!("{} vendors never became {host}", ids.len()).into());
        }
        tokio::time::sleep(POLL).await;
    }
}

/// `useradd` making an account as jitd does, timed; then removed.
fn useradd(name: &str, uid: u32) -> Result<Duration, BoxError> {
    let t0 = Instant::now();
    let status = Command::new("/usr/sbin/useradd")
        .args([
            "--uid",
            &uid.to_string(),
            "--gid",
            "jit-vendors",
            "--create-home",
        ])
        .args([
            "--key",
            "HOME_MODE=0700",
            "--shell",
            "/usr/libexec/jit/jit-session",
        ])
        .arg(name)
        .env_clear()
        .status()?;
    let took = t0.elapsed();
    if !status.success() {
        return Err("useradd failed".into());
    }
    Command::new("/usr/sbin/userdel")
        .args(["--remove", name])
        .status()?;
    Ok(took)
}

/// Rules of jit's table for vendors, in jitd's network namespace.
fn rules(plan: &Plan<'_>) -> Result<usize, BoxError> {
    let out = Command::new("nsenter")
        .args([
            "-t",
            &plan.jitd_pid.to_string(),
            "-n",
            "nft",
            "list",
            "ruleset",
        ])
        .output()?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("meta skuid"))
        .count())
}

pub async fn run(plan: &Plan<'_>) -> Result<Value, BoxError> {
    let db = open(plan.db)?;
    let (mut to_login, mut baseline) = (Vec::new(), Vec::new());
    for round in 0..plan.rounds {
        baseline.push(ms(useradd(
            &format!("bbase{round:03}"),
            79_000 + round as u32,
        )?));
        let id = sponsor(plan, &format!("r{round:03}"), 3600)?;
        approve(plan, "mike", &id)?;
        let t0 = Instant::now();
        approve(plan, "sam", &id)?;
        to_login.push(ms(wait_hosts(&db, std::slice::from_ref(&id), "created")
            .await?
            - t0));
    }

    // `together` vendors whose access ends at the same second.
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let end = now + 30 + plan.together as u64 / 10;
    let mut ids = Vec::new();
    for i in 0..plan.together {
        let left = end.saturating_sub(SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs());
        let id = sponsor(plan, &format!("t{i:03}"), left)?;
        approve(plan, "mike", &id)?;
        approve(plan, "sam", &id)?;
        ids.push(id);
    }
    wait_hosts(&db, &ids, "created").await?;
    let rules_before = rules(plan)?;
    let list = ids.join(",");
    let last_end: i64 = db.query_row(
        &format!("SELECT MAX(expires_at) FROM vendors WHERE id IN ({list})"),
        [],
        |r| r.get(0),
    )?;
    wait_hosts(&db, &ids, "locked").await?;
    let locked_at = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs_f64();
    // The rounds' vendors keep theirs: only the ended ones' must be gone.
    let rules_after = rules(plan)?;
    Ok(json!({
        "rounds": plan.rounds,
        "approval_to_login_ms": median(to_login),
        "useradd_ms": median(baseline),
        "together": plan.together,
        "locked_all_after_last_end_s": locked_at - last_end as f64,
        "rules_before": rules_before,
        "rules_after": rules_after,
    }))
}

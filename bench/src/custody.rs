//! Managed accounts (W3): how long a checkout and a check-in take end to
//! end (the bus call until jitd's row says the account is unlocked, or
//! locked again with a new password), against `chpasswd -e` alone, and how
//! long N grants that expire together take to be checked in.
//!
//! Runs as root against a jitd whose config manages accounts
//! `PREFIX000`.. for resources of the same names, each with
//! `break_glass = ["user:root"]` (grants without approvers). jitd's rows
//! are read from its database, read-only, every millisecond.

use crate::stats::{median, ms};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection as Db, OpenFlags};
use serde_json::{json, Value};
use zbus::Connection;

use jitd::api::{RequestView, BUS_NAME, INTERFACE, OBJECT_PATH};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const POLL: Duration = Duration::from_millis(1);
const TIMEOUT: Duration = Duration::from_secs(60);

pub struct Plan<'a> {
    pub db: &'a Path,
    pub prefix: &'a str,
    pub accounts: usize,
    pub rounds: usize,
    /// An account jitd does not manage, for the `chpasswd -e` baseline.
    pub plain: &'a str,
    /// The grants that end together last this long.
    pub together_secs: u64,
}

fn name(prefix: &str, i: usize) -> String {
    format!("{prefix}{i:03}")
}

fn open(db: &Path) -> Result<Db, BoxError> {
    let db = Db::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    db.busy_timeout(Duration::from_secs(5))?;
    Ok(db)
}

/// How many of the accounts are in `state`.
fn count_in(db: &Db, prefix: &str, state: &str) -> Result<usize, BoxError> {
    let n: i64 = db.query_row(
        "SELECT COUNT(*) FROM accounts WHERE state = ?1 AND name LIKE ?2 || '%'",
        (state, prefix),
        |r| r.get(0),
    )?;
    Ok(usize::try_from(n)?)
}

/// Polls until `want` accounts of `prefix` are in `state`.
async fn wait_for(db: &Db, prefix: &str, state: &str, want: usize) -> Result<Instant, BoxError> {
    let until = Instant::now() + TIMEOUT;
    loop {
        if count_in(db, prefix, state)? >= want {
            return Ok(Instant::now());
        }
        if Instant::now() > until {
            return Err(format!("{want} accounts never became {state}").into());
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until every managed account in `db` is `held`.
pub async fn settle(db: &Path) -> Result<(), BoxError> {
    let db = open(db)?;
    let total: i64 = db.query_row("SELECT COUNT(*) FROM accounts", [], |r| r.get(0))?;
    wait_for(&db, "", "held", usize::try_from(total)?).await?;
    Ok(())
}

async fn break_glass(conn: &Connection, resource: &str, secs: u64) -> Result<u64, BoxError> {
    let reply = conn
        .call_method(
            Some(BUS_NAME),
            OBJECT_PATH,
            Some(INTERFACE),
            "BreakGlass",
            &(resource, secs, "bench"),
        )
        .await?;
    let json: String = reply.body().deserialize()?;
    let view: RequestView = serde_json::from_str(&json)?;
    Ok(view.id)
}

async fn revoke(conn: &Connection, id: u64) -> Result<(), BoxError> {
    conn.call_method(
        Some(BUS_NAME),
        OBJECT_PATH,
        Some(INTERFACE),
        "Revoke",
        &(id, "bench"),
    )
    .await?;
    Ok(())
}

/// `chpasswd -e` setting `account`'s field once, as jitd runs it.
fn chpasswd(account: &str) -> Result<Duration, BoxError> {
    // A locked yescrypt-looking field: chpasswd -e stores it as given.
    let line =
        format!("{account}:!$y$j9T$benchbenchbenchbench$abcdefghijklmnopqrstuvwxyzABCDEFGHIJK\n");
    let t0 = Instant::now();
    let mut child = Command::new("/usr/sbin/chpasswd")
        .arg("-e")
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()?;
    child
        .stdin
        .take()
        .ok_or("no stdin")?
        .write_all(line.as_bytes())?;
    if !child.wait()?.success() {
        return Err("chpasswd -e failed".into());
    }
    Ok(t0.elapsed())
}

pub async fn run(plan: &Plan<'_>) -> Result<Value, BoxError> {
    let db = open(plan.db)?;
    wait_for(&db, plan.prefix, "held", plan.accounts).await?;
    let conn = Connection::system().await?;

    // One account, checked out and in `rounds` times, interleaved with the
    // baseline.
    let first = name(plan.prefix, 0);
    let (mut checkout, mut checkin, mut baseline) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..plan.rounds {
        baseline.push(ms(chpasswd(plan.plain)?));
        let t0 = Instant::now();
        let id = break_glass(&conn, &first, 600).await?;
        checkout.push(ms(wait_for(&db, &first, "checked_out", 1).await? - t0));
        let t0 = Instant::now();
        revoke(&conn, id).await?;
        checkin.push(ms(wait_for(&db, &first, "held", 1).await? - t0));
    }

    // Every account checked out, then all the grants expire together.
    let t0 = Instant::now();
    for i in 0..plan.accounts {
        break_glass(&conn, &name(plan.prefix, i), plan.together_secs).await?;
    }
    let checked_out_all = wait_for(&db, plan.prefix, "checked_out", plan.accounts).await? - t0;
    let last_expiry: i64 = db.query_row(
        "SELECT MAX(expires_at) FROM requests WHERE state = 'active'",
        [],
        |r| r.get(0),
    )?;
    wait_for(&db, plan.prefix, "held", plan.accounts).await?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs_f64();
    let after_last_expiry = now - last_expiry as f64;
    Ok(json!({
        "accounts": plan.accounts,
        "rounds": plan.rounds,
        "checkout_ms": median(checkout),
        "checkin_ms": median(checkin),
        "chpasswd_ms": median(baseline),
        "checked_out_all_s": checked_out_all.as_secs_f64(),
        "held_all_after_last_expiry_s": after_last_expiry,
    }))
}

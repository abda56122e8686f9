//! jit-bench: measures jitd on a (private) system bus.
//!
//! Every measurement prints one JSON object on stdout, with its baseline
//! measured in the same run, so `scripts/bench.sh` can build the tables.

mod custody;
mod denied;
mod host;
mod mfa;
mod notify;
mod oncall;
mod policy;
mod report;
mod seed;
mod session;
mod siem;
mod snapshot;
mod stats;
mod vendors;

use clap::{Parser, Subcommand};
use futures_util::StreamExt;
use serde_json::json;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use zbus::Connection;

use jit_bench::pam;
use jitd::api::{BUS_NAME, INTERFACE, OBJECT_PATH};

const PEER: &str = "org.freedesktop.DBus.Peer";

#[derive(Parser)]
#[command(name = "jit-bench", about = "Benchmarks for jitd")]
struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Writes active grants and audit rows straight into a state directory (jitd stopped).
    Seed {
        #[arg(long)]
        state_dir: PathBuf,
        /// Active grants, for uids uid_base .. uid_base + grants.
        #[arg(long, default_value_t = 0)]
        grants: u64,
        /// Audit rows (HMAC-chained, through jitd's store).
        #[arg(long, default_value_t = 0)]
        audit: u64,
        #[arg(long, default_value = "sudo")]
        resource: String,
        #[arg(long, default_value_t = 1_000_000)]
        uid_base: u32,
        /// Grants expire at this wall-clock time (Unix seconds); default now + 4h.
        #[arg(long)]
        expires_at: Option<i64>,
        /// Rows per transaction.
        #[arg(long, default_value_t = 10_000)]
        batch: u64,
        /// Instead of active grants: a month of requests on every route with their
        /// decisions, grants, sessions, ends and break-glass cases, until --audit rows
        /// are written (the reports' benchmark).
        #[arg(long, conflicts_with = "grants")]
        history: bool,
    },
    /// CheckGrant vs Peer.Ping latency over one connection.
    Latency {
        #[arg(long, default_value_t = 20_000)]
        calls: usize,
        #[arg(long, default_value_t = 2_000)]
        warmup: usize,
        /// Uids asked about: uid_base .. uid_base + holders (all hold `resource`).
        #[arg(long, default_value_t = 1_000_000)]
        uid_base: u32,
        #[arg(long, default_value_t = 1_000)]
        holders: u32,
        #[arg(long, default_value = "sudo")]
        resource: String,
        /// Free-form label copied into the output.
        #[arg(long, default_value = "")]
        label: String,
    },
    /// Calls/s with N concurrent connections, CheckGrant then Peer.Ping.
    Throughput {
        #[arg(long, default_value_t = 32)]
        clients: usize,
        #[arg(long, default_value_t = 5.0)]
        secs: f64,
        #[arg(long, default_value_t = 1_000_000)]
        uid_base: u32,
        #[arg(long, default_value_t = 1_000)]
        holders: u32,
        #[arg(long, default_value = "sudo")]
        resource: String,
    },
    /// Waits for `count` GrantEnded signals and reports lag behind `expires_at`.
    Expiry {
        #[arg(long)]
        count: usize,
        #[arg(long)]
        expires_at: i64,
        /// Give up this many seconds after expires_at.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
        /// Written once the signal subscription is in place.
        #[arg(long)]
        ready_file: Option<PathBuf>,
    },
    /// Managed accounts: checkout and check-in end to end against
    /// `chpasswd -e` alone, and ACCOUNTS grants expiring together (as root;
    /// see custody.rs for the config it needs).
    Custody {
        #[arg(long)]
        db: PathBuf,
        #[arg(long, default_value = "jbench")]
        prefix: String,
        #[arg(long, default_value_t = 100)]
        accounts: usize,
        #[arg(long, default_value_t = 30)]
        rounds: usize,
        #[arg(long)]
        plain: String,
        #[arg(long, default_value_t = 10)]
        together_secs: u64,
    },
    /// What a second factor adds to a login: MfaLogin's two calls on the
    /// private socket against the account check (root enrolls; see mfa.rs).
    MfaLogin {
        #[arg(long)]
        socket: PathBuf,
        #[arg(long, default_value = "logs")]
        resource: String,
        #[arg(long, default_value_t = 2_000)]
        calls: usize,
    },
    /// Vendor accounts: the last approval to a usable login against
    /// `useradd` alone, and TOGETHER vendors ending at once until every
    /// account is locked (see vendors.rs for the config it needs).
    Vendors {
        #[arg(long)]
        db: PathBuf,
        #[arg(long)]
        jitctl: PathBuf,
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        jitd_pid: u32,
        #[arg(long, default_value_t = 20)]
        rounds: usize,
        #[arg(long, default_value_t = 100)]
        together: usize,
    },
    /// The persistence snapshot of a privileged grant: time and extra RSS,
    /// against reading and hashing the same files alone.
    Snapshot {
        #[arg(long, default_value_t = 9)]
        runs: usize,
    },
    /// An on-call schedule read again after a change, against reading and
    /// splitting the file alone; the change check on every lookup.
    Oncall {
        /// A directory of root's for the shift file.
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value_t = 10_000)]
        shifts: usize,
        #[arg(long, default_value_t = 31)]
        runs: usize,
    },
    /// Revokes every active grant (as root); used as hyperfine --prepare.
    RevokeAll {
        /// Then waits until every managed account in this jitd database is
        /// checked in again (`held`), so the next run finds it free.
        #[arg(long, value_name = "DB")]
        settle: Option<PathBuf>,
    },
    /// Request-to-approver-notified latency: requests `resource` (which must
    /// need approval) and serves the approvers' JSON webhook on 127.0.0.1:PORT.
    Notify {
        #[arg(long, default_value_t = 300)]
        calls: usize,
        #[arg(long, default_value_t = 20)]
        warmup: usize,
        #[arg(long, default_value_t = 18787)]
        port: u16,
        #[arg(long, default_value = "ssh")]
        resource: String,
        #[arg(long, value_enum)]
        mode: notify::Mode,
    },
    /// SIEM feed throughput: starts DELIVER (jit-deliver's command line)
    /// and times rsyslog writing COUNT events to FILE, then the same
    /// messages sent straight to rsyslog's BASELINE_PORT (BASELINE_FILE).
    SiemThroughput {
        #[arg(long)]
        file: PathBuf,
        #[arg(long)]
        count: usize,
        #[arg(long)]
        baseline_port: u16,
        #[arg(long)]
        baseline_file: PathBuf,
        #[arg(last = true, required = true)]
        deliver: Vec<String>,
    },
    /// Event commit to receipt: requests `resource` (which must need
    /// approval) and serves the TCP syslog sink on 127.0.0.1:PORT.
    SiemLatency {
        #[arg(long, default_value_t = 300)]
        calls: usize,
        #[arg(long, default_value_t = 20)]
        warmup: usize,
        #[arg(long)]
        port: u16,
        #[arg(long, default_value = "ssh")]
        resource: String,
    },
    /// Waits until jitd answers Peer.Ping on the bus.
    WaitReady {
        #[arg(long, default_value_t = 60.0)]
        timeout: f64,
    },
    /// Sleeps until the wall clock's fractional second is `phase` (0.0-1.0).
    SleepToPhase { phase: f64 },
    /// In-process PAM account checks through libpam: SERVICE vs BASELINE
    /// (e.g. a stack with pam_jit vs one with pam_permit only), interleaved.
    Pam {
        #[arg(long)]
        service: String,
        #[arg(long)]
        baseline: String,
        #[arg(long)]
        user: String,
        #[arg(long, default_value_t = 5_000)]
        calls: usize,
        /// Open and close a session after each account check, as sudo does.
        #[arg(long)]
        session: bool,
    },
    /// pam_jit's client alone: a fresh connection per CheckGrant, against the
    /// same exchange for a method jitd lacks (the carrier's own cost), through
    /// the bus and through jitd's private socket.
    FreshConnections {
        /// Bus socket path.
        #[arg(long)]
        bus: String,
        /// jitd's private socket path.
        #[arg(long)]
        socket: String,
        #[arg(long)]
        uid: u32,
        #[arg(long)]
        resource: String,
        #[arg(long, default_value_t = 2_000)]
        calls: usize,
    },
    /// pam_jit's account check on the private socket, a fresh connection
    /// each: CheckAccess against CheckGrant, for a holder and for a user
    /// without a grant; jitd's CPU per call; the rows the denials made.
    Denied {
        #[arg(long)]
        socket: String,
        /// Holds an active grant of `resource`.
        #[arg(long)]
        holder: u32,
        /// Holds none.
        #[arg(long)]
        denied_uid: u32,
        #[arg(long, default_value = "sudo")]
        resource: String,
        #[arg(long, default_value_t = 5_000)]
        calls: usize,
        #[arg(long)]
        jitd_pid: u32,
        /// jitd's database, read once the calls are done.
        #[arg(long)]
        db: PathBuf,
    },
    /// Fork + exit + reap, and thread spawn + join, per cycle: what a cgroup2
    /// mount option costs every process on the host.
    ForkExit {
        #[arg(long, default_value_t = 2_000)]
        runs: usize,
    },
    /// PAM account checks/s with N threads in one process.
    PamConcurrent {
        #[arg(long)]
        service: String,
        #[arg(long)]
        user: String,
        #[arg(long, default_value_t = 64)]
        threads: usize,
        #[arg(long, default_value_t = 5.0)]
        secs: f64,
    },
    /// Writes BENCHMARKS.md (markdown, on stdout) from the results directory.
    /// A command printing `output_bytes` inside an outer PTY (drained):
    /// wall time, CPU and peak RSS of its process tree, recording size.
    SessionThroughput {
        #[arg(long)]
        label: String,
        #[arg(long)]
        output_bytes: u64,
        /// The file the recorder writes (removed before each run).
        #[arg(long)]
        recording: Option<PathBuf>,
        #[arg(long, default_value_t = 3)]
        runs: usize,
        #[arg(last = true, required = true)]
        argv: Vec<String>,
    },
    /// Keystroke-to-echo latency through `argv` (which runs `cat`) in an outer PTY.
    SessionLatency {
        #[arg(long)]
        label: String,
        #[arg(long, default_value_t = 2_000)]
        samples: usize,
        #[arg(last = true, required = true)]
        argv: Vec<String>,
    },
    /// Output to a live watcher: lines typed into a recorded session of
    /// `cat` (ARGV, on a PTY), until its terminal and until `jitctl
    /// recordings watch` show them (run as root).
    WatchLatency {
        #[arg(long)]
        jitctl: PathBuf,
        #[arg(long, default_value_t = 200)]
        samples: usize,
        #[arg(last = true, required = true)]
        argv: Vec<String>,
    },
    /// Requests as fast as jitd answers, for `secs` (as whichever user runs
    /// it): the load of threat T30. Prints how the calls were answered.
    Flood {
        #[arg(long, default_value = "sudo")]
        resource: String,
        #[arg(long, default_value_t = 10.0)]
        secs: f64,
    },
    /// Policy evaluation (in process): 1,000 rules against none, per request.
    Policy {
        #[arg(long, default_value_t = 1_000)]
        rules: usize,
        #[arg(long, default_value_t = 10_000)]
        requests: usize,
        #[arg(long, default_value_t = 9)]
        rounds: usize,
    },
    /// Prints `[[policy]]` rules for appending to a config: each names
    /// USER and RESOURCE and needs a ticket of its own pattern, so a request
    /// without one walks them all (and none applies).
    PolicyRules {
        #[arg(long, default_value_t = 1_000)]
        rules: usize,
        #[arg(long)]
        user: String,
        #[arg(long)]
        resource: String,
    },
    Report {
        #[arg(long)]
        results: PathBuf,
        /// The command that produced the results, quoted in the report.
        #[arg(long)]
        command: String,
    },
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), BoxError> {
    let args = Args::parse();
    if let Cmd::Seed {
        state_dir,
        grants,
        audit,
        resource,
        uid_base,
        expires_at,
        batch,
        history,
    } = &args.command
    {
        if *history {
            println!("{}", seed::history(state_dir, *audit, *batch)?);
            return Ok(());
        }
        let out = seed::seed(
            state_dir,
            *grants,
            *audit,
            resource,
            *uid_base,
            *expires_at,
            *batch,
        )?;
        println!("{out}");
        return Ok(());
    }
    if let Cmd::Oncall { dir, shifts, runs } = &args.command {
        println!("{}", oncall::run(dir, *shifts, *runs)?);
        return Ok(());
    }
    if let Cmd::Snapshot { runs } = &args.command {
        println!("{}", snapshot::run(*runs)?);
        return Ok(());
    }
    if let Cmd::Policy {
        rules,
        requests,
        rounds,
    } = &args.command
    {
        println!("{}", policy::run(*rules, *requests, *rounds)?);
        return Ok(());
    }
    if let Cmd::PolicyRules {
        rules,
        user,
        resource,
    } = &args.command
    {
        print!("{}", policy::rules_for(*rules, user, resource));
        return Ok(());
    }
    if let Cmd::SessionThroughput {
        label,
        output_bytes,
        recording,
        runs,
        argv,
    } = &args.command
    {
        let out = session::throughput(label, argv, recording.as_deref(), *output_bytes, *runs)?;
        println!("{out}");
        return Ok(());
    }
    if let Cmd::SessionLatency {
        label,
        samples,
        argv,
    } = &args.command
    {
        println!("{}", session::latency(label, argv, *samples)?);
        return Ok(());
    }
    if let Cmd::WatchLatency {
        jitctl,
        samples,
        argv,
    } = &args.command
    {
        println!("{}", session::watch_latency(jitctl, argv, *samples)?);
        return Ok(());
    }
    if let Cmd::Report { results, command } = &args.command {
        print!("{}", report::report(results, command)?);
        return Ok(());
    }
    if let Cmd::ForkExit { runs } = &args.command {
        let (forks, threads) = host::fork_and_thread_cycles(*runs)?;
        println!(
            "{}",
            json!({"fork": Samples(forks).summary(), "thread": Samples(threads).summary()})
        );
        return Ok(());
    }
    if let Cmd::FreshConnections {
        bus,
        socket,
        uid,
        resource,
        calls,
    } = &args.command
    {
        let measure = |carrier| {
            let (checks, floor) = pam::fresh_connections(carrier, *uid, resource, *calls);
            json!({"check": Samples(checks).summary(), "floor": Samples(floor).summary()})
        };
        println!(
            "{}",
            json!({
                "bus": measure(pam::Carrier::Bus(bus)),
                "private": measure(pam::Carrier::Private(socket)),
            })
        );
        return Ok(());
    }
    if let Cmd::Denied {
        socket,
        holder,
        denied_uid,
        resource,
        calls,
        jitd_pid,
        db,
    } = &args.command
    {
        let measured = denied::run(
            socket,
            *holder,
            *denied_uid,
            resource,
            *calls,
            *jitd_pid,
            db,
        )?;
        let mut out = measured.facts;
        for (name, samples) in measured.samples {
            out.insert(name.into(), Samples(samples).summary());
        }
        println!("{}", serde_json::Value::Object(out));
        return Ok(());
    }
    if let Cmd::Pam {
        service,
        baseline,
        user,
        calls,
        session,
    } = &args.command
    {
        let stack = if *session {
            pam::Stack::AccountAndSession
        } else {
            pam::Stack::Account
        };
        // Warm up both stacks (libpam loads modules per transaction, the page
        // cache and jitd's caches should be warm), then alternate blocks.
        pam::timed(service, user, stack, 200);
        pam::timed(baseline, user, stack, 200);
        let (mut jit, mut base, mut failed) = (Samples::default(), Samples::default(), 0);
        for _ in 0..(*calls / 500).max(1) {
            let (s, f) = pam::timed(service, user, stack, 500);
            jit.0.extend(s);
            failed += f;
            let (s, f) = pam::timed(baseline, user, stack, 500);
            base.0.extend(s);
            failed += f;
        }
        println!(
            "{}",
            json!({"service": jit.summary(), "baseline": base.summary(), "failed": failed})
        );
        return Ok(());
    }
    if let Cmd::PamConcurrent {
        service,
        user,
        threads,
        secs,
    } = &args.command
    {
        let (per_sec, ok, failed) =
            pam::concurrent(service, user, *threads, Duration::from_secs_f64(*secs));
        println!(
            "{}",
            json!({"threads": threads, "per_sec": per_sec, "ok": ok, "failed": failed})
        );
        return Ok(());
    }
    if let Cmd::SleepToPhase { phase } = args.command {
        let frac = wall().fract();
        let wait = (phase - frac).rem_euclid(1.0);
        std::thread::sleep(Duration::from_secs_f64(wait));
        return Ok(());
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(run(args.command))
}

async fn run(cmd: Cmd) -> Result<(), BoxError> {
    let out = match cmd {
        Cmd::Latency {
            calls,
            warmup,
            uid_base,
            holders,
            resource,
            label,
        } => latency(calls, warmup, uid_base, holders, &resource, &label).await?,
        Cmd::Throughput {
            clients,
            secs,
            uid_base,
            holders,
            resource,
        } => {
            let secs = Duration::from_secs_f64(secs);
            let check = throughput(
                clients,
                secs,
                Op::Check {
                    uid_base,
                    holders,
                    resource: resource.clone(),
                },
            )
            .await?;
            let ping = throughput(clients, secs, Op::Ping).await?;
            json!({"clients": clients, "check_per_s": check, "ping_per_s": ping, "ratio": check / ping})
        }
        Cmd::Expiry {
            count,
            expires_at,
            timeout,
            ready_file,
        } => expiry(count, expires_at, timeout, ready_file).await?,
        Cmd::Notify {
            calls,
            warmup,
            port,
            resource,
            mode,
        } => notify::latency(calls, warmup, port, &resource, mode).await?,
        Cmd::SiemThroughput {
            file,
            count,
            baseline_port,
            baseline_file,
            deliver,
        } => siem::throughput(&deliver, &file, count, baseline_port, &baseline_file)?,
        Cmd::SiemLatency {
            calls,
            warmup,
            port,
            resource,
        } => siem::latency(calls, warmup, port, &resource).await?,
        Cmd::Custody {
            db,
            prefix,
            accounts,
            rounds,
            plain,
            together_secs,
        } => {
            custody::run(&custody::Plan {
                db: &db,
                prefix: &prefix,
                accounts,
                rounds,
                plain: &plain,
                together_secs,
            })
            .await?
        }
        Cmd::MfaLogin {
            socket,
            resource,
            calls,
        } => {
            let (asks, codes, checks, accepted) = mfa::run(&socket, &resource, calls).await?;
            let added: Vec<u64> = asks.iter().zip(&codes).map(|(a, c)| a + c).collect();
            json!({
                "ask": Samples(asks).summary(),
                "code": Samples(codes).summary(),
                "added": Samples(added).summary(),
                "check": Samples(checks).summary(),
                "accepted_us": accepted as f64 / 1000.0,
            })
        }
        Cmd::Vendors {
            db,
            jitctl,
            key,
            jitd_pid,
            rounds,
            together,
        } => {
            vendors::run(&vendors::Plan {
                db: &db,
                jitctl: &jitctl,
                key: &key,
                jitd_pid,
                rounds,
                together,
            })
            .await?
        }
        Cmd::RevokeAll { settle } => {
            revoke_all().await?;
            if let Some(db) = settle {
                custody::settle(&db).await?;
            }
            return Ok(());
        }
        Cmd::Flood { resource, secs } => flood(&resource, Duration::from_secs_f64(secs)).await?,
        Cmd::WaitReady { timeout } => {
            let until = Instant::now() + Duration::from_secs_f64(timeout);
            loop {
                if let Ok(conn) = Connection::system().await {
                    if ping(&conn).await.is_ok() {
                        return Ok(());
                    }
                }
                if Instant::now() > until {
                    return Err("jitd did not answer in time".into());
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        Cmd::Seed { .. }
        | Cmd::Snapshot { .. }
        | Cmd::Oncall { .. }
        | Cmd::Policy { .. }
        | Cmd::PolicyRules { .. }
        | Cmd::SleepToPhase { .. }
        | Cmd::Report { .. }
        | Cmd::SessionThroughput { .. }
        | Cmd::SessionLatency { .. }
        | Cmd::WatchLatency { .. }
        | Cmd::Pam { .. }
        | Cmd::FreshConnections { .. }
        | Cmd::ForkExit { .. }
        | Cmd::PamConcurrent { .. }
        | Cmd::Denied { .. } => return Err("run in main, without a runtime".into()),
    };
    println!("{out}");
    Ok(())
}

fn wall() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

async fn ping(conn: &Connection) -> zbus::Result<()> {
    conn.call_method(Some(BUS_NAME), OBJECT_PATH, Some(PEER), "Ping", &())
        .await?;
    Ok(())
}

async fn check(conn: &Connection, uid: u32, resource: &str) -> zbus::Result<bool> {
    let reply = conn
        .call_method(
            Some(BUS_NAME),
            OBJECT_PATH,
            Some(INTERFACE),
            "CheckGrant",
            &(uid, resource),
        )
        .await?;
    let (active, _grant, _expires, _pending): (bool, u64, i64, u64) = reply.body().deserialize()?;
    Ok(active)
}

/// A cheap deterministic spread over the holders (no rand dependency).
fn pick(i: u64, uid_base: u32, holders: u32) -> u32 {
    let mixed = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 17;
    uid_base + (mixed % u64::from(holders.max(1))) as u32
}

#[derive(Default)]
struct Samples(Vec<u64>);

impl Samples {
    fn pct(&self, p: f64) -> f64 {
        let mut v = self.0.clone();
        v.sort_unstable();
        let i = ((v.len() as f64 - 1.0) * p).round() as usize;
        v[i] as f64 / 1000.0
    }

    fn summary(&self) -> serde_json::Value {
        json!({
            "n": self.0.len(),
            "p50_us": self.pct(0.50),
            "p90_us": self.pct(0.90),
            "p99_us": self.pct(0.99),
            "max_us": self.pct(1.0),
            "mean_us": self.0.iter().sum::<u64>() as f64 / self.0.len() as f64 / 1000.0,
        })
    }
}

/// Alternates blocks of Ping and CheckGrant on one connection so both see
/// the same machine state; warm-up calls are not recorded.
async fn latency(
    calls: usize,
    warmup: usize,
    uid_base: u32,
    holders: u32,
    resource: &str,
    label: &str,
) -> Result<serde_json::Value, BoxError> {
    const BLOCK: usize = 500;
    let conn = Connection::system().await?;
    if !check(&conn, uid_base, resource).await? {
        return Err(
            format!("uid {uid_base} holds no active '{resource}' grant: seeding failed?").into(),
        );
    }
    let (mut pings, mut checks) = (Samples::default(), Samples::default());
    let mut misses = 0u64;
    let mut i = 0u64;
    for _ in 0..warmup {
        ping(&conn).await?;
        check(&conn, pick(i, uid_base, holders), resource).await?;
        i += 1;
    }
    while checks.0.len() < calls {
        let n = BLOCK.min(calls - checks.0.len());
        for _ in 0..n {
            let t = Instant::now();
            ping(&conn).await?;
            pings.0.push(t.elapsed().as_nanos() as u64);
        }
        for _ in 0..n {
            let uid = pick(i, uid_base, holders);
            i += 1;
            let t = Instant::now();
            let active = check(&conn, uid, resource).await?;
            checks.0.push(t.elapsed().as_nanos() as u64);
            misses += u64::from(!active);
        }
    }
    let (c50, p50) = (checks.pct(0.5), pings.pct(0.5));
    Ok(json!({
        "label": label,
        "check": checks.summary(),
        "ping": pings.summary(),
        "check_misses": misses,
        "ratio_p50": c50 / p50,
        "ratio_p99": checks.pct(0.99) / pings.pct(0.99),
    }))
}

#[derive(Clone)]
enum Op {
    Ping,
    Check {
        uid_base: u32,
        holders: u32,
        resource: String,
    },
}

/// Calls/s summed over `clients` connections, each calling back to back.
async fn throughput(clients: usize, secs: Duration, op: Op) -> Result<f64, BoxError> {
    let mut conns = Vec::new();
    for _ in 0..clients {
        conns.push(Connection::system().await?);
    }
    let counting = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for (n, conn) in conns.into_iter().enumerate() {
        let (op, counting, stop, done) = (op.clone(), counting.clone(), stop.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = (n as u64) << 32;
            while !stop.load(Ordering::Relaxed) {
                match &op {
                    Op::Ping => ping(&conn).await?,
                    Op::Check {
                        uid_base,
                        holders,
                        resource,
                    } => {
                        check(&conn, pick(i, *uid_base, *holders), resource).await?;
                    }
                }
                i += 1;
                if counting.load(Ordering::Relaxed) {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok::<(), zbus::Error>(())
        }));
    }
    // Warm up (connections identified, caches filled), then count.
    tokio::time::sleep(Duration::from_millis(500)).await;
    counting.store(true, Ordering::Relaxed);
    let start = Instant::now();
    tokio::time::sleep(secs).await;
    let counted = done.load(Ordering::Relaxed);
    let elapsed = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await??;
    }
    Ok(counted as f64 / elapsed.as_secs_f64())
}

async fn expiry(
    count: usize,
    expires_at: i64,
    timeout: u64,
    ready_file: Option<PathBuf>,
) -> Result<serde_json::Value, BoxError> {
    let conn = Connection::system().await?;
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .interface(INTERFACE)
        .member("GrantEnded")
        .build()?;
    let mut stream =
        zbus::MessageStream::for_match_rule(rule, &conn, NonZeroUsize::new(count * 2 + 64)).await?;
    if let Some(path) = ready_file {
        std::fs::write(path, b"ready\n")?;
    }
    let deadline = expires_at as f64 + timeout as f64;
    let mut lags = Vec::with_capacity(count);
    let mut reasons = std::collections::BTreeMap::<String, usize>::new();
    while lags.len() < count {
        let left = (deadline - wall()).max(0.0);
        let Ok(next) = tokio::time::timeout(Duration::from_secs_f64(left), stream.next()).await
        else {
            break;
        };
        let Some(msg) = next else { break };
        let received = wall();
        let msg = msg?;
        let (_id, _uid, _resource, reason): (u64, u32, String, String) =
            msg.body().deserialize()?;
        *reasons.entry(reason).or_default() += 1;
        lags.push(received - expires_at as f64);
    }
    let got = lags.len();
    lags.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        lags.get(((got as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    Ok(json!({
        "expected": count,
        "received": got,
        "reasons": reasons,
        "lag_min_s": lags.first().copied().unwrap_or(f64::NAN),
        "lag_p50_s": pct(0.5),
        "lag_p99_s": pct(0.99),
        "lag_max_s": lags.last().copied().unwrap_or(f64::NAN),
    }))
}

/// `Request` calls back to back for `secs`: how many were granted or left
/// pending, refused by the rate limit, or refused otherwise (not eligible,
/// the per-user cap on pending requests).
async fn flood(resource: &str, secs: Duration) -> Result<serde_json::Value, BoxError> {
    let conn = Connection::system().await?;
    let until = Instant::now() + secs;
    let (mut accepted, mut limited, mut refused) = (0u64, 0u64, 0u64);
    while Instant::now() < until {
        let call = conn
            .call_method(
                Some(BUS_NAME),
                OBJECT_PATH,
                Some(INTERFACE),
                "Request",
                &(resource, 1800u64, "flood", ""),
            )
            .await;
        match call {
            Ok(_) => accepted += 1,
            Err(zbus::Error::MethodError(name, _, _)) if name.ends_with(".LimitExceeded") => {
                limited += 1
            }
            Err(_) => refused += 1,
        }
    }
    Ok(
        json!({"accepted": accepted, "limited": limited, "refused": refused, "secs": secs.as_secs_f64()}),
    )
}

async fn revoke_all() -> Result<(), BoxError> {
    let conn = Connection::system().await?;
    let reply = conn
        .call_method(
            Some(BUS_NAME),
            OBJECT_PATH,
            Some(INTERFACE),
            "List",
            &("active",),
        )
        .await?;
    let list: String = reply.body().deserialize()?;
    let views: Vec<jitd::api::RequestView> = serde_json::from_str(&list)?;
    for v in views {
        conn.call_method(
            Some(BUS_NAME),
            OBJECT_PATH,
            Some(INTERFACE),
            "Revoke",
            &(v.id, "bench"),
        )
        .await?;
    }
    Ok(())
}

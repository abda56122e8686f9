//! A PAM session ends when the process that opened it exits: sudo once its
//! command is done, sshd's session process at logout. jitd holds that
//! process by a pidfd and records the end itself, so sudo and sshd wait for
//! nothing at close, and a session whose close never comes (the process was
//! killed, or ended with the grant) is recorded as ended all the same.
//!
//! Ends are written together, [`BATCH_WINDOW`] after the first of them: a
//! host running sudo in a loop (a deploy, a monitoring check) pays one
//! transaction for all the sudo runs that ended meanwhile, and the next sudo
//! does not start while jitd writes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use super::pidfd::Process;
use super::SessionControl;
use crate::engine::{run_blocking, Engine};
use crate::store::SessionRecord;

/// How long an end waits for others to be written with it.
const BATCH_WINDOW: Duration = Duration::from_millis(100);
/// How long after its registration a session's process starts being
/// watched. Most sudo commands are done by then: their exit wakes no jitd
/// thread (measured: 0.1 ms off each such sudo here), and the end is found
/// when the watch starts, at most this much later than it happened.
const WATCH_AFTER: Duration = Duration::from_millis(250);

#[derive(Clone)]
pub struct SessionEnds {
    engine: Arc<Mutex<Engine>>,
    /// Puts a session moved out of its grant's cgroup back, when its watch
    /// starts.
    control: SessionControl,
    /// Sessions whose process has exited, not yet recorded as ended.
    ended: Arc<Mutex<Vec<u64>>>,
    /// A write of the admitted sessions is due within [`BATCH_WINDOW`].
    opens_due: Arc<AtomicBool>,
}

impl SessionEnds {
    pub fn new(engine: Arc<Mutex<Engine>>, control: SessionControl) -> SessionEnds {
        SessionEnds {
            engine,
            control,
            ended: Arc::default(),
            opens_due: Arc::default(),
        }
    }

    /// Records session `id` (of `grant`)'s end when `process` exits,
    /// watching from [`WATCH_AFTER`] on. The watch runs on the caller's
    /// runtime (for the private socket, its own thread's): no other thread
    /// is woken while sudo waits for its session. When the watch starts, a
    /// process that a PAM module took out of its grant's cgroup after it
    /// registered is put back with its children (T33).
    pub fn watch(&self, id: u64, grant: u64, process: Process) {
        let ends = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(WATCH_AFTER).await;
            let pid = process.pid;
            let moved = ends.control.recontain(grant, &process);
            if moved > 0 {
                tracing::warn!(
                    session = id,
                    grant,
                    moved,
                    "a session left its grant's cgroup after it registered \
                     (a PAM session module after pam_jit's: see jitctl status); moved it back"
                );
            }
            let exited = async {
                // SAFETY: the Pidfd owns its descriptor for as long as the
                // AsyncFd owns the Pidfd, and as_raw_fd always returns it.
                let fd = unsafe { AsyncFd::register_with_interest(process.fd, Interest::READABLE) }
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                fd.readable().await.map(|_| ())
            };
            if let Err(e) = exited.await {
                // Not watchable: record the end now rather than never.
                tracing::warn!(session = id, pid, error = %e, "cannot watch a session's process");
            }
            ends.ended(id);
        });
    }

    /// Writes the sessions admitted so far (`Engine::write_admitted`)
    /// [`BATCH_WINDOW`] from now, unless a write is due already: after
    /// pam_jit has its answer, and on a busy host with the sessions of the
    /// sudo runs admitted meanwhile (a commit right after the answer ran
    /// beside the sudo it answered and cost it ~0.2 ms on 2 cores here).
    pub fn write_opens_soon(&self) {
        if self.opens_due.swap(true, Ordering::AcqRel) {
            return;
        }
        let ends = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(BATCH_WINDOW).await;
            // Cleared first: a session admitted during the write gets a
            // write of its own.
            ends.opens_due.store(false, Ordering::Release);
            match run_blocking(&ends.engine, |e| e.write_admitted()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => cannot_record(&e),
                Err(e) => cannot_record(&e),
            }
        });
    }

    /// Queues session `id`'s end; the first end queued writes them all
    /// once the window has passed.
    fn ended(&self, id: u64) {
        let first = {
            let mut ended = self.ended.lock().unwrap_or_else(|e| e.into_inner());
            ended.push(id);
            ended.len() == 1
        };
        if first {
            let ends = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(BATCH_WINDOW).await;
                close(&ends.engine, ends.take()).await;
            });
        }
    }

    fn take(&self) -> Vec<u64> {
        std::mem::take(&mut *self.ended.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Records the sessions admitted and the ends queued, now: jitd is
    /// stopping.
    pub fn flush(&self) {
        let ids = self.take();
        let mut engine = self.engine.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = engine.write_admitted() {
            cannot_record(&e);
        }
        if ids.is_empty() {
            return;
        }
        if let Err(e) = engine.close_sessions(&ids) {
            cannot_record(&e);
        }
    }

    /// At start: watches the sessions the previous jitd left open, and
    /// records the end of those whose process is gone (or is another
    /// process with a reused pid).
    pub async fn resume(&self) {
        let open = match run_blocking(&self.engine, |e| e.open_sessions()).await {
            Ok(Ok(open)) => open,
            Ok(Err(e)) => return tracing::error!(error = %e, "cannot list open sessions"),
            Err(e) => return tracing::error!(error = %e, "cannot list open sessions"),
        };
        let (mut watched, mut ended) = (0, Vec::new());
        for SessionRecord {
            id,
            grant,
            pid,
            started,
            ..
        } in open
        {
            match started.and_then(|started| Process::find(pid, started)) {
                Some(process) => {
                    self.watch(id, grant, process);
                    watched += 1;
                }
                None => ended.push(id),
            }
        }
        if watched + ended.len() > 0 {
            tracing::info!(
                watched,
                ended = ended.len(),
                "sessions left open by the previous jitd"
            );
        }
        // One transaction however many: after an upgrade, every session
        // an earlier version never closed is among them.
        close(&self.engine, ended).await;
    }
}

async fn close(engine: &Arc<Mutex<Engine>>, ids: Vec<u64>) {
    if ids.is_empty() {
        return;
    }
    // Never on this thread: it serves pam_jit, and a batch's commit would
    // hold up every account check that arrives meanwhile.
    match run_blocking(engine, move |e| e.close_sessions(&ids)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => cannot_record(&e),
        Err(e) => cannot_record(&e),
    }
}

fn cannot_record(error: &dyn std::fmt::Display) {
    tracing::error!(error = %error, "cannot record the end of sessions");
}

#[cfg(test)]
mod tests {
    use std::process::{Child, Command};

    use super::*;
    use crate::directory::Person;
    use crate::test_support::{
        engine_with_grant, no_cgroups, open_engine, register, sudo_session, ALICE,
    };

    /// A sudo session of alice's grant in process `pid`, to be registered.
    fn record(grant: u64, pid: u32) -> SessionRecord {
        sudo_session(grant, ALICE, pid)
    }

    /// A session of alice's grant whose process is a `sleep` of our own.
    fn session(engine: &Arc<Mutex<Engine>>, grant: u64) -> (u64, Child) {
        let child = Command::new("sleep").arg("30").spawn().unwrap();
        (register(engine, record(grant, child.id())), child)
    }

    fn open_ids(engine: &Arc<Mutex<Engine>>) -> Vec<u64> {
        let open = engine.lock().unwrap().open_sessions().unwrap();
        open.iter().map(|s| s.id).collect()
    }

    /// Each session is recorded as ended once its process has exited.
    #[tokio::test(flavor = "current_thread")]
    async fn sessions_are_recorded_as_ended_when_their_processes_exit() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, grant) = engine_with_grant(dir.path());
        let ends = SessionEnds::new(Arc::clone(&engine), no_cgroups(dir.path()));
        let mut children = Vec::new();
        for _ in 0..2 {
            let (id, child) = session(&engine, grant);
            ends.watch(id, grant, Process::hold(child.id()).unwrap());
            children.push(child);
        }
        assert_eq!(open_ids(&engine).len(), 2);
        for child in &mut children {
            child.kill().unwrap();
            child.wait().unwrap();
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !open_ids(&engine).is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(open_ids(&engine).is_empty());
        let closed = engine.lock().unwrap().sessions_of(grant).unwrap();
        assert!(closed.iter().all(|s| s.closed_at.is_some()), "{closed:?}");
    }

    /// A session admitted (pam_jit answered) whose row a killed jitd never
    /// wrote is written from the journal at the next start, once, and ids
    /// go on from it.
    #[test]
    fn an_admitted_session_survives_a_kill_before_its_row() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, grant) = engine_with_grant(dir.path());
        let child = Command::new("true").spawn().unwrap().id();
        let written = register(&engine, record(grant, child));
        let (admitted, _) = engine
            .lock()
            .unwrap()
            .admitter()
            .admit(record(grant, child), "logs")
            .unwrap();
        // kill -9: the engine goes away without writing the admitted row.
        drop(engine);

        let mut engine = open_engine(dir.path());
        let rows = engine.sessions_of(grant).unwrap();
        assert_eq!(
            rows.iter().map(|s| s.id).collect::<Vec<_>>(),
            [written, admitted.id]
        );
        assert_eq!(rows[1], admitted);
        let opened: Vec<_> = engine
            .audit(&Person::root(), 0)
            .unwrap()
            .into_iter()
            .filter(|a| a.event == "session_opened")
            .map(|a| {
                (
                    a.detail["session"].as_u64().unwrap(),
                    a.detail.get("from_journal").is_some(),
                )
            })
            .collect();
        assert_eq!(opened, [(written, false), (admitted.id, true)]);
        assert_eq!(
            std::fs::metadata(dir.path().join("sessions.journal"))
                .unwrap()
                .len(),
            0
        );
        let (next, _) = engine
            .admitter()
            .admit(record(grant, child), "logs")
            .unwrap();
        assert_eq!(next.id, admitted.id + 1);
    }

    /// An admitted session's row is written before anything reads the
    /// sessions or the audit trail, and by a flush.
    #[test]
    fn admitted_sessions_are_written_before_they_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, grant) = engine_with_grant(dir.path());
        let admit = || {
            engine
                .lock()
                .unwrap()
                .admitter()
                .admit(record(grant, std::process::id()), "logs")
                .unwrap()
                .0
        };
        let first = admit();
        assert_eq!(engine.lock().unwrap().admitted_unwritten(), 1);
        let rows = engine.lock().unwrap().sessions_of(grant).unwrap();
        assert_eq!(rows, std::slice::from_ref(&first));
        let second = admit();
        let opened = engine
            .lock()
            .unwrap()
            .audit(&Person::root(), 0)
            .unwrap()
            .into_iter()
            .filter(|a| a.event == "session_opened")
            .count();
        assert_eq!(opened, 2);
        let third = admit();
        SessionEnds::new(Arc::clone(&engine), no_cgroups(dir.path())).flush();
        assert_eq!(engine.lock().unwrap().admitted_unwritten(), 0);
        let ids: Vec<_> = engine
            .lock()
            .unwrap()
            .sessions_of(grant)
            .unwrap()
            .iter()
            .map(|s| s.id)
            .collect();
        assert_eq!(ids, [first.id, second.id, third.id]);
    }

    /// Admitted sessions are written one batch window after the write is
    /// asked for, without anyone reading them.
    #[tokio::test(flavor = "current_thread")]
    async fn admitted_sessions_are_written_after_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, grant) = engine_with_grant(dir.path());
        let ends = SessionEnds::new(Arc::clone(&engine), no_cgroups(dir.path()));
        for _ in 0..2 {
            engine
                .lock()
                .unwrap()
                .admitter()
                .admit(record(grant, std::process::id()), "logs")
                .unwrap();
            ends.write_opens_soon();
        }
        assert_eq!(engine.lock().unwrap().admitted_unwritten(), 2);
        tokio::time::sleep(BATCH_WINDOW * 2).await;
        assert_eq!(engine.lock().unwrap().admitted_unwritten(), 0);
    }

    /// A stopping jitd records what it has seen end; an id without a row
    /// does not keep the others unrecorded.
    #[tokio::test(flavor = "current_thread")]
    async fn a_flush_records_queued_ends_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, grant) = engine_with_grant(dir.path());
        let ends = SessionEnds::new(Arc::clone(&engine), no_cgroups(dir.path()));
        let (id, mut child) = session(&engine, grant);
        ends.ended(999);
        ends.ended(id);
        ends.flush();
        assert!(open_ids(&engine).is_empty());
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

//! Recordings in the engine: one per session, started under an active
//! grant, closed with the digest jitd computed; refused attempts (a second
//! recorder, a close from another process) go into the audit trail.

use serde_json::json;

use super::{Engine, EngineError, Result, JITD};
use crate::core::model::{RequestId, State, UnixTime};
use crate::directory::Person;
use crate::store::{AuditEvent, Closed, RecordingRecord};

/// What a recorder needs to start recording.
#[derive(Clone, Debug)]
pub struct RecordingStart {
    pub recording: u64,
    pub path: String,
    /// The `jit` object of the asciicast header.
    pub metadata: serde_json::Value,
    pub record_input: bool,
    pub on_failure: crate::config::OnRecordFailure,
    /// Group that may read the file.
    pub group: String,
    pub grant: RequestId,
    pub expires_at: UnixTime,
    /// The real shell of login-shell sessions (`[recordings] login_shell`).
    pub login_shell: std::path::PathBuf,
}

/// The session to record, as jitd found it from the recorder's process.
#[derive(Clone, Copy, Debug)]
pub struct RecordedSession<'a> {
    pub grant: RequestId,
    /// The registered session the recorder runs in.
    pub session: u64,
    /// The recorder's process.
    pub pid: u32,
    /// Who the recorded shell runs as: root through sudo, the grant's
    /// holder for a login shell.
    pub target: &'a Person,
    pub login: bool,
    pub command: &'a str,
    pub host: &'a str,
}

impl Engine {
    /// Starts the recording of `s.session`: its grant must be active, a
    /// login shell must run as the grant's holder or its managed account,
    /// and the session must not
    /// have a recording yet (a second recorder is refused, and audited:
    /// something inside the session tried to become its recorder).
    pub fn open_recording(&mut self, s: &RecordedSession<'_>) -> Result<RecordingStart> {
        let g = self.load(s.grant)?;
        let Some(expires_at) = g.expires_at.filter(|_| g.state == State::Active) else {
            return Err(EngineError::NoGrant {
                uid: g.uid,
                resource: g.resource,
            });
        };
        // A login shell runs as the grant's holder, or as the managed
        // account of the grant's resource while it is checked out
        // (`jitctl shell --as`: sudo -u, through the PAM stack gated by
        // that resource), by the uid it was checked out with.
        let as_account = self.checked_out_uid(&g.resource) == Some(s.target.uid);
        if s.login && g.uid != s.target.uid && !as_account {
            return Err(EngineError::NotInSession);
        }
        if s.command.len() > 4096 {
            return Err(EngineError::TooLong("command"));
        }
        let now = self.clock.wall();
        if let Some(recording) = self.store.recording_of_session(s.session)? {
            self.store.write(|w| {
                w.audit(&AuditEvent {
                    at: now,
                    actor_uid: Some(s.target.uid),
                    actor: &s.target.name,
                    event: "recording_refused",
                    request: Some(s.grant),
                    detail: json!({"session": s.session, "recording": recording, "pid": s.pid,
                                   "reason": "the session has its recorder"}),
                })
            })?;
            return Err(EngineError::SessionRecorded {
                session: s.session,
                recording,
            });
        }
        let dir = self.config.recordings.dir.clone();
        let (id, path) = self.store.write(|w| -> Result<(u64, String)> {
            let id = w.insert_recording(&RecordingRecord {
                id: 0,
                grant: s.grant,
                uid: g.uid,
                user: g.user.clone(),
                resource: g.resource.clone(),
                path: String::new(),
                started_at: now,
                ended_at: None,
                sha256: None,
                bytes: None,
                end: None,
                login: s.login,
                session: Some(s.session),
                digest_of: None,
            })?;
            let path = dir
                .join(format!("{}-{id}.cast", s.grant))
                .to_string_lossy()
                .into_owned();
            w.set_recording_path(id, &path)?;
            w.audit(&AuditEvent {
                at: now,
                actor_uid: Some(g.uid),
                actor: &g.user,
                event: "recording_started",
                request: Some(s.grant),
                detail: json!({"recording": id, "path": path, "command": s.command,
                               "target_user": s.target.name, "session": s.session,
                               "pid": s.pid}),
            })?;
            Ok((id, path))
        })?;
        let approvers: Vec<&str> = g.approvals().map(|d| d.name.as_str()).collect();
        let metadata = json!({
            "grant": s.grant,
            "recording": id,
            "user": g.user,
            "uid": g.uid,
            "target_user": s.target.name,
            "resource": g.resource,
            "host": s.host,
            "reason": g.reason,
            "ticket": g.ticket,
            "approvers": approvers,
            "expires_at": crate::api::rfc3339(expires_at),
        });
        let rec = &self.config.recordings;
        Ok(RecordingStart {
            recording: id,
            path,
            metadata,
            record_input: rec.record_input,
            on_failure: rec.on_record_failure,
            group: rec.group.clone(),
            grant: s.grant,
            expires_at,
            login_shell: rec.login_shell.get_ref().clone(),
        })
    }

    /// Records how a recording closed, and its digest, in the audit trail.
    pub fn close_recording(&mut self, id: u64, closed: &Closed<'_>) -> Result<()> {
        let valid_digest =
            closed.sha256.len() == 64 && closed.sha256.bytes().all(|b| b.is_ascii_hexdigit());
        if !valid_digest || closed.end.len() > 32 {
            return Err(EngineError::BadRecordingEnd);
        }
        let rec = self
            .store
            .recording(id)?
            .ok_or(EngineError::NoRecording(id))?;
        let now = self.clock.wall();
        self.store.write(|w| -> Result<()> {
            if !w.close_recording(id, now, closed)? {
                return Err(EngineError::RecordingClosed(id));
            }
            w.audit(&AuditEvent {
                at: now,
                actor_uid: Some(rec.uid),
                actor: JITD,
                event: "recording_closed",
                request: Some(rec.grant),
                detail: json!({"recording": id, "path": rec.path, "sha256": closed.sha256,
                               "bytes": closed.bytes, "end": closed.end,
                               "digest_of": closed.digest_of.as_str()}),
            })?;
            Ok(())
        })
    }

    /// Audits a close of recording `id` asked by `caller`'s process `pid`,
    /// which is not its recorder (the recorded shell, say): the caller
    /// refuses it ([`EngineError::NotRecorder`]); the attempt is evidence.
    pub fn audit_refused_close(&mut self, id: u64, caller: &Person, pid: u32) -> Result<()> {
        let rec = self
            .store
            .recording(id)?
            .ok_or(EngineError::NoRecording(id))?;
        let now = self.clock.wall();
        self.store.write(|w| {
            w.audit(&AuditEvent {
                at: now,
                actor_uid: Some(caller.uid),
                actor: &caller.name,
                event: "recording_close_refused",
                request: Some(rec.grant),
                detail: json!({"recording": id, "pid": pid,
                               "reason": "not the process that opened the recording"}),
            })
        })?;
        Ok(())
    }

    /// Recordings still open at start: their writer was the previous jitd
    /// (or a recorder that reported its own digest, which this jitd no
    /// longer takes), so they are sealed as found.
    pub fn recordings_orphaned_at_start(&self) -> Result<Vec<RecordingRecord>> {
        Ok(self.store.open_recordings()?)
    }

    /// Only root and auditors (the `jit-audit` group by default) may watch
    /// other people's sessions; security decides on grants, not on replays.
    fn reads_all_recordings(&self, who: &Person) -> bool {
        who.is_root() || who.matches_any(&self.config.roles.auditor)
    }

    /// Recordings `who` may see: their own, or all for root and auditors.
    pub fn recordings(&self, who: &Person, since: UnixTime) -> Result<Vec<RecordingRecord>> {
        let only = (!self.reads_all_recordings(who)).then_some(who.uid);
        Ok(self.store.recordings(since, only)?)
    }

    /// One recording, if `who` may watch it (W4 item 7): those who may
    /// read it, and while it is being made, security (who may end the
    /// grant) and the people who approved its grant and still hold the role
    /// they approved in. Not them where keystrokes are recorded
    /// (`record_input`): the file holds what the holder typed (T31).
    pub fn recording_to_watch(&self, who: &Person, id: u64) -> Result<RecordingRecord> {
        let rec = self
            .store
            .recording(id)?
            .ok_or(EngineError::NoRecording(id))?;
        if self.may_watch(who, &rec)? {
            return Ok(rec);
        }
        Err(EngineError::NotWatcher(id))
    }

    /// The recordings being made now that `who` may watch.
    pub fn live_recordings(&self, who: &Person) -> Result<Vec<RecordingRecord>> {
        let mut live = Vec::new();
        for rec in self.store.open_recordings()? {
            if self.may_watch(who, &rec)? {
                live.push(rec);
            }
        }
        Ok(live)
    }

    fn may_watch(&self, who: &Person, rec: &RecordingRecord) -> Result<bool> {
        if rec.uid == who.uid || self.reads_all_recordings(who) {
            return Ok(true);
        }
        if rec.ended_at.is_some() || self.config.recordings.record_input {
            return Ok(false);
        }
        if who.matches_any(&self.config.roles.security) {
            return Ok(true);
        }
        let grant = self.load(rec.grant)?;
        let roles = self.roles_of(who, self.config.resource(&grant.resource));
        let approved = grant
            .approvals()
            .any(|d| d.uid == who.uid && d.name == who.name && roles.contains(&d.role));
        Ok(approved)
    }

    /// One recording, if `who` may read it.
    pub fn recording(&self, who: &Person, id: u64) -> Result<RecordingRecord> {
        let rec = self
            .store
            .recording(id)?
            .ok_or(EngineError::NoRecording(id))?;
        if rec.uid != who.uid && !self.reads_all_recordings(who) {
            return Err(EngineError::NotYourRecording(id));
        }
        Ok(rec)
    }
}

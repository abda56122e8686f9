//! Engine behaviour against a real SQLite store and a hand-driven clock
//! (threat T14: suspend, clock changes, downtime).

use std::sync::Mutex;
use std::time::Duration;

use super::*;
use crate::config;
use crate::directory::Person;
use crate::polkit::asker::PolkitAsker;
use crate::test_support::CONFIG;

/// A clock the test moves by hand. Wall and boot move together unless a test
/// sets one of them alone (a clock change, or a suspend).
pub(super) struct ManualClock(Mutex<(Duration, Duration)>);

impl ManualClock {
    fn new() -> Arc<ManualClock> {
        Arc::new(ManualClock(Mutex::new((
            Duration::from_secs(1_800_000_000),
            Duration::from_secs(100),
        ))))
    }
    pub(super) fn advance(&self, secs: u64) {
        let mut t = self.0.lock().unwrap();
        t.0 += Duration::from_secs(secs);
        t.1 += Duration::from_secs(secs);
    }
    fn set_wall(&self, secs: u64) {
        self.0.lock().unwrap().0 = Duration::from_secs(secs);
    }
    fn advance_boot_only(&self, secs: u64) {
        self.0.lock().unwrap().1 += Duration::from_secs(secs);
    }
}

impl Clock for ManualClock {
    fn wall_precise(&self) -> Duration {
        self.0.lock().unwrap().0
    }
    fn boot(&self) -> Duration {
        self.0.lock().unwrap().1
    }
}

pub(super) fn person(uid: Uid, name: &str) -> Person {
    Person {
        uid,
        name: name.into(),
        gid: uid,
    }
}

pub(super) struct Fixture {
    dir: tempfile::TempDir,
    pub(super) clock: Arc<ManualClock>,
    config: Arc<Config>,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture::with("")
    }
    /// [`CONFIG`] and `more` of it.
    pub(super) fn with(more: &str) -> Fixture {
        let config = config::parse(&format!("{CONFIG}{more}"), Path::new("test.toml")).unwrap();
        Fixture {
            dir: tempfile::tempdir().unwrap(),
            clock: ManualClock::new(),
            config: Arc::new(config),
        }
    }
    /// The same store and clock under another config (`CONFIG` and `more`).
    pub(super) fn reopen_with(&self, more: &str) -> Result<(Engine, Vec<Event>)> {
        let text = format!("{CONFIG}{more}");
        let config = Arc::new(config::parse(&text, Path::new("test.toml")).unwrap());
        let clock: Arc<dyn Clock> = self.clock.clone();
        Engine::open(config, self.dir.path(), clock)
    }

    pub(super) fn open(&self) -> (Engine, Vec<Event>) {
        let clock: Arc<dyn Clock> = self.clock.clone();
        Engine::open(Arc::clone(&self.config), self.dir.path(), clock).unwrap()
    }
}

fn alice() -> Person {
    person(61001, "alice")
}

pub(super) fn state_of(engine: &Engine, id: RequestId) -> State {
    engine.load(id).unwrap().state
}

pub(super) fn events_named(engine: &mut Engine, id: RequestId) -> Vec<String> {
    engine
        .audit(&person(0, "root"), 0)
        .unwrap()
        .into_iter()
        .filter(|e| e.request == Some(id))
        .map(|e| e.event)
        .collect()
}

#[test]
fn auto_grant_expires_on_the_boot_clock() {
    let f = Fixture::new();
    let (mut engine, _) = f.open();
    let (req, events) = engine
        .submit(&alice(), "logs", Duration::from_secs(60), "look", None)
        .unwrap();
    assert_eq!(req.state, State::Active);
    assert!(matches!(events.last(), Some(Event::Activated { .. })));
    assert!(engine
        .checker()
        .check(61001, 61001, "logs")
        .unwrap()
        .is_some());
    f.clock.advance(59);
    assert!(engine.tick().unwrap().is_empty());
    f.clock.advance(1);
    let events = engine.tick().unwrap();
    assert!(events.contains(&Event::Ended {
        id: req.id,
        uid: 61001,
        user: "alice".into(),
        resource: "logs".into(),
        reason: State::Expired
    }));
    assert_eq!(state_of(&engine, req.id), State::Expired);
    assert!(engine.checker().check(0, 61001, "logs").unwrap().is_none());
    assert_eq!(
        events_named(&mut engine, req.id),
        ["requested", "scored", "granted", "expired"]
    );
}

#[test]
fn suspend_counts_towards_expiry() {
    let f = Fixture::new();
    let (mut engine, _) = f.open();
    let (req, _) = engine
        .submit(&alice(), "logs", Duration::from_secs(600), "look", None)
        .unwrap();
    // Suspended for 20 minutes: CLOCK_BOOTTIME moved, and so did the wall clock.
    f.clock.advance(1200);
    engine.tick().unwrap();
    assert_eq!(state_of(&engine, req.id), State::Expired);
}

#[test]
fn setting_the_clock_forward_ends_grants_and_is_audited() {
    let f = Fixture::new();
    let (mut engine, _) = f.open();
    let (req, _) = engine
        .submit(&alice(), "logs", Duration::from_secs(600), "look", None)
        .unwrap();
    f.clock.set_wall(1_800_000_000 + 3600);
    engine.clock_changed().unwrap();
    assert_eq!(state_of(&engine, req.id), State::Expired);
    let all = engine.audit(&person(0, "root"), 0).unwrap();
    assert!(all.iter().any(|e| e.event == "clock_changed"));
}

#[test]
fn setting_the_clock_back_does_not_extend_a_grant() {
    let f = Fixture::new();
    let (mut engine, _) = f.open();
    let (req, _) = engine
        .submit(&alice(), "logs", Duration::from_secs(600), "look", None)
        .unwrap();
    f.clock.set_wall(1_000_000_000);
    engine.clock_changed().unwrap();
    assert_eq!(state_of(&engine, req.id), State::Active);
    f.clock.advance_boot_only(600);
    engine.tick().unwrap();
    assert_eq!(state_of(&engine, req.id), State::Expired);
}

#[test]
fn grants_and_requests_that_ran_out_while_down_end_at_start() {
    let f = Fixture::new();
    let (mut engine, _) = f.open();
    let (grant, _) = engine
        .submit(&alice(), "logs", Duration::from_secs(60), "look", None)
        .unwrap();
    let (pending, _) = engine
        .submit(&alice(), "db", Duration::from_secs(7200), "migrate", None)
        .unwrap();
    assert_eq!(pending.state, State::Pending);
    drop(engine);
    f.clock.advance(2 * 3600);
    let (mut engine, events) = f.open();
    assert!(events.contains(&Event::Decided {
        id: grant.id,
        state: State::Expired
    }));
    assert!(events.contains(&Event::Decided {
        id: pending.id,
        state: State::Lapsed
    }));
    assert_eq!(state_of(&engine, grant.id), State::Expired);
    assert_eq!(state_of(&engine, pending.id), State::Lapsed);
    assert!(engine.verify_audit(&person(0, "root")).unwrap().ok);
}

#[test]
fn extension_moves_expiry_and_is_capped() {
    let f = Fixture::new();
    let (mut engine, _) = f.open();
    let (grant, _) = engine
        .submit(&alice(), "logs", Duration::from_secs(1800), "look", None)
        .unwrap();
    let over = engine.extend(&alice(), grant.id, Duration::from_secs(1801), "more");
    assert!(matches!(
        over,
        Err(EngineError::Workflow(WorkflowError::OverCap { .. }))
    ));
    let (ext, events) = engine
        .extend(&alice(), grant.id, Duration::from_secs(600), "more")
        .unwrap();
    assert_eq!(ext.state, State::Applied);
    let before = grant.expires_at.unwrap();
    assert_eq!(
        engine.load(grant.id).unwrap().expires_at,
        Some(before + 600)
    );
    assert!(events.contains(&Event::Extended {
        id: grant.id,
        expires_at: before + 600
    }));
    f.clock.advance(1800);
    engine.tick().unwrap();
    assert_eq!(state_of(&engine, grant.id), State::Active);
    f.clock.advance(600);
    engine.tick().unwrap();
    assert_eq!(state_of(&engine, grant.id), State::Expired);
}

#[test]
fn owner_route_and_lapse() {
    let f = Fixture::new();
    let (mut engine, _) = f.open();
    let (req, _) = engine
        .submit(&alice(), "db", Duration::from_secs(7200), "migrate", None)
        .unwrap();
    assert_eq!(req.route, crate::core::model::Route::Owner);
    let denied = engine.approve(&person(61003, "mike"), req.id, "", None);
    assert!(matches!(
        denied,
        Err(EngineError::Workflow(WorkflowError::NotApprover(_)))
    ));
    f.clock.advance(3600);
    engine.tick().unwrap();
    assert_eq!(state_of(&engine, req.id), State::Lapsed);
    let late = engine.approve(&person(61006, "olivia"), req.id, "", None);
    assert!(matches!(
        late,
        Err(EngineError::Workflow(WorkflowError::NotPending { .. }))
    ));
}

#[test]
fn a_second_grant_for_the_same_resource_is_refused() {
    let f = Fixture::new();
    let (mut engine, _) = f.open();
    let (grant, _) = engine
        .submit(&alice(), "logs", Duration::from_secs(60), "look", None)
        .unwrap();
    let again = engine.submit(&alice(), "logs", Duration::from_secs(60), "look", None);
    assert!(matches!(again, Err(EngineError::AlreadyActive { id, .. }) if id == grant.id));
}

#[test]
fn only_root_checks_other_users() {
    let f = Fixture::new();
    let (engine, _) = f.open();
    let checker = engine.checker();
    assert!(matches!(
        checker.check(61002, 61001, "logs"),
        Err(EngineError::CheckOthers)
    ));
    assert!(checker.check(61001, 61001, "logs").unwrap().is_none());
    assert!(checker.check(0, 61001, "logs").unwrap().is_none());

    // polkitd's account asks about anyone, for the gate's resource alone.
    let checker = checker.with_polkit_asker(Some(PolkitAsker {
        uid: 996,
        resource: "logs".into(),
    }));
    assert!(checker.check(996, 61001, "logs").unwrap().is_none());
    assert!(checker.pending(996, 61001, "logs").unwrap().is_none());
    for (caller, resource) in [(996, "db"), (61002, "logs")] {
        assert!(matches!(
            checker.check(caller, 61001, resource),
            Err(EngineError::CheckOthers)
        ));
        assert!(matches!(
            checker.pending(caller, 61001, resource),
            Err(EngineError::CheckOthers)
        ));
    }
}

/// The session `session` of `grant`, recorded as root through sudo, or as
/// `who`'s login shell.
fn recorded<'a>(
    grant: RequestId,
    session: u64,
    who: &'a Person,
    login: bool,
) -> RecordedSession<'a> {
    RecordedSession {
        grant,
        session,
        pid: 4242,
        target: who,
        login,
        command: "",
        host: "host1",
    }
}

fn closed<'a>(sha256: &'a str, end: &'static str) -> crate::store::Closed<'a> {
    crate::store::Closed {
        sha256,
        bytes: 10,
        end,
        digest_of: crate::store::DigestOf::Session,
    }
}

#[test]
fn recordings_carry_the_digest_from_the_audit_trail() {
    let f = Fixture::new();
    let (mut engine, _) = f.open();
    let (grant, _) = engine
        .submit(&alice(), "logs", Duration::from_secs(600), "look", None)
        .unwrap();
    let root = Person::root();
    let start = engine
        .open_recording(&recorded(grant.id, 1, &root, false))
        .unwrap();
    assert!(start
        .path
        .ends_with(&format!("{}-{}.cast", grant.id, start.recording)));
    assert_eq!(start.metadata["user"], "alice");
    assert_eq!(start.metadata["reason"], "look");
    let digest = "ab".repeat(32);
    assert!(matches!(
        engine.close_recording(start.recording, &closed("not hex", "exit")),
        Err(EngineError::BadRecordingEnd)
    ));
    engine
        .close_recording(start.recording, &closed(&digest, "exit"))
        .unwrap();
    assert!(matches!(
        engine.close_recording(start.recording, &closed(&digest, "exit")),
        Err(EngineError::RecordingClosed(_))
    ));
    let mine = engine.recordings(&alice(), 0).unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].sha256.as_deref(), Some(digest.as_str()));
    assert_eq!(mine[0].end.as_deref(), Some("exit"));
    assert_eq!(mine[0].session, Some(1));
    assert_eq!(mine[0].digest_of, Some(crate::store::DigestOf::Session));
    // Someone else sees nothing of it and may not open it.
    let bob = person(61002, "bob");
    assert!(engine.recordings(&bob, 0).unwrap().is_empty());
    assert!(matches!(
        engine.recording(&bob, start.recording),
        Err(EngineError::NotYourRecording(_))
    ));
    assert!(engine.recording(&Person::root(), start.recording).is_ok());
    let events = events_named(&mut engine, grant.id);
    assert!(
        events.ends_with(&[
            "recording_started".to_string(),
            "recording_closed".to_string()
        ]),
        "{events:?}"
    );
}

#[test]
fn a_session_has_one_recorder_and_refusals_are_audited() {
    let f = Fixture::new();
    let (mut engine, _) = f.open();
    let (grant, _) = engine
        .submit(&alice(), "logs", Duration::from_secs(600), "look", None)
        .unwrap();
    let root = Person::root();
    let first = engine
        .open_recording(&recorded(grant.id, 1, &root, false))
        .unwrap();
    // Something else in the session (the recorded shell) asks too.
    for login in [false, true] {
        let who = if login { alice() } else { Person::root() };
        assert!(matches!(
            engine.open_recording(&recorded(grant.id, 1, &who, login)),
            Err(EngineError::SessionRecorded { session: 1, recording }) if recording == first.recording
        ));
    }
    // Another session of the grant has a recorder of its own.
    engine
        .open_recording(&recorded(grant.id, 2, &root, false))
        .unwrap();
    // A close from a process that is not the recorder: refused, audited.
    engine
        .audit_refused_close(first.recording, &root, 999)
        .unwrap();
    assert!(matches!(
        engine.audit_refused_close(12345, &root, 999),
        Err(EngineError::NoRecording(12345))
    ));
    let events = events_named(&mut engine, grant.id);
    let count = |name: &str| events.iter().filter(|e| *e == name).count();
    assert_eq!(count("recording_started"), 2, "{events:?}");
    assert_eq!(count("recording_refused"), 2, "{events:?}");
    assert_eq!(count("recording_close_refused"), 1, "{events:?}");
    assert!(engine
        .recording(&root, first.recording)
        .unwrap()
        .ended_at
        .is_none());
}

#[test]
fn a_missing_justification_is_escalated_once_on_the_boot_clock() {
    let f = Fixture::new();
    let (mut engine, _) = f.open();
    let (req, events) = engine
        .break_glass(&alice(), "logs", None, "outage")
        .unwrap();
    assert_eq!(req.state, State::Active);
    assert_eq!(
        req.duration,
        Duration::from_secs(2 * 3600),
        "break_glass_max"
    );
    assert!(events.iter().any(|e| matches!(e, Event::Activated { .. })));
    f.clock.advance(3599);
    engine.tick().unwrap();
    assert!(!events_named(&mut engine, req.id).contains(&"justification_overdue".into()));
    // Restarted before the deadline: it is scheduled again from the store.
    drop(engine);
    let (mut engine, _) = f.open();
    f.clock.advance(1);
    engine.tick().unwrap();
    engine.tick().unwrap();
    let overdue = events_named(&mut engine, req.id)
        .into_iter()
        .filter(|e| e == "justification_overdue")
        .count();
    assert_eq!(overdue, 1);
    let case = engine.load(req.id).unwrap().follow_up.unwrap();
    assert_eq!(case.status(), crate::core::break_glass::CaseStatus::Overdue);
    // Justified late: accepted, and nothing is escalated again.
    engine.justify(&alice(), req.id, "disk full").unwrap();
    f.clock.advance(7200);
    engine.tick().unwrap();
    let case = engine.load(req.id).unwrap().follow_up.unwrap();
    assert_eq!(
        case.status(),
        crate::core::break_glass::CaseStatus::AwaitingReview
    );
}

#[test]
fn setting_the_clock_back_does_not_postpone_a_justification() {
    let f = Fixture::new();
    let (mut engine, _) = f.open();
    let (req, _) = engine
        .break_glass(&alice(), "logs", Some(Duration::from_secs(600)), "outage")
        .unwrap();
    f.clock.set_wall(1_800_000_000 - 86_400);
    engine.clock_changed().unwrap();
    f.clock.advance(3600);
    engine.tick().unwrap();
    assert!(events_named(&mut engine, req.id).contains(&"justification_overdue".into()));
}

#[test]
fn login_recordings_are_for_the_grant_holder_only() {
    let f = Fixture::new();
    let (mut engine, _) = f.open();
    let (grant, _) = engine
        .submit(&alice(), "logs", Duration::from_secs(600), "look", None)
        .unwrap();
    // Another user (or root) inside alice's session cgroup records nothing.
    for other in [person(61002, "bob"), Person::root()] {
        assert!(matches!(
            engine.open_recording(&recorded(grant.id, 1, &other, true)),
            Err(EngineError::NotInSession)
        ));
    }
    assert!(events_named(&mut engine, grant.id)
        .iter()
        .all(|e| e != "recording_started"));
    let me = alice();
    let start = engine
        .open_recording(&recorded(grant.id, 1, &me, true))
        .unwrap();
    assert_eq!(start.metadata["target_user"], "alice");
    assert_eq!(
        start.login_shell,
        std::path::PathBuf::from(crate::config::DEFAULT_LOGIN_SHELL)
    );
    // Once the grant is over, no new recording under it.
    f.clock.advance(600);
    engine.tick().unwrap();
    assert!(engine
        .open_recording(&recorded(grant.id, 2, &me, true))
        .is_err());
}

#[test]
fn every_recording_open_at_start_is_found_for_sealing() {
    let f = Fixture::new();
    let (mut engine, _) = f.open();
    let (grant, _) = engine
        .submit(&alice(), "logs", Duration::from_secs(60), "look", None)
        .unwrap();
    let (root, me) = (Person::root(), alice());
    let mut open = |session, who: &Person, login| {
        engine
            .open_recording(&recorded(grant.id, session, who, login))
            .unwrap()
            .recording
    };
    let (sudo, login, done) = (
        open(1, &root, false),
        open(2, &me, true),
        open(3, &root, false),
    );
    engine
        .close_recording(done, &closed(&"ab".repeat(32), "exit"))
        .unwrap();
    // At a restart every open recording's writer was the jitd that stopped,
    // whether its grant is over or not.
    drop(engine);
    let (engine, _) = f.open();
    let ids: Vec<u64> = engine
        .recordings_orphaned_at_start()
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, [sudo, login]);
}

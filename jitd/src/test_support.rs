//! Fixtures shared by unit tests that need a real engine (SQLite in a
//! temporary directory, the system clock).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::clock::SystemClock;
use crate::config;
use crate::core::model::RequestId;
use crate::directory::Person;
use crate::engine::Engine;
use crate::store::SessionRecord;

/// alice may take "logs" (low, staging) without approval, "db" with its owner's;
/// mike is the manager, sam the security reviewer.
pub const CONFIG: &str = r#"
[roles]
manager = ["user:mike"]
security = ["user:sam"]
[risk]
business_hours = "00:00-24:00"
[requests]
pending_ttl = "1h"
[break_glass]
justify_within = "1h"
[[resource]]
name = "logs"
sensitivity = "low"
environment = "staging"
eligible = ["user:alice"]
max_duration = "1h"
break_glass = ["user:alice"]
[[resource]]
name = "db"
environment = "staging"
owners = ["user:olivia"]
eligible = ["user:alice"]
max_duration = "8h"
"#;

/// alice (uid 61001), who may take "logs" without approval.
pub const ALICE: u32 = 61001;

/// The engine of [`CONFIG`] stored in `dir` (opened again after a drop,
/// as jitd restarts).
pub fn open_engine(dir: &Path) -> Engine {
    let config = Arc::new(config::parse(CONFIG, Path::new("test.toml")).unwrap());
    Engine::open(config, dir, Arc::new(SystemClock)).unwrap().0
}

/// An engine stored in `dir` in which alice holds an active grant for
/// "logs" (10 minutes), and that grant's id.
pub fn engine_with_grant(dir: &Path) -> (Arc<Mutex<Engine>>, RequestId) {
    let mut engine = open_engine(dir);
    let alice = Person {
        uid: ALICE,
        name: "alice".into(),
        gid: ALICE,
    };
    let (grant, _) = engine
        .submit(&alice, "logs", Duration::from_secs(600), "test", None)
        .unwrap();
    (Arc::new(Mutex::new(engine)), grant.id)
}

/// Registers `session` as the gate does (admitted, then written); its id.
pub fn register(engine: &Arc<Mutex<Engine>>, session: SessionRecord) -> u64 {
    let mut engine = engine.lock().unwrap();
    let (session, _) = engine.admitter().admit(session, "logs").unwrap();
    engine.write_admitted().unwrap();
    session.id
}

/// Session control over a cgroup directory that does not exist under `dir`:
/// it moves nothing (a unit test must not touch the host's cgroups).
pub fn no_cgroups(dir: &Path) -> crate::sessions::SessionControl {
    crate::sessions::SessionControl::new(&config::SessionsConfig {
        cgroup: Some(dir.join("no-cgroups")),
        ..config::SessionsConfig::default()
    })
}

/// A sudo session of `uid`'s under `grant`, in process `pid`, as pam_jit
/// registers one (on a terminal, no remote host).
pub fn sudo_session(grant: RequestId, uid: u32, pid: u32) -> SessionRecord {
    SessionRecord {
        id: 0,
        grant,
        uid,
        service: "sudo".into(),
        tty: "/dev/pts/3".into(),
        rhost: String::new(),
        pid,
        started: None,
        cgroup: None,
        opened_at: 0,
        closed_at: None,
    }
}

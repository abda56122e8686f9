//! The on-call schedules' changes in the audit trail (docs/design.md
//! "On-call schedules", T43): each valid version read (with its digest, so
//! that a policy grant can be traced to the schedule that allowed it), and
//! each breakage and fix, which tell security.

use std::sync::Arc;

use serde_json::json;

use super::custody::audit;
use super::{Engine, Result};
use crate::oncall::{Change, Rosters};

impl Engine {
    /// The configured schedules: what policy rules ask
    /// ([`crate::core::oncall::OnCall`]) and `status` shows.
    pub fn rosters(&self) -> Arc<Rosters> {
        Arc::clone(&self.rosters)
    }

    /// Audits the changes the schedules queued since the last call, in one
    /// transaction.
    pub fn write_oncall_changes(&mut self) -> Result<()> {
        let changes = self.rosters.take_changes();
        if changes.is_empty() {
            return Ok(());
        }
        let now = self.clock.wall();
        self.store.write(|w| -> Result<()> {
            for change in &changes {
                let (event, detail) = match change {
                    Change::Loaded {
                        schedule,
                        file,
                        shifts,
                        sha256,
                        restored,
                    } => (
                        if *restored {
                            "oncall_schedule_restored"
                        } else {
                            "oncall_schedule_loaded"
                        },
                        json!({
                            "schedule": schedule,
                            "file": file,
                            "shifts": shifts,
                            "sha256": sha256,
                        }),
                    ),
                    Change::Broken {
                        schedule,
                        file,
                        reason,
                    } => (
                        "oncall_schedule_broken",
                        json!({
                            "schedule": schedule,
                            "file": file,
                            "reason": reason.to_string(),
                        }),
                    ),
                };
                audit(w, now, event, None, detail)?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::super::tests::{person, Fixture};
    use crate::core::oncall::OnCall;

    const ALICE: &str = "alice 2026-12-06T22:00:00+01:00 2026-12-07T06:00:00+01:00\n";
    const NIGHT: i64 = 1_796_600_000;

    fn write(path: &std::path::Path, text: &str, mode: u32) {
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn security_is_told_once_when_a_schedule_breaks_and_when_it_is_fixed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("primary.shifts");
        let f = Fixture::with(&format!(
            "[notify]\nsecurity = [\"hook:sec\"]\n\
             [notify.hooks.sec]\nkind = \"json\"\nurl = \"http://127.0.0.1:9/sec\"\n\
             [oncall.primary]\nfile = \"{}\"\n",
            file.display()
        ));
        // Missing at the start: broken from the first look.
        let (mut engine, _) = f.open();
        let rosters = engine.rosters();
        assert!(!rosters.is_on_call("primary", "alice", NIGHT));

        write(&file, ALICE, 0o644);
        assert!(rosters.is_on_call("primary", "alice", NIGHT));
        engine.write_oncall_changes().unwrap();
        write(&file, &format!("{ALICE}{ALICE}"), 0o644);
        assert!(rosters.is_on_call("primary", "alice", NIGHT));
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
        for _ in 0..3 {
            assert!(!rosters.is_on_call("primary", "alice", NIGHT));
            engine.write_oncall_changes().unwrap();
        }

        let events: Vec<String> = engine
            .audit(&person(0, "root"), 0)
            .unwrap()
            .into_iter()
            .map(|e| e.event)
            .filter(|e| e.starts_with("oncall_"))
            .collect();
        assert_eq!(
            events,
            [
                "oncall_schedule_broken",
                "oncall_schedule_restored",
                "oncall_schedule_loaded",
                "oncall_schedule_broken"
            ]
        );
        let conn = engine.store_conn_for_tests();
        let mut stmt = conn
            .prepare("SELECT event, target, subject FROM notifications ORDER BY id")
            .unwrap();
        let told: Vec<(String, String, String)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let subjects: Vec<&str> = told.iter().map(|(_, _, s)| s.as_str()).collect();
        assert_eq!(
            subjects,
            [
                "jit: on-call schedule primary is broken: nobody is on call",
                "jit: on-call schedule primary is fixed",
                "jit: on-call schedule primary is broken: nobody is on call",
            ]
        );
        assert!(
            told.iter().all(|(_, target, _)| target == "sec"),
            "{told:?}"
        );
    }
}

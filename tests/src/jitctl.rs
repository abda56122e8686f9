//! jitctl as the fixture users run it, and the request documents it prints.

use std::time::Duration;

use crate::{jitctl_bin, shell_words, wait_for, Background, Env, Run, Value};

/// A request document's id.
#[track_caller]
pub fn id_of(doc: &Value) -> u64 {
    doc["id"]
        .as_u64()
        .unwrap_or_else(|| panic!("no numeric id in {doc:#}"))
}

/// A request document's state.
#[track_caller]
pub fn state_of(doc: &Value) -> &str {
    doc["state"]
        .as_str()
        .unwrap_or_else(|| panic!("no state in {doc:#}"))
}

/// A request document's `awaiting` roles.
#[track_caller]
pub fn awaiting_of(doc: &Value) -> Vec<String> {
    doc["awaiting"]
        .as_array()
        .unwrap_or_else(|| panic!("no awaiting array in {doc:#}"))
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_owned())
        .collect()
}

impl Env {
    /// `jitctl ARGS` as `user` ("root" for root).
    pub fn jitctl(&self, user: &str, args: &[&str]) -> Run {
        let mut cmd = self.user_command(user, jitctl_bin());
        cmd.args(args);
        let mut run = self.run(cmd);
        run.cmd = format!("[{user}] jitctl {}", shell_words(args));
        run
    }

    /// `jitctl ARGS` as `user`, with `input` and a newline on its standard
    /// input (a second factor's code: never on jitctl's command line).
    pub fn jitctl_with_input(&self, user: &str, args: &[&str], input: &str) -> Run {
        let mut cmd = self.user_command(user, "sh");
        cmd.arg("-c")
            .arg("input=$1; shift; printf '%s\\n' \"$input\" | \"$0\" \"$@\"")
            .arg(jitctl_bin())
            .arg(input)
            .args(args);
        let mut run = self.run(cmd);
        run.cmd = format!("[{user}] jitctl {} <<< {input}", shell_words(args));
        run
    }

    /// `jitctl ARGS` as `user`, asserting success, stdout parsed as JSON.
    #[track_caller]
    pub fn jitctl_json(&self, user: &str, args: &[&str]) -> Value {
        let run = self.jitctl(user, args);
        assert_eq!(
            run.code,
            0,
            "expected success:{run}{}",
            self.jitd_log_tail()
        );
        run.json()
    }

    /// `jitctl ARGS` in the background.
    pub fn spawn_jitctl(&self, user: &str, args: &[&str]) -> Background {
        let mut cmd = self.user_command(user, jitctl_bin());
        cmd.args(args);
        let mut bg = Background::spawn(cmd);
        bg.cmd = format!("[{user}] jitctl {}", shell_words(args));
        bg
    }

    /// `jitctl request RESOURCE --for DUR --reason REASON --json` as `user`, asserting success.
    #[track_caller]
    pub fn request(&self, user: &str, resource: &str, dur: &str, reason: &str) -> Value {
        self.jitctl_json(
            user,
            &[
                "request", resource, "--for", dur, "--reason", reason, "--json",
            ],
        )
    }

    /// `jitctl show ID --json` as `user`, asserting success.
    #[track_caller]
    pub fn show(&self, user: &str, id: u64) -> Value {
        self.jitctl_json(user, &["show", &id.to_string(), "--json"])
    }

    /// `jitctl approve ID --json` as `user`.
    pub fn approve(&self, user: &str, id: u64) -> Run {
        self.jitctl(
            user,
            &["approve", &id.to_string(), "--comment", "ok", "--json"],
        )
    }

    /// Polls `vendor show ID` (as root) until the vendor's account is
    /// `host` (none, created, locked, deleted); the vendor document.
    #[track_caller]
    pub fn wait_vendor_host(&self, id: &str, host: &str) -> Value {
        let mut last = Value::Null;
        let found = wait_for(Duration::from_secs(20), || {
            last = self.jitctl_json("root", &["vendor", "show", id, "--json"]);
            (last["host"] == host).then_some(())
        });
        assert!(
            found.is_some(),
            "host never {host}: {last:#}{}",
            self.jitd_log_tail()
        );
        last
    }

    /// Polls `show ID` (as root) until the state is `state`.
    #[track_caller]
    pub fn wait_state(&self, id: u64, state: &str, timeout: Duration) -> Value {
        let mut last = None;
        let found = wait_for(timeout, || {
            let doc = self.show("root", id);
            let hit = state_of(&doc) == state;
            last = Some(doc.clone());
            hit.then_some(doc)
        });
        found.unwrap_or_else(|| {
            panic!(
                "request {id} did not become {state} within {timeout:?}; last: {:#}{}",
                last.unwrap_or(Value::Null),
                self.jitd_log_tail()
            )
        })
    }

    /// Audit events (as root), all of them.
    #[track_caller]
    pub fn audit_events(&self) -> Vec<Value> {
        let v = self.jitctl_json("root", &["audit", "--since", "1day", "--json"]);
        v.as_array()
            .unwrap_or_else(|| panic!("audit --json is not an array: {v:#}"))
            .clone()
    }

    /// Audit events about request `id`.
    pub fn audit_events_for(&self, id: u64) -> Vec<Value> {
        self.audit_events()
            .into_iter()
            .filter(|e| e["request"].as_u64() == Some(id))
            .collect()
    }
}

/// Parses jitd's RFC 3339 UTC timestamps ("2024-05-01T10:00:00Z") into Unix seconds.
pub fn unix_secs(v: &Value) -> i64 {
    let s = v.as_str().unwrap_or_else(|| panic!("not a timestamp: {v}"));
    let t = humantime::parse_rfc3339(s).unwrap_or_else(|e| panic!("not RFC 3339: {s}: {e}"));
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

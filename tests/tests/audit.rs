//! W1.8 audit trail: events are recorded, readable by the right people, and
//! the HMAC chain detects edits and deletions (first, middle, last row).

use jit_tests::*;

fn busy_env() -> Env {
    let env = Env::new();
    let a = id_of(&env.request("alice", "db", "2h", "audit me"));
    env.approve("olivia", a).ok();
    let b = id_of(&env.request("bob", "db", "2h", "deny me"));
    env.jitctl("olivia", &["deny", &b.to_string(), "--comment", "no"])
        .ok();
    let c = id_of(&env.request("alice", "logs", "30m", "auto"));
    env.jitctl("alice", &["revoke", &c.to_string()]).ok();
    env
}

#[track_caller]
fn verify_ok(env: &Env) -> Value {
    let run = env.jitctl("root", &["audit", "verify", "--json"]).ok();
    let v = run.json();
    assert_eq!(v["ok"], true, "{run}");
    assert!(
        v["rows"].as_u64().unwrap_or(0) >= 6,
        "too few audit rows:{run}"
    );
    v
}

#[track_caller]
fn verify_fails(env: &Env, what: &str) {
    let run = env.jitctl("root", &["audit", "verify"]);
    assert_ne!(run.code, 0, "audit verify passed after {what}:{run}");
    let json = env.jitctl("root", &["audit", "verify", "--json"]);
    assert_ne!(
        json.code, 0,
        "audit verify --json passed after {what}:{json}"
    );
    let v = json.json();
    assert_eq!(v["ok"], false, "after {what}:{json}");
    assert!(
        v["problem"].is_string(),
        "no problem named after {what}:{json}"
    );
}

fn rowids(env: &Env) -> Vec<i64> {
    env.sqlite("SELECT rowid FROM audit ORDER BY rowid;")
        .ok()
        .stdout
        .lines()
        .map(|l| l.trim().parse().expect("rowid"))
        .collect()
}

#[test]
fn events_are_recorded_and_scoped() {
    let env = busy_env();
    let events = env.audit_events();
    assert!(events.len() >= 6, "{events:#?}");
    for e in &events {
        for key in [
            "id",
            "at",
            "actor",
            "actor_uid",
            "event",
            "request",
            "detail",
        ] {
            assert!(e.get(key).is_some(), "event without {key}: {e:#}");
        }
    }
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap_or_default())
        .collect();
    for needle in ["request", "approv", "den", "revok"] {
        assert!(
            kinds.iter().any(|k| k.contains(needle)),
            "no '{needle}' event among {kinds:?}"
        );
    }
    // alice sees only events of her own requests.
    let mine: Vec<u64> = env
        .jitctl_json("alice", &["list", "--all", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(id_of)
        .collect();
    let hers = env.jitctl_json("alice", &["audit", "--json"]);
    for e in hers.as_array().unwrap() {
        if let Some(r) = e["request"].as_u64() {
            assert!(
                mine.contains(&r),
                "alice sees an event of request {r}: {e:#}"
            );
        }
    }
    // The auditor and security see everything and may verify; others may not verify.
    let audrey = env.jitctl_json("audrey", &["audit", "--since", "1day", "--json"]);
    assert_eq!(audrey.as_array().unwrap().len(), events.len());
    env.jitctl("audrey", &["audit", "verify"]).ok();
    env.jitctl("sam", &["audit", "verify"]).ok();
    env.jitctl("oscar", &["audit", "verify"]).code(3);
    // Human output works too.
    env.jitctl("root", &["audit"]).ok();
}

#[test]
fn editing_any_column_of_a_row_is_detected() {
    let env = busy_env();
    verify_ok(&env);
    let ids = rowids(&env);
    let target = ids[ids.len() / 2];
    let columns: Vec<(String, bool)> = env
        .sqlite("SELECT name || '|' || pk FROM pragma_table_info('audit');")
        .ok()
        .stdout
        .lines()
        .map(|l| {
            let (name, pk) = l.rsplit_once('|').expect("name|pk");
            (name.to_owned(), pk != "0")
        })
        .collect();
    assert!(
        columns.iter().any(|(c, _)| c == "detail"),
        "audit columns: {columns:?}"
    );
    for (col, pk) in &columns {
        let c = format!("\"{col}\"");
        if *pk {
            // Renumbering a row (its id is the rowid).
            let moved = target + 1_000_003;
            env.sqlite(&format!(
                "UPDATE audit SET {c} = {moved} WHERE rowid = {target};"
            ))
            .ok();
            verify_fails(&env, &format!("renumbering row {target} ({col})"));
            env.sqlite(&format!(
                "UPDATE audit SET {c} = {target} WHERE rowid = {moved};"
            ))
            .ok();
            verify_ok(&env);
            continue;
        }
        let original = env
            .sqlite(&format!(
                "SELECT quote({c}) FROM audit WHERE rowid = {target};"
            ))
            .ok()
            .stdout
            .trim()
            .to_owned();
        // A plausible edit: JSON stays valid JSON, numbers stay numbers.
        env.sqlite(&format!(
            "UPDATE audit SET {c} = CASE \
               WHEN typeof({c}) IN ('integer', 'real') THEN {c} + 1 \
               WHEN typeof({c}) = 'blob' THEN randomblob(max(length({c}), 1)) \
               WHEN typeof({c}) = 'text' AND json_valid({c}) AND json_type({c}) = 'object' \
                 THEN json_set({c}, '$.tampered', 1) \
               WHEN typeof({c}) = 'text' THEN {c} || 'x' \
               ELSE 7 END WHERE rowid = {target};"
        ))
        .ok();
        verify_fails(&env, &format!("editing column {col} of row {target}"));
        env.sqlite(&format!(
            "UPDATE audit SET {c} = {original} WHERE rowid = {target};"
        ))
        .ok();
        verify_ok(&env);
    }
}

#[test]
fn deleting_a_middle_row_is_detected() {
    let env = busy_env();
    verify_ok(&env);
    let ids = rowids(&env);
    env.sqlite(&format!(
        "DELETE FROM audit WHERE rowid = {};",
        ids[ids.len() / 2]
    ))
    .ok();
    verify_fails(&env, "deleting a middle row");
}

#[test]
fn deleting_the_first_row_is_detected() {
    let env = busy_env();
    verify_ok(&env);
    let ids = rowids(&env);
    env.sqlite(&format!("DELETE FROM audit WHERE rowid = {};", ids[0]))
        .ok();
    verify_fails(&env, "deleting the first row");
}

#[test]
fn deleting_the_last_row_is_detected() {
    let env = busy_env();
    verify_ok(&env);
    let ids = rowids(&env);
    env.sqlite(&format!(
        "DELETE FROM audit WHERE rowid = {};",
        ids[ids.len() - 1]
    ))
    .ok();
    verify_fails(&env, "deleting the last row");
}

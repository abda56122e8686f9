//! The standing-privilege scan (docs/design.md, "Standing-privilege scan"):
//! jitd reads the test namespace's own files (overlays of `/etc` and
//! `/root`, polkit's rules directories and `/run` of the test's) with the
//! real cvtsudoers, `sshd -T`, useradd and chpasswd; each kind of standing
//! privilege planted is found, a namespace where the gate covers everyone
//! has none, each scan is stored with its audit event so the trend is a
//! number, and only root, security and auditors may scan.

use std::time::Duration;

use jit_tests::*;

/// [`TEST_CONFIG`] with the polkit gate on (olivia exempt from it), and
/// `extra` after.
fn config(extra: &str) -> String {
    format!(
        "{TEST_CONFIG}\n[polkit]\ngate = true\nresource = \"sudo\"\nexempt = [\"root\", \"olivia\"]\n{extra}"
    )
}

/// A namespace where nothing is standing: sudo and sudo -i gated for all
/// but root and oscar (the tests' stacks), sudoers for the gated group
/// only, alice in `sudo` (gated, and by the polkit gate too), root's
/// password locked, no key of root's, polkit's rules the distribution's
/// admin rule and jit's gate. jitd not started.
fn clean_env(extra: &str) -> Env {
    let env = Env::without_jitd(&config(extra));
    env.private_system_dirs();
    env.private_run();
    for service in ["sudo", "sudo-i"] {
        add_gate(&env, service, true);
    }
    env.ns_sh(
        "rm -f /etc/sudoers.d/* && rm -rf /root/.ssh \
         && printf 'Defaults !lecture\\nroot ALL=(ALL:ALL) ALL\\n%%jit-gated ALL=(ALL:ALL) NOPASSWD: ALL\\n@includedir /etc/sudoers.d\\n' \
            > /etc/sudoers && chmod 0440 /etc/sudoers \
         && (getent group sudo >/dev/null || groupadd sudo) && gpasswd -a alice sudo >/dev/null \
         && usermod -p '*' root",
    );
    let debian_admins =
        "polkit.addAdminRule(function(action, subject) {\n    return [\"unix-group:sudo\"];\n});\n";
    env.install_polkit_rules(&[
        ("20-jit.rules", &jit_rule(&env)),
        ("50-default.rules", debian_admins),
    ]);
    env
}

/// pam_jit's account line in `/etc/pam.d/SERVICE`, before Debian's
/// `@include common-account` (as the README says) or after it.
fn add_gate(env: &Env, service: &str, before: bool) {
    let gate = format!("account required {} {EXEMPT}", env.jit_args("sudo"));
    // sed's command: insert before the line, or append after it.
    let command = if before { "i" } else { "a" };
    env.ns_sh(&format!(
        "sed -i '/^@include common-account/{command} {gate}' /etc/pam.d/{service} \
         && grep -q pam_jit /etc/pam.d/{service}"
    ));
}

/// `jitctl scan --json` as `user`, with its exit status.
fn scan_as(env: &Env, user: &str) -> (i32, Value) {
    let run = env.jitctl(user, &["scan", "--json"]);
    assert!(
        run.code == 0 || run.code == 1,
        "scan failed:{run}{}",
        env.jitd_log_tail()
    );
    (run.code, run.json())
}

/// (kind, who, becomes) of each finding.
fn findings(scan: &Value) -> Vec<(String, String, String)> {
    let list = scan["findings"].as_array().expect("findings");
    list.iter()
        .map(|f| {
            let field = |k: &str| f[k].as_str().unwrap_or_default().to_owned();
            (field("kind"), field("principal"), field("target"))
        })
        .collect()
}

#[test]
fn a_namespace_where_the_gate_covers_everyone_has_no_standing_privilege() {
    let mut env = clean_env("");
    env.start_jitd();
    let (code, scan) = scan_as(&env, "sam");
    assert_eq!(scan["errors"], serde_json::json!([]), "{scan:#}");
    assert_eq!(code, 0);
    assert_eq!(findings(&scan), [], "{scan:#}");
    assert_eq!(scan["total"], 0);
    let human = env.jitctl("sam", &["scan"]).ok();
    assert!(
        human.stdout.contains("No standing privilege found."),
        "{human}"
    );
}

/// pam_jit's line after Debian's `common-account` (where earlier versions
/// of the README put it): pam_unix ends the stack there on an expired
/// password, so every gated sudoer holds standing privilege through sudo -i.
#[test]
fn a_gate_after_common_account_is_found_skipped_on_an_expired_password() {
    let mut env = clean_env("");
    env.ns_sh("sed -i '/pam_jit/d' /etc/pam.d/sudo-i");
    add_gate(&env, "sudo-i", false);
    env.start_jitd();
    let (_, scan) = scan_as(&env, "sam");
    let alice = scan["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "sudoers" && f["principal"] == "alice")
        .unwrap_or_else(|| panic!("alice's sudo -i not reported: {scan:#}"));
    let why = alice["why"].as_str().unwrap();
    assert!(
        why.starts_with("sudo-i: pam_jit at /etc/pam.d/sudo-i:")
            && why.contains("is skipped when the line at /etc/pam.d/common-account:")
            && why.contains("returns new_authtok_reqd (a password that has expired)"),
        "{alice:#}"
    );
}

#[test]
fn each_planted_standing_privilege_is_found_and_the_trend_is_a_number() {
    let mut env = clean_env("");
    let key = env.dir.path().join("rootkey");
    keygen(&key, "ops laptop");
    let fingerprint = key_fingerprint(&key.with_extension("pub"));
    env.ns_sh(&format!(
        // A sudoers file for an ungated user (oscar is exempt), a member
        // of sudo outside the gate, a second root, a key of root's, a
        // password for root with su lacking pam_wheel, a polkit admin the
        // gate exempts, a polkit rule in /run that says YES to oscar before
        // the gate, and one named as the distribution's 50-default.rules
        // (both run) that lets olivia, exempt, in with her own password.
        "printf 'oscar ALL=(ALL) NOPASSWD: ALL\\n' > /etc/sudoers.d/ops && chmod 0440 /etc/sudoers.d/ops \
         && gpasswd -a oscar sudo >/dev/null \
         && useradd -o -u 0 -g 0 -M -N -s /bin/sh toor \
         && mkdir -m 0700 /root/.ssh && cp {pub} /root/.ssh/authorized_keys \
         && printf 'root:Standing-Root-1\\n' | chpasswd \
         && printf '%s\\n' 'polkit.addAdminRule(function(action, subject) {{' \
              '    return [\"unix-user:olivia\"];' '}});' > /etc/polkit-1/rules.d/40-admins.rules \
         && mkdir -p /run/polkit-1/rules.d \
         && printf '%s\\n' 'polkit.addRule(function(action, subject) {{' \
              '    if (subject.user == \"oscar\") {{ return polkit.Result.YES; }}' '}});' \
              > /run/polkit-1/rules.d/10-ops.rules \
         && printf '%s\\n' 'polkit.addRule(function(action, subject) {{' \
              '    if (subject.user == \"olivia\") return polkit.Result.AUTH_SELF_KEEP;' '}});' \
              > /etc/polkit-1/rules.d/50-default.rules",
        pub = key.with_extension("pub").display()
    ));
    env.start_jitd();
    let (_, first) = scan_as(&env, "sam");
    let found = findings(&first);
    let expect = [
        ("sudoers", "oscar", "ALL"),
        ("admin_group", "oscar", "root"),
        ("uid0", "toor", "root"),
        ("root_key", fingerprint.as_str(), "root"),
        ("su_password", "root", "root"),
        ("polkit_admin", "olivia", "root"),
        ("polkit_rule", "oscar", "root"),
        ("polkit_rule", "olivia", "root"),
    ];
    for (kind, who, becomes) in expect {
        assert!(
            found.contains(&(kind.into(), who.into(), becomes.into())),
            "{kind} {who} -> {becomes} not found in {first:#}{}",
            env.jitd_log_tail()
        );
    }
    let ops = first["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "sudoers")
        .unwrap();
    assert_eq!(ops["how"], "/etc/sudoers.d/ops: (ALL) NOPASSWD: ALL");
    assert!(
        ops["why"].as_str().unwrap().contains("oscar is exempt"),
        "{ops:#}"
    );
    let yes = first["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "polkit_rule" && f["principal"] == "oscar")
        .unwrap();
    assert_eq!(
        yes["how"],
        "/run/polkit-1/rules.d/10-ops.rules:2: answers YES (no authentication) to unix-user:oscar"
    );
    let key_line = serde_json::to_string(&first).unwrap();
    assert!(!key_line.contains("AAAAC3"), "the key itself is shown");
    // Nothing gated is reported: alice is in sudo and the polkit admins.
    assert!(!found.iter().any(|f| f.1 == "alice"), "{first:#}");
    let total = first["total"].as_u64().unwrap();
    assert_eq!(total as usize, found.len());
    assert_eq!(
        first["first"]["id"], first["id"],
        "the first scan is its own baseline"
    );

    // Half of it gone: the trend is a number against the first scan.
    env.ns_sh("rm /etc/sudoers.d/ops /root/.ssh/authorized_keys && userdel -f toor");
    let (_, second) = scan_as(&env, "audrey");
    let now = second["total"].as_u64().unwrap();
    assert_eq!(now, total - 3, "{second:#}");
    let change = ((now as f64 - total as f64) * 1000.0 / total as f64).round() / 10.0;
    assert_eq!(second["change_percent"].as_f64(), Some(change));
    let human = env.jitctl("sam", &["scan"]).ok();
    let first_line = human.stdout.lines().next().unwrap_or_default().to_owned();
    assert!(
        first_line.starts_with(&format!(
            "standing privileges now {now}, first scan {total} ("
        )),
        "{human}"
    );
    assert!(
        first_line.ends_with(&format!("change {change}%")),
        "{human}"
    );

    // Each scan is stored, with its audit event in the same transaction.
    let history = env.jitctl_json("sam", &["scan", "--history", "--json"]);
    let totals: Vec<u64> = history["scans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["total"].as_u64().unwrap())
        .collect();
    assert_eq!(totals, [total, now, now]);
    let scanned: Vec<Value> = env
        .audit_events()
        .into_iter()
        .filter(|e| e["event"] == "standing_scanned")
        .collect();
    let audited: Vec<(String, u64)> = scanned
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap().to_owned(),
                e["detail"]["total"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        audited,
        [
            ("sam".into(), total),
            ("audrey".into(), now),
            ("sam".into(), now)
        ]
    );
    assert_eq!(scanned[0]["detail"]["counts"]["root_key"], 1);
    let rows = env.sqlite("SELECT count(*) FROM standing_scans").ok();
    assert_eq!(rows.stdout.trim(), "3");
}

#[test]
fn only_root_security_and_auditors_may_scan_and_jitd_scans_on_its_own() {
    let mut env = clean_env("[scan]\nevery = \"2s\"\n");
    // With no capability beyond the unit's: the scan reads all it needs.
    env.run_jitd_as_the_unit();
    env.start_jitd();
    for args in [&["scan"][..], &["scan", "--history"]] {
        let refused = env.jitctl("alice", args);
        assert_eq!(refused.code, 3, "alice is no auditor:{refused}");
        assert!(
            refused
                .stderr
                .contains("needs the security or auditor role"),
            "{refused}"
        );
    }
    let (_, by_root) = scan_as(&env, "root");
    assert_eq!(by_root["actor"], "root");
    let by_jitd = wait_for(Duration::from_secs(20), || {
        env.audit_events()
            .into_iter()
            .find(|e| e["event"] == "standing_scanned" && e["actor"] == "jitd")
    });
    let by_jitd =
        by_jitd.unwrap_or_else(|| panic!("jitd did not scan on its own:{}", env.jitd_log_tail()));
    assert_eq!(by_jitd["detail"]["total"], 0, "{by_jitd:#}");
    assert_eq!(by_jitd["detail"]["errors"], 0, "{by_jitd:#}");
    assert!(
        !env.audit_events()
            .iter()
            .any(|e| e["event"] == "standing_scanned" && e["actor"] == "alice"),
        "a refused scan is not stored"
    );
}

//! Vendors' network segments (docs/design.md "Network segments") with the
//! real `nft`, in a network namespace of the test's own (jitd's table never
//! reaches the host's): two peers on veth pairs, 10.20.0.0/24 (db-net,
//! port 5432, granted) and 10.30.0.0/24 (other-net, not granted), TCP
//! listeners in them and on loopback; connections made as the vendor's
//! uid and as a user who is not a vendor.

use std::time::Duration;

use jit_tests::*;

const BASE: u32 = 70_500;

fn config() -> String {
    format!(
        "{TEST_CONFIG}\n[vendors]\nsponsors = [\"user:alice\"]\nuid_min = {BASE}\n\
         uid_max = {}\n\n[managers]\nalice = \"mike\"\n\n\
         [[segment]]\nname = \"db-net\"\nnetworks = [\"10.20.0.0/24\"]\nports = [5432]\n\n\
         [[segment]]\nname = \"other-net\"\nnetworks = [\"10.30.0.0/24\"]\n\n\
         [[resource]]\nname = \"vssh\"\nenvironment = \"staging\"\neligible = [\"group:admins\"]\n\
         vendors = true\n",
        BASE + 9
    )
}

/// alice sponsors `name` with `segments` ("" for none); mike and sam
/// approve; the vendor's id once its account is made.
fn vendor(env: &Env, name: &str, segments: &str) -> String {
    let mut args = vec![
        "vendor",
        "request",
        "--vendor",
        "Acme DB Tuning",
        "--name",
        name,
        "--email",
        "jdoe@acme.example",
        "--resources",
        "vssh",
        "--for",
        "2d",
        "--project",
        "PRJ-7",
        "--reason",
        "tune the replica",
        "--json",
    ];
    if !segments.is_empty() {
        args.extend(["--segments", segments]);
    }
    let doc = env.jitctl_json("alice", &args);
    let id = doc["id"].as_u64().expect("vendor id").to_string();
    for approver in ["mike", "sam"] {
        env.jitctl(approver, &["vendor", "approve", &id, "--json"])
            .ok();
    }
    env.wait_vendor_host(&id, "created");
    id
}

/// jit's table as `nft list` shows it; `None` when there is none.
fn table(env: &Env) -> Option<String> {
    let mut cmd = env.ns_command("nft");
    cmd.args(["list", "table", "inet", "jit_vendors"]);
    let run = env.run(cmd);
    (run.code == 0).then_some(run.stdout)
}

/// Waits until jit's table satisfies `ok`; the table.
#[track_caller]
fn wait_table(env: &Env, what: &str, ok: impl Fn(Option<&str>) -> bool) -> Option<String> {
    let mut last = None;
    let found = wait_for(Duration::from_secs(20), || {
        last = table(env);
        ok(last.as_deref()).then_some(())
    });
    assert!(
        found.is_some(),
        "the table never {what}: {last:?}{}",
        env.jitd_log_tail()
    );
    last
}

/// Packets counted by `uid`'s drop rule.
#[track_caller]
fn dropped(env: &Env, uid: u32) -> u64 {
    let table = table(env).expect("jit's table");
    let comment = format!("comment \"jit vendor uid {uid}\"");
    let line = table
        .lines()
        .find(|l| l.contains(&comment))
        .unwrap_or_else(|| panic!("no drop rule for {uid}: {table}"));
    let mut words = line.split_whitespace();
    words.find(|w| *w == "packets");
    words
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no counter: {line}"))
}

/// Whether `uid` has a rule in `table`.
fn has_rules(table: Option<&str>, uid: u32) -> bool {
    table.is_some_and(|t| t.contains(&format!("meta skuid {uid} ")))
}

/// A vendor's connection that failed: dropped (the SYN never leaves, so it
/// times out), not refused by the peer.
#[track_caller]
fn assert_dropped(run: Run) {
    let run = run.fails();
    assert!(
        !run.stderr.contains("refused") && !run.stdout.contains("succeeded"),
        "not dropped by the rules:{run}"
    );
}

#[test]
fn a_vendor_reaches_its_segment_only_and_the_rules_follow_it_from_approval_to_the_end() {
    let mut env = Env::with_own_network(&config());
    env.private_system_dirs();
    // Left by someone: the first pass replaces it (with no vendor yet, the
    // vendors' whole uid range dropped).
    env.ns_sh(
        "ip link set lo up && nft add table inet jit_vendors && \
         nft add chain inet jit_vendors output '{ type filter hook output priority 0; }' && \
         nft add rule inet jit_vendors output meta skuid 12345 drop",
    );
    // With no more than the unit's capabilities: CAP_NET_ADMIN for nft.
    env.run_jitd_as_the_unit();
    env.start_jitd();
    wait_table(&env, "replaced at start", |t| {
        t.is_some_and(|t| !t.contains("12345") && t.contains(&range_rule()))
    });

    let mut db = env.add_peer("vdb", "10.20.0.1/24", "10.20.0.2/24");
    db.listen("10.20.0.2", 5432);
    db.listen("10.20.0.2", 6000);
    let mut other = env.add_peer("voth", "10.30.0.1/24", "10.30.0.2/24");
    other.listen("10.30.0.2", 5432);
    let _local = env.listen("127.0.0.1", 7000);
    let (alice, outsider) = (uid("alice"), BASE + 9);

    let jdoe = vendor(&env, "jdoe", "db-net");
    let gid: u32 = env
        .ns_sh("getent group jit-vendors | cut -d: -f3")
        .stdout
        .trim()
        .parse()
        .expect("the vendors' gid");
    let rules = table(&env).expect("jit's table once a vendor is active");
    assert!(
        rules.contains(&format!(
            "meta skuid {BASE} ip daddr 10.20.0.0/24 meta l4proto {{ tcp, udp }} th dport 5432 accept"
        )),
        "{rules}"
    );
    assert!(!rules.contains("12345"), "{rules}");
    let before = dropped(&env, BASE);

    env.connect_as(BASE, gid, "10.20.0.2", 5432).ok();
    assert_dropped(env.connect_as(BASE, gid, "10.20.0.2", 6000));
    assert_dropped(env.connect_as(BASE, gid, "10.30.0.2", 5432));
    assert_dropped(env.connect_as(BASE, gid, "127.0.0.1", 7000));
    assert_dropped(env.connect_as(BASE, gid, "::1", 7000));
    assert!(dropped(&env, BASE) >= before + 4, "{:?}", table(&env));
    // Not a vendor: unaffected. A uid of the range no vendor has (an
    // account jitd did not make): nothing at all.
    env.connect_as(alice, alice, "10.20.0.2", 6000).ok();
    env.connect_as(alice, alice, "10.30.0.2", 5432).ok();
    env.connect_as(alice, alice, "127.0.0.1", 7000).ok();
    assert_dropped(env.connect_as(outsider, outsider, "10.20.0.2", 5432));

    // No segment: all its egress is dropped. The table is made anew for
    // kdoe; jdoe's count carries over.
    let counted = dropped(&env, BASE);
    let kdoe = vendor(&env, "kdoe", "");
    let nothing = BASE + 1;
    assert!(dropped(&env, BASE) >= counted, "{:?}", table(&env));
    assert_dropped(env.connect_as(nothing, gid, "10.20.0.2", 5432));
    assert!(dropped(&env, nothing) >= 1);

    // The end: jdoe's rules go (its drops counted in the lock's audit);
    // kdoe's stay.
    env.jitctl_json(
        "sam",
        &["vendor", "revoke", &jdoe, "--comment", "done", "--json"],
    );
    env.wait_vendor_host(&jdoe, "locked");
    let rules = wait_table(&env, "lost jdoe's rules", |t| {
        !has_rules(t, BASE) && has_rules(t, nothing)
    });
    assert!(rules.is_some());
    let locked = env
        .audit_events()
        .into_iter()
        .find(|e| e["event"] == "vendor_account_locked")
        .expect("the lock's audit event");
    let counted = locked["detail"]["egress_dropped"].as_u64().unwrap_or(0);
    assert!(counted >= 4, "{locked:#}");

    // Altered by hand while jitd is down: put back at start.
    env.kill_jitd();
    env.ns_sh("nft flush chain inet jit_vendors output");
    env.connect_as(nothing, gid, "10.20.0.2", 5432).ok();
    env.start_jitd();
    wait_table(&env, "came back", |t| has_rules(t, nothing));
    assert_dropped(env.connect_as(nothing, gid, "10.20.0.2", 5432));
    // Removed by hand: the same.
    env.kill_jitd();
    env.ns_sh("nft delete table inet jit_vendors");
    env.start_jitd();
    wait_table(&env, "came back", |t| has_rules(t, nothing));

    // No vendor left: the range is still dropped, so a process an ended
    // vendor left behind sends nothing.
    env.jitctl_json(
        "sam",
        &["vendor", "revoke", &kdoe, "--comment", "done", "--json"],
    );
    wait_table(&env, "only the range with the last vendor gone", |t| {
        !has_rules(t, nothing) && t.is_some_and(|t| t.contains(&range_rule()))
    });
    assert_dropped(env.connect_as(nothing, gid, "10.20.0.2", 5432));
    assert_dropped(env.connect_as(BASE, gid, "10.20.0.2", 5432));
}

/// The rule that drops every uid of the vendors' range no rule let through.
fn range_rule() -> String {
    format!("meta skuid {BASE}-{}", BASE + 9)
}

#[test]
fn the_failure_to_apply_the_rules_is_audited_and_no_account_is_made_without_them() {
    let mut env = Env::with_own_network(&config());
    env.private_system_dirs();
    // nft is there but cannot run: no account may be made without rules.
    env.ns_sh("mount --bind /bin/false /usr/sbin/nft");
    env.start_jitd();
    let doc = env.jitctl_json(
        "alice",
        &[
            "vendor",
            "request",
            "--vendor",
            "Acme",
            "--name",
            "ldoe",
            "--email",
            "l@acme.example",
            "--resources",
            "vssh",
            "--segments",
            "db-net",
            "--for",
            "1d",
            "--project",
            "P",
            "--reason",
            "tune the replica",
            "--json",
        ],
    );
    let id = doc["id"].as_u64().expect("id").to_string();
    for approver in ["mike", "sam"] {
        env.jitctl(approver, &["vendor", "approve", &id, "--json"])
            .ok();
    }
    let failed = wait_for(Duration::from_secs(10), || {
        env.audit_events()
            .into_iter()
            .find(|e| e["event"] == "vendor_segments_failed")
    });
    assert!(failed.is_some(), "{}", env.jitd_log_tail());
    std::thread::sleep(Duration::from_secs(1));
    let shown = env.jitctl_json("root", &["vendor", "show", &id, "--json"]);
    assert_eq!(shown["host"], "none", "{shown:#}");
    assert_eq!(
        env.ns_sh("getent passwd v-ldoe || true").stdout.trim(),
        "",
        "made without its rules"
    );
}

#[test]
fn a_vendor_holds_no_grant_while_its_rules_are_not_in_place() {
    let mut env = Env::with_own_network(&config());
    env.private_system_dirs();
    env.ns_sh("ip link set lo up");
    env.start_jitd();
    vendor(&env, "jdoe", "db-net");
    assert!(env.holds_grant(BASE, "vssh"));
    // A restart whose rules cannot be applied (a reboot without nftables,
    // say): the vendor's grant is held back, not let through unfiltered.
    env.kill_jitd();
    env.ns_sh("mount --bind /bin/false /usr/sbin/nft");
    env.start_jitd();
    let failed = wait_for(Duration::from_secs(10), || {
        env.audit_events()
            .into_iter()
            .find(|e| e["event"] == "vendor_segments_failed")
    });
    assert!(failed.is_some(), "{}", env.jitd_log_tail());
    assert!(
        !env.holds_grant(BASE, "vssh"),
        "a vendor let in without its rules"
    );
    // Once they are in place again, so is the grant.
    env.kill_jitd();
    env.ns_sh("umount /usr/sbin/nft");
    env.start_jitd();
    let back = wait_for(Duration::from_secs(10), || {
        env.holds_grant(BASE, "vssh").then_some(())
    });
    assert!(back.is_some(), "{}", env.jitd_log_tail());
}

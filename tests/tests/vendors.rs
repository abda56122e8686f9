//! Sponsored vendor accounts (W4, docs/design.md "Vendor accounts") with
//! real shadow-utils in the test's namespace (overlays of `/etc`, `/home`,
//! `/var/mail` and `/var/spool`: nothing reaches the host): the request,
//! the sponsor's manager and security approving, the account made, locked
//! at revocation and deleted after the retention, its uid never given
//! again; an account jitd did not make reported; a `kill -9` of jitd in
//! the middle of making one.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::Duration;

use jit_tests::*;
use serde_json::Value;

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJJoh7aFHdlOQw3F4ncOqGBGZVJfam3fUsQBinqqlwNT jdoe@laptop";

/// [`TEST_CONFIG`] with vendors: alice sponsors, mike is her manager, the
/// uids from `base` (each test its own: `/proc` is the host's, and a
/// vendor's processes are ended by uid).
fn config(base: u32, retention: &str) -> String {
    format!(
        "{TEST_CONFIG}\n[vendors]\nsponsors = [\"user:alice\", \"user:bob\"]\nuid_min = {base}\n\
         uid_max = {}\nretention = \"{retention}\"\n\n[managers]\nalice = \"mike\"\n\n\
         [[segment]]\nname = \"db-net\"\nnetworks = [\"10.20.0.0/24\"]\nports = [5432]\n\n\
         [[resource]]\nname = \"vssh\"\nenvironment = \"staging\"\neligible = [\"group:admins\"]\n\
         vendors = true\n",
        base + 9
    )
}

/// Namespace with its own system directories and network (jitd's
/// nftables rules for vendors stay in it), jitd started.
fn env(base: u32, retention: &str) -> Env {
    env_with(base, retention, true)
}

/// [`env`]; `as_the_unit`: jitd with no more than its unit's capabilities
/// and `/proc` (in a mount namespace of its own, which mounts the test
/// makes later do not reach: the tests that stall a tool run it plainly).
fn env_with(base: u32, retention: &str, as_the_unit: bool) -> Env {
    let mut env = Env::with_own_network(&config(base, retention));
    env.private_system_dirs();
    if as_the_unit {
        env.run_jitd_as_the_unit();
    }
    env.start_jitd();
    env
}

/// alice sponsors jdoe of Acme for vssh; the vendor document.
fn sponsor(env: &Env, name: &str) -> Value {
    let key = env.dir.path().join(format!("{name}.pub"));
    std::fs::write(&key, format!("{KEY}\n")).expect("key file");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("mode");
    let key = key.display().to_string();
    env.jitctl_json(
        "alice",
        &[
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
            "--segments",
            "db-net",
            "--for",
            "2d",
            "--project",
            "PRJ-7",
            "--reason",
            "tune the replica",
            "--key",
            &key,
            "--json",
        ],
    )
}

fn vendor_id(doc: &Value) -> String {
    doc["id"].as_u64().expect("vendor id").to_string()
}

fn approve(env: &Env, user: &str, id: &str) -> Run {
    env.jitctl(user, &["vendor", "approve", id, "--json"])
}

fn passwd_line(env: &Env, account: &str) -> String {
    env.ns_sh(&format!("getent passwd {account} || true"))
        .stdout
        .trim()
        .to_owned()
}

fn shadow_fields(env: &Env, account: &str) -> Vec<String> {
    let line = env
        .ns_sh(&format!("grep '^{account}:' /etc/shadow || true"))
        .stdout;
    line.trim().split(':').map(str::to_owned).collect()
}

fn events(env: &Env) -> Vec<String> {
    env.audit_events()
        .into_iter()
        .filter_map(|e| e["event"].as_str().map(str::to_owned))
        .filter(|e| e.starts_with("vendor_"))
        .collect()
}

#[test]
fn a_sponsored_vendor_lives_from_two_approvals_to_deletion_and_its_uid_is_not_given_again() {
    let base = 70_100;
    let env = env(base, "3s");
    let doc = sponsor(&env, "jdoe");
    let id = vendor_id(&doc);
    assert_eq!(doc["state"], "pending", "{doc:#}");
    assert_eq!(doc["account"], "v-jdoe");
    assert_eq!(doc["manager"], "mike");
    assert_eq!(doc["awaiting"], serde_json::json!(["manager", "security"]));
    assert!(
        doc["key"]
            .as_str()
            .unwrap_or_default()
            .starts_with("SHA256:"),
        "{doc:#}"
    );

    // Not the sponsor nor an outsider; maria manages, but not alice: she
    // approves as security only, and once.
    approve(&env, "alice", &id).code(3);
    approve(&env, "oscar", &id).code(3);
    let half = approve(&env, "maria", &id).ok().json();
    assert_eq!(half["awaiting"], serde_json::json!(["manager"]), "{half:#}");
    approve(&env, "maria", &id).code(6);
    approve(&env, "sam", &id).code(3);
    let done = approve(&env, "mike", &id).ok().json();
    assert_eq!(done["state"], "active", "{done:#}");
    assert_eq!(done["uid"], base);

    let made = env.wait_vendor_host(&id, "created");
    let passwd = passwd_line(&env, "v-jdoe");
    let fields: Vec<&str> = passwd.split(':').collect();
    assert_eq!(fields[2], base.to_string(), "{passwd}");
    assert_eq!(fields[5], "/home/v-jdoe", "{passwd}");
    assert_eq!(fields[6], "/usr/libexec/jit/jit-session", "{passwd}");
    assert!(fields[4].contains("Acme DB Tuning"), "{passwd}");
    let shadow = shadow_fields(&env, "v-jdoe");
    assert!(
        shadow[1].starts_with('!'),
        "no password to log in with: {shadow:?}"
    );
    // chage -E: the day after the access ends.
    let ends = unix_secs(&made["expires_at"]);
    assert_eq!(shadow[7], (ends / 86_400 + 1).to_string(), "{shadow:?}");
    let key = env.ns_path("/etc/ssh/authorized_keys/v-jdoe");
    let meta = std::fs::metadata(&key).expect("the key file");
    assert_eq!((meta.uid(), meta.mode() & 0o777), (0, 0o644));
    let line = std::fs::read_to_string(&key).expect("key");
    assert_eq!(
        line,
        "restrict ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJJoh7aFHdlOQw3F4ncOqGBGZVJfam3fUsQBinqqlwNT\n"
    );
    assert!(env.holds_grant(base, "vssh"));
    // No cron or at jobs: they would run outside the recorder.
    // (at is root's alone where neither at.allow nor at.deny exists.)
    for deny in ["/etc/cron.deny", "/etc/at.deny"] {
        let listed = env.ns_sh(&format!("cat {deny} 2>/dev/null || true")).stdout;
        let open = deny.contains("cron") || env.ns_path(deny).exists();
        assert!(
            !open || listed.lines().any(|l| l == "v-jdoe"),
            "{deny}: {listed}"
        );
    }

    // What the vendor leaves behind, for the deletion to purge.
    env.ns_sh(&format!(
        "install -o {base} /dev/null /tmp/left-by-vendor && \
         mkdir -p /var/spool/cron/crontabs && install -o {base} /dev/null /var/spool/cron/crontabs/v-jdoe && \
         install -o {base} -m 600 /dev/null /home/v-jdoe/notes.txt"
    ))
    .ok();

    let revoked = env.jitctl_json(
        "sam",
        &["vendor", "revoke", &id, "--comment", "done", "--json"],
    );
    assert_eq!(revoked["state"], "revoked");
    assert!(!env.holds_grant(base, "vssh"));
    env.wait_vendor_host(&id, "locked");
    let shadow = shadow_fields(&env, "v-jdoe");
    assert!(shadow[1].starts_with('!'), "{shadow:?}");
    assert_eq!(shadow[7], "1", "expired since 1970-01-02: {shadow:?}");
    assert!(!key.exists(), "the key is removed at the end");

    // Retention 3 s: deleted, its home archived root-only, its leftovers gone.
    let deleted = env.wait_vendor_host(&id, "deleted");
    assert_eq!(passwd_line(&env, "v-jdoe"), "", "{deleted:#}");
    let archive = env
        .state_dir
        .join(format!("vendor-homes/v-jdoe-{id}.tar.gz"));
    let meta = std::fs::metadata(&archive).expect("the archived home");
    assert_eq!(meta.mode() & 0o777, 0o600);
    let listed = env.ns_sh(&format!("tar -tzf {}", archive.display())).ok();
    assert!(listed.stdout.contains("v-jdoe/notes.txt"), "{listed}");
    for deny in ["/etc/cron.deny", "/etc/at.deny"] {
        let listed = env.ns_sh(&format!("cat {deny} 2>/dev/null || true")).stdout;
        assert!(!listed.lines().any(|l| l == "v-jdoe"), "{deny}: {listed}");
    }
    for gone in [
        "/tmp/left-by-vendor",
        "/var/spool/cron/crontabs/v-jdoe",
        "/home/v-jdoe",
    ] {
        let left = env.ns_sh(&format!("ls -la {gone} 2>&1 || true")).stdout;
        assert!(
            !env.ns_path(gone).exists(),
            "{gone} is left: {left}{}",
            env.jitd_log_tail()
        );
    }
    // The trail is kept.
    assert_eq!(
        events(&env),
        [
            "vendor_requested",
            "vendor_approved",
            "vendor_approved",
            "vendor_activated",
            "vendor_account_created",
            "vendor_revoked",
            "vendor_account_locked",
            "vendor_account_deleted",
        ]
    );

    // The name may come back; the uid does not.
    let again = sponsor(&env, "jdoe");
    let again_id = vendor_id(&again);
    approve(&env, "mike", &again_id).ok();
    let active = approve(&env, "sam", &again_id).ok().json();
    assert_eq!(active["uid"], base + 1, "{active:#}");
}

#[test]
fn vendor_requests_are_checked_and_vendors_ask_for_nothing_themselves() {
    let base = 70_200;
    let env = env(base, "30d");
    let ask = |args: &[&str]| {
        let mut all = vec![
            "vendor",
            "request",
            "--vendor",
            "Acme",
            "--email",
            "x@acme.example",
            "--for",
            "1d",
            "--project",
            "P",
            "--reason",
            "r",
        ];
        all.extend_from_slice(args);
        env.jitctl("alice", &all)
    };
    ask(&["--name", "Bad:Name", "--resources", "vssh"]).code(2);
    ask(&["--name", "ok", "--resources", "sudo"]).code(2);
    ask(&[
        "--name",
        "ok",
        "--resources",
        "vssh",
        "--segments",
        "office",
    ])
    .code(2);
    // Not a sponsor.
    env.jitctl(
        "oscar",
        &[
            "vendor",
            "request",
            "--vendor",
            "Acme",
            "--name",
            "x",
            "--email",
            "x@acme.example",
            "--resources",
            "vssh",
            "--for",
            "1d",
            "--project",
            "P",
            "--reason",
            "r",
        ],
    )
    .code(3);
    // bob has no manager in [managers]: the manager role approves instead.
    let doc = env.jitctl_json(
        "bob",
        &[
            "vendor",
            "request",
            "--vendor",
            "Acme",
            "--name",
            "kim",
            "--email",
            "k@acme.example",
            "--resources",
            "vssh",
            "--for",
            "1d",
            "--project",
            "P",
            "--reason",
            "r",
            "--json",
        ],
    );
    assert_eq!(doc["manager_known"], false, "{doc:#}");
    let id = vendor_id(&doc);
    approve(&env, "maria", &id).ok();
    // maria holds security too, but one person fills one role.
    approve(&env, "maria", &id).code(6);
    approve(&env, "sam", &id).ok();
    env.wait_vendor_host(&id, "created");
    // The vendor's account asks for nothing, not even what it holds.
    let mut as_vendor = env.ns_command("setpriv");
    as_vendor
        .args(["--reuid", &base.to_string(), "--regid", &base.to_string()])
        .args(["--clear-groups", "env"])
        .arg(format!("DBUS_SYSTEM_BUS_ADDRESS={}", env.address()))
        .arg(jitctl_bin())
        .args(["request", "vssh", "--for", "1h", "--reason", "x"]);
    let request = env.run(as_vendor);
    assert_eq!(request.code, 3, "{request}");
    assert!(request.stderr.contains("not eligible"), "{request}");
}

#[test]
fn an_account_of_the_vendors_prefix_that_jitd_did_not_make_is_reported() {
    let base = 70_300;
    let mut env = Env::without_jitd(&config(base, "30d"));
    env.private_system_dirs();
    env.ns_sh("useradd --no-create-home v-rogue").ok();
    env.ns_sh(&format!(
        "useradd --no-create-home --uid {} quiet",
        base + 5
    ))
    .ok();
    env.start_jitd();
    let found = wait_for(Duration::from_secs(10), || {
        let unknown: Vec<String> = env
            .audit_events()
            .into_iter()
            .filter(|e| e["event"] == "vendor_account_unknown")
            .filter_map(|e| e["detail"]["account"].as_str().map(str::to_owned))
            .collect();
        (unknown.len() == 2).then_some(unknown)
    });
    let mut unknown = found.unwrap_or_else(|| panic!("not reported:{}", env.jitd_log_tail()));
    unknown.sort();
    assert_eq!(unknown, ["quiet", "v-rogue"]);
}

#[test]
fn a_kill_9_while_the_account_is_being_made_is_finished_at_start() {
    let base = 70_400;
    let mut env = env_with(base, "30d", false);
    // chage stalls: useradd has run, the expiry and the key are not there
    // yet, nothing is recorded.
    let started = env.stall_tool("/usr/bin/chage", 30);
    let id = vendor_id(&sponsor(&env, "jdoe"));
    approve(&env, "mike", &id).ok();
    approve(&env, "sam", &id).ok();
    env.wait_started(&started);
    env.kill_jitd();
    assert!(
        passwd_line(&env, "v-jdoe").starts_with("v-jdoe:"),
        "useradd ran"
    );
    env.restore_tool("/usr/bin/chage");
    env.start_jitd();
    let made = env.wait_vendor_host(&id, "created");
    let shadow = shadow_fields(&env, "v-jdoe");
    let ends = unix_secs(&made["expires_at"]);
    assert_eq!(shadow[7], (ends / 86_400 + 1).to_string(), "{shadow:?}");
    assert!(env.ns_path("/etc/ssh/authorized_keys/v-jdoe").exists());
    let created = env
        .audit_events()
        .into_iter()
        .find(|e| e["event"] == "vendor_account_created")
        .expect("created");
    assert_eq!(created["detail"]["adopted"], true, "{created:#}");
}

#[test]
fn a_kill_9_while_locking_or_deleting_is_finished_at_start() {
    let base = 70_700;
    let mut env = env_with(base, "2s", false);
    let id = vendor_id(&sponsor(&env, "jdoe"));
    approve(&env, "mike", &id).ok();
    approve(&env, "sam", &id).ok();
    env.wait_vendor_host(&id, "created");

    // Killed while usermod locks the account.
    let started = env.stall_tool("/usr/sbin/usermod", 30);
    env.jitctl("sam", &["vendor", "revoke", &id]).ok();
    env.wait_started(&started);
    env.kill_jitd();
    env.restore_tool("/usr/sbin/usermod");
    // Killed while userdel deletes it, after the retention.
    let started = env.stall_tool("/usr/sbin/userdel", 30);
    env.start_jitd();
    env.wait_vendor_host(&id, "locked");
    let shadow = shadow_fields(&env, "v-jdoe");
    assert!(shadow[1].starts_with('!') && shadow[7] == "1", "{shadow:?}");
    env.wait_started(&started);
    env.kill_jitd();
    env.restore_tool("/usr/sbin/userdel");
    assert!(
        passwd_line(&env, "v-jdoe").starts_with("v-jdoe:"),
        "not deleted yet"
    );
    env.start_jitd();
    env.wait_vendor_host(&id, "deleted");
    assert_eq!(passwd_line(&env, "v-jdoe"), "");
    let archive = env
        .state_dir
        .join(format!("vendor-homes/v-jdoe-{id}.tar.gz"));
    assert!(archive.exists(), "the archive made before the kill is kept");
}

//! The edge on a planted tree: sudoers through the real cvtsudoers (its
//! relative `@includedir` under the tree), PAM stacks, `/etc/shadow`,
//! root's keys and polkit's rules, all under the tree's root; the
//! account database is the host's (NSS).

use std::fs;
use std::path::Path;

use super::*;
use crate::core::standing::{scan, Kind};

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEyf0tOGKa4YIyk5aefbyu2sRfK8zpy/mQjzC4u5bRYX";

fn plant(root: &Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let path = root.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
}

#[test]
fn a_planted_tree_is_read_with_sudos_own_tooling() {
    if !Path::new(sudoers::CVTSUDOERS).exists() {
        eprintln!("skipped: {} is not installed", sudoers::CVTSUDOERS);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    plant(
        dir.path(),
        &[
            (
                "etc/sudoers",
                "Defaults !lecture\nroot ALL=(ALL) ALL\ndaemon ALL=(ALL) NOPASSWD: ALL\n\
                 @includedir sudoers.d\n",
            ),
            ("etc/sudoers.d/ops", "nobody ALL=(postgres) /usr/bin/psql\n"),
            ("etc/sudoers.d/left.out", "bin ALL=(ALL) ALL\n"),
            ("etc/pam.d/sudo", "account required pam_permit.so\n"),
            ("etc/pam.d/other", "account required pam_permit.so\n"),
            ("etc/pam.d/su", "auth sufficient pam_rootok.so\nauth required pam_unix.so\n"),
            ("etc/shadow", "root:$6$salt$hash:19000::::::\ndaemon:*:19000::::::\n"),
            ("root/.ssh/authorized_keys", &format!("{KEY} someone\n")),
            ("etc/ssh/sshd_config", "PermitRootLogin prohibit-password\nUsePAM yes\n"),
            (
                "etc/polkit-1/rules.d/40-admins.rules",
                "polkit.addAdminRule(function(action, subject) {\n  return [\"unix-user:daemon\"];\n});\n",
            ),
            ("usr/share/polkit-1/rules.d/20-jit.rules", "// the gate\n"),
            (
                "etc/polkit-1/localauthority.conf.d/50-local.conf",
                "[Configuration]\nAdminIdentities=unix-user:bin\n",
            ),
        ],
    );
    let inputs = Inputs {
        polkit: PolkitConfig::default(),
        managed: vec!["root".into()],
    };
    let gathered = gather(&Host::at(dir.path()), &inputs);
    assert_eq!(gathered.managed_fields.len(), 1);
    assert_eq!(gathered.managed_fields[0].1.expose(), "$6$salt$hash");
    let facts = gathered.facts;
    let sudo = facts.sudo.as_ref().expect("cvtsudoers read the tree");
    assert_eq!(sudo.policy.specs.len(), 3, "{:?}", sudo.policy.specs);
    assert!(facts.polkit.rule_installed);
    let report = scan(&facts);
    let of = |kind: Kind| -> Vec<(String, String, String)> {
        report
            .findings
            .iter()
            .filter(|f| f.kind == kind)
            .map(|f| (f.principal.clone(), f.target.clone(), f.how.clone()))
            .collect()
    };
    assert_eq!(
        of(Kind::Sudoers),
        [
            (
                "daemon".to_owned(),
                "ALL".to_owned(),
                "/etc/sudoers: (ALL) NOPASSWD: ALL".to_owned()
            ),
            (
                "nobody".to_owned(),
                "postgres".to_owned(),
                "/etc/sudoers.d/ops: (postgres) /usr/bin/psql".to_owned()
            ),
        ]
    );
    // sshd -T answers where its privilege separation directory exists;
    // elsewhere OpenSSH's defaults are assumed, and said.
    assert!(
        report.errors.iter().all(|e| e.starts_with("sshd: ")),
        "{:?}",
        report.errors
    );
    let keys = of(Kind::RootKey);
    assert_eq!(keys.len(), 1, "{:?}", report);
    assert!(keys[0].0.starts_with("SHA256:"), "{keys:?}");
    assert!(keys[0]
        .2
        .starts_with("/root/.ssh/authorized_keys:1 ssh-ed25519"));
    let su = of(Kind::SuPassword);
    assert_eq!(
        su.len(),
        1,
        "one password, through su and su-l (other): {su:?}"
    );
    let admins: Vec<String> = of(Kind::PolkitAdmin).into_iter().map(|f| f.0).collect();
    assert_eq!(admins, ["bin", "daemon"]);
}

#[test]
fn a_pam_file_is_read_as_bytes_and_one_that_cannot_be_read_gates_nobody() {
    let dir = tempfile::tempdir().unwrap();
    let latin1 = dir.path().join("sudo");
    let mut bytes = b"# caf\xe9\n".to_vec();
    bytes.extend_from_slice(b"account sufficient pam_permit.so\n");
    fs::write(&latin1, bytes).unwrap();
    let read = read_pam(&latin1).unwrap();
    assert!(read.contains("account sufficient pam_permit.so"), "{read}");
    // A directory where the file should be: there, and unreadable.
    let unreadable = dir.path().join("other");
    fs::create_dir(&unreadable).unwrap();
    assert_eq!(read_pam(&unreadable), Some(String::new()));
    assert_eq!(read_pam(&dir.path().join("missing")), None);
}

#[test]
fn every_rules_directory_is_read_in_polkitds_order_and_same_names_all_count() {
    let dir = tempfile::tempdir().unwrap();
    let admin = |user: &str| {
        format!("polkit.addAdminRule(function(action, subject) {{\n  return [\"unix-user:{user}\"];\n}});\n")
    };
    plant(
        dir.path(),
        &[
            ("run/polkit-1/rules.d/10-run.rules", &admin("bin")),
            (
                "usr/local/share/polkit-1/rules.d/15-local.rules",
                &admin("sys"),
            ),
            // The same name twice: both run, /etc's first.
            ("usr/share/polkit-1/rules.d/60-site.rules", &admin("bin")),
            ("etc/polkit-1/rules.d/60-site.rules", &admin("daemon")),
        ],
    );
    let facts = polkit_facts(&Host::at(dir.path()), &PolkitConfig::default());
    assert_eq!(facts.errors, Vec::<String>::new());
    let read: Vec<(&str, &str)> = facts
        .identities
        .iter()
        .map(|(file, i)| (file.as_str(), i.identity.as_str()))
        .collect();
    assert_eq!(
        read,
        [
            ("/run/polkit-1/rules.d/10-run.rules", "unix-user:bin"),
            (
                "/usr/local/share/polkit-1/rules.d/15-local.rules",
                "unix-user:sys"
            ),
            ("/etc/polkit-1/rules.d/60-site.rules", "unix-user:daemon"),
            ("/usr/share/polkit-1/rules.d/60-site.rules", "unix-user:bin"),
        ]
    );
}

#[test]
fn rules_that_need_no_admin_are_found_in_every_directory_before_the_gate_or_for_the_exempt() {
    let dir = tempfile::tempdir().unwrap();
    let yes_to = |user: &str| {
        format!(
            "polkit.addRule(function(action, subject) {{\n  if (subject.user == \"{user}\") return polkit.Result.YES;\n}});\n"
        )
    };
    let to_anyone =
        "polkit.addRule(function(action, subject) {\n  return polkit.Result.AUTH_SELF;\n});\n";
    plant(
        dir.path(),
        &[
            (
                "usr/share/polkit-1/rules.d/20-jit.rules",
                include_str!("../../../packaging/polkit/20-jit.rules"),
            ),
            ("run/polkit-1/rules.d/10-run.rules", &yes_to("bin")),
            ("usr/local/share/polkit-1/rules.d/15-local.rules", to_anyone),
            // The same name twice: both run, /etc's first.
            ("usr/share/polkit-1/rules.d/60-site.rules", &yes_to("bin")),
            ("etc/polkit-1/rules.d/60-site.rules", &yes_to("daemon")),
        ],
    );
    let config = PolkitConfig {
        gate: true,
        exempt: vec!["root".into(), "daemon".into()],
        ..PolkitConfig::default()
    };
    let facts = polkit_facts(&Host::at(dir.path()), &config);
    assert!(facts.rule_installed);
    assert_eq!(facts.errors, Vec::<String>::new());
    let read: Vec<(&str, bool)> = facts
        .grants
        .iter()
        .map(|g| (g.file.as_str(), g.before_gate))
        .collect();
    assert_eq!(
        read,
        [
            ("/run/polkit-1/rules.d/10-run.rules", true),
            ("/usr/local/share/polkit-1/rules.d/15-local.rules", true),
            ("/etc/polkit-1/rules.d/60-site.rules", false),
            ("/usr/share/polkit-1/rules.d/60-site.rules", false),
        ]
    );

    let inputs = Inputs {
        polkit: config,
        managed: Vec::new(),
    };
    let report = scan(&gather(&Host::at(dir.path()), &inputs).facts);
    let rules: Vec<(String, String)> = report
        .findings
        .iter()
        .filter(|f| f.kind == Kind::PolkitRule)
        .map(|f| (f.principal.clone(), f.how.clone()))
        .collect();
    // bin's rule before the gate, anyone's AUTH_SELF before it, and
    // daemon's after it (daemon is exempt); bin's after it is gated.
    assert_eq!(
        rules,
        [
            (
                "bin".to_owned(),
                "/run/polkit-1/rules.d/10-run.rules:2: answers YES (no authentication) to unix-user:bin"
                    .to_owned()
            ),
            (
                "daemon".to_owned(),
                "/etc/polkit-1/rules.d/60-site.rules:2: answers YES (no authentication) to unix-user:daemon"
                    .to_owned()
            ),
            (
                crate::core::standing::UNNAMED.to_owned(),
                "/usr/local/share/polkit-1/rules.d/15-local.rules:2: answers AUTH_SELF (the user's \
                 own password, no administrator's) to subjects the scan cannot name"
                    .to_owned()
            ),
        ]
    );
}

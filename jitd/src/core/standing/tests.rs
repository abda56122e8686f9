//! Every kind of standing privilege, and every reason one is not.

use serde_json::{json, Value};

use super::*;
use crate::core::pam_stack::{account_gate, walk};

/// pam_jit's account line as the README documents it, with oscar exempt.
const GATED: &str = "account required pam_jit.so resource=sudo exempt=root,oscar\n";
const UNGATED: &str = "account required pam_permit.so\n";

/// The stack of every named service in `stacks`; others have none.
fn read(stacks: Vec<(&'static str, String)>) -> impl Fn(&str) -> Option<String> {
    move |name: &str| {
        stacks
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| t.clone())
    }
}

fn gates(sudo: &str, sudo_i: &str) -> Vec<AccountGate> {
    let read = read(vec![("sudo", sudo.into()), ("sudo-i", sudo_i.into())]);
    vec![account_gate("sudo", &read), account_gate("sudo-i", &read)]
}

fn su_stack(service: &'static str, text: &str) -> SuStack {
    let read = read(vec![(service, text.to_owned())]);
    SuStack {
        gate: account_gate(service, &read),
        auth: walk(service, "auth", &read),
    }
}

/// A list entry as cvtsudoers writes it, from sudoers' own spelling:
/// `%group`, `#uid`, `+netgroup`, `ALIAS`, `!` in front to negate.
fn entry(text: &str, kind: &str) -> Value {
    let (negated, text) = match text.strip_prefix('!') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let mut object = match text {
        t if t.starts_with('%') => json!({"usergroup": &t[1..]}),
        t if t.starts_with('#') => json!({"userid": t[1..].parse::<u32>().unwrap()}),
        t if t.starts_with('+') => json!({"netgroup": &t[1..]}),
        t if t != "ALL" && t.chars().all(|c| c.is_ascii_uppercase()) => {
            json!({ format!("{kind}alias"): t })
        }
        t if t.starts_with('/') || kind == "cmnd" => json!({"command": t}),
        t if kind == "host" => json!({"hostname": t}),
        t => json!({"username": t}),
    };
    if negated {
        object["negated"] = json!(true);
    }
    object
}

fn list(items: &[&str], kind: &str) -> Value {
    Value::Array(items.iter().map(|i| entry(i, kind)).collect())
}

/// `USERS HOSTS = (RUNAS) [NOPASSWD:] CMNDS` as cvtsudoers' JSON; `runas`
/// `None`: no run-as list.
fn spec(
    users: &[&str],
    hosts: &[&str],
    runas: Option<&[&str]>,
    cmnds: &[&str],
    nopasswd: bool,
) -> Value {
    let mut cmnd = json!({"Commands": list(cmnds, "cmnd")});
    if let Some(runas) = runas {
        cmnd["runasusers"] = list(runas, "runas");
    }
    if nopasswd {
        cmnd["Options"] = json!([{"authenticate": false}]);
    }
    json!({"User_List": list(users, "user"), "Host_List": list(hosts, "host"), "Cmnd_Specs": [cmnd]})
}

fn rule(users: &[&str], runas: &[&str], cmnds: &[&str]) -> Value {
    spec(users, &["ALL"], Some(runas), cmnds, false)
}

/// `Defaults[binding] option` (`!option` for false); `runas`: a `>` binding.
fn defaults(binding: &[&str], option: &str, kind: &str) -> Value {
    let (name, value) = match option.strip_prefix('!') {
        Some(name) => (name, json!(false)),
        None => (option, json!(true)),
    };
    let mut entry = json!({"Options": [{ name: value }]});
    if !binding.is_empty() {
        entry["Binding"] = list(binding, kind);
    }
    entry
}

struct Sudoers {
    defaults: Vec<Value>,
    runas_defaults: Vec<Value>,
    specs: Vec<Value>,
    aliases: Value,
}

impl Sudoers {
    fn new(specs: Vec<Value>) -> Sudoers {
        Sudoers {
            defaults: Vec::new(),
            runas_defaults: Vec::new(),
            specs,
            aliases: json!({}),
        }
    }

    fn facts(self) -> SudoFacts {
        let mut main = json!({"Defaults": self.defaults, "User_Specs": self.specs});
        if let Value::Object(aliases) = self.aliases {
            for (k, v) in aliases {
                main[k] = v;
            }
        }
        let runas = json!({"Defaults": self.runas_defaults});
        let policy = sudo::parse(&main.to_string(), &runas.to_string()).unwrap();
        let sources = vec![Some("/etc/sudoers.d/test".to_owned()); policy.specs.len()];
        SudoFacts { policy, sources }
    }
}

fn account(name: &str, uid: u32, gid: u32) -> Account {
    Account {
        name: name.into(),
        uid,
        gid,
    }
}

fn group(name: &str, gid: u32, members: &[&str]) -> Group {
    Group {
        name: name.into(),
        gid,
        members: members.iter().map(|m| (*m).to_owned()).collect(),
    }
}

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEyf0tOGKa4YIyk5aefbyu2sRfK8zpy/mQjzC4u5bRYX";

/// A host where nothing is standing: sudo gated, su without root's
/// password, no root keys, the polkit gate on. alice and bob are gated
/// admins (bob by his primary group, staff), oscar is exempt, carol has
/// nothing.
fn clean() -> Facts {
    Facts {
        host_names: vec!["web1".into(), "web1.example.com".into()],
        host_addresses: vec!["10.1.2.3".parse().unwrap()],
        accounts: vec![
            account("root", 0, 0),
            account("alice", 1001, 1001),
            account("bob", 1002, 50),
            account("oscar", 1003, 1003),
            account("carol", 1004, 1004),
        ],
        groups: vec![
            group("root", 0, &[]),
            group("sudo", 27, &["alice"]),
            group("staff", 50, &["carol"]),
            group("admins", 60, &["alice", "oscar"]),
        ],
        netgroups: BTreeMap::new(),
        passwords: Ok([
            ("root", Password::Locked),
            ("alice", Password::Usable),
            ("bob", Password::Usable),
            ("oscar", Password::Usable),
            ("carol", Password::Locked),
        ]
        .into_iter()
        .map(|(n, p)| (n.to_owned(), p))
        .collect()),
        custody: BTreeSet::new(),
        sudo_gates: gates(GATED, GATED),
        sudo: Ok(Sudoers::new(vec![
            rule(&["root"], &["ALL"], &["ALL"]),
            rule(&["%sudo"], &["ALL"], &["ALL"]),
        ])
        .facts()),
        su: vec![
            su_stack(
                "su",
                "auth sufficient pam_rootok.so\nauth required pam_unix.so\n",
            ),
            su_stack(
                "su-l",
                "auth sufficient pam_rootok.so\nauth required pam_unix.so\n",
            ),
        ],
        ssh: SshFacts {
            sshd: Some(ssh::Sshd::default()),
            sshd_error: None,
            gate: account_gate("sshd", &read(vec![])),
            keys: Vec::new(),
            unreadable: Vec::new(),
        },
        polkit: PolkitFacts {
            gate: true,
            rule_installed: true,
            exempt: vec!["root".into()],
            identities: vec![(
                "/usr/share/polkit-1/rules.d/50-default.rules".into(),
                polkit::Identity {
                    identity: "unix-group:sudo".into(),
                    line: 11,
                },
            )],
            grants: Vec::new(),
            errors: Vec::new(),
        },
        errors: Vec::new(),
    }
}

/// (kind, principal, target) of findings.
type Found = Vec<(Kind, String, String)>;
/// A change to the clean host's facts.
type Change = Box<dyn Fn(&mut Facts)>;

/// (kind, principal, target) of each finding.
fn found(facts: &Facts) -> Found {
    let report = scan(facts);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    report
        .findings
        .into_iter()
        .map(|f| (f.kind, f.principal, f.target))
        .collect()
}

/// [`found`], of one kind only.
fn found_of(facts: &Facts, kind: Kind) -> Found {
    found(facts).into_iter().filter(|f| f.0 == kind).collect()
}

fn one(kind: Kind, principal: &str, target: &str) -> Found {
    vec![(kind, principal.into(), target.into())]
}

#[test]
fn a_clean_host_has_no_standing_privilege() {
    assert_eq!(found(&clean()), []);
    assert_eq!(scan(&clean()).counts().values().sum::<u64>(), 0);
}

#[test]
fn sudoers_rules_are_standing_where_the_gate_does_not_stop_their_user() {
    fn set(specs: Vec<Value>) -> impl Fn(&mut Facts) {
        move |f: &mut Facts| f.sudo = Ok(Sudoers::new(specs.clone()).facts())
    }
    let cases: Vec<(&str, Change, Found)> = vec![
        (
            "a gated user's rule",
            Box::new(set(vec![rule(&["alice"], &["ALL"], &["ALL"])])),
            vec![],
        ),
        (
            "NOPASSWD changes nothing under the gate",
            Box::new(set(vec![spec(
                &["alice"],
                &["ALL"],
                Some(&["ALL"]),
                &["ALL"],
                true,
            )])),
            vec![],
        ),
        (
            "an exempt user's rule",
            Box::new(set(vec![rule(&["oscar"], &["ALL"], &["ALL"])])),
            one(Kind::Sudoers, "oscar", "ALL"),
        ),
        (
            "root's own rule is no privilege",
            Box::new(set(vec![rule(&["root"], &["ALL"], &["ALL"])])),
            vec![],
        ),
        (
            "a rule for another host",
            Box::new(|f: &mut Facts| {
                f.sudo_gates = gates(UNGATED, UNGATED);
                set(vec![spec(
                    &["carol"],
                    &["db1", "!web1"],
                    None,
                    &["ALL"],
                    false,
                )])(f)
            }),
            vec![],
        ),
        (
            "a host pattern and a network of this host",
            Box::new(|f: &mut Facts| {
                f.sudo_gates = gates(UNGATED, UNGATED);
                set(vec![spec(&["carol"], &["web*"], None, &["ALL"], false)])(f)
            }),
            one(Kind::Sudoers, "carol", "root"),
        ),
        (
            "everyone when nothing gates sudo",
            Box::new(|f: &mut Facts| {
                f.sudo_gates = gates(UNGATED, UNGATED);
                set(vec![rule(&["ALL", "!carol"], &["ALL"], &["ALL"])])(f)
            }),
            vec![
                (Kind::Sudoers, "alice".into(), "ALL".into()),
                (Kind::Sudoers, "bob".into(), "ALL".into()),
                (Kind::Sudoers, "oscar".into(), "ALL".into()),
            ],
        ),
        (
            "a group's listed and primary members",
            Box::new(|f: &mut Facts| {
                f.sudo_gates = gates(UNGATED, UNGATED);
                set(vec![rule(&["%staff"], &["postgres"], &["/usr/bin/psql"])])(f)
            }),
            vec![
                (Kind::Sudoers, "bob".into(), "postgres".into()),
                (Kind::Sudoers, "carol".into(), "postgres".into()),
            ],
        ),
        (
            "sudo -i's stack without the gate",
            Box::new(|f: &mut Facts| {
                f.sudo_gates = gates(GATED, UNGATED);
                set(vec![rule(&["alice"], &["root"], &["ALL"])])(f)
            }),
            one(Kind::Sudoers, "alice", "root"),
        ),
        (
            "a gate for other targets only",
            Box::new(|f: &mut Facts| {
                let g = "account required pam_jit.so resource=dba targets=postgres\n";
                f.sudo_gates = gates(g, g);
                set(vec![
                    rule(&["alice"], &["root"], &["ALL"]),
                    rule(&["bob"], &["postgres"], &["ALL"]),
                ])(f)
            }),
            one(Kind::Sudoers, "alice", "root"),
        ),
        (
            "a run-as group only",
            Box::new(|f: &mut Facts| {
                f.sudo_gates = gates(UNGATED, UNGATED);
                f.sudo = Ok(Sudoers::new(vec![json!({"User_List": [{"username": "carol"}], "Host_List": [{"hostname": "ALL"}], "Cmnd_Specs": [{"runasgroups": [{"usergroup": "adm"}], "Commands": [{"command": "ALL"}]}]})]).facts())
            }),
            one(Kind::Sudoers, "carol", "group:adm"),
        ),
        (
            "only negated commands",
            Box::new(|f: &mut Facts| {
                f.sudo_gates = gates(UNGATED, UNGATED);
                set(vec![rule(&["carol"], &["root"], &["!/bin/sh"])])(f)
            }),
            vec![],
        ),
    ];
    for (name, change, expected) in cases {
        let mut facts = clean();
        change(&mut facts);
        assert_eq!(found_of(&facts, Kind::Sudoers), expected, "{name}");
    }
}

#[test]
fn aliases_and_negations_resolve_as_sudo_matches_them() {
    let mut facts = clean();
    facts.sudo_gates = gates(UNGATED, UNGATED);
    let mut sudoers = Sudoers::new(vec![spec(
        &["ADMINS"],
        &["WEB"],
        Some(&["DBA"]),
        &["PSQL"],
        true,
    )]);
    sudoers.aliases = json!({
        "User_Aliases": {"ADMINS": [{"username": "oscar"}, {"usergroup": "staff"}, {"username": "carol", "negated": true}]},
        "Runas_Aliases": {"DBA": [{"username": "postgres"}, {"username": "root"}]},
        "Host_Aliases": {"WEB": [{"networkaddr": "10.0.0.0/8"}]},
        "Command_Aliases": {"PSQL": [{"command": "/usr/bin/psql"}]},
    });
    facts.sudo = Ok(sudoers.facts());
    let mut report = scan(&facts);
    report.findings.retain(|f| f.kind == Kind::Sudoers);
    let who: Vec<(&str, &str)> = report
        .findings
        .iter()
        .map(|f| (f.principal.as_str(), f.target.as_str()))
        .collect();
    assert_eq!(who, [("bob", "root,postgres"), ("oscar", "root,postgres")]);
    assert_eq!(
        report.findings[0].how,
        "/etc/sudoers.d/test: (root,postgres) NOPASSWD: /usr/bin/psql"
    );
    assert!(report.findings[0].why.contains("no pam_jit account line"));
}

#[test]
fn a_rule_under_negated_pam_acct_mgmt_is_standing_for_whom_it_applies() {
    // (Defaults, run-as Defaults, rules, expected)
    type Case = (Vec<Value>, Vec<Value>, Vec<Value>, Found);
    let cases: Vec<Case> = vec![
        (
            vec![defaults(&[], "!pam_acct_mgmt", "user")],
            vec![],
            vec![rule(&["alice"], &["ALL"], &["ALL"])],
            one(Kind::Sudoers, "alice", "ALL"),
        ),
        (
            vec![defaults(&["bob"], "!pam_acct_mgmt", "user")],
            vec![],
            vec![rule(&["alice", "bob"], &["root"], &["ALL"])],
            one(Kind::Sudoers, "bob", "root"),
        ),
        (
            vec![
                defaults(&[], "!pam_acct_mgmt", "user"),
                defaults(&["alice"], "pam_acct_mgmt", "user"),
            ],
            vec![],
            vec![rule(&["alice", "bob"], &["root"], &["ALL"])],
            one(Kind::Sudoers, "bob", "root"),
        ),
        (
            vec![defaults(&["db1"], "!pam_acct_mgmt", "host")],
            vec![],
            vec![rule(&["alice"], &["root"], &["ALL"])],
            vec![],
        ),
        (
            vec![],
            vec![defaults(&["root"], "!pam_acct_mgmt", "runas")],
            vec![
                rule(&["alice"], &["postgres"], &["ALL"]),
                rule(&["bob"], &["root"], &["ALL"]),
            ],
            one(Kind::Sudoers, "bob", "root"),
        ),
        (
            vec![defaults(&["/usr/bin/less"], "!pam_acct_mgmt", "cmnd")],
            vec![],
            vec![
                rule(&["alice"], &["root"], &["/usr/bin/less"]),
                rule(&["bob"], &["root"], &["/bin/ls"]),
            ],
            one(Kind::Sudoers, "alice", "root"),
        ),
    ];
    for (i, (defaults, runas_defaults, specs, expected)) in cases.into_iter().enumerate() {
        let mut facts = clean();
        let mut sudoers = Sudoers::new(specs);
        sudoers.defaults = defaults;
        sudoers.runas_defaults = runas_defaults;
        facts.sudo = Ok(sudoers.facts());
        let report = scan(&facts);
        let got: Found = report
            .findings
            .iter()
            .map(|f| (f.kind, f.principal.clone(), f.target.clone()))
            .collect();
        assert_eq!(got, expected, "case {i}");
        assert!(
            report
                .findings
                .iter()
                .all(|f| f.why.contains("!pam_acct_mgmt")),
            "case {i}"
        );
    }
}

#[test]
fn sudos_pam_services_follow_its_defaults() {
    let mut sudoers = Sudoers::new(vec![]);
    sudoers.defaults =
        vec![json!({"Options": [{"pam_service": "sudo2"}, {"pam_login_service": "sudo2-i"}]})];
    assert_eq!(sudoers.facts().policy.pam_services(), ["sudo2", "sudo2-i"]);
    assert_eq!(
        Sudoers::new(vec![]).facts().policy.pam_services(),
        ["sudo", "sudo-i"]
    );
}

#[test]
fn admin_group_members_outside_the_gate_are_standing() {
    let mut facts = clean();
    facts.groups.push(group("wheel", 10, &["oscar", "root"]));
    facts.groups.push(group("admin", 11, &[]));
    facts.accounts.push(account("dave", 1005, 11));
    facts.sudo = Ok(Sudoers::new(vec![]).facts());
    assert_eq!(
        found(&facts),
        one(Kind::AdminGroup, "oscar", "root"),
        "alice (sudo) and dave (admin, primary) are gated; oscar is exempt; root is root"
    );
    facts.sudo_gates = gates(UNGATED, GATED);
    assert_eq!(
        found(&facts),
        [
            (Kind::AdminGroup, "alice".into(), "root".into()),
            (Kind::AdminGroup, "dave".into(), "root".into()),
            (Kind::AdminGroup, "oscar".into(), "root".into()),
        ]
    );
}

#[test]
fn accounts_with_uid_0_besides_root_are_standing() {
    let mut facts = clean();
    facts.accounts.push(account("toor", 0, 0));
    assert_eq!(found(&facts), one(Kind::Uid0, "toor", "root"));
}

#[test]
fn root_keys_count_one_each_where_sshd_lets_root_in_ungated() {
    let two_keys = |facts: &mut Facts| {
        let text = format!("{KEY} alice@laptop\n# old\nfrom=\"10.0.0.1\" {KEY} backup\n");
        facts.ssh.keys = ssh::keys("/root/.ssh/authorized_keys", &text);
    };
    let sshd = |permit: &'static str, use_pam: bool, stack: &str| {
        let text = stack.to_owned();
        move |facts: &mut Facts| {
            facts.ssh.sshd = Some(ssh::Sshd {
                permit_root_login: permit.into(),
                use_pam,
                ..ssh::Sshd::default()
            });
            facts.ssh.gate = account_gate("sshd", &read(vec![("sshd", text.clone())]));
        }
    };
    let gated_root = "account required pam_jit.so resource=ssh exempt=\n";
    let cases: Vec<(&str, Change, usize)> = vec![
        (
            "root exempt (the default)",
            Box::new(sshd("prohibit-password", true, GATED)),
            2,
        ),
        ("no root logins", Box::new(sshd("no", true, "")), 0),
        ("PermitRootLogin yes", Box::new(sshd("yes", true, "")), 2),
        (
            "root gated too",
            Box::new(sshd("prohibit-password", true, gated_root)),
            0,
        ),
        (
            "no PAM",
            Box::new(sshd("prohibit-password", false, gated_root)),
            2,
        ),
        (
            "sshd not installed",
            Box::new(|f: &mut Facts| f.ssh.sshd = None),
            0,
        ),
    ];
    for (name, change, count) in cases {
        let mut facts = clean();
        two_keys(&mut facts);
        change(&mut facts);
        let report = scan(&facts);
        assert_eq!(
            report.findings.len(),
            count,
            "{name}: {:?}",
            report.findings
        );
        for f in &report.findings {
            assert_eq!(f.kind, Kind::RootKey);
            assert!(f.principal.starts_with("SHA256:"), "{name}: {f:?}");
            assert!(
                !f.how.contains("AAAA"),
                "{name}: the key itself is shown: {f:?}"
            );
        }
    }
}

#[test]
fn su_to_roots_password_is_standing_unless_locked_escrowed_restricted_or_gated() {
    let root_password = |f: &mut Facts| {
        if let Ok(p) = &mut f.passwords {
            p.insert("root".into(), Password::Usable);
        }
    };
    let su = |auth: &'static str| {
        move |f: &mut Facts| {
            f.su = vec![su_stack("su", auth)];
        }
    };
    let wheel = "auth sufficient pam_rootok.so\nauth required pam_wheel.so group=admins\nauth required pam_unix.so\n";
    let trust = "auth sufficient pam_rootok.so\nauth sufficient pam_wheel.so trust group=staff\nauth required pam_unix.so\n";
    let cases: Vec<(&str, Vec<Change>, Found)> = vec![
        (
            "root's password, no pam_wheel",
            vec![Box::new(root_password)],
            one(Kind::SuPassword, "root", "root"),
        ),
        (
            "root's password escrowed by jit",
            vec![
                Box::new(root_password),
                Box::new(|f: &mut Facts| {
                    f.custody.insert("root".into());
                }),
            ],
            vec![],
        ),
        (
            "root's password, su gated (oscar exempt)",
            vec![
                Box::new(root_password),
                Box::new(|f: &mut Facts| {
                    f.su = vec![su_stack(
                        "su",
                        &format!("auth required pam_unix.so\n{GATED}"),
                    )]
                }),
            ],
            one(Kind::SuPassword, "root", "root"),
        ),
        (
            "root's password, su gated for all",
            vec![
                Box::new(root_password),
                Box::new(|f: &mut Facts| {
                    f.su = vec![su_stack(
                        "su",
                        "auth required pam_unix.so\naccount required pam_jit.so resource=sudo\n",
                    )]
                }),
            ],
            vec![],
        ),
        (
            "pam_wheel: members with passwords",
            vec![Box::new(root_password), Box::new(su(wheel))],
            vec![
                (Kind::SuPassword, "alice".into(), "root".into()),
                (Kind::SuPassword, "oscar".into(), "root".into()),
            ],
        ),
        ("pam_wheel, root locked", vec![Box::new(su(wheel))], vec![]),
        (
            "pam_wheel trust: members without a password",
            vec![Box::new(su(trust))],
            vec![
                (Kind::SuPassword, "bob".into(), "root".into()),
                (Kind::SuPassword, "carol".into(), "root".into()),
            ],
        ),
    ];
    for (name, changes, expected) in cases {
        let mut facts = clean();
        for change in changes {
            change(&mut facts);
        }
        let mut got = found(&facts);
        got.sort();
        assert_eq!(got, expected, "{name}: {:?}", scan(&facts).findings);
    }
    let mut facts = clean();
    root_password(&mut facts);
    facts.su = vec![su_stack(
        "su",
        &format!("auth required pam_unix.so\n{GATED}"),
    )];
    assert!(
        scan(&facts).findings[0].how.contains("oscar may su"),
        "{:?}",
        scan(&facts).findings
    );
}

#[test]
fn polkit_admins_are_standing_unless_the_polkit_gate_holds_them() {
    type PolkitChange = Box<dyn Fn(&mut PolkitFacts)>;
    let cases: Vec<(&str, PolkitChange, Found)> = vec![
        ("gate on", Box::new(|_: &mut PolkitFacts| {}), vec![]),
        (
            "gate off",
            Box::new(|p: &mut PolkitFacts| p.gate = false),
            one(Kind::PolkitAdmin, "alice", "root"),
        ),
        (
            "rule not installed",
            Box::new(|p: &mut PolkitFacts| p.rule_installed = false),
            one(Kind::PolkitAdmin, "alice", "root"),
        ),
        (
            "alice exempt",
            Box::new(|p: &mut PolkitFacts| p.exempt.push("alice".into())),
            one(Kind::PolkitAdmin, "alice", "root"),
        ),
        (
            "a user by uid, and root",
            Box::new(|p: &mut PolkitFacts| {
                p.gate = false;
                p.identities = vec![
                    (
                        "/etc/polkit-1/rules.d/10-admin.rules".into(),
                        polkit::Identity {
                            identity: "unix-user:1004".into(),
                            line: 2,
                        },
                    ),
                    (
                        "/etc/polkit-1/rules.d/10-admin.rules".into(),
                        polkit::Identity {
                            identity: "unix-user:0".into(),
                            line: 2,
                        },
                    ),
                ];
            }),
            one(Kind::PolkitAdmin, "carol", "root"),
        ),
    ];
    for (name, change, expected) in cases {
        let mut facts = clean();
        change(&mut facts.polkit);
        assert_eq!(found(&facts), expected, "{name}");
    }
}

/// A rule of `10-ops.rules` that answers `answer` to `subjects` (`None`:
/// unnamed), run before the gate or after it.
fn grant(answer: polkit::Answer, subjects: Option<&[&str]>, before_gate: bool) -> RuleGrant {
    RuleGrant {
        file: "/etc/polkit-1/rules.d/10-ops.rules".into(),
        before_gate,
        grant: polkit::Grant {
            line: 3,
            answer,
            subjects: subjects.map(|s| s.iter().map(|i| (*i).to_owned()).collect()),
        },
    }
}

#[test]
fn polkit_rules_that_need_no_admin_are_standing_unless_the_gate_runs_first_for_them() {
    use polkit::Answer::{AuthSelf, Unread, Yes};
    type PolkitChange = Box<dyn Fn(&mut PolkitFacts)>;
    let carol = Some(&["unix-user:carol"][..]);
    let unnamed = |kind| vec![(kind, UNNAMED.to_owned(), "root".to_owned())];
    let cases: Vec<(&str, PolkitChange, Found)> = vec![
        (
            "after the gate",
            Box::new(move |p: &mut PolkitFacts| p.grants = vec![grant(Yes, carol, false)]),
            vec![],
        ),
        (
            "before the gate",
            Box::new(move |p: &mut PolkitFacts| p.grants = vec![grant(Yes, carol, true)]),
            one(Kind::PolkitRule, "carol", "root"),
        ),
        (
            "gate off",
            Box::new(move |p: &mut PolkitFacts| {
                p.gate = false;
                p.grants = vec![grant(AuthSelf, carol, false)];
            }),
            one(Kind::PolkitRule, "carol", "root"),
        ),
        (
            "the gate's rule not installed",
            Box::new(move |p: &mut PolkitFacts| {
                p.rule_installed = false;
                p.grants = vec![grant(Unread, carol, false)];
            }),
            one(Kind::PolkitRule, "carol", "root"),
        ),
        (
            "carol exempt",
            Box::new(move |p: &mut PolkitFacts| {
                p.exempt.push("carol".into());
                p.grants = vec![grant(Yes, carol, false)];
            }),
            one(Kind::PolkitRule, "carol", "root"),
        ),
        (
            "a group's members, root left out, before the gate",
            Box::new(|p: &mut PolkitFacts| {
                let subjects = Some(&["unix-group:staff", "unix-user:root"][..]);
                p.grants = vec![grant(Yes, subjects, true)];
            }),
            vec![
                (Kind::PolkitRule, "bob".into(), "root".into()),
                (Kind::PolkitRule, "carol".into(), "root".into()),
            ],
        ),
        (
            "unnamed, after the gate, nobody exempt but root",
            Box::new(|p: &mut PolkitFacts| p.grants = vec![grant(Yes, None, false)]),
            vec![],
        ),
        (
            "unnamed, after the gate, oscar exempt",
            Box::new(|p: &mut PolkitFacts| {
                p.exempt.push("oscar".into());
                p.grants = vec![grant(Yes, None, false)];
            }),
            unnamed(Kind::PolkitRule),
        ),
        (
            "unnamed, before the gate",
            Box::new(|p: &mut PolkitFacts| p.grants = vec![grant(AuthSelf, None, true)]),
            unnamed(Kind::PolkitRule),
        ),
    ];
    for (name, change, expected) in cases {
        let mut facts = clean();
        change(&mut facts.polkit);
        assert_eq!(found_of(&facts, Kind::PolkitRule), expected, "{name}");
    }
}

#[test]
fn a_polkit_rules_finding_says_where_what_to_whom_and_why() {
    let mut facts = clean();
    facts.polkit.grants = vec![
        grant(polkit::Answer::Yes, Some(&["unix-group:staff"]), true),
        grant(polkit::Answer::AuthSelf, None, true),
    ];
    let report = scan(&facts);
    let shown: Vec<(&str, &str, &str)> = report
        .findings
        .iter()
        .map(|f| (f.principal.as_str(), f.how.as_str(), f.why.as_str()))
        .collect();
    let before = "polkitd runs this rule before the polkit gate's (20-jit.rules)";
    let yes =
        "/etc/polkit-1/rules.d/10-ops.rules:3: answers YES (no authentication) to unix-group:staff";
    assert_eq!(
        shown,
        [
            ("bob", yes, before),
            ("carol", yes, before),
            (
                UNNAMED,
                "/etc/polkit-1/rules.d/10-ops.rules:3: answers AUTH_SELF (the user's own password, \
                 no administrator's) to subjects the scan cannot name",
                before
            ),
        ]
    );
    assert_eq!(report.counts()[&Kind::PolkitRule], 3);
}

#[test]
fn what_could_not_be_read_is_an_error_never_nothing_found() {
    let mut facts = clean();
    facts.sudo = Err("cvtsudoers failed (exit status: 1): syntax error".into());
    facts.passwords = Err("/etc/shadow: permission denied".into());
    facts
        .ssh
        .unreadable
        .push("/root/.ssh/authorized_keys".into());
    facts
        .errors
        .push("accounts: cannot list the accounts: EIO".into());
    facts
        .polkit
        .errors
        .push("polkit: /etc/polkit-1/rules.d: permission denied".into());
    let report = scan(&facts);
    assert_eq!(
        report.errors,
        [
            "accounts: cannot list the accounts: EIO",
            "sudoers: cvtsudoers failed (exit status: 1): syntax error",
            "root's ssh keys: /root/.ssh/authorized_keys could not be read",
            "passwords: /etc/shadow: permission denied",
            "polkit: /etc/polkit-1/rules.d: permission denied",
        ]
    );
    let mut facts = clean();
    facts.ssh.sshd_error = Some("sshd -T failed: Missing privilege separation directory".into());
    assert_eq!(scan(&facts).errors.len(), 1);
}

//! The D-Bus contract: introspection matches the documented XML, the bus
//! policy, config checking, and callers asking about other users (T3).

use jit_tests::*;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, PartialEq, Eq)]
struct Interface {
    /// name -> [(arg name, type, direction)]
    methods: BTreeMap<String, Vec<(String, String, String)>>,
    /// name -> [(arg name, type)]
    signals: BTreeMap<String, Vec<(String, String)>>,
    /// name -> (type, access)
    properties: BTreeMap<String, (String, String)>,
}

fn interface(xml: &str, name: &str) -> Interface {
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    let doc = roxmltree::Document::parse_with_options(xml, opts)
        .unwrap_or_else(|e| panic!("bad introspection XML ({e}):\n{xml}"));
    let iface = doc
        .descendants()
        .find(|n| n.has_tag_name("interface") && n.attribute("name") == Some(name))
        .unwrap_or_else(|| panic!("no interface {name} in:\n{xml}"));
    let mut out = Interface {
        methods: BTreeMap::new(),
        signals: BTreeMap::new(),
        properties: BTreeMap::new(),
    };
    let attr = |n: roxmltree::Node, a: &str| n.attribute(a).unwrap_or_default().to_owned();
    for member in iface.children().filter(roxmltree::Node::is_element) {
        let args = member.children().filter(|c| c.has_tag_name("arg"));
        match member.tag_name().name() {
            "method" => {
                let args = args
                    .map(|a| {
                        let dir = a.attribute("direction").unwrap_or("in").to_owned();
                        (attr(a, "name"), attr(a, "type"), dir)
                    })
                    .collect();
                out.methods.insert(attr(member, "name"), args);
            }
            "signal" => {
                let args = args.map(|a| (attr(a, "name"), attr(a, "type"))).collect();
                out.signals.insert(attr(member, "name"), args);
            }
            "property" => {
                out.properties.insert(
                    attr(member, "name"),
                    (attr(member, "type"), attr(member, "access")),
                );
            }
            _ => {} // annotations
        }
    }
    out
}

fn diff<T: PartialEq + std::fmt::Debug>(
    what: &str,
    documented: &BTreeMap<String, T>,
    running: &BTreeMap<String, T>,
    out: &mut Vec<String>,
) {
    for (name, doc) in documented {
        match running.get(name) {
            None => out.push(format!("  {what} {name}: missing")),
            Some(run) if run != doc => out.push(format!(
                "  {what} {name}:\n    documented {doc:?}\n    running    {run:?}"
            )),
            _ => {}
        }
    }
    for name in running.keys().filter(|n| !documented.contains_key(*n)) {
        out.push(format!("  {what} {name}: not documented"));
    }
}

#[test]
fn introspection_matches_the_documented_interface() {
    let env = Env::new();
    let documented =
        std::fs::read_to_string(workspace_root().join("packaging/dbus/org.jit.Daemon1.xml"))
            .expect("packaging/dbus/org.jit.Daemon1.xml");
    let want = interface(&documented, "org.jit.Daemon1");
    assert!(want.methods.len() >= 10, "{want:#?}");
    let run = env
        .run_as(
            "oscar",
            "busctl",
            &[
                &format!("--address={}", env.address()),
                "introspect",
                "--xml-interface",
                "org.jit.Daemon1",
                "/org/jit/Daemon1",
            ],
        )
        .ok();
    let got = interface(&run.stdout, "org.jit.Daemon1");
    let mut diffs = Vec::new();
    diff("method", &want.methods, &got.methods, &mut diffs);
    diff("signal", &want.signals, &got.signals, &mut diffs);
    diff("property", &want.properties, &got.properties, &mut diffs);
    assert!(
        diffs.is_empty(),
        "the running daemon differs from packaging/dbus/org.jit.Daemon1.xml:\n{}",
        diffs.join("\n")
    );

    let version = env
        .run_as(
            "oscar",
            "busctl",
            &[
                &format!("--address={}", env.address()),
                "get-property",
                "org.jit.Daemon1",
                "/org/jit/Daemon1",
                "org.jit.Daemon1",
                "Version",
            ],
        )
        .ok();
    assert!(version.stdout.starts_with("s \""), "{version}");
}

fn request_name(env: &Env, user: &str) -> Run {
    env.run_as(
        user,
        "dbus-send",
        &[
            &format!("--bus={}", env.address()),
            "--print-reply",
            "--dest=org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus.RequestName",
            "string:org.jit.Daemon1",
            "uint32:4",
        ],
    )
}

#[test]
fn only_root_may_own_the_name() {
    // Without jitd: oscar and alice are refused by policy, root may take it.
    let env = Env::without_jitd(TEST_CONFIG);
    for user in ["oscar", "alice"] {
        let run = request_name(&env, user).fails();
        assert!(run.stderr.contains("AccessDenied"), "{run}");
    }
    let root = request_name(&env, "root").ok();
    assert!(
        root.stdout.contains("uint32 1"),
        "root should become the primary owner:{root}"
    );
    drop(env);

    // With jitd running the owner is uid 0 and others are still refused.
    let env = Env::new();
    let owner = env
        .busctl_call(
            "oscar",
            &[
                "org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus",
                "GetConnectionUnixUser",
                "s",
                "org.jit.Daemon1",
            ],
        )
        .ok();
    assert_eq!(owner.stdout.trim(), "u 0", "{owner}");
    let run = request_name(&env, "oscar").fails();
    assert!(run.stderr.contains("AccessDenied"), "{run}");
}

/// A typo in a role (the issue's `group:jit-secutiry`) and a user nobody
/// has: warned with file:line:col, the file still accepted (an LDAP outage
/// must not refuse a good file), refused with --strict, and logged by jitd at
/// start.
#[test]
fn check_config_warns_about_names_that_resolve_to_nobody() {
    let typo = TEST_CONFIG
        .replacen("\"group:jit-security\"", "\"group:jit-secutiry\"", 1)
        .replacen(
            "\"group:admins\"",
            "\"group:admins\", \"user:nosuchuser\"",
            1,
        );
    let env = Env::with_config(&typo);
    let path = env.config_path.display().to_string();
    let at = |needle: &str| {
        let (n, line) = typo
            .lines()
            .enumerate()
            .find(|(_, l)| l.contains(needle))
            .unwrap();
        format!(
            "{path}:{}:{}: warning:",
            n + 1,
            line.find(needle).unwrap() + 1
        )
    };
    let jitd = jitd_bin().display().to_string();
    let check = env.run_as("root", &jitd, &["--check-config", &path]).ok();
    for expected in [
        format!(
            "{} group 'jit-secutiry' does not exist",
            at("\"group:jit-secutiry")
        ),
        format!(
            "{} user 'nosuchuser' does not exist",
            at("\"user:nosuchuser")
        ),
        format!(
            "{} role 'security' has nobody in it",
            at("[\"group:jit-secutiry")
        ),
    ] {
        assert!(check.stderr.contains(&expected), "no {expected:?}:{check}");
    }
    assert!(
        check.stdout.contains("OK (3 resources, 3 warnings)"),
        "{check}"
    );

    let strict = env
        .run_as("root", &jitd, &["--check-config", &path, "--strict"])
        .fails();
    assert!(
        strict.stderr.contains("3 warnings, refused (--strict)"),
        "{strict}"
    );

    // The daemon took the same file (it runs) and logs the same warnings,
    // from a thread of its own.
    let logged = wait_for(Duration::from_secs(5), || {
        env.jitd_log_tail()
            .contains("group 'jit-secutiry' does not exist")
            .then_some(())
    });
    assert!(
        logged.is_some(),
        "jitd did not log the warning:{}",
        env.jitd_log_tail()
    );
}

#[test]
fn check_config_reports_file_line_col() {
    let env = Env::without_jitd(TEST_CONFIG);
    let path = env.config_path.display().to_string();
    let good = env
        .run_as(
            "root",
            &jitd_bin().display().to_string(),
            &["--check-config", &path],
        )
        .ok();
    assert!(
        good.stdout.lines().count() + good.stderr.lines().count() <= 3,
        "not a short OK:{good}"
    );

    // A bad value: the position of "banana" in the logs resource.
    let bad_text = TEST_CONFIG.replacen("max_duration = \"1h\"", "max_duration = \"banana\"", 1);
    assert_ne!(bad_text, TEST_CONFIG);
    let line = bad_text.lines().position(|l| l.contains("banana")).unwrap() + 1;
    let bad = env.dir.path().join("bad.toml");
    std::fs::write(&bad, &bad_text).unwrap();
    let bad_path = bad.display().to_string();
    let check = env
        .run_as(
            "root",
            &jitd_bin().display().to_string(),
            &["--check-config", &bad_path],
        )
        .fails();
    let prefix = format!("{bad_path}:{line}:");
    let message = check
        .stdout
        .lines()
        .chain(check.stderr.lines())
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no '{prefix}COL: message' line:{check}"))
        .to_owned();
    let col = message[prefix.len()..].split(':').next().unwrap();
    assert!(
        col.parse::<u32>().is_ok_and(|c| c > 1),
        "no column in {message:?}"
    );
    assert!(message.contains("banana"), "{message:?}");

    // An unknown key.
    let unknown = TEST_CONFIG.replace("dual_from  = 70", "dual_from  = 70\ncolour = \"red\"");
    let uline = unknown
        .lines()
        .position(|l| l.starts_with("colour"))
        .unwrap()
        + 1;
    let upath = env.dir.path().join("unknown.toml");
    std::fs::write(&upath, &unknown).unwrap();
    let upath = upath.display().to_string();
    let run = env
        .run_as(
            "root",
            &jitd_bin().display().to_string(),
            &["--check-config", &upath],
        )
        .fails();
    let text = format!("{}{}", run.stdout, run.stderr);
    assert!(text.contains(&format!("{upath}:{uline}:")), "{run}");

    // jitd refuses to start on it, with the same message, and never takes the name.
    env.write_config(&bad_text);
    let mut cmd = env.user_command("root", jitd_bin());
    cmd.arg("--config")
        .arg(&env.config_path)
        .arg("--state-dir")
        .arg(&env.state_dir);
    let start = env.run(cmd).fails();
    let same = message.replacen(&bad_path, &env.config_path.display().to_string(), 1);
    assert!(
        start.stderr.contains(&same),
        "jitd should print {same:?}:{start}"
    );
    assert!(!env.name_owned());
}

fn check_grant(env: &Env, caller: &str, uid: u32, resource: &str) -> Run {
    env.run_as(
        caller,
        "dbus-send",
        &[
            &format!("--bus={}", env.address()),
            "--print-reply",
            "--dest=org.jit.Daemon1",
            "/org/jit/Daemon1",
            "org.jit.Daemon1.CheckGrant",
            &format!("uint32:{uid}"),
            &format!("string:{resource}"),
        ],
    )
}

#[test]
fn callers_may_only_ask_about_themselves() {
    let env = Env::new();
    env.request("bob", "logs", "30m", "bob's grant");
    // alice about bob: refused, whether or not bob holds a grant.
    for res in ["logs", "sudo"] {
        let run = check_grant(&env, "alice", uid("bob"), res).fails();
        assert!(
            run.stderr.contains("org.jit.Daemon1.Error.NotAuthorized"),
            "{run}"
        );
    }
    // alice about herself: allowed, no grant.
    let mine = check_grant(&env, "alice", uid("alice"), "logs").ok();
    assert!(mine.stdout.contains("boolean false"), "{mine}");
    // bob about himself and root about bob: the grant is there.
    for caller in ["bob", "root"] {
        let run = check_grant(&env, caller, uid("bob"), "logs").ok();
        assert!(run.stdout.contains("boolean true"), "{run}");
    }
    // Unknown resource: never a grant.
    let run = check_grant(&env, "bob", uid("bob"), "nosuch");
    assert!(
        run.stderr.contains("org.jit.Daemon1.Error.NotFound")
            || run.stdout.contains("boolean false"),
        "{run}"
    );
    // Arguments never name the caller: bob cannot act on alice's request by id.
    let id = id_of(&env.request("alice", "db", "2h", "mine"));
    env.jitctl("bob", &["revoke", &id.to_string()]).code(3);
    env.jitctl(
        "bob",
        &["extend", &id.to_string(), "--for", "5m", "--reason", "x"],
    )
    .fails();
}

use super::*;
use crate::core::notify::{Audience, Target};
use crate::core::password::{CharClass, PasswordPolicy, Secret};

const MINIMAL: &str = r#"
[roles]
manager = ["group:jit-managers"]
security = ["user:sam"]

[[resource]]
name = "sudo"
eligible = ["group:admins"]
"#;

fn parse_str(text: &str) -> Result<Config, ConfigError> {
    parse(text, Path::new("jitd.toml"))
}

fn error_of(text: &str) -> String {
    parse_str(text).unwrap_err().to_string()
}

#[test]
fn bundled_config_is_valid() {
    let text = include_str!("../../../packaging/jitd.toml");
    let config = parse_str(text).unwrap();
    let sudo = config.resource("sudo").unwrap();
    assert!(sudo.privileged && sudo.is_production());
    assert_eq!(sudo.sensitivity, Sensitivity::High);
    assert_eq!(sudo.max_duration, Duration::from_secs(4 * 3600));
    assert_eq!(config.risk.thresholds, Thresholds::default());
    assert_eq!(config.risk.weights, RiskWeights::default());
    assert_eq!(config.risk.business_hours, BusinessHours::default());
    assert_eq!(config.denials.policy(), DenialsConfig::default().policy());
    assert_eq!(config.scan, super::ScanConfig::default());
    assert_eq!(config.reports, ReportsConfig::default());
}

#[test]
fn the_scan_runs_every_hour_unless_turned_off() {
    let every = |v: &str| {
        parse_str(&format!("{MINIMAL}\n[scan]\nevery = \"{v}\"\n")).map(|c| c.scan.every.0)
    };
    assert_eq!(
        parse_str(MINIMAL).unwrap().scan.first_after(),
        Some(Duration::from_secs(600))
    );
    assert_eq!(every("off").unwrap(), None);
    assert_eq!(every("0").unwrap(), None);
    assert_eq!(every("2s").unwrap(), Some(Duration::from_secs(2)));
    let err = every("often").unwrap_err().to_string();
    assert!(err.contains("'often' is not a duration"), "{err}");
    assert!(every("500ms").is_err());
}

#[test]
fn defaults_apply() {
    let config = parse_str(MINIMAL).unwrap();
    let r = &config.resources[0];
    assert!(!r.privileged);
    assert_eq!(r.sensitivity, Sensitivity::Medium);
    assert_eq!(r.environment, "production");
    assert_eq!(r.max_duration, Duration::from_secs(3600));
    assert_eq!(
        config.roles.auditor,
        vec![Principal::Group("jit-audit".into())]
    );
    assert_eq!(config.requests.pending_ttl.0, Duration::from_secs(86400));
    assert_eq!(config.roles.security, vec![Principal::User("sam".into())]);
}

#[test]
fn unknown_key_is_reported_with_position() {
    let text = MINIMAL.replace("eligible", "colour = \"red\"\neligible");
    let err = error_of(&text);
    assert!(
        err.starts_with("jitd.toml:8:1: unknown field `colour`"),
        "{err}"
    );
}

#[test]
fn bad_values_are_reported_with_position() {
    let cases = [
        (
            "name = \"sudo\"",
            "name = \"sudo\"\nsensitivity = \"extreme\"",
            "jitd.toml:8:15:",
        ),
        (
            "name = \"sudo\"",
            "name = \"sudo\"\nmax_duration = \"forever\"",
            "jitd.toml:8:16:",
        ),
        (
            "user:sam",
            "sam",
            "jitd.toml:4:12: 'sam' must be 'user:NAME' or 'group:NAME'",
        ),
        (
            "user:sam",
            "host:sam",
            "jitd.toml:4:12: unknown principal kind 'host'",
        ),
        (
            "user:sam",
            "user:../x",
            "jitd.toml:4:12: '../x' is not a valid account name",
        ),
        (
            "name = \"sudo\"",
            "name = \"Sudo Root\"",
            "jitd.toml:7:8: resource name 'Sudo Root'",
        ),
    ];
    for (from, to, want) in cases {
        let err = error_of(&MINIMAL.replace(from, to));
        assert!(err.starts_with(want), "got {err:?}, want prefix {want:?}");
    }
}

#[test]
fn semantic_errors_point_at_the_value() {
    let err = error_of(&format!(
        "{MINIMAL}\n[[resource]]\nname = \"sudo\"\neligible = [\"user:a\"]\n"
    ));
    assert!(
        err.starts_with("jitd.toml:11:8: resource 'sudo' is defined twice"),
        "{err}"
    );

    let err = error_of(&format!(
        "{MINIMAL}\n[risk]\nauto_below = 50\ndual_from = 40\n"
    ));
    assert!(
        err.starts_with("jitd.toml:12:13: dual_from (40) must be greater"),
        "{err}"
    );

    let err = error_of(&MINIMAL.replace("[\"group:admins\"]", "[]"));
    assert!(err.contains("empty 'eligible' list"), "{err}");
}

#[test]
fn login_shell_defaults_and_is_checked() {
    let config = parse_str(MINIMAL).unwrap();
    assert_eq!(
        config.recordings.login_shell.get_ref(),
        Path::new(DEFAULT_LOGIN_SHELL)
    );
    let with = |shell: &str| format!("{MINIMAL}\n[recordings]\nlogin_shell = \"{shell}\"\n");
    let config = parse_str(&with("/bin/zsh")).unwrap();
    assert_eq!(
        config.recordings.login_shell.get_ref(),
        Path::new("/bin/zsh")
    );
    for (shell, want) in [
        (
            "bash",
            "jitd.toml:11:15: login_shell must be an absolute path",
        ),
        (
            "/usr/libexec/jit/jit-session",
            "jitd.toml:11:15: login_shell is the real shell jit-session runs",
        ),
        (
            "/bin/ba\\u0000sh",
            "jitd.toml:11:15: login_shell must not contain a NUL",
        ),
    ] {
        let err = error_of(&with(shell));
        assert!(err.starts_with(want), "got {err:?}, want prefix {want:?}");
    }
}

#[test]
fn missing_required_sections_are_errors() {
    assert!(
        error_of("[[resource]]\nname = \"x\"\neligible = [\"user:a\"]\n")
            .contains("missing field `roles`")
    );
    let err = error_of(&MINIMAL.replace("eligible = [\"group:admins\"]", ""));
    assert!(err.contains("missing field `eligible`"), "{err}");
}

#[test]
fn business_hours_parse_and_apply_on_weekdays_only() {
    let text = format!("{MINIMAL}\n[risk]\nbusiness_hours = \"09:30-17:00\"\n");
    let hours = parse_str(&text).unwrap().risk.business_hours;
    assert!(hours.contains(1, 9 * 60 + 30));
    assert!(!hours.contains(1, 9 * 60 + 29));
    assert!(!hours.contains(5, 17 * 60));
    assert!(!hours.contains(0, 12 * 60));
    assert!(!hours.contains(6, 12 * 60));
    for bad in ["9-17", "18:00-08:00", "08:00-25:00", "08:60-09:00"] {
        let text = format!("{MINIMAL}\n[risk]\nbusiness_hours = \"{bad}\"\n");
        assert!(
            error_of(&text).contains("business_hours") || error_of(&text).contains(bad),
            "{bad}"
        );
    }
}

#[test]
fn sub_second_durations_are_refused() {
    let err = error_of(&MINIMAL.replace(
        "name = \"sudo\"",
        "name = \"sudo\"\nmax_duration = \"10ms\"",
    ));
    assert!(err.contains("at least 1s"), "{err}");
}

#[test]
fn missing_file_says_so() {
    let err = load(Path::new("/nonexistent/jitd.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("/nonexistent/jitd.toml: cannot read:"),
        "{err}"
    );
}

#[test]
fn notify_defaults_send_nothing_until_a_channel_exists() {
    let config = parse_str(MINIMAL).unwrap();
    let n = &config.notify;
    assert!(!n.enabled());
    assert_eq!(n.policy.targets[&Audience::Requester], vec![Target::Email]);
    assert!(n.policy.targets[&Audience::Escalation].is_empty());
    assert_eq!(
        (n.timeout, n.retry_first, n.retry_max, n.give_up_after),
        (
            Duration::from_secs(10),
            Duration::from_secs(10),
            Duration::from_secs(900),
            Duration::from_secs(3 * 86400)
        )
    );
    let bundled = parse_str(include_str!("../../../packaging/jitd.toml")).unwrap();
    assert_eq!(bundled.notify, config.notify);
}

#[test]
fn notify_targets_channels_and_secrets_resolve() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets");
    std::fs::write(
        &secrets,
        "smtp = \"pw\"\nslack = \"https://hooks.example/x\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o600)).unwrap();
    let text = format!(
        r#"{MINIMAL}notify = ["hook:team", "email:ops@example.com"]

[notify]
security = ["email", "hook:sec"]
escalation = ["email:oncall@example.com"]
email_domain = "example.com"
secrets = "{}"
retry_first = "1s"
[notify.addresses]
sam = "sam@corp.example"
[notify.smtp]
server = "smtp.example.com"
tls = "tls"
from = "jit <jit@example.com>"
username = "jit"
password_secret = "smtp"
[notify.hooks.sec]
kind = "slack"
url_secret = "slack"
[notify.hooks.team]
kind = "teams"
url = "https://teams.example/hook"
"#,
        secrets.display()
    );
    let config = parse_str(&text).unwrap();
    let n = &config.notify;
    assert!(n.enabled() && n.policy.email_enabled);
    let smtp = n.smtp.as_ref().unwrap();
    assert_eq!((smtp.port, smtp.tls), (465, SmtpTls::Tls));
    assert_eq!(smtp.password, Some(Secret::new("pw".into())));
    assert_eq!(n.hooks["sec"].url.expose(), "https://hooks.example/x");
    assert!(
        !format!("{n:?}").contains("hooks.example/x"),
        "secrets in Debug output"
    );
    assert_eq!(
        n.policy.targets[&Audience::Security],
        vec![Target::Email, Target::Hook("sec".into())]
    );
    assert_eq!(
        n.policy.resource_targets["sudo"],
        vec![
            Target::Hook("team".into()),
            Target::Address("ops@example.com".into())
        ]
    );
    assert_eq!(n.policy.address_of("sam").unwrap(), "sam@corp.example");
    assert_eq!(n.policy.address_of("mike").unwrap(), "mike@example.com");

    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o640)).unwrap();
    let err = parse_str(&text).unwrap_err().to_string();
    assert!(
        err.contains("accessible by group or others (mode 0640)"),
        "{err}"
    );
}

#[test]
fn notify_errors_have_positions() {
    let cases = [
        (
            "[notify]\nowner = [\"hook:x\"]\n",
            "11:10: no webhook named 'x'",
        ),
        (
            "[notify]\nsecurity = [\"slack\"]\n",
            "11:13: 'slack' is not a target",
        ),
        (
            "[notify.smtp]\nserver = \"s\"\nfrom = \"nobody\"\n",
            "12:8: 'nobody' is not an email address",
        ),
        (
            "[notify.hooks.x]\nkind = \"slack\"\nurl = \"ftp://x\"\n",
            "12:7: the url of webhook 'x' must start with https:// or http://",
        ),
        (
            "[notify.hooks.x]\nkind = \"slack\"\nurl_secret = \"x\"\n",
            "a *_secret key needs notify.secrets",
        ),
        (
            "[notify.hooks.x]\nkind = \"discord\"\nurl = \"https://x\"\n",
            "11:8: unknown variant `discord`",
        ),
        (
            "[notify]\nemail_domain = \"not a domain\"\n",
            "11:16: 'not a domain' is not a mail domain",
        ),
    ];
    for (extra, want) in cases {
        let err = error_of(&format!("{MINIMAL}\n{extra}"));
        assert!(err.contains(want), "want {want:?}, got {err:?}");
    }
}

#[test]
fn polkit_gate_is_off_by_default() {
    let config = parse_str(MINIMAL).unwrap();
    assert_eq!(
        config.polkit,
        PolkitConfig {
            gate: false,
            resource: "sudo".into(),
            exempt: vec!["root".into()],
            asker: "polkitd".into(),
        }
    );
    assert!(config.polkit.is_exempt("root") && !config.polkit.is_exempt("alice"));
}

#[test]
fn polkit_gate_needs_a_known_resource_and_account_names() {
    let with = |table: &str| format!("{MINIMAL}\n[polkit]\n{table}\n");
    let config = parse_str(&with("gate = true\nexempt = []\nasker = \"polkit\"")).unwrap();
    assert!(config.polkit.gate && config.polkit.exempt.is_empty());
    assert_eq!(config.polkit.asker, "polkit");
    // Off, the resource is not asked about: it need not exist yet.
    parse_str(&with("resource = \"pkexec\"")).unwrap();
    for (table, want) in [
        (
            "gate = true\nresource = \"pkexec\"",
            "jitd.toml:12:12: [polkit] resource 'pkexec' is not a [[resource]]",
        ),
        (
            "exempt = [\"root\", \"-x\"]",
            "jitd.toml:11:10: '-x' is not a valid account name",
        ),
        (
            "asker = \"\"",
            "jitd.toml:11:9: '' is not a valid account name",
        ),
        // What the file says is quoted with its controls escaped: one line.
        (
            "exempt = [\"ro\\not\\u001b[2J\"]",
            "jitd.toml:11:10: 'ro\\not\\u{1b}[2J' is not a valid account name",
        ),
        ("gates = true", "jitd.toml:11:1: unknown field `gates`"),
    ] {
        let err = error_of(&with(table));
        assert!(err.starts_with(want), "got {err:?}, want prefix {want:?}");
    }
}

#[test]
fn the_polkit_helper_reads_its_table_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jitd.toml");
    // Not a valid jitd configuration (no [roles]), but its [polkit] is.
    std::fs::write(
        &path,
        "[risk]\nauto_below = 1\n\n[polkit]\ngate = true\nexempt = [\"root\", \"nagios\"]\n",
    )
    .unwrap();
    let polkit = polkit::load(&path).unwrap();
    assert!(polkit.gate && polkit.is_exempt("nagios"));
    assert_eq!(polkit.resource, "sudo");

    std::fs::write(&path, "[polkit]\ngate = yes\n").unwrap();
    let err = polkit::load(&path).unwrap_err().to_string();
    assert!(err.contains("jitd.toml:2:8:"), "{err}");
    let err = polkit::load(&dir.path().join("absent.toml"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("absent.toml: cannot read"), "{err}");
}

/// MINIMAL with a privileged resource `db` and, after it, `account`.
fn with_account(account: &str) -> String {
    format!(
        "{MINIMAL}\n[[resource]]\nname = \"db\"\nprivileged = true\neligible = [\"group:dba\"]\n\n{account}"
    )
}

#[test]
fn managed_accounts_are_read_with_their_defaults() {
    let config = parse_str(&with_account(
        "[[account]]\nname = \"postgres\"\nresource = \"db\"\n",
    ))
    .unwrap();
    assert_eq!(
        config.accounts,
        vec![ManagedAccount {
            name: "postgres".into(),
            resource: "db".into(),
            checkout: Checkout::Exclusive,
            reveal: false,
            password: PasswordPolicy::default(),
        }]
    );
    let config = parse_str(&with_account(
        "[[account]]\nname = \"postgres\"\nresource = \"db\"\ncheckout = \"shared\"\n\
         password = { length = 20, classes = [\"lower\", \"digit\"] }\n",
    ))
    .unwrap();
    assert_eq!(config.accounts[0].checkout, Checkout::Shared);
    assert_eq!(
        config.accounts[0].password,
        PasswordPolicy {
            length: 20,
            classes: vec![CharClass::Lower, CharClass::Digit]
        }
    );
}

#[test]
fn managed_account_mistakes_are_reported_with_position() {
    let account = "[[account]]\nname = \"postgres\"\nresource = \"db\"\n";
    for (extra, at, says) in [
        (
            "checkout = \"shared\"\nreveal = true\n",
            "jitd.toml:19:10:",
            "a shared account cannot reveal its password",
        ),
        (
            "password = { length = 8 }\n",
            "jitd.toml:18:12:",
            "between 16 and 256",
        ),
        (
            "password = { classes = [\"emoji\"] }\n",
            "jitd.toml:18:",
            "unknown character class 'emoji'",
        ),
        ("colour = 1\n", "jitd.toml:18:1:", "unknown field `colour`"),
    ] {
        let err = error_of(&with_account(&format!("{account}{extra}")));
        assert!(err.starts_with(at) && err.contains(says), "{extra}: {err}");
    }
    for (account, at, says) in [
        (
            "[[account]]\nname = \"postgres\"\nresource = \"nope\"\n",
            "jitd.toml:17:12:",
            "resource 'nope' is not a [[resource]]",
        ),
        (
            "[[account]]\nname = \"postgres\"\nresource = \"sudo\"\n",
            "jitd.toml:17:12:",
            "must be privileged = true",
        ),
        (
            "[[account]]\nname = \"root\"\nresource = \"db\"\n",
            "jitd.toml:16:8:",
            "root_custody = true",
        ),
        (
            "[[account]]\nname = \"a\"\nresource = \"db\"\n[[account]]\nname = \"b\"\nresource = \"db\"\n",
            "jitd.toml:20:12:",
            "already checks out another account",
        ),
        (
            "[[account]]\nname = \"bad name\"\nresource = \"db\"\n",
            "jitd.toml:16:",
            "not a valid account name",
        ),
    ] {
        let err = error_of(&with_account(account));
        assert!(err.starts_with(at) && err.contains(says), "{account}: {err}");
    }
    let root = "[[account]]\nname = \"root\"\nresource = \"db\"\nroot_custody = true\n";
    assert_eq!(
        parse_str(&with_account(root)).unwrap().accounts[0].name,
        "root"
    );
}

#[test]
fn a_resources_groups_are_read_and_their_mistakes_reported_with_position() {
    let resource = |groups: &str| {
        format!(
            "{MINIMAL}\n[[resource]]\nname = \"containers\"\neligible = [\"group:ops\"]\n{groups}"
        )
    };
    let config = parse_str(&resource("groups = [\"docker\", \"adm\"]\n")).unwrap();
    let containers = config.resource("containers").expect("containers");
    assert_eq!(containers.groups, ["docker", "adm"]);
    assert!(config.resource("sudo").expect("sudo").groups.is_empty());
    let twice = error_of(&resource("groups = [\"docker\", \"docker\"]\n"));
    assert!(
        twice.contains(":13:21:") && twice.contains("group 'docker' is listed twice"),
        "{twice}"
    );
    let bad = error_of(&resource("groups = [\"do cker\"]\n"));
    assert!(
        bad.contains(":13:") && bad.contains("'do cker' is not a valid group name"),
        "{bad}"
    );
}

/// [`MINIMAL`] with a resource vendors may have and `more`.
fn with_vendors(more: &str) -> String {
    format!(
        "{MINIMAL}[[resource]]\nname = \"vssh\"\neligible = [\"group:admins\"]\nvendors = true\n{more}"
    )
}

#[test]
fn vendors_managers_and_segments_are_read_with_their_defaults() {
    let config = parse_str(&with_vendors(
        "[vendors]\nsponsors = [\"group:leads\"]\nuid_min = 70000\nuid_max = 70999\n\
         [managers]\nalice = \"mike\"\n\
         [[segment]]\nname = \"db-net\"\nnetworks = [\"10.20.0.0/24\", \"2001:db8::/64\"]\nports = [5432]\n",
    ))
    .unwrap();
    let vendors = config.vendors.clone().unwrap();
    assert_eq!(vendors.prefix, "v-");
    assert_eq!(vendors.group, "jit-vendors");
    assert_eq!(vendors.uids, 70000..=70999);
    assert_eq!(vendors.retention, Duration::from_secs(30 * 86400));
    assert_eq!(vendors.unknown_manager, UnknownManager::Fallback);
    assert_eq!(config.managers["alice"], "mike");
    assert_eq!(config.segments[0].networks.len(), 2);
    assert_eq!(config.segments[0].ports, [5432]);
    assert!(config.resource("vssh").unwrap().vendors);
    assert!(parse_str(MINIMAL).unwrap().vendors.is_none());
}

#[test]
fn vendor_mistakes_are_reported_with_position() {
    let vendors = "[vendors]\nsponsors = [\"user:alice\"]\n";
    for (text, at, says) in [
        (
            with_vendors(&format!("{vendors}uid_min = 500\nuid_max = 600\n")),
            "jitd.toml:15:11:",
            "is a system uid",
        ),
        (
            with_vendors(&format!("{vendors}uid_min = 60000\nuid_max = 70000\n")),
            "jitd.toml:15:11:",
            "include 60001-65535",
        ),
        (
            with_vendors(&format!("{vendors}uid_min = 7000\nuid_max = 6000\n")),
            "jitd.toml:16:11:",
            "must be at least uid_min",
        ),
        (
            with_vendors(&format!(
                "{vendors}uid_min = 7000\nuid_max = 8000\nprefix = \"V:\"\n"
            )),
            "jitd.toml:17:10:",
            "prefix 'V:'",
        ),
        (
            format!("{MINIMAL}{vendors}uid_min = 7000\nuid_max = 8000\n"),
            "jitd.toml:",
            "no [[resource]] has vendors = true",
        ),
        (
            format!(
                "{MINIMAL}[[resource]]\nname = \"root-ish\"\nprivileged = true\n\
                 eligible = [\"group:admins\"]\nvendors = true\n"
            ),
            "jitd.toml:13:11:",
            "is privileged: it cannot be granted to vendors",
        ),
        (
            format!(
                "{MINIMAL}[[resource]]\nname = \"g\"\neligible = [\"group:admins\"]\n\
                 groups = [\"docker\"]\nvendors = true\n"
            ),
            "jitd.toml:13:11:",
            "makes its holders members of local groups",
        ),
        (
            format!(
                "{MINIMAL}[[resource]]\nname = \"m\"\neligible = [\"group:admins\"]\n\
                 require_mfa = true\nvendors = true\n"
            ),
            "jitd.toml:13:11:",
            "has require_mfa",
        ),
        (
            format!(
                "{MINIMAL}[[resource]]\nname = \"t\"\neligible = [\"group:admins\"]\n\
                 require_ticket = true\nvendors = true\n"
            ),
            "jitd.toml:13:11:",
            "has require_ticket",
        ),
        (
            with_vendors("[[segment]]\nname = \"n\"\nnetworks = [\"10.0.0.1/24\"]\n"),
            "jitd.toml:15:13:",
            "has host bits set; did you mean \"10.0.0.0/24\"?",
        ),
        (
            with_vendors("[[segment]]\nname = \"n\"\nnetworks = [\"db.example\"]\n"),
            "jitd.toml:15:13:",
            "is not a network",
        ),
        (
            with_vendors("[managers]\nalice = \"alice\"\n"),
            "jitd.toml:14:9:",
            "cannot be their own manager",
        ),
    ] {
        let err = error_of(&text);
        assert!(
            err.starts_with(at) && err.contains(says),
            "{text}\n=> {err}"
        );
    }
}

#[test]
fn siem_sinks_resolve_with_their_defaults() {
    assert!(!parse_str(MINIMAL).unwrap().siem.enabled());
    let text = format!(
        r#"{MINIMAL}
[siem]
anchor_every = 50
anchor_interval = "1m"
facility = "local4"

[siem.sinks.central]
type = "relp"
address = "siem.example.com:2514"

[siem.sinks.backup]
type = "tls"
address = "[2001:db8::1]:6514"

[siem.sinks.local]
type = "file"
path = "/var/log/jit-siem/audit.jsonl"

[siem.sinks.journal]
type = "journald"
"#
    );
    let siem = parse_str(&text).unwrap().siem;
    assert_eq!((siem.anchor_every, siem.facility), (50, Facility::Local4));
    assert_eq!(siem.anchor_interval, Duration::from_secs(60));
    assert_eq!(
        siem.sinks["central"],
        SinkKind::Relp {
            address: "siem.example.com:2514".into()
        }
    );
    assert_eq!(
        siem.sinks["backup"],
        SinkKind::Tls {
            address: "[2001:db8::1]:6514".into(),
            ca: "/etc/ssl/certs/ca-certificates.crt".into(),
            server_name: "2001:db8::1".into(),
        }
    );
    assert_eq!(
        siem.sinks["journal"],
        SinkKind::Journald {
            socket: "/run/systemd/journal/socket".into()
        }
    );
    assert_eq!(siem.sinks.len(), 4);
}

#[test]
fn siem_errors_have_positions() {
    let sink = |body: &str| format!("{MINIMAL}\n[siem.sinks.s]\n{body}\n");
    let cases = [
        (
            sink("type = \"tcp\""),
            "jitd.toml:11:8: sink 's' needs 'address' for its type",
        ),
        (
            sink("type = \"tcp\"\naddress = \"siem\""),
            "jitd.toml:12:11: 'siem' is not HOST:PORT",
        ),
        (
            sink("type = \"udp\"\naddress = \"::1:514\""),
            "jitd.toml:12:11: '::1:514' is not HOST:PORT",
        ),
        (
            sink("type = \"tcp\"\naddress = \"h:514\"\npath = \"/x\""),
            "jitd.toml:13:8: sink 's': 'path' does not apply to its type",
        ),
        (
            sink("type = \"file\"\npath = \"audit.jsonl\""),
            "jitd.toml:12:8: path must be an absolute path",
        ),
        (
            sink("type = \"kafka\""),
            "jitd.toml:11:8: unknown variant `kafka`",
        ),
        (
            format!("{MINIMAL}\n[siem.sinks.Central]\ntype = \"journald\"\n"),
            "jitd.toml:10:13: sink name 'Central' must be",
        ),
        (
            format!("{MINIMAL}\n[siem]\nanchor_every = 0\n"),
            "jitd.toml:11:16: anchor_every must be at least 1",
        ),
    ];
    for (text, want) in cases {
        let err = error_of(&text);
        assert!(err.starts_with(want), "{err}\nwanted: {want}");
    }
}

#[test]
fn the_bundled_siem_example_is_valid_once_uncommented() {
    let bundled = include_str!("../../../packaging/jitd.toml");
    let start = bundled.find("# [siem]\n").unwrap();
    let end = start + bundled[start..].find("\n[polkit]").unwrap();
    let example: String = bundled[start..end]
        .lines()
        .map(|l| l.strip_prefix("# ").unwrap_or(l.trim_start_matches('#')))
        .collect::<Vec<_>>()
        .join("\n");
    let siem = parse_str(&format!("{MINIMAL}\n{example}\n")).unwrap().siem;
    assert_eq!(siem.sinks.len(), 4);
    assert_eq!(siem.anchor_every, 1000);
    assert_eq!(siem.timeout, Duration::from_secs(10));
}

#[test]
fn revoke_unused_after_is_read_and_refused_where_use_is_unseen() {
    let config = parse_str(&MINIMAL.replace(
        "name = \"sudo\"",
        "name = \"sudo\"\nmax_duration = \"4h\"\nrevoke_unused_after = \"30m\"",
    ))
    .unwrap();
    assert_eq!(
        config.resources[0].revoke_unused_after,
        Some(Duration::from_secs(1800))
    );
    assert_eq!(
        parse_str(MINIMAL).unwrap().resources[0].revoke_unused_after,
        None
    );
    let unused = "name = \"sudo\"\nrevoke_unused_after = \"30m\"";
    let cases = [
        (
            MINIMAL.replace("name = \"sudo\"", "name = \"sudo\"\nrevoke_unused_after = \"2h\""),
            "jitd.toml:8:23: resource 'sudo': revoke_unused_after (2h) must be shorter than max_duration (1h)",
        ),
        (
            MINIMAL.replace("name = \"sudo\"", &format!("{unused}\ngroups = [\"docker\"]")),
            "jitd.toml:8:23: resource 'sudo' makes its holders members of local groups",
        ),
        (
            MINIMAL.replace("name = \"sudo\"", &format!("{unused}\nvendors = true")),
            "jitd.toml:8:23: resource 'sudo' is for vendors",
        ),
        (
            format!(
                "{}\n[polkit]\ngate = true\nresource = \"sudo\"\n",
                MINIMAL.replace("name = \"sudo\"", unused)
            ),
            "jitd.toml:8:23: resource 'sudo' is the polkit gate's resource",
        ),
        (
            format!(
                "{}\n[[account]]\nname = \"postgres\"\nresource = \"sudo\"\nreveal = true\n",
                MINIMAL.replace("name = \"sudo\"", &format!("{unused}\nprivileged = true"))
            ),
            "jitd.toml:8:23: resource 'sudo' reveals managed account 'postgres''s password",
        ),
        (
            MINIMAL.replace("name = \"sudo\"", "name = \"sudo\"\nrevoke_unused_after = \"soon\""),
            "jitd.toml:8:23: 'soon' is not a duration",
        ),
    ];
    for (text, want) in cases {
        let err = error_of(&text);
        assert!(err.starts_with(want), "got {err:?}, want prefix {want:?}");
    }
    // An account that does not reveal its password is used through sudo
    // (`jitctl shell --as`), which jit sees.
    parse_str(&format!(
        "{}\n[[account]]\nname = \"postgres\"\nresource = \"sudo\"\n",
        MINIMAL.replace("name = \"sudo\"", &format!("{unused}\nprivileged = true"))
    ))
    .unwrap();
}

#[test]
fn denials_have_defaults_and_are_read() {
    let d = parse_str(MINIMAL).unwrap().denials;
    assert_eq!(
        (
            d.window.0,
            d.alert_after,
            d.alert_window.0,
            d.max_tracked.get()
        ),
        (Duration::from_secs(600), 10, Duration::from_secs(600), 1024)
    );
    let d = parse_str(&format!(
        "{MINIMAL}\n[denials]\nwindow = \"1m\"\nalert_after = 0\nalert_window = \"1h\"\nmax_tracked = 8\n"
    ))
    .unwrap()
    .denials;
    assert_eq!(
        d.policy(),
        crate::core::denials::DenialPolicy {
            window: 60,
            alert_after: 0,
            alert_window: 3600,
            max_tracked: 8,
        }
    );
    let err = error_of(&format!("{MINIMAL}\n[denials]\nmax_tracked = 0\n"));
    assert!(err.starts_with("jitd.toml:11:15:"), "{err}");
}

#[test]
fn report_slas_default_per_route_and_the_file_overrides_them() {
    let sla = |config: &Config, route: &str| config.reports.sla.get(route).map(|d| d.as_secs());
    let defaults = parse_str(MINIMAL).unwrap();
    for (route, secs) in DEFAULT_SLA {
        assert_eq!(sla(&defaults, route.as_str()), Some(secs), "{route:?}");
    }
    let text = format!("{MINIMAL}\n[reports.sla]\nowner = \"30m\"\nauto = \"10s\"\n");
    let config = parse_str(&text).unwrap();
    assert_eq!(sla(&config, "owner"), Some(1800));
    assert_eq!(sla(&config, "auto"), Some(10));
    assert_eq!(sla(&config, "dual"), Some(8 * 3600));
}

#[test]
fn report_sla_errors_have_positions() {
    let sla = |body: &str| format!("{MINIMAL}\n[reports.sla]\n{body}\n");
    let cases = [
        (
            sla("polcy = \"1h\""),
            "jitd.toml:11:1: unknown route 'polcy' in [reports.sla]; the routes are auto, policy, owner, dual, break_glass, vendor",
        ),
        (sla("owner = \"soon\""), "jitd.toml:11:9: 'soon' is not a duration"),
        (sla("owner = \"0s\""), "jitd.toml:11:9: durations must be at least 1s"),
        (sla("owner = 5"), "jitd.toml:11:9: invalid type"),
        (
            format!("{MINIMAL}\n[reports]\nsla_owner = \"1h\"\n"),
            "jitd.toml:11:1: unknown field `sla_owner`",
        ),
    ];
    for (text, want) in cases {
        let err = error_of(&text);
        assert!(err.starts_with(want), "{err}\nwanted: {want}");
    }
}

#[test]
fn oncall_schedules_name_absolute_files() {
    let config = parse_str(&format!(
        "{MINIMAL}\n[oncall.primary]\nfile = \"/etc/jit/oncall/primary.shifts\"\n\
         [oncall.db-team]\nfile = \"/srv/rota/db.shifts\"\n"
    ))
    .unwrap();
    assert_eq!(
        config.oncall["primary"].file,
        Path::new("/etc/jit/oncall/primary.shifts")
    );
    assert_eq!(config.oncall.len(), 2);
    assert!(parse_str(MINIMAL).unwrap().oncall.is_empty());
}

#[test]
fn oncall_errors_point_at_the_name_or_the_file() {
    let line = MINIMAL.lines().count() + 3;
    for (section, expected) in [
        (
            "[oncall.primary]\nfile = \"oncall/primary.shifts\"",
            format!("jitd.toml:{line}:8: [oncall.primary] file must be an absolute path"),
        ),
        (
            "[oncall.primary]\nfile = \"/etc/jit/../primary.shifts\"",
            format!("jitd.toml:{line}:8: [oncall.primary] file must name a file without '.', '..' or a trailing '/'"),
        ),
        (
            "[oncall.primary]\nfile = \"/etc/jit/oncall/\"",
            format!("jitd.toml:{line}:8: [oncall.primary] file must name a file without"),
        ),
        (
            "[oncall.Primary]\nfile = \"/etc/jit/oncall/primary.shifts\"",
            format!("jitd.toml:{}:9: schedule name 'Primary' must be", line - 1),
        ),
        (
            "[oncall.primary]\nfile = \"/etc/jit/oncall/primary.shifts\"\nusers = []",
            format!("jitd.toml:{}:1: unknown field `users`", line + 1),
        ),
        (
            "[oncall.primary]\n",
            format!("jitd.toml:{}:1: missing field `file`", line - 1),
        ),
    ] {
        let err = error_of(&format!("{MINIMAL}\n{section}\n"));
        assert!(err.starts_with(&expected), "{err}\nwant: {expected}");
    }
}

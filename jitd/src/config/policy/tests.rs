//! `[[policy]]` as the config file writes it: what is accepted, and each
//! refusal at its `file:line:col`.

use std::path::Path;
use std::time::Duration;

use crate::config::parse;
use crate::core::policy::{Action, Told};

const BASE: &str = r#"[roles]
manager = ["group:jit-managers"]
security = ["user:sam"]

[[resource]]
name = "sudo"
eligible = ["group:admins"]
owners = ["user:olga"]

[[resource]]
name = "logs"
eligible = ["group:admins"]

[[resource]]
name = "portal"
eligible = ["group:admins"]
vendors = true
"#;

/// BASE has 17 lines: a rule's `[[policy]]` header is line 18.
fn with_rule(rule: &str) -> String {
    format!("{BASE}[[policy]]\n{rule}")
}

fn error_of(text: &str) -> String {
    parse(text, Path::new("jitd.toml")).unwrap_err().to_string()
}

#[test]
fn a_full_rule_is_read_in_file_order() {
    let text = with_rule(
        r#"name = "night"
users = ["alice"]
groups = ["sre"]
resources = ["sudo", "logs"]
max_duration = "30m"
days = ["fri", "sat"]
hours = "22:00-06:00"
timezone = "Europe/Berlin"
ticket = "INC-[0-9]+"
action = "approve"

[[policy]]
name = "day"
groups = ["sre"]
resources = ["sudo"]
max_duration = "1h"
action = "lower"
notify = ["security"]

[policy_limits]
risk_ceiling = 60
"#,
    );
    let config = parse(&text, Path::new("jitd.toml")).unwrap();
    let p = &config.policy;
    assert_eq!(p.risk_ceiling, 60);
    let names: Vec<&str> = p.rules().iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["night", "day"]);
    let night = p.rule("night").unwrap();
    assert_eq!(night.resources, ["sudo", "logs"]);
    assert_eq!(night.max_duration, Duration::from_secs(1800));
    assert_eq!(night.action, Action::Approve);
    assert_eq!(night.notify, [Told::Owners, Told::Security], "the default");
    let w = night.window.as_ref().unwrap();
    assert_eq!(
        w.describe(p.zone_name(w.zone)),
        "fri,sat 22:00-06:00 Europe/Berlin"
    );
    assert_eq!(night.ticket.as_ref().unwrap().source, "INC-[0-9]+");
    let day = p.rule("day").unwrap();
    assert_eq!(
        (day.action, day.notify.as_slice()),
        (Action::Lower, &[Told::Security][..])
    );
    assert!(day.window.is_none());
}

#[test]
fn no_rules_and_the_default_ceiling() {
    let config = parse(BASE, Path::new("jitd.toml")).unwrap();
    assert!(config.policy.rules().is_empty());
    assert_eq!(config.policy.risk_ceiling, 70);
}

const GOOD: &str = "resources = [\"sudo\"]\nmax_duration = \"30m\"\naction = \"approve\"\n";

#[test]
fn every_mistake_is_refused_where_it_is() {
    #[rustfmt::skip]
    let cases: &[(String, &str)] = &[
        (with_rule(&format!("name = \"a\"\n{GOOD}")), "19:8: policy 'a' names nobody: give users, groups or oncall"),
        (with_rule(&format!("name = \"A b\"\nusers = [\"alice\"]\n{GOOD}")), "19:8: policy name 'A b' must be"),
        (with_rule(&format!("name = \"a\"\nusers = [\"alice\"]\n{GOOD}\n[[policy]]\nname = \"a\"\nusers = [\"bob\"]\n{GOOD}")), "26:8: policy 'a' is defined twice"),
        (with_rule(&format!("name = \"a\"\nusers = [\"al/ice\"]\n{GOOD}")), "20:9: 'al/ice' is not a valid account name"),
        (with_rule("name = \"a\"\nusers = [\"alice\"]\nresources = []\nmax_duration = \"30m\"\naction = \"approve\"\n"), "21:13: policy 'a' names no resource"),
        (with_rule("name = \"a\"\nusers = [\"alice\"]\nresources = [\"sudo\", \"db\"]\nmax_duration = \"30m\"\naction = \"approve\"\n"), "21:22: policy 'a': resource 'db' is not a [[resource]]"),
        (with_rule("name = \"a\"\nusers = [\"alice\"]\nresources = [\"sudo\", \"sudo\"]\nmax_duration = \"30m\"\naction = \"approve\"\n"), "21:22: policy 'a': resource 'sudo' is listed twice"),
        (with_rule("name = \"a\"\nusers = [\"alice\"]\nresources = [\"portal\"]\nmax_duration = \"30m\"\naction = \"approve\"\n"), "21:14: policy 'a': resource 'portal' is for vendors"),
        (with_rule("name = \"a\"\nusers = [\"alice\"]\nresources = [\"logs\"]\nmax_duration = \"30m\"\naction = \"lower\"\n"), "21:14: policy 'a' lowers dual to owner, but resource 'logs' has no owners"),
        (with_rule("name = \"a\"\nusers = [\"alice\"]\nresources = [\"sudo\"]\nmax_duration = \"30m\"\naction = \"allow\"\n"), "23:10: unknown variant `allow`"),
        (with_rule("name = \"a\"\nusers = [\"alice\"]\nresources = [\"sudo\"]\nmax_duration = \"soon\"\naction = \"approve\"\n"), "22:16: 'soon' is not a duration"),
        (with_rule(&format!("name = \"a\"\noncall = \"primary\"\n{GOOD}")), "20:10: policy 'a': no on-call schedule named 'primary'"),
        (with_rule(&format!("name = \"a\"\nusers = [\"alice\"]\n{GOOD}days = [\"mon\", \"fri\"]\n")), "19:8: policy 'a' has days or hours: give its timezone"),
        (with_rule(&format!("name = \"a\"\nusers = [\"alice\"]\n{GOOD}timezone = \"UTC\"\n")), "24:12: policy 'a': timezone without days or hours means nothing"),
        (with_rule(&format!("name = \"a\"\nusers = [\"alice\"]\n{GOOD}hours = \"22:00-06:00\"\ntimezone = \"Mars/Olympus\"\n")), "25:12: policy 'a': unknown time zone 'Mars/Olympus'"),
        (with_rule(&format!("name = \"a\"\nusers = [\"alice\"]\n{GOOD}hours = \"22-06\"\ntimezone = \"UTC\"\n")), "24:9: policy 'a': '22-06' is not a span"),
        (with_rule(&format!("name = \"a\"\nusers = [\"alice\"]\n{GOOD}days = [\"mon\", \"funday\"]\ntimezone = \"UTC\"\n")), "24:16: policy 'a': 'funday' is not a day"),
        (with_rule(&format!("name = \"a\"\nusers = [\"alice\"]\n{GOOD}days = [\"mon\", \"mon\"]\ntimezone = \"UTC\"\n")), "24:16: policy 'a': day 'mon' is listed twice"),
        (with_rule(&format!("name = \"a\"\nusers = [\"alice\"]\n{GOOD}ticket = \"INC-(\"\n")), "24:10: policy 'a': ticket is not a valid pattern"),
        (with_rule(&format!("name = \"a\"\nusers = [\"alice\"]\n{GOOD}notify = [\"everyone\"]\n")), "24:11: unknown variant `everyone`"),
        (with_rule(&format!("name = \"a\"\nusers = [\"alice\"]\n{GOOD}colour = \"red\"\n")), "24:1: unknown field `colour`"),
        (format!("{BASE}[policy_limits]\nrisk_ceiling = 0\n"), "19:16: [policy_limits] risk_ceiling is between 1 and 100"),
        (format!("{BASE}[policy_limits]\nrisk_ceiling = 101\n"), "19:16: [policy_limits] risk_ceiling is between 1 and 100"),
    ];
    let wrong: Vec<String> = cases
        .iter()
        .map(|(text, want)| (error_of(text), want))
        .filter(|(got, want)| !got.starts_with(&format!("jitd.toml:{want}")))
        .map(|(got, want)| format!("want {want:?}\n got {got:?}"))
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// A rule may name an `[oncall.NAME]` schedule, before or after it in the
/// file; a name no `[oncall]` table defines is refused where it is written.
#[test]
fn oncall_names_a_configured_schedule() {
    let schedule = "[oncall.primary]\nfile = \"/etc/jit/oncall/primary.shifts\"\n";
    let rule = format!("name = \"night\"\noncall = \"primary\"\n{GOOD}");
    for text in [
        format!("{}\n{schedule}", with_rule(&rule)),
        format!("{schedule}{}", with_rule(&rule)),
    ] {
        let config = parse(&text, Path::new("jitd.toml")).unwrap();
        let night = config.policy.rule("night").unwrap();
        assert_eq!(night.oncall.as_deref(), Some("primary"));
        assert!(night.users.is_empty() && night.groups.is_empty());
    }
    let other = format!(
        "{}\n{schedule}",
        with_rule(&format!("name = \"night\"\noncall = \"secondary\"\n{GOOD}"))
    );
    assert!(
        error_of(&other)
            .starts_with("jitd.toml:20:10: policy 'night': no on-call schedule named 'secondary'"),
        "{}",
        error_of(&other)
    );
}

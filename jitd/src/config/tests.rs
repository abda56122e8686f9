use super::*;

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

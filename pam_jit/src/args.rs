//! Module arguments from the PAM stack line, the only configuration pam_jit
//! reads (never the environment: under sudo it belongs to the caller).

use std::time::Duration;

use crate::client::{PRIVATE_SOCKET, SYSTEM_BUS};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
const MAX_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Args {
    pub resource: String,
    pub timeout: Duration,
    /// Path of the bus socket.
    pub bus: String,
    /// Path of jitd's private socket, tried first.
    pub socket: String,
    /// Allow, but log what enforcement would have denied.
    pub audit_only: bool,
    pub debug: bool,
    /// Do not explain denials to the user.
    pub quiet: bool,
    /// Holders the gate lets through without a grant (`exempt=`; root
    /// unless the admin names others). Everyone else is gated.
    pub exempt: Vec<String>,
    /// The PAM services the gate applies to (`services=`); empty: all. A
    /// shared stack (`common-account`) serves cron, login and the rest too.
    pub services: Vec<String>,
    /// The accounts whose logins this line gates (`targets=`, PAM_USER);
    /// empty: every login. For managed accounts (W3): a line in `su`,
    /// `login` or `sshd` that gates logins as `postgres` only.
    pub targets: Vec<String>,
}

pub fn parse<'a>(args: impl IntoIterator<Item = &'a str>) -> Result<Args, String> {
    let mut out = Args {
        resource: String::new(),
        timeout: DEFAULT_TIMEOUT,
        bus: SYSTEM_BUS.to_owned(),
        socket: PRIVATE_SOCKET.to_owned(),
        audit_only: false,
        debug: false,
        quiet: false,
        exempt: vec!["root".to_owned()],
        services: Vec::new(),
        targets: Vec::new(),
    };
    for arg in args {
        match arg.split_once('=') {
            Some(("resource", name)) if valid_resource(name) => out.resource = name.to_owned(),
            Some(("resource", name)) => return Err(format!("invalid resource name '{name}'")),
            Some(("timeout", text)) => out.timeout = parse_timeout(text)?,
            Some(("bus", address)) => out.bus = parse_bus(address)?,
            Some(("socket", path)) => out.socket = parse_socket(path)?,
            Some(("exempt", users)) => out.exempt = parse_names("exempt", users)?,
            Some(("services", names)) => out.services = parse_names("services", names)?,
            Some(("targets", names)) => out.targets = parse_names("targets", names)?,
            None if arg == "audit_only" => out.audit_only = true,
            None if arg == "debug" => out.debug = true,
            None if arg == "quiet" => out.quiet = true,
            _ => return Err(format!("unknown argument '{arg}'")),
        }
    }
    if out.resource.is_empty() {
        return Err("missing resource=NAME".into());
    }
    Ok(out)
}

/// A comma-separated list of user or service names; `exempt=` (empty)
/// exempts nobody, not even root.
fn parse_names(key: &str, list: &str) -> Result<Vec<String>, String> {
    let names: Vec<String> = list
        .split(',')
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect();
    match names.iter().find(|n| !valid_name(n)) {
        Some(bad) => Err(format!(
            "invalid name '{bad}' in {key}=; use {key}=name1,name2"
        )),
        None if key == "services" && names.is_empty() => {
            Err("services= needs at least one PAM service name".into())
        }
        None if key == "targets" && names.is_empty() => {
            Err("targets= needs at least one account name".into())
        }
        None => Ok(names),
    }
}

/// What useradd and PAM service file names allow, and nothing that could
/// be read as another argument.
fn valid_name(name: &str) -> bool {
    name.len() <= 256
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@' | b'$'))
}

fn valid_resource(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
        })
}

/// `2s`, `500ms` or a bare number of seconds.
fn parse_timeout(text: &str) -> Result<Duration, String> {
    let bad = || format!("invalid timeout '{text}'; use e.g. timeout=2s or timeout=500ms");
    let (number, millis_per_unit) = if let Some(n) = text.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1000)
    } else {
        (text, 1000)
    };
    let n: u64 = number.parse().map_err(|_| bad())?;
    let timeout = Duration::from_millis(n.checked_mul(millis_per_unit).ok_or_else(bad)?);
    if timeout.is_zero() || timeout > MAX_TIMEOUT {
        return Err(format!("timeout '{text}' must be between 1ms and 30s"));
    }
    Ok(timeout)
}

/// Only `unix:path=/absolute/path` addresses.
fn parse_bus(address: &str) -> Result<String, String> {
    match address.strip_prefix("unix:path=") {
        Some(path) if path.starts_with('/') && !path.contains(',') => Ok(path.to_owned()),
        _ => Err(format!(
            "unsupported bus address '{address}'; use bus=unix:path=/absolute/path"
        )),
    }
}

fn parse_socket(path: &str) -> Result<String, String> {
    if path.starts_with('/') {
        Ok(path.to_owned())
    } else {
        Err(format!(
            "invalid socket '{path}'; use socket=/absolute/path (jitd's private socket)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_flags() {
        let a = parse(["resource=sudo"]).unwrap();
        assert_eq!(a.timeout, DEFAULT_TIMEOUT);
        assert_eq!(a.bus, SYSTEM_BUS);
        assert_eq!(a.socket, PRIVATE_SOCKET);
        assert!(!a.audit_only && !a.debug && !a.quiet);
        assert_eq!(a.exempt, ["root"]);
        assert!(a.services.is_empty());
        let a = parse([
            "resource=sudo",
            "exempt=root,nagios",
            "services=sudo,sudo-i",
        ])
        .unwrap();
        assert_eq!(a.exempt, ["root", "nagios"]);
        assert_eq!(a.services, ["sudo", "sudo-i"]);
        assert!(parse(["resource=sudo", "exempt="])
            .unwrap()
            .exempt
            .is_empty());
        let a = parse([
            "resource=ssh",
            "timeout=500ms",
            "bus=unix:path=/tmp/b",
            "socket=/tmp/s",
            "audit_only",
            "debug",
            "quiet",
        ])
        .unwrap();
        assert_eq!(a.resource, "ssh");
        assert_eq!(a.timeout, Duration::from_millis(500));
        assert_eq!(a.bus, "/tmp/b");
        assert_eq!(a.socket, "/tmp/s");
        assert!(a.audit_only && a.debug && a.quiet);
        assert_eq!(
            parse(["resource=x", "timeout=3"]).unwrap().timeout,
            Duration::from_secs(3)
        );
    }

    #[test]
    fn bad_arguments_are_refused_with_a_reason() {
        let cases: &[(&[&str], &str)] = &[
            (&[], "missing resource"),
            (&["resource="], "invalid resource"),
            (&["resource=../etc"], "invalid resource"),
            (&["resource=sudo", "timeout=0"], "between"),
            (&["resource=sudo", "timeout=1h"], "invalid timeout"),
            (
                &["resource=sudo", "timeout=99999999999999999999s"],
                "invalid timeout",
            ),
            (&["resource=sudo", "timeout=31s"], "between"),
            (&["resource=sudo", "bus=tcp:host=x"], "unsupported bus"),
            (
                &["resource=sudo", "bus=unix:path=relative"],
                "unsupported bus",
            ),
            (&["resource=sudo", "socket=run/x"], "invalid socket"),
            (&["resource=sudo", "fail_open"], "unknown argument"),
            (&["resource=sudo", "debug=1"], "unknown argument"),
            (&["resource=sudo", "exempt=ro ot"], "invalid name"),
            (&["resource=sudo", "services="], "at least one"),
            (&["resource=sudo", "services=sudo;x"], "invalid name"),
            (&["resource=dba", "targets="], "at least one account"),
            (&["resource=dba", "targets=post gres"], "invalid name"),
        ];
        for (args, want) in cases {
            let err = parse(args.iter().copied()).unwrap_err();
            assert!(err.contains(want), "{args:?}: {err}");
        }
    }
}

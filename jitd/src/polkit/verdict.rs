//! The gate's decision on one authorization check, from the `[polkit]`
//! table, the subject's user, the action's default and, last, jitd.

use std::fmt;

use super::actions::Implicit;
use crate::config::PolkitConfig;

/// Why a check passes to the next rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pass {
    /// `[polkit] gate = false`.
    GateOff,
    /// Named in `[polkit] exempt`.
    Exempt,
    /// The action's default is open to users who are no admins.
    NotAdmin(Implicit),
    Granted {
        grant: u64,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The later rules and the action's defaults decide, as without jit.
    Pass(Pass),
    /// polkit's NO, whatever a later rule would answer.
    Refuse {
        resource: String,
        pending: Option<u64>,
    },
}

/// jitd's answer to CheckGrant: (active, grant, expires_at, pending).
pub type GrantState = (bool, u64, i64, u64);

/// Decides in the order of cost: nothing is read that an earlier step
/// makes moot. `implicit` is the action's default for the subject's
/// session (`None`: no policy file defines it, which counts as admin);
/// `ask_jitd` asks about the user's grant for `config.resource`.
pub fn decide<E>(
    config: &PolkitConfig,
    user: &str,
    implicit: impl FnOnce() -> Result<Option<Implicit>, E>,
    ask_jitd: impl FnOnce() -> Result<GrantState, E>,
) -> Result<Verdict, E> {
    if !config.gate {
        return Ok(Verdict::Pass(Pass::GateOff));
    }
    if config.is_exempt(user) {
        return Ok(Verdict::Pass(Pass::Exempt));
    }
    if let Some(open) = implicit()?.filter(|i| !i.needs_admin()) {
        return Ok(Verdict::Pass(Pass::NotAdmin(open)));
    }
    let (active, grant, _expires_at, pending) = ask_jitd()?;
    Ok(if active {
        Verdict::Pass(Pass::Granted { grant })
    } else {
        Verdict::Refuse {
            resource: config.resource.clone(),
            pending: (pending != 0).then_some(pending),
        }
    })
}

/// One line for the rule: it passes on `pass:` alone and logs the rest.
impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Pass(Pass::GateOff) => write!(f, "pass: the polkit gate is off"),
            Verdict::Pass(Pass::Exempt) => write!(f, "pass: exempt"),
            Verdict::Pass(Pass::NotAdmin(implicit)) => {
                write!(f, "pass: not an admin action ({})", implicit.as_str())
            }
            Verdict::Pass(Pass::Granted { grant }) => write!(f, "pass: grant {grant}"),
            Verdict::Refuse { resource, pending } => {
                write!(f, "refuse: no active grant for '{resource}'")?;
                match pending {
                    Some(id) => write!(f, " (request {id} is pending)"),
                    None => Ok(()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(on: bool) -> PolkitConfig {
        PolkitConfig {
            gate: on,
            exempt: vec!["root".into(), "nagios".into()],
            ..PolkitConfig::default()
        }
    }

    /// `decide` with answers that record whether they were asked.
    fn run(
        config: &PolkitConfig,
        user: &str,
        implicit: Option<Implicit>,
        grant: GrantState,
    ) -> (Verdict, bool, bool) {
        let (mut read_actions, mut asked_jitd) = (false, false);
        let verdict = decide::<()>(
            config,
            user,
            || {
                read_actions = true;
                Ok(implicit)
            },
            || {
                asked_jitd = true;
                Ok(grant)
            },
        )
        .unwrap();
        (verdict, read_actions, asked_jitd)
    }

    const NONE: GrantState = (false, 0, 0, 0);
    const GRANTED: GrantState = (true, 12, 1_700_000_000, 0);
    const PENDING: GrantState = (false, 0, 0, 13);

    #[test]
    fn the_table() {
        let refused = |pending| Verdict::Refuse {
            resource: "sudo".into(),
            pending,
        };
        let admin = Some(Implicit::AuthAdmin);
        for (config, user, implicit, grant, want, reads, asks) in [
            // Off: nothing read, nobody asked.
            (
                gate(false),
                "alice",
                admin,
                NONE,
                Verdict::Pass(Pass::GateOff),
                false,
                false,
            ),
            (
                gate(true),
                "nagios",
                admin,
                NONE,
                Verdict::Pass(Pass::Exempt),
                false,
                false,
            ),
            // Open to anyone anyway: jitd is not asked.
            (
                gate(true),
                "alice",
                Some(Implicit::Yes),
                NONE,
                Verdict::Pass(Pass::NotAdmin(Implicit::Yes)),
                true,
                false,
            ),
            (
                gate(true),
                "alice",
                Some(Implicit::AuthSelfKeep),
                NONE,
                Verdict::Pass(Pass::NotAdmin(Implicit::AuthSelfKeep)),
                true,
                false,
            ),
            (
                gate(true),
                "alice",
                admin,
                GRANTED,
                Verdict::Pass(Pass::Granted { grant: 12 }),
                true,
                true,
            ),
            (gate(true), "alice", admin, NONE, refused(None), true, true),
            (
                gate(true),
                "alice",
                admin,
                PENDING,
                refused(Some(13)),
                true,
                true,
            ),
            // A rule could turn "no" into yes for a group: admin.
            (
                gate(true),
                "alice",
                Some(Implicit::No),
                NONE,
                refused(None),
                true,
                true,
            ),
            // An action no policy file defines counts as admin.
            (gate(true), "alice", None, NONE, refused(None), true, true),
            (
                gate(true),
                "alice",
                None,
                GRANTED,
                Verdict::Pass(Pass::Granted { grant: 12 }),
                true,
                true,
            ),
        ] {
            let got = run(&config, user, implicit, grant);
            assert_eq!(
                got,
                (want, reads, asks),
                "{user} {implicit:?} {grant:?} gate {}",
                config.gate
            );
        }
    }

    #[test]
    fn failures_are_errors_never_verdicts() {
        let config = gate(true);
        let failed = decide(&config, "alice", || Err("actions"), || Ok(GRANTED));
        assert_eq!(failed, Err("actions"));
        let failed = decide(&config, "alice", || Ok(None), || Err("jitd down"));
        assert_eq!(failed, Err("jitd down"));
    }

    #[test]
    fn only_passes_start_with_pass() {
        let lines = [
            Verdict::Pass(Pass::GateOff),
            Verdict::Pass(Pass::Exempt),
            Verdict::Pass(Pass::NotAdmin(Implicit::Yes)),
            Verdict::Pass(Pass::Granted { grant: 3 }),
            Verdict::Refuse {
                resource: "sudo".into(),
                pending: Some(4),
            },
        ]
        .map(|v| v.to_string());
        assert!(
            lines[..4].iter().all(|l| l.starts_with("pass: ")),
            "{lines:?}"
        );
        assert_eq!(
            lines[4],
            "refuse: no active grant for 'sudo' (request 4 is pending)"
        );
    }
}

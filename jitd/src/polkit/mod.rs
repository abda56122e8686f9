//! The polkit gate: pkexec, run0, `machinectl shell` and every other admin
//! action polkit authorizes need an active grant, as sudo does.
//!
//! PAM cannot gate these: polkit's agent authenticates an admin identity,
//! and rules that answer `yes` skip PAM altogether. So the package's rule,
//! `packaging/polkit/20-jit.rules`, runs before the distribution's and asks
//! `jit-polkit-check USER ACTION SESSION` ([`check`]) about every check;
//! anything but a `pass:` line, a failure included, is polkit's NO.
//!
//! - [`verdict`]: the decision (gate off, exempt, not an admin action,
//!   granted; else refused).
//! - [`actions`]: which actions are admin actions (their defaults).
//! - [`asker`]: jitd's side: polkitd's account may ask about others' grants.

pub mod actions;
pub(crate) mod asker;
pub(crate) mod verdict;

use nix::unistd::User;
use std::path::Path;
use std::time::Duration;
use thiserror::Error;

use crate::cli::client::{connect_fixed, failure};
use crate::config::{polkit as polkit_config, ConfigError};
use actions::{ActionsError, SessionKind};
use verdict::{GrantState, Verdict};

/// jitd's answer must come well within polkit's 10 s for a helper: polkitd
/// answers no other check meanwhile.
const JITD_TIMEOUT: Duration = Duration::from_secs(3);

/// One authorization check, as the rule describes it.
pub struct Check<'a> {
    /// jitd's configuration file (its `[polkit]` table).
    pub config: &'a Path,
    /// Where the action definitions are ([`actions::ACTIONS_DIR`]).
    pub actions: &'a Path,
    /// polkit's `subject.user`.
    pub user: &'a str,
    pub action: &'a str,
    pub session: SessionKind,
}

#[derive(Debug, Error)]
pub enum CheckError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Actions(#[from] ActionsError),
    #[error("user '{0}' has no account")]
    UnknownUser(String),
    #[error("looking up user '{user}': {source}")]
    Lookup { user: String, source: nix::Error },
    #[error("{0}")]
    Jitd(String),
    #[error("jitd did not answer within {}s", JITD_TIMEOUT.as_secs())]
    Timeout,
}

pub fn check(request: &Check<'_>) -> Result<Verdict, CheckError> {
    let implicit =
        || actions::implicit(request.actions, request.action, request.session).map_err(From::from);
    let config = match polkit_config::load(request.config) {
        Ok(config) => config,
        // Without its settings the gate cannot tell who is exempt or whether
        // it is on: it refuses what needs an admin, and only that.
        Err(e) => {
            return match implicit()? {
                Some(open) if !open.needs_admin() => {
                    Ok(Verdict::Pass(verdict::Pass::NotAdmin(open)))
                }
                _ => Err(e.into()),
            }
        }
    };
    verdict::decide(&config, request.user, implicit, || {
        ask_jitd(request.user, &config.resource)
    })
}

/// jitd's CheckGrant about `user`'s grant for `resource`, on the system
/// bus at its fixed address, from jitd only if root owns its name. jitd
/// answers by who is asking (polkitd's account, from the bus), never by
/// anything said here.
fn ask_jitd(user: &str, resource: &str) -> Result<GrantState, CheckError> {
    let uid = User::from_name(user)
        .map_err(|source| CheckError::Lookup {
            user: user.to_owned(),
            source,
        })?
        .ok_or_else(|| CheckError::UnknownUser(user.to_owned()))?
        .uid
        .as_raw();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CheckError::Jitd(format!("cannot start: {e}")))?;
    runtime.block_on(async {
        let call = async {
            let jitd = connect_fixed()
                .await
                .map_err(|e| CheckError::Jitd(e.message))?;
            jitd.check_grant(uid, resource)
                .await
                .map_err(|e| CheckError::Jitd(failure(e).message))
        };
        tokio::time::timeout(JITD_TIMEOUT, call)
            .await
            .map_err(|_| CheckError::Timeout)?
    })
}

//! jitd's side of the gate: while it is on, the account polkitd runs as
//! (`[polkit] asker`) may ask CheckGrant about anyone's grant for
//! `[polkit] resource`; the bus names the caller, as for every call.
//! Resolved once, at start, as the rest of the configuration is read.

use nix::unistd::User;
use thiserror::Error;

use crate::config::PolkitConfig;
use crate::core::model::Uid;

/// Who, besides root and the holder, may ask about a grant, and about which.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolkitAsker {
    pub uid: Uid,
    pub resource: String,
}

impl PolkitAsker {
    pub fn may_ask(&self, caller: Uid, resource: &str) -> bool {
        self.uid == caller && self.resource == resource
    }
}

/// The gate is on but nobody can ask: polkit then refuses every gated
/// user's admin actions (the helper fails), until jitd restarts.
#[derive(Clone, Debug, Error)]
#[error(
    "[polkit] gate is on, but its asker '{name}' {problem}: admin actions through polkit \
     are refused to every gated user until jitd is restarted with the account in place"
)]
pub struct AskerMissing {
    name: String,
    problem: String,
}

/// The asker while the gate is on; `None` while it is off.
pub fn resolve(config: &PolkitConfig) -> Result<Option<PolkitAsker>, AskerMissing> {
    if !config.gate {
        return Ok(None);
    }
    let missing = |problem: String| AskerMissing {
        name: config.asker.clone(),
        problem,
    };
    match User::from_name(&config.asker) {
        Ok(Some(user)) => Ok(Some(PolkitAsker {
            uid: user.uid.as_raw(),
            resource: config.resource.clone(),
        })),
        Ok(None) => Err(missing("has no account".into())),
        Err(e) => Err(missing(format!("could not be looked up ({e})"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_nobody_asks_on_the_account_does() {
        let mut config = PolkitConfig {
            asker: "root".into(),
            ..PolkitConfig::default()
        };
        assert_eq!(resolve(&config).unwrap(), None);
        config.gate = true;
        let asker = resolve(&config).unwrap().unwrap();
        assert_eq!(asker.uid, 0);
        assert!(asker.may_ask(0, "sudo") && !asker.may_ask(0, "db") && !asker.may_ask(1, "sudo"));

        config.asker = "no-such-account-here".into();
        let err = resolve(&config).unwrap_err().to_string();
        assert!(
            err.contains("'no-such-account-here' has no account"),
            "{err}"
        );
    }
}

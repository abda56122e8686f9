//! `[polkit]`: the polkit gate. jit-polkit-check, which polkitd runs for
//! each authorization check (`20-jit.rules`), reads this table and nothing
//! else of the file ([`load`]); jitd reads which account may ask it about
//! other users' grants.

use serde::{de, Deserialize, Deserializer};
use std::path::Path;
use toml::Spanned;

use super::{invalid, valid_account_name, ConfigError};

/// A user name as `exempt` and `asker` take it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountName(pub String);

impl<'de> Deserialize<'de> for AccountName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        if !valid_account_name(&name) {
            return Err(de::Error::custom(format!(
                "'{name}' is not a valid account name"
            )));
        }
        Ok(AccountName(name))
    }
}

/// The table as written: spans for the checks against the resources.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawPolkit {
    gate: bool,
    resource: Spanned<String>,
    exempt: Vec<AccountName>,
    asker: AccountName,
}

impl Default for RawPolkit {
    fn default() -> Self {
        RawPolkit {
            gate: false,
            resource: Spanned::new(0..0, "sudo".into()),
            exempt: vec![AccountName("root".into())],
            asker: AccountName("polkitd".into()),
        }
    }
}

impl RawPolkit {
    /// The gate needs a resource to ask about: one jitd knows (checked by
    /// jitd, which has the resources; the helper reads this table alone).
    pub(super) fn resolve(
        self,
        resources: &[String],
    ) -> Result<PolkitConfig, (std::ops::Range<usize>, String)> {
        if self.gate && !resources.contains(self.resource.get_ref()) {
            return Err((
                self.resource.span(),
                format!(
                    "[polkit] resource '{}' is not a [[resource]]",
                    self.resource.get_ref()
                ),
            ));
        }
        Ok(self.into_config())
    }

    fn into_config(self) -> PolkitConfig {
        PolkitConfig {
            gate: self.gate,
            resource: self.resource.into_inner(),
            exempt: self.exempt.into_iter().map(|n| n.0).collect(),
            asker: self.asker.0,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolkitConfig {
    /// Off by default: gating is the admin's decision, as with the PAM profile.
    pub gate: bool,
    /// The resource whose active grant admits a gated user to admin actions.
    pub resource: String,
    /// Users never gated (pam_jit's `exempt=`).
    pub exempt: Vec<String>,
    /// The account polkitd runs as: it may ask jitd whether anyone holds
    /// `resource`, and nothing more than any other user.
    pub asker: String,
}

impl Default for PolkitConfig {
    fn default() -> Self {
        RawPolkit::default().into_config()
    }
}

impl PolkitConfig {
    pub fn is_exempt(&self, user: &str) -> bool {
        self.exempt.iter().any(|name| name == user)
    }
}

/// Only `[polkit]`: the rest of the file is jitd's business.
#[derive(Deserialize)]
struct PolkitOnly {
    #[serde(default)]
    polkit: RawPolkit,
}

/// The `[polkit]` table of the configuration at `path`, for
/// jit-polkit-check. Other tables are not looked at, beyond being TOML.
pub fn load(path: &Path) -> Result<PolkitConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let only: PolkitOnly = toml::from_str(&text)
        .map_err(|e| invalid(&text, path, e.span(), e.message().trim().to_owned()))?;
    Ok(only.polkit.into_config())
}

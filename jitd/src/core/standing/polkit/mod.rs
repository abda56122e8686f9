//! polkit's rules and local authority, read for the scan (nothing is
//! run).
//!
//! - Admin identities: whom polkit lets authenticate, with their own
//!   password, for an action that needs an administrator (pkexec). In
//!   `.rules` files they are what `polkit.addAdminRule` functions return
//!   (Debian: `unix-group:sudo`): every `unix-user:` or `unix-group:`
//!   string inside an `addAdminRule(...)` call counts, whatever condition
//!   guards its `return`. The old local authority names them in
//!   `AdminIdentities=`.
//! - Grants (`grants.rs`): `polkit.addRule` functions that answer YES or
//!   AUTH_SELF*, which let their subjects through with no administrator.

mod grants;
mod js;
#[cfg(test)]
mod tests;

use std::cmp::Ordering;

#[cfg(test)]
pub use grants::rule_grants;
pub use grants::{Answer, Grant};
use js::{closing, tokens, Token};

/// The order polkitd runs rules files in: by name, whatever their
/// directory; files of the same name all run, in the order of their paths
/// (`/etc` first, `/usr/share` last).
pub fn load_order(a: &str, b: &str) -> Ordering {
    file_name(a).cmp(file_name(b)).then_with(|| a.cmp(b))
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// An identity and the line of its file that names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// `unix-user:NAME`, `unix-group:NAME`, `unix-netgroup:NAME`.
    pub identity: String,
    pub line: usize,
}

/// What the scan reads in a `.rules` file, its text read once: the admin
/// identities its `addAdminRule` calls name, and its grants.
pub fn read_rules(text: &str) -> (Vec<Identity>, Vec<Grant>) {
    let t = tokens(text);
    (identities_in(&t), grants::grants_in(&t))
}

/// The admin identities a `.rules` file's `addAdminRule` calls name.
#[cfg(test)]
pub fn rule_identities(text: &str) -> Vec<Identity> {
    identities_in(&tokens(text))
}

fn identities_in(t: &[Token]) -> Vec<Identity> {
    let calls = (0..t.len())
        .filter(|&i| t[i].is_word("addAdminRule") && t.get(i + 1).is_some_and(|p| p.is_punct('(')))
        .map(|i| (i + 1, closing(t, i + 1).unwrap_or(t.len())));
    let mut out = Vec::new();
    for (open, close) in calls {
        out.extend(t[open..close].iter().filter_map(|token| {
            let s = token.string().filter(|s| is_identity(s))?;
            Some(Identity {
                identity: s.to_owned(),
                line: token.line,
            })
        }));
    }
    out
}

fn is_identity(s: &str) -> bool {
    ["unix-user:", "unix-group:", "unix-netgroup:"]
        .iter()
        .any(|p| s.strip_prefix(p).is_some_and(|n| !n.is_empty()))
}

/// The `AdminIdentities=` of a local authority `.conf` file (its last), if
/// it sets them.
pub fn conf_identities(text: &str) -> Option<Vec<Identity>> {
    let mut in_configuration = false;
    let mut found = None;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.starts_with('[') {
            in_configuration = line == "[Configuration]";
        } else if let (true, Some(value)) =
            (in_configuration, line.strip_prefix("AdminIdentities="))
        {
            found = Some(
                value
                    .split(';')
                    .map(str::trim)
                    .filter(|s| is_identity(s))
                    .map(|s| Identity {
                        identity: s.to_owned(),
                        line: n + 1,
                    })
                    .collect(),
            );
        }
    }
    found
}

//! `[[account]]`: managed local accounts (W3). A grant for the account's
//! resource checks its password out; the grant's end checks it in and
//! rotates it (docs/design.md, "Managed accounts").

use std::collections::HashSet;
use std::ops::Range;

use serde::{de, Deserialize, Deserializer};
use toml::Spanned;

use super::polkit::AccountName;
use super::Resource;
use crate::core::password::{CharClass, PasswordPolicy};

/// How many holders an account's password may have at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Checkout {
    /// One holder at a time: a second request is refused while the
    /// account is checked out, naming the holder and until when.
    Exclusive,
    /// Every holder works as the account at once, none sees its password;
    /// it is rotated whenever the grant it was checked out for ends (and
    /// checked out again for the oldest remaining holder).
    Shared,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAccount {
    name: Spanned<AccountName>,
    resource: Spanned<String>,
    #[serde(default = "default_checkout")]
    checkout: Checkout,
    reveal: Option<Spanned<bool>>,
    password: Option<Spanned<RawPolicy>>,
    /// Taking custody of root gives root an escrowed recovery password
    /// between grants: an explicit choice, with docs/design.md read first.
    #[serde(default)]
    root_custody: bool,
}

fn default_checkout() -> Checkout {
    Checkout::Exclusive
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawPolicy {
    length: usize,
    classes: Vec<ClassName>,
}

impl Default for RawPolicy {
    fn default() -> Self {
        let policy = PasswordPolicy::default();
        RawPolicy {
            length: policy.length,
            classes: policy.classes.into_iter().map(ClassName).collect(),
        }
    }
}

#[derive(Clone, Debug)]
struct ClassName(CharClass);

impl<'de> Deserialize<'de> for ClassName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        CharClass::ALL
            .into_iter()
            .find(|c| c.name() == name)
            .map(ClassName)
            .ok_or_else(|| {
                de::Error::custom(format!(
                    "unknown character class '{name}': use lower, upper, digit or symbol"
                ))
            })
    }
}

/// A managed account, checked against the resources.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManagedAccount {
    /// The local account (in `/etc/passwd` and `/etc/shadow`).
    pub name: String,
    /// The resource whose grants check it out.
    pub resource: String,
    pub checkout: Checkout,
    /// Whether the holder may see the password.
    pub reveal: bool,
    pub password: PasswordPolicy,
}

type Problem = (Range<usize>, String);

/// The accounts as written, checked: each names a privileged resource of
/// its own, `shared` never reveals, root only with `root_custody`.
pub(super) fn resolve(
    raw: Vec<RawAccount>,
    resources: &[Resource],
) -> Result<Vec<ManagedAccount>, Problem> {
    let (mut names, mut taken) = (HashSet::new(), HashSet::new());
    let mut accounts = Vec::with_capacity(raw.len());
    for a in raw {
        let name = a.name.get_ref().0.clone();
        let resource_name = a.resource.get_ref();
        if !names.insert(name.clone()) {
            return Err((a.name.span(), format!("account '{name}' is managed twice")));
        }
        let Some(resource) = resources.iter().find(|r| &r.name == resource_name) else {
            return Err((
                a.resource.span(),
                format!("account '{name}': resource '{resource_name}' is not a [[resource]]"),
            ));
        };
        if !resource.privileged {
            return Err((
                a.resource.span(),
                format!(
                    "account '{name}': resource '{resource_name}' must be privileged = true \
                     (working as another account is privileged access)"
                ),
            ));
        }
        if !taken.insert(resource_name.clone()) {
            return Err((
                a.resource.span(),
                format!("resource '{resource_name}' already checks out another account"),
            ));
        }
        let reveal = a.reveal.as_ref().is_some_and(|r| *r.get_ref());
        if a.checkout == Checkout::Shared && reveal {
            return Err((
                a.reveal.as_ref().map_or(a.name.span(), |r| r.span()),
                format!(
                    "account '{name}': a shared account cannot reveal its password \
                     (an earlier holder would keep a valid password until the last check-in)"
                ),
            ));
        }
        if name == "root" && !a.root_custody {
            return Err((
                a.name.span(),
                "managing root replaces root's password with an escrowed recovery password \
                 between grants: set root_custody = true once you have read how to store it \
                 (docs/design.md, \"Managed accounts\")"
                    .into(),
            ));
        }
        let password = match &a.password {
            None => PasswordPolicy::default(),
            Some(raw) => {
                let policy = PasswordPolicy {
                    length: raw.get_ref().length,
                    classes: raw.get_ref().classes.iter().map(|c| c.0).collect(),
                };
                if let Some(problem) = policy.problem() {
                    return Err((raw.span(), format!("account '{name}': {problem}")));
                }
                policy
            }
        };
        accounts.push(ManagedAccount {
            name,
            resource: resource_name.clone(),
            checkout: a.checkout,
            reveal,
            password,
        });
    }
    Ok(accounts)
}

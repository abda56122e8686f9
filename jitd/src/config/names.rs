//! Names in the config that resolve to nobody: warnings, not errors.
//!
//! A principal naming a user or group that NSS does not know is most often a
//! typo (`group:jit-secutiry`), and a role that routing needs with nobody in
//! it leaves every request on that route waiting for ever. Both are only
//! warned about: an LDAP outage during a deploy must not refuse a good file
//! (`jitd --check-config --strict` turns them into a failure for config
//! management that wants one).

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::line_col;

/// What NSS says about a name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// It exists; `members` is whether anyone is in it (always for a user).
    Known {
        members: bool,
    },
    Unknown,
    /// The lookup itself failed (a directory down): nothing can be said.
    Failed(String),
}

/// The account database the names are checked against.
pub trait Accounts {
    fn user(&self, name: &str) -> Lookup;
    fn group(&self, name: &str) -> Lookup;
    /// The uids other allocators hand out, each with where it is set
    /// (`login.defs` for useradd, `/etc/subuid` for user namespaces).
    fn other_uid_ranges(&self) -> Vec<(String, std::ops::RangeInclusive<u32>)>;
}

/// A warning about the config, as `file:line:col: warning: message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigWarning {
    pub path: PathBuf,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: warning: {}",
            self.path.display(),
            self.line,
            self.col,
            self.message
        )
    }
}

/// The parts of the file that name people, with where they are. Lenient:
/// the file has passed [`super::parse`] already.
#[derive(Deserialize)]
struct Named {
    roles: NamedRoles,
    #[serde(rename = "resource", default)]
    resources: Vec<NamedResource>,
    vendors: Option<NamedVendors>,
}

#[derive(Deserialize)]
struct NamedVendors {
    uid_min: Spanned<u32>,
    uid_max: Spanned<u32>,
}

type Principals = Spanned<Vec<Spanned<String>>>;

#[derive(Deserialize)]
struct NamedRoles {
    manager: Principals,
    security: Principals,
    auditor: Option<Principals>,
}

#[derive(Deserialize)]
struct NamedResource {
    name: String,
    owners: Option<Principals>,
    eligible: Principals,
    break_glass: Option<Principals>,
}

/// Every warning about `text` (the file at `path`, already parsed without
/// error), in the order of the file.
pub fn check(text: &str, path: &Path, accounts: &impl Accounts) -> Vec<ConfigWarning> {
    let Ok(named) = toml::from_str::<Named>(text) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    let mut warn = |span: Range<usize>, message: String| {
        let (line, col) = line_col(text, span.start);
        found.push((
            span.start,
            ConfigWarning {
                path: path.to_owned(),
                line,
                col,
                message,
            },
        ));
    };
    // Routing waits for these: the dual route for a manager and someone
    // from security, the owner route for an owner.
    let mut needed: Vec<(&Principals, String)> = vec![
        (
            &named.roles.manager,
            "role 'manager' has nobody in it: requests on the dual route would wait for ever"
                .into(),
        ),
        (
            &named.roles.security,
            "role 'security' has nobody in it: requests on the dual route would wait for ever"
                .into(),
        ),
    ];
    let mut all = vec![&named.roles.manager, &named.roles.security];
    all.extend(&named.roles.auditor);
    for resource in &named.resources {
        if let Some(owners) = &resource.owners {
            needed.push((
                owners,
                format!(
                    "resource '{}': its owners have nobody in them: requests routed to the owners would wait for ever",
                    resource.name
                ),
            ));
            all.push(owners);
        }
        all.push(&resource.eligible);
        all.extend(&resource.break_glass);
    }
    for principal in all.iter().flat_map(|list| list.get_ref()) {
        let (kind, name) = principal.get_ref().split_once(':').unwrap_or_default();
        let lookup = look_up(accounts, kind, name);
        match lookup {
            Lookup::Unknown => warn(
                principal.span(),
                format!("{kind} '{name}' does not exist (NSS knows no such {kind})"),
            ),
            Lookup::Failed(e) => warn(
                principal.span(),
                format!("cannot look up {kind} '{name}': {e}"),
            ),
            Lookup::Known { .. } => {}
        }
    }
    for (list, message) in needed {
        let lookups: Vec<Lookup> = list
            .get_ref()
            .iter()
            .map(|p| {
                let (kind, name) = p.get_ref().split_once(':').unwrap_or_default();
                look_up(accounts, kind, name)
            })
            .collect();
        // A failed lookup might have been the member: say nothing then.
        let undecided = lookups.iter().any(|l| matches!(l, Lookup::Failed(_)));
        let anyone = lookups
            .iter()
            .any(|l| matches!(l, Lookup::Known { members: true }));
        if !anyone && !undecided {
            warn(list.span(), message);
        }
    }
    // A vendor's uid another allocator can hand out would let an admin's
    // useradd, or a user namespace, act as that vendor.
    if let Some(vendors) = &named.vendors {
        let (min, max) = (*vendors.uid_min.get_ref(), *vendors.uid_max.get_ref());
        for (source, range) in accounts.other_uid_ranges() {
            if min <= *range.end() && *range.start() <= max {
                warn(
                    vendors.uid_min.span(),
                    format!(
                        "the vendors' uids {min}-{max} overlap {source} ({}-{}): keep them apart",
                        range.start(),
                        range.end()
                    ),
                );
            }
        }
    }
    found.sort_by_key(|(at, _)| *at);
    found.into_iter().map(|(_, w)| w).collect()
}

fn look_up(accounts: &impl Accounts, kind: &str, name: &str) -> Lookup {
    match kind {
        "user" => accounts.user(name),
        _ => accounts.group(name),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// Users, and groups with whether anyone is in them; `ldap-*` names fail.
    struct Fake {
        users: Vec<&'static str>,
        groups: HashMap<&'static str, bool>,
    }

    impl Accounts for Fake {
        fn user(&self, name: &str) -> Lookup {
            lookup(name, self.users.contains(&name).then_some(true))
        }
        fn group(&self, name: &str) -> Lookup {
            lookup(name, self.groups.get(name).copied())
        }
        fn other_uid_ranges(&self) -> Vec<(String, std::ops::RangeInclusive<u32>)> {
            vec![
                ("login.defs".into(), 1000..=60000),
                ("/etc/subuid (alice)".into(), 100_000..=165_535),
            ]
        }
    }

    fn lookup(name: &str, members: Option<bool>) -> Lookup {
        if name.starts_with("ldap-") {
            return Lookup::Failed("directory down".into());
        }
        members.map_or(Lookup::Unknown, |members| Lookup::Known { members })
    }

    fn fake() -> Fake {
        Fake {
            users: vec!["alice"],
            groups: HashMap::from([
                ("jit-managers", true),
                ("jit-security", true),
                ("jit-audit", false),
                ("admins", true),
                ("empty", false),
            ]),
        }
    }

    fn warnings(text: &str) -> Vec<String> {
        check(text, Path::new("/etc/jit/jitd.toml"), &fake())
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    const ROLES: &str =
        "[roles]\nmanager = [\"group:jit-managers\"]\nsecurity = [\"group:jit-security\"]\n";

    #[test]
    fn a_file_whose_names_all_resolve_has_no_warning() {
        let text = format!(
            "{ROLES}[[resource]]\nname = \"sudo\"\nowners = [\"user:alice\"]\neligible = [\"group:admins\"]\n"
        );
        assert_eq!(warnings(&text), Vec::<String>::new());
    }

    #[test]
    fn an_unknown_user_or_group_is_named_where_it_is_written() {
        let text = "[roles]\nmanager = [\"group:jit-managers\", \"user:nosuchuser\"]\nsecurity = [\"group:jit-secutiry\", \"group:jit-security\"]\n\n[[resource]]\nname = \"sudo\"\neligible = [\"group:admins\"]\nbreak_glass = [\"group:oncal\"]\n";
        assert_eq!(
            warnings(text),
            [
                "/etc/jit/jitd.toml:2:34: warning: user 'nosuchuser' does not exist (NSS knows no such user)",
                "/etc/jit/jitd.toml:3:13: warning: group 'jit-secutiry' does not exist (NSS knows no such group)",
                "/etc/jit/jitd.toml:8:16: warning: group 'oncal' does not exist (NSS knows no such group)",
            ]
        );
    }

    #[test]
    fn a_role_routing_needs_with_nobody_in_it_is_warned_about() {
        let text = "[roles]\nmanager = [\"group:jit-managers\"]\nsecurity = [\"group:empty\"]\n\n[[resource]]\nname = \"db\"\nowners = [\"group:empty\", \"user:bob\"]\neligible = [\"group:admins\"]\n";
        assert_eq!(
            warnings(text),
            [
                "/etc/jit/jitd.toml:3:12: warning: role 'security' has nobody in it: requests on the dual route would wait for ever",
                "/etc/jit/jitd.toml:7:10: warning: resource 'db': its owners have nobody in them: requests routed to the owners would wait for ever",
                "/etc/jit/jitd.toml:7:26: warning: user 'bob' does not exist (NSS knows no such user)",
            ]
        );
    }

    #[test]
    fn vendors_uids_another_allocator_hands_out_are_warned_about() {
        let vendors = |min: u32, max: u32| {
            format!(
                "{ROLES}[vendors]\nsponsors = [\"user:alice\"]\nuid_min = {min}\nuid_max = {max}\n"
            )
        };
        assert_eq!(warnings(&vendors(70_000, 79_999)), Vec::<String>::new());
        assert_eq!(
            warnings(&vendors(59_000, 100_000)),
            [
                "/etc/jit/jitd.toml:6:11: warning: the vendors' uids 59000-100000 overlap login.defs (1000-60000): keep them apart",
                "/etc/jit/jitd.toml:6:11: warning: the vendors' uids 59000-100000 overlap /etc/subuid (alice) (100000-165535): keep them apart",
            ]
        );
    }

    #[test]
    fn a_failed_lookup_is_said_and_never_counted_as_nobody() {
        let text =
            "[roles]\nmanager = [\"group:jit-managers\"]\nsecurity = [\"group:ldap-security\"]\n";
        assert_eq!(
            warnings(text),
            ["/etc/jit/jitd.toml:3:13: warning: cannot look up group 'ldap-security': directory down"]
        );
    }

    #[test]
    fn an_auditor_group_without_members_is_no_routing_problem() {
        let text = format!("{ROLES}auditor = [\"group:jit-audit\"]\n");
        assert_eq!(warnings(&text), Vec::<String>::new());
    }
}

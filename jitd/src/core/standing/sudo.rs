//! sudoers as sudo's own tooling reads it: `cvtsudoers -f json` (which
//! follows the includes), turned into rules and matched the way sudo
//! matches them. Nothing here reads sudoers text: what a rule says is
//! cvtsudoers' answer.
//!
//! - Lists (users, hosts, run-as users) are matched as sudo does: the last
//!   entry that matches decides, `!` turns it into a refusal, aliases are
//!   lists of their own.
//! - `Defaults` are applied in sudo's order: global, host, user, run-as,
//!   command. cvtsudoers' JSON does not tell a user binding from a run-as
//!   one (both are `username`), so the run-as entries come from a second
//!   run of their own (`-d runas`).

use std::collections::BTreeMap;

use serde_json::Value;

/// One entry of a list: a user, group, host, command or alias, perhaps
/// negated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// cvtsudoers' key: `username`, `usergroup`, `userid`, `usergid`,
    /// `netgroup`, `nonunixgroup`, `useralias`, `hostname`,
    /// `networkaddr`, `hostalias`, `runasalias`, `command`, `cmndalias`.
    pub kind: String,
    pub value: String,
    pub negated: bool,
}

/// A `Defaults` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct DefaultsEntry {
    pub binding: Binding,
    pub options: Vec<(String, Value)>,
}

/// What a `Defaults` entry is bound to.
#[derive(Clone, Debug, PartialEq)]
pub enum Binding {
    Global,
    Host(Vec<Member>),
    User(Vec<Member>),
    Runas(Vec<Member>),
    Command(Vec<Member>),
}

/// One privilege of a user specification: who it runs as and what.
#[derive(Clone, Debug, PartialEq)]
pub struct CmndSpec {
    /// `None`: sudo's `runas_default` (root), unless `runas_groups` is
    /// given alone (the caller keeps their own user).
    pub runas_users: Option<Vec<Member>>,
    pub runas_groups: Option<Vec<Member>>,
    /// Tags and options (`authenticate: false` is `NOPASSWD`).
    pub options: Vec<(String, Value)>,
    pub commands: Vec<Member>,
}

/// A user specification: who, on which hosts, may run what.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    pub users: Vec<Member>,
    pub hosts: Vec<Member>,
    pub cmnds: Vec<CmndSpec>,
}

/// The policy cvtsudoers read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Policy {
    pub defaults: Vec<DefaultsEntry>,
    pub user_aliases: BTreeMap<String, Vec<Member>>,
    pub runas_aliases: BTreeMap<String, Vec<Member>>,
    pub host_aliases: BTreeMap<String, Vec<Member>>,
    pub cmnd_aliases: BTreeMap<String, Vec<Member>>,
    pub specs: Vec<Spec>,
}

fn bad(what: &str) -> String {
    format!("cvtsudoers' JSON: {what}")
}

fn members(value: Option<&Value>) -> Result<Vec<Member>, String> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let list = value
        .as_array()
        .ok_or_else(|| bad("a list is not an array"))?;
    list.iter().map(member).collect()
}

fn member(value: &Value) -> Result<Member, String> {
    let object = value
        .as_object()
        .ok_or_else(|| bad("a list entry is not an object"))?;
    let negated = object.get("negated") == Some(&Value::Bool(true));
    let (kind, value) = object
        .iter()
        .find(|(k, _)| *k != "negated")
        .ok_or_else(|| bad("a list entry names nothing"))?;
    let value = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    };
    Ok(Member {
        kind: kind.clone(),
        value,
        negated,
    })
}

fn options(value: Option<&Value>) -> Vec<(String, Value)> {
    value
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .flat_map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())))
        .collect()
}

fn aliases(value: Option<&Value>) -> Result<BTreeMap<String, Vec<Member>>, String> {
    let mut out = BTreeMap::new();
    if let Some(map) = value.and_then(Value::as_object) {
        for (name, list) in map {
            out.insert(name.clone(), members(Some(list))?);
        }
    }
    Ok(out)
}

/// The binding of a non-run-as `Defaults` entry, from its members' kinds.
fn binding(list: Vec<Member>) -> Binding {
    match list.first().map(|m| m.kind.as_str()) {
        None => Binding::Global,
        Some("hostname" | "networkaddr" | "hostalias") => Binding::Host(list),
        Some("command" | "cmndalias") => Binding::Command(list),
        Some(_) => Binding::User(list),
    }
}

fn defaults(json: &Value, runas: bool) -> Result<Vec<DefaultsEntry>, String> {
    let mut out = Vec::new();
    for entry in json["Defaults"].as_array().into_iter().flatten() {
        let list = members(entry.get("Binding"))?;
        out.push(DefaultsEntry {
            binding: if runas {
                Binding::Runas(list)
            } else {
                binding(list)
            },
            options: options(entry.get("Options")),
        });
    }
    Ok(out)
}

/// A cvtsudoers JSON document; it writes nothing at all when nothing is
/// left to convert.
fn document(json: &str) -> Result<Value, String> {
    if json.trim().is_empty() {
        return Ok(Value::Object(serde_json::Map::new()));
    }
    serde_json::from_str(json).map_err(|e| bad(&e.to_string()))
}

/// The user specifications of a cvtsudoers JSON document, as JSON (what
/// [`sources`] compares).
pub fn spec_values(json: &str) -> Result<Vec<Value>, String> {
    Ok(document(json)?["User_Specs"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}

/// The policy from cvtsudoers' answers: `main` (`-d global,user,host,command`),
/// `runas` (`-d runas -s aliases,privileges`).
pub fn parse(main: &str, runas: &str) -> Result<Policy, String> {
    let (doc, runas_doc) = (document(main)?, document(runas)?);
    let mut specs = Vec::new();
    for spec in doc["User_Specs"].as_array().into_iter().flatten() {
        let mut cmnds = Vec::new();
        for cmnd in spec["Cmnd_Specs"].as_array().into_iter().flatten() {
            cmnds.push(CmndSpec {
                runas_users: cmnd
                    .get("runasusers")
                    .map(|v| members(Some(v)))
                    .transpose()?,
                runas_groups: cmnd
                    .get("runasgroups")
                    .map(|v| members(Some(v)))
                    .transpose()?,
                options: options(cmnd.get("Options")),
                commands: members(cmnd.get("Commands"))?,
            });
        }
        specs.push(Spec {
            users: members(spec.get("User_List"))?,
            hosts: members(spec.get("Host_List"))?,
            cmnds,
        });
    }
    let mut all_defaults = defaults(&doc, false)?;
    all_defaults.extend(defaults(&runas_doc, true)?);
    Ok(Policy {
        defaults: all_defaults,
        user_aliases: aliases(doc.get("User_Aliases"))?,
        runas_aliases: aliases(doc.get("Runas_Aliases"))?,
        host_aliases: aliases(doc.get("Host_Aliases"))?,
        cmnd_aliases: aliases(doc.get("Command_Aliases"))?,
        specs,
    })
}

/// Which file each user specification of `all` (the whole policy) came
/// from: the first of `files` (path, its own specifications as cvtsudoers
/// reads that file alone) holding an equal one not yet taken. Files that
/// include others are listed last by the caller, so that a rule is named
/// by the file that holds it.
pub fn sources(all: &[Value], files: &[(String, Vec<Value>)]) -> Vec<Option<String>> {
    let mut taken: Vec<Vec<bool>> = files.iter().map(|(_, s)| vec![false; s.len()]).collect();
    all.iter()
        .map(|spec| {
            for (f, (path, specs)) in files.iter().enumerate() {
                if let Some(i) = specs
                    .iter()
                    .enumerate()
                    .position(|(i, s)| s == spec && !taken[f][i])
                {
                    taken[f][i] = true;
                    return Some(path.clone());
                }
            }
            None
        })
        .collect()
}

/// A user as sudo matches them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SudoUser<'a> {
    pub name: &'a str,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// What the policy's lists are matched against: the host, and the
/// account database (groups, netgroups) as NSS answered.
pub struct World<'a> {
    /// The host's names, lower-case (short and fully qualified).
    pub host_names: &'a [String],
    pub host_addresses: &'a [std::net::IpAddr],
    pub groups: &'a [super::Group],
    /// The users of each netgroup, where known.
    pub netgroups: &'a BTreeMap<String, Vec<String>>,
}

/// The result of matching one list entry: sudo's ALLOW, DENY or UNSPEC.
type Matched = Option<bool>;

/// sudo's list rule: the last entry that matches decides.
fn last_match(list: &[Member], entry: impl Fn(&Member) -> Matched) -> Matched {
    list.iter()
        .rev()
        .find_map(|m| entry(m).map(|yes| yes != m.negated))
}

impl Policy {
    /// Whether `user` is in the user list `list`.
    pub fn user_in(&self, list: &[Member], user: &SudoUser<'_>, world: &World<'_>) -> bool {
        self.user_matches(list, user, world, 0) == Some(true)
    }

    fn user_matches(
        &self,
        list: &[Member],
        user: &SudoUser<'_>,
        world: &World<'_>,
        depth: usize,
    ) -> Matched {
        last_match(list, |m| {
            let yes = match m.kind.as_str() {
                "username" => m.value == "ALL" || m.value == user.name,
                "userid" => m.value.parse::<u32>().ok() == user.uid,
                "usergroup" => world.groups.iter().any(|g| {
                    g.name == m.value
                        && (Some(g.gid) == user.gid || g.members.iter().any(|n| n == user.name))
                }),
                "usergid" => m.value.parse::<u32>().is_ok_and(|gid| {
                    Some(gid) == user.gid
                        || world
                            .groups
                            .iter()
                            .any(|g| g.gid == gid && g.members.iter().any(|n| n == user.name))
                }),
                "netgroup" => world
                    .netgroups
                    .get(&m.value)
                    .is_some_and(|users| users.iter().any(|u| u == user.name)),
                "useralias" | "runasalias" if depth < 16 => {
                    let aliases = if m.kind == "useralias" {
                        &self.user_aliases
                    } else {
                        &self.runas_aliases
                    };
                    return aliases
                        .get(&m.value)
                        .and_then(|list| self.user_matches(list, user, world, depth + 1));
                }
                _ => false,
            };
            yes.then_some(true)
        })
    }

    /// Whether this host is in the host list `list`.
    pub fn host_in(&self, list: &[Member], world: &World<'_>) -> bool {
        self.host_matches(list, world, 0) == Some(true)
    }

    fn host_matches(&self, list: &[Member], world: &World<'_>, depth: usize) -> Matched {
        last_match(list, |m| {
            let yes = match m.kind.as_str() {
                "hostname" => {
                    m.value == "ALL"
                        || world
                            .host_names
                            .iter()
                            .any(|n| glob(&m.value.to_ascii_lowercase(), n))
                }
                "networkaddr" => network_matches(&m.value, world.host_addresses),
                // Not looked up: counted as this host, so that no rule is
                // left out.
                "netgroup" => true,
                "hostalias" if depth < 16 => {
                    return self
                        .host_aliases
                        .get(&m.value)
                        .and_then(|list| self.host_matches(list, world, depth + 1));
                }
                _ => false,
            };
            yes.then_some(true)
        })
    }

    /// The commands of a list, aliases expanded, as `(command, negated)`.
    pub fn commands(&self, list: &[Member]) -> Vec<(String, bool)> {
        let mut out = Vec::new();
        self.expand_commands(list, false, 0, &mut out);
        out
    }

    fn expand_commands(
        &self,
        list: &[Member],
        negated: bool,
        depth: usize,
        out: &mut Vec<(String, bool)>,
    ) {
        for m in list {
            let negated = negated != m.negated;
            match m.kind.as_str() {
                "cmndalias" if depth < 16 => {
                    if let Some(inner) = self.cmnd_aliases.get(&m.value) {
                        self.expand_commands(inner, negated, depth + 1, out);
                    }
                }
                _ => out.push((m.value.clone(), negated)),
            }
        }
    }

    /// A global option's value as text (`pam_service`, `runas_default`).
    pub fn global(&self, option: &str) -> Option<String> {
        self.defaults
            .iter()
            .filter(|d| d.binding == Binding::Global)
            .flat_map(|d| &d.options)
            .filter(|(name, _)| name == option)
            .filter_map(|(_, v)| v.as_str().map(str::to_owned))
            .next_back()
    }

    /// The PAM services sudo uses: for commands, and for login shells
    /// (`sudo -i`); both are roads to the same targets.
    pub fn pam_services(&self) -> [String; 2] {
        [
            self.global("pam_service").unwrap_or_else(|| "sudo".into()),
            self.global("pam_login_service")
                .unwrap_or_else(|| "sudo-i".into()),
        ]
    }

    /// Whether sudo may skip its PAM account check for `user` running
    /// `cmnd` on this host: `pam_acct_mgmt` negated by an entry that
    /// applies (global, this host, the user) or may apply (its run-as
    /// targets, one of its commands), and not set again after it by an
    /// entry that surely applies.
    pub fn account_check_off(
        &self,
        user: &SudoUser<'_>,
        cmnd: &CmndSpec,
        world: &World<'_>,
    ) -> bool {
        let mut on = true;
        // sudo applies Defaults by their binding's kind, in this order.
        for rank in 0..5 {
            for entry in &self.defaults {
                let value = entry
                    .options
                    .iter()
                    .rfind(|(name, _)| name == "pam_acct_mgmt")
                    .and_then(|(_, v)| v.as_bool());
                let Some(value) = value else { continue };
                let (this_rank, surely, maybe) = match &entry.binding {
                    Binding::Global => (0, true, true),
                    Binding::Host(list) => {
                        let here = self.host_in(list, world);
                        (1, here, here)
                    }
                    Binding::User(list) => {
                        let it = self.user_in(list, user, world);
                        (2, it, it)
                    }
                    Binding::Runas(list) => {
                        let (surely, maybe) = self.runas_overlap(list, cmnd, world);
                        (3, surely, maybe)
                    }
                    Binding::Command(list) => {
                        (4, false, self.command_overlap(list, &cmnd.commands))
                    }
                };
                if this_rank != rank {
                    continue;
                }
                if !value && maybe {
                    on = false;
                } else if value && surely {
                    on = true;
                }
            }
        }
        !on
    }

    /// Whether every run-as target of `cmnd` is in `list` (surely), and
    /// whether one may be (maybe).
    fn runas_overlap(&self, list: &[Member], cmnd: &CmndSpec, world: &World<'_>) -> (bool, bool) {
        match self.runas(cmnd, world) {
            Runas::Users { any: true, .. } => (false, true),
            Runas::Users { root, named, .. } => {
                let root = root.then(|| "root".to_owned());
                let inside: Vec<bool> = named
                    .iter()
                    .chain(root.iter())
                    .map(|name| {
                        let target = SudoUser {
                            name,
                            uid: None,
                            gid: None,
                        };
                        self.user_matches(list, &target, world, 0) == Some(true)
                    })
                    .collect();
                (
                    !inside.is_empty() && inside.iter().all(|x| *x),
                    inside.iter().any(|x| *x),
                )
            }
            Runas::GroupsOnly(_) => (false, false),
        }
    }

    /// Whether one of `commands` may be one of the binding's `list`.
    fn command_overlap(&self, list: &[Member], commands: &[Member]) -> bool {
        let bound = self.commands(list);
        self.commands(commands)
            .iter()
            .filter(|(_, negated)| !negated)
            .any(|(c, _)| c == "ALL" || bound.iter().any(|(b, n)| !n && (b == c || b == "ALL")))
    }

    /// Who a privilege runs as.
    pub fn runas(&self, cmnd: &CmndSpec, world: &World<'_>) -> Runas {
        let list = match (&cmnd.runas_users, &cmnd.runas_groups) {
            (Some(list), _) => list.clone(),
            (None, Some(groups)) => {
                return Runas::GroupsOnly(groups.iter().map(|g| g.value.clone()).collect())
            }
            (None, None) => vec![Member {
                kind: "username".into(),
                value: self
                    .global("runas_default")
                    .unwrap_or_else(|| "root".into()),
                negated: false,
            }],
        };
        let mut named = Vec::new();
        self.runas_names(&list, 0, &mut named);
        let root = SudoUser {
            name: "root",
            uid: Some(0),
            gid: Some(0),
        };
        let any = list.iter().any(|m| {
            (m.kind == "username" && m.value == "ALL" && !m.negated)
                || (m.kind == "runasalias" && self.alias_has_all(&m.value, 0))
        });
        Runas::Users {
            any,
            root: self.user_matches(&list, &root, world, 0) == Some(true),
            named: named
                .into_iter()
                .filter(|n| n != "ALL" && n != "root")
                .collect(),
        }
    }

    fn alias_has_all(&self, alias: &str, depth: usize) -> bool {
        depth < 16
            && self.runas_aliases.get(alias).is_some_and(|list| {
                list.iter().any(|m| {
                    (m.kind == "username" && m.value == "ALL" && !m.negated)
                        || (m.kind == "runasalias" && self.alias_has_all(&m.value, depth + 1))
                })
            })
    }

    /// The accounts a run-as list names (not negated), aliases expanded;
    /// a group named stands for itself (`%dba`).
    fn runas_names(&self, list: &[Member], depth: usize, out: &mut Vec<String>) {
        for m in list.iter().filter(|m| !m.negated) {
            match m.kind.as_str() {
                "runasalias" if depth < 16 => {
                    if let Some(inner) = self.runas_aliases.get(&m.value) {
                        self.runas_names(inner, depth + 1, out);
                    }
                }
                "username" => out.push(m.value.clone()),
                "userid" => out.push(format!("#{}", m.value)),
                "usergroup" => out.push(format!("%{}", m.value)),
                _ => {}
            }
        }
    }
}

/// Whom a privilege makes its user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Runas {
    Users {
        /// `ALL`: any account.
        any: bool,
        /// root is among them.
        root: bool,
        /// The other accounts named.
        named: Vec<String>,
    },
    /// `(:group)`: the user stays themselves, with another group.
    GroupsOnly(Vec<String>),
}

impl Runas {
    /// The targets as the scan names them: `ALL`, `root`, accounts, or
    /// `group:NAME`.
    pub fn describe(&self) -> String {
        match self {
            Runas::Users {
                any: true, root, ..
            } => {
                if *root {
                    "ALL".into()
                } else {
                    "ALL but root".into()
                }
            }
            Runas::Users { root, named, .. } => {
                let mut out: Vec<String> = Vec::new();
                if *root {
                    out.push("root".into());
                }
                out.extend(named.iter().cloned());
                out.join(",")
            }
            Runas::GroupsOnly(groups) => groups
                .iter()
                .map(|g| format!("group:{g}"))
                .collect::<Vec<_>>()
                .join(","),
        }
    }

    /// The PAM users (targets) pam_jit's `targets=` is checked against:
    /// `*` stands for an account no `targets=` names.
    pub fn pam_targets(&self, user: &str) -> Vec<String> {
        match self {
            Runas::Users {
                any: true, root, ..
            } => {
                let mut out = vec!["*".to_owned()];
                if *root {
                    out.push("root".into());
                }
                out
            }
            Runas::Users { root, named, .. } => {
                let mut out: Vec<String> = named
                    .iter()
                    .map(|n| match n.starts_with(['%', '#']) {
                        true => "*".to_owned(),
                        false => n.clone(),
                    })
                    .collect();
                if *root {
                    out.push("root".into());
                }
                out
            }
            // sudo's PAM user is the caller then.
            Runas::GroupsOnly(_) => vec![user.to_owned()],
        }
    }
}

/// A shell-style pattern (`*`, `?`, `[...]` taken literally) against a
/// name: sudo matches host names with fnmatch.
fn glob(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some(pi);
                mark = ni;
                pi += 1;
            }
            Some(&c) if c == '?' || c == n[ni] => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                Some(s) => {
                    pi = s + 1;
                    mark += 1;
                    ni = mark;
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// `10.0.0.0/8`, `10.0.0.0/255.0.0.0` or an address, against the host's.
fn network_matches(text: &str, addresses: &[std::net::IpAddr]) -> bool {
    use std::net::{IpAddr, Ipv4Addr};
    let (addr, mask) = text.split_once('/').unwrap_or((text, ""));
    let Ok(addr) = addr.parse::<IpAddr>() else {
        return false;
    };
    let bits = match (mask.parse::<u8>(), mask.parse::<Ipv4Addr>()) {
        _ if mask.is_empty() => None,
        (Ok(bits), _) => Some(bits),
        (_, Ok(m)) => Some(u32::from(m).count_ones() as u8),
        _ => return false,
    };
    let Ok(net) = ipnet::IpNet::new(addr, bits.unwrap_or(if addr.is_ipv4() { 32 } else { 128 }))
    else {
        return false;
    };
    addresses.iter().any(|a| net.contains(a))
}

/// The commands of a privilege, for the admin: `ALL`, or the list
/// (negated ones with `!`), cut to a line.
pub fn describe_commands(policy: &Policy, cmnd: &CmndSpec) -> String {
    let list: Vec<String> = policy
        .commands(&cmnd.commands)
        .into_iter()
        .map(|(c, negated)| if negated { format!("!{c}") } else { c })
        .collect();
    let text = list.join(", ");
    match text.char_indices().nth(120) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text,
    }
}

/// Whether a privilege is `NOPASSWD`.
pub fn nopasswd(cmnd: &CmndSpec) -> bool {
    cmnd.options
        .iter()
        .any(|(name, v)| name == "authenticate" && *v == Value::Bool(false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_patterns_and_networks_match_as_sudo_does() {
        assert!(glob("web*", "web1"));
        assert!(glob("*.example.com", "db.example.com"));
        assert!(!glob("web?", "web12"));
        let here = ["10.1.2.3".parse().unwrap()];
        assert!(network_matches("10.0.0.0/8", &here));
        assert!(network_matches("10.1.0.0/255.255.0.0", &here));
        assert!(network_matches("10.1.2.3", &here));
        assert!(!network_matches("192.168.0.0/16", &here));
        assert!(!network_matches("nonsense", &here));
    }

    #[test]
    fn specifications_are_named_by_the_file_holding_them() {
        let a = serde_json::json!({"User_List": [{"username": "a"}]});
        let b = serde_json::json!({"User_List": [{"username": "b"}]});
        let files = vec![
            ("/etc/sudoers.d/ops".to_owned(), vec![b.clone()]),
            (
                "/etc/sudoers".to_owned(),
                vec![a.clone(), b.clone(), b.clone()],
            ),
        ];
        assert_eq!(
            sources(&[a, b.clone(), b], &files),
            [
                Some("/etc/sudoers".into()),
                Some("/etc/sudoers.d/ops".into()),
                Some("/etc/sudoers".into()),
            ]
        );
    }
}

//! The standing-privilege scan (docs/design.md, "Standing-privilege scan"):
//! who can become root or another account on this host without a jit
//! grant, from facts the edge gathered (`crate::standing`); no I/O.
//!
//! A road to root is standing unless the gate stands on it for that
//! person: pam_jit's account check in the stack of the PAM service the
//! road takes, reached, able to deny, not `audit_only`, applying to the
//! target and not exempting the person ([`AccountGate::covers`]); for
//! polkit, the polkit gate on and the person not exempt from it.

pub mod polkit;
pub mod ssh;
pub mod sudo;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::pam_stack::{at, AccountGate, Reached, Walk};
use sudo::{Policy, Runas, SudoUser, World};

/// What kind of road a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A sudoers rule the gate does not cover.
    Sudoers,
    /// A member of `sudo`, `wheel` or `admin` outside the gate.
    AdminGroup,
    /// An account with uid 0 besides root.
    Uid0,
    /// A key in root's `authorized_keys` that logs in without the gate.
    RootKey,
    /// A password that `su` takes for root.
    SuPassword,
    /// A polkit admin identity outside the polkit gate.
    PolkitAdmin,
    /// A polkit rule that answers YES or AUTH_SELF* (no administrator)
    /// outside the polkit gate.
    PolkitRule,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::Sudoers,
        Kind::AdminGroup,
        Kind::Uid0,
        Kind::RootKey,
        Kind::SuPassword,
        Kind::PolkitAdmin,
        Kind::PolkitRule,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Sudoers => "sudoers",
            Kind::AdminGroup => "admin_group",
            Kind::Uid0 => "uid0",
            Kind::RootKey => "root_key",
            Kind::SuPassword => "su_password",
            Kind::PolkitAdmin => "polkit_admin",
            Kind::PolkitRule => "polkit_rule",
        }
    }
}

/// One standing privilege.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Finding {
    pub kind: Kind,
    /// Who holds it: a user; for a key, its fingerprint; for a polkit
    /// rule whose subjects the scan cannot tell, [`UNNAMED`].
    pub principal: String,
    /// Whom it makes them: `root`, an account, `ALL`.
    pub target: String,
    /// Where it comes from: a sudoers file and rule, a group, a key's file
    /// and line, a rules file.
    pub how: String,
    /// Why the gate does not stop it.
    pub why: String,
}

/// A scan's result. A source that could not be read is an error, never
/// an empty list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub findings: Vec<Finding>,
    pub errors: Vec<String>,
    /// What the scan could not judge and left out (a netgroup it could
    /// not list, keys from an `AuthorizedKeysCommand`).
    pub notes: Vec<String>,
}

impl Report {
    pub fn counts(&self) -> BTreeMap<Kind, u64> {
        let mut counts: BTreeMap<Kind, u64> = Kind::ALL.iter().map(|k| (*k, 0)).collect();
        for f in &self.findings {
            *counts.entry(f.kind).or_default() += 1;
        }
        counts
    }
}

/// An account of the account database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

/// A group, with the members its entry lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

/// A password field of `/etc/shadow`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Password {
    /// A hash: whoever knows the password gets in.
    Usable,
    /// Empty: no password at all (pam_unix's `nullok` lets anyone in).
    Empty,
    /// `!` or `*` in front: no password opens it.
    Locked,
}

impl Password {
    pub fn of_field(field: &str) -> Password {
        if field.is_empty() {
            Password::Empty
        } else if field.starts_with(['!', '*']) {
            Password::Locked
        } else {
            Password::Usable
        }
    }

    fn opens(self) -> bool {
        self != Password::Locked
    }
}

/// sudo on this host.
#[derive(Clone, Debug, PartialEq)]
pub struct SudoFacts {
    pub policy: Policy,
    /// The file of each user specification, where it could be told.
    pub sources: Vec<Option<String>>,
}

/// One of su's PAM services (`su`, `su-l`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SuStack {
    pub gate: AccountGate,
    /// Its `auth` phase: where pam_wheel is.
    pub auth: Walk,
}

/// Root's ssh logins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshFacts {
    /// `None`: sshd is not installed.
    pub sshd: Option<ssh::Sshd>,
    /// Why `sshd -T` did not answer (OpenSSH's defaults are assumed then).
    pub sshd_error: Option<String>,
    pub gate: AccountGate,
    pub keys: Vec<ssh::Key>,
    /// Key files that exist but could not be read.
    pub unreadable: Vec<String>,
}

/// polkit's admin identities, its rules that grant without an
/// administrator, and jit's polkit gate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolkitFacts {
    /// `[polkit] gate = true`.
    pub gate: bool,
    /// The package's rule (`20-jit.rules`) is where polkitd reads rules.
    pub rule_installed: bool,
    pub exempt: Vec<String>,
    /// Identities with the file that names them.
    pub identities: Vec<(String, polkit::Identity)>,
    pub grants: Vec<RuleGrant>,
    pub errors: Vec<String>,
}

impl PolkitFacts {
    /// The groups its identities and rules name.
    pub fn groups(&self) -> impl Iterator<Item = &str> {
        let identities = self.identities.iter().map(|(_, i)| i.identity.as_str());
        let subjects = self
            .grants
            .iter()
            .flat_map(|g| g.grant.subjects.iter().flatten())
            .map(String::as_str);
        identities
            .chain(subjects)
            .filter_map(|i| i.strip_prefix("unix-group:"))
    }
}

/// A rule that grants without an administrator, where polkitd runs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleGrant {
    pub file: String,
    /// polkitd runs its file no later than the gate's (`20-jit.rules`):
    /// its answer comes before the gate's refusal.
    pub before_gate: bool,
    pub grant: polkit::Grant,
}

/// Everything the scan decides on.
#[derive(Clone, Debug)]
pub struct Facts {
    /// The host's names, lower-case.
    pub host_names: Vec<String>,
    pub host_addresses: Vec<IpAddr>,
    /// The accounts NSS lists.
    pub accounts: Vec<Account>,
    /// The groups the facts name (sudoers, admin groups, pam_wheel,
    /// polkit), as NSS answered; a group missing here does not exist.
    pub groups: Vec<Group>,
    /// The users of each netgroup the facts name, where NSS could tell.
    pub netgroups: BTreeMap<String, Vec<String>>,
    /// `/etc/shadow`'s password fields.
    pub passwords: Result<BTreeMap<String, Password>, String>,
    /// Managed accounts whose password jitd holds (escrowed, or checked
    /// out to a grant): not standing.
    pub custody: BTreeSet<String>,
    /// The account gates of sudo's services (`sudo`, `sudo-i`).
    pub sudo_gates: Vec<AccountGate>,
    pub sudo: Result<SudoFacts, String>,
    pub su: Vec<SuStack>,
    pub ssh: SshFacts,
    pub polkit: PolkitFacts,
    /// What could not be read otherwise (the account database, a group).
    pub errors: Vec<String>,
}

/// The principal of a polkit rule's grant whose subjects the scan cannot
/// tell.
pub const UNNAMED: &str = "subjects the scan cannot name";

/// The groups whose members are administrators by convention.
pub const ADMIN_GROUPS: [&str; 3] = ["sudo", "wheel", "admin"];

/// The standing privileges the facts show.
pub fn scan(facts: &Facts) -> Report {
    let mut report = Report {
        errors: facts.errors.clone(),
        ..Report::default()
    };
    sudoers(facts, &mut report);
    admin_groups(facts, &mut report);
    uid0(facts, &mut report);
    root_keys(facts, &mut report);
    su_passwords(facts, &mut report);
    report.errors.extend(facts.polkit.errors.iter().cloned());
    polkit_admins(facts, &mut report);
    polkit_rules(facts, &mut report);
    report.findings.sort();
    report.findings.dedup();
    report
}

impl Facts {
    fn group(&self, name: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// The group's members: listed, and those whose primary group it is.
    fn members(&self, group: &Group) -> Vec<String> {
        let mut out: BTreeSet<String> = group.members.iter().cloned().collect();
        out.extend(
            self.accounts
                .iter()
                .filter(|a| a.gid == group.gid)
                .map(|a| a.name.clone()),
        );
        out.into_iter().collect()
    }

    fn account(&self, name: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.name == name)
    }

    /// Every user name the facts know of: the accounts NSS lists, and the
    /// members of the groups and netgroups they name (a directory's users
    /// are often not listed).
    fn user_names(&self) -> BTreeSet<String> {
        let mut names: BTreeSet<String> = self.accounts.iter().map(|a| a.name.clone()).collect();
        names.extend(self.groups.iter().flat_map(|g| g.members.iter().cloned()));
        names.extend(self.netgroups.values().flatten().cloned());
        names
    }

    fn password(&self, name: &str) -> Option<Password> {
        self.passwords.as_ref().ok()?.get(name).copied()
    }
}

/// Whether every gate of `gates` covers `holder` for each of `targets`;
/// if not, the first reason.
fn covered(gates: &[AccountGate], holder: &str, targets: &[String]) -> Result<(), String> {
    if gates.is_empty() {
        return Err("no PAM stack".into());
    }
    for gate in gates {
        for target in targets {
            gate.covers(holder, target)
                .map_err(|why| format!("{}: {why}", gate.service))?;
        }
    }
    Ok(())
}

fn sudoers(facts: &Facts, report: &mut Report) {
    let sudo = match &facts.sudo {
        Ok(sudo) => sudo,
        Err(e) => {
            report.errors.push(format!("sudoers: {e}"));
            return;
        }
    };
    let policy = &sudo.policy;
    let world = World {
        host_names: &facts.host_names,
        host_addresses: &facts.host_addresses,
        groups: &facts.groups,
        netgroups: &facts.netgroups,
    };
    let names = facts.user_names();
    let mut unresolved = BTreeSet::new();
    for (i, spec) in policy.specs.iter().enumerate() {
        for m in &spec.users {
            match m.kind.as_str() {
                "nonunixgroup" | "nonunixgid" => {
                    unresolved.insert(format!("%:{}", m.value));
                }
                "netgroup" if !facts.netgroups.contains_key(&m.value) => {
                    unresolved.insert(format!("+{}", m.value));
                }
                _ => {}
            }
        }
        if !policy.host_in(&spec.hosts, &world) {
            continue;
        }
        let source = sudo.sources.get(i).cloned().flatten();
        for name in names.iter().filter(|n| *n != "root") {
            let account = facts.account(name);
            let user = SudoUser {
                name,
                uid: account.map(|a| a.uid),
                gid: account.map(|a| a.gid),
            };
            if !policy.user_in(&spec.users, &user, &world) {
                continue;
            }
            for cmnd in &spec.cmnds {
                if policy
                    .commands(&cmnd.commands)
                    .iter()
                    .all(|(_, negated)| *negated)
                {
                    continue;
                }
                let runas = policy.runas(cmnd, &world);
                if matches!(&runas, Runas::Users { any: false, root: false, named } if named.is_empty())
                {
                    continue;
                }
                let why = if policy.account_check_off(&user, cmnd, &world) {
                    Some("Defaults !pam_acct_mgmt: sudo skips the account check".to_owned())
                } else {
                    covered(&facts.sudo_gates, name, &runas.pam_targets(name)).err()
                };
                let Some(why) = why else { continue };
                let tag = if sudo::nopasswd(cmnd) {
                    "NOPASSWD: "
                } else {
                    ""
                };
                report.findings.push(Finding {
                    kind: Kind::Sudoers,
                    principal: name.clone(),
                    target: runas.describe(),
                    how: format!(
                        "{}: ({}) {tag}{}",
                        source.as_deref().unwrap_or("sudoers"),
                        runas.describe(),
                        sudo::describe_commands(policy, cmnd)
                    ),
                    why,
                });
            }
        }
    }
    for name in unresolved {
        report
            .notes
            .push(format!("sudoers: {name}: its members could not be listed"));
    }
}

fn admin_groups(facts: &Facts, report: &mut Report) {
    for name in ADMIN_GROUPS {
        let Some(group) = facts.group(name) else {
            continue;
        };
        for member in facts.members(group).into_iter().filter(|m| m != "root") {
            if let Err(why) = covered(&facts.sudo_gates, &member, &["root".into()]) {
                report.findings.push(Finding {
                    kind: Kind::AdminGroup,
                    principal: member,
                    target: "root".into(),
                    how: format!("member of group {name}"),
                    why,
                });
            }
        }
    }
}

fn uid0(facts: &Facts, report: &mut Report) {
    for account in facts
        .accounts
        .iter()
        .filter(|a| a.uid == 0 && a.name != "root")
    {
        report.findings.push(Finding {
            kind: Kind::Uid0,
            principal: account.name.clone(),
            target: "root".into(),
            how: "uid 0 in the account database".into(),
            why: "it is root under another name: no gate tells it from root".into(),
        });
    }
}

fn root_keys(facts: &Facts, report: &mut Report) {
    let ssh = &facts.ssh;
    let Some(sshd) = &ssh.sshd else { return };
    if let Some(e) = &ssh.sshd_error {
        report.errors.push(format!(
            "sshd: {e}; OpenSSH's defaults assumed (root logs in by key, PAM not counted on)"
        ));
    }
    for file in &ssh.unreadable {
        report
            .errors
            .push(format!("root's ssh keys: {file} could not be read"));
    }
    if let Some(command) = &sshd.authorized_keys_command {
        report.notes.push(format!(
            "sshd: keys from AuthorizedKeysCommand {command} are not seen"
        ));
    }
    if !sshd.root_logs_in_by_key() {
        return;
    }
    let why = if !sshd.use_pam {
        "sshd does not use PAM (UsePAM no): no account check".to_owned()
    } else {
        match ssh.gate.covers("root", "root") {
            Ok(()) => return,
            Err(why) => format!("sshd: {why}"),
        }
    };
    for key in &ssh.keys {
        let mut how = format!("{}:{}", key.file, key.line);
        if !key.algorithm.is_empty() {
            how.push_str(&format!(" {}", key.algorithm));
        }
        if !key.comment.is_empty() {
            how.push_str(&format!(" \"{}\"", key.comment));
        }
        if !key.options.is_empty() {
            how.push_str(&format!(" (options {})", key.options));
        }
        report.findings.push(Finding {
            kind: Kind::RootKey,
            principal: key
                .fingerprint
                .clone()
                .unwrap_or_else(|| format!("unreadable key line {}:{}", key.file, key.line)),
            target: "root".into(),
            how,
            why: format!("PermitRootLogin {}; {why}", sshd.permit_root_login),
        });
    }
}

/// pam_wheel in an `auth` phase: whom it lets su (a group), and whether
/// its members need no password (`trust` on a line whose success ends
/// the stack).
struct Wheel {
    group: String,
    place: String,
    trust: bool,
}

fn wheel(auth: &Walk, groups: &[Group]) -> Option<Wheel> {
    let mut found: Option<Wheel> = None;
    for line in auth
        .lines
        .iter()
        .filter(|l| l.module.module == "pam_wheel.so" && l.reached == Reached::Yes)
    {
        let args = &line.module.args;
        if args.iter().any(|a| a == "deny") {
            continue;
        }
        // Without group=, pam_wheel takes "wheel", else the group of gid 0.
        let group = args
            .iter()
            .filter_map(|a| a.strip_prefix("group="))
            .next_back()
            .map(str::to_owned)
            .unwrap_or_else(|| {
                if groups.iter().any(|g| g.name == "wheel") {
                    "wheel".into()
                } else {
                    groups
                        .iter()
                        .find(|g| g.gid == 0)
                        .map_or_else(|| "root".into(), |g| g.name.clone())
                }
            });
        let trust = args.iter().any(|a| a == "trust")
            && line.module.control.action("success") == super::pam_stack::Action::Done;
        if line.module.control.failure_denies() || trust {
            let wheel = Wheel {
                group,
                place: at(&line.module.place),
                trust,
            };
            if found.as_ref().is_none_or(|f| !f.trust) {
                found = Some(wheel);
            }
        }
    }
    found
}

fn su_passwords(facts: &Facts, report: &mut Report) {
    if let Err(e) = &facts.passwords {
        report.errors.push(format!("passwords: {e}"));
        return;
    }
    let root_opens =
        facts.password("root").is_some_and(Password::opens) && !facts.custody.contains("root");
    let users: Vec<String> = facts
        .user_names()
        .into_iter()
        .filter(|n| n != "root")
        .collect();
    // One finding per password, whichever of su's services (su, su-l)
    // takes it: the reasons of each are joined.
    let mut found: Vec<Finding> = Vec::new();
    for stack in &facts.su {
        let service = &stack.gate.service;
        let uncovered = |who: &[String]| -> Vec<(String, String)> {
            who.iter()
                .filter_map(|u| {
                    let why = stack.gate.covers(u, "root").err()?;
                    Some((u.clone(), format!("{service}: {why}")))
                })
                .collect()
        };
        let mut add = |principal: String, how: String, why: String| match found
            .iter_mut()
            .find(|f| f.principal == principal && f.how == how)
        {
            Some(f) if !f.why.contains(&why) => f.why = format!("{}; {why}", f.why),
            Some(_) => {}
            None => found.push(Finding {
                kind: Kind::SuPassword,
                principal,
                target: "root".into(),
                how,
                why,
            }),
        };
        match wheel(&stack.auth, &facts.groups) {
            None if root_opens => {
                let open = uncovered(&users);
                let Some((_, why)) = open.first() else {
                    continue;
                };
                let who = if open.len() == users.len() {
                    "any user".to_owned()
                } else {
                    let names: Vec<&str> = open.iter().map(|(u, _)| u.as_str()).collect();
                    names.join(", ")
                };
                add(
                    "root".into(),
                    format!(
                        "root has a usable password and su runs no pam_wheel: {who} may su with it"
                    ),
                    why.clone(),
                );
            }
            None => {}
            Some(wheel) if root_opens || wheel.trust => {
                let Some(group) = facts.group(&wheel.group) else {
                    continue;
                };
                let members: Vec<String> = facts
                    .members(group)
                    .into_iter()
                    .filter(|m| m != "root")
                    .filter(|m| {
                        wheel.trust
                            || (facts.password(m).is_some_and(Password::opens)
                                && !facts.custody.contains(m))
                    })
                    .collect();
                for (member, why) in uncovered(&members) {
                    let how = match wheel.trust {
                        true => format!(
                            "member of {} trusted by pam_wheel at {}: su without a password",
                            wheel.group, wheel.place
                        ),
                        false => format!(
                            "member of {} (pam_wheel at {}) with a usable password; root has one too",
                            wheel.group, wheel.place
                        ),
                    };
                    add(member, how, why);
                }
            }
            Some(_) => {}
        }
    }
    report.findings.extend(found);
}

fn polkit_admins(facts: &Facts, report: &mut Report) {
    let polkit = &facts.polkit;
    for (file, identity) in &polkit.identities {
        let how = format!("{} in {file}:{}", identity.identity, identity.line);
        for user in identity_users(facts, &identity.identity, &how, report) {
            // polkit asks for an admin identity only when every rule has
            // passed: the gate has refused by then.
            if let Some(why) = polkit_gap(polkit, Some(&user), false) {
                report.findings.push(Finding {
                    kind: Kind::PolkitAdmin,
                    principal: user,
                    target: "root".into(),
                    how: how.clone(),
                    why,
                });
            }
        }
    }
}

fn polkit_rules(facts: &Facts, report: &mut Report) {
    let polkit = &facts.polkit;
    for rule in &polkit.grants {
        let grant = &rule.grant;
        let answers = format!(
            "{}:{}: answers {}",
            rule.file,
            grant.line,
            grant.answer.describe()
        );
        let Some(subjects) = &grant.subjects else {
            if let Some(why) = polkit_gap(polkit, None, rule.before_gate) {
                report.findings.push(Finding {
                    kind: Kind::PolkitRule,
                    principal: UNNAMED.into(),
                    target: "root".into(),
                    how: format!("{answers} to {UNNAMED}"),
                    why,
                });
            }
            continue;
        };
        for identity in subjects {
            let how = format!("{answers} to {identity}");
            for user in identity_users(facts, identity, &how, report) {
                if let Some(why) = polkit_gap(polkit, Some(&user), rule.before_gate) {
                    report.findings.push(Finding {
                        kind: Kind::PolkitRule,
                        principal: user,
                        target: "root".into(),
                        how: how.clone(),
                        why,
                    });
                }
            }
        }
    }
}

/// The users besides root a polkit identity stands for; a netgroup that
/// could not be listed is a note (`how` names it).
fn identity_users(facts: &Facts, identity: &str, how: &str, report: &mut Report) -> Vec<String> {
    let users = match identity.split_once(':') {
        Some(("unix-user", user)) => {
            let name = match user.parse::<u32>() {
                Ok(uid) => facts
                    .accounts
                    .iter()
                    .find(|a| a.uid == uid)
                    .map_or_else(|| user.to_owned(), |a| a.name.clone()),
                Err(_) => user.to_owned(),
            };
            vec![name]
        }
        Some(("unix-group", group)) => match facts.group(group) {
            Some(group) => facts.members(group),
            None => Vec::new(),
        },
        Some(("unix-netgroup", netgroup)) => match facts.netgroups.get(netgroup) {
            Some(users) => users.clone(),
            None => {
                report
                    .notes
                    .push(format!("polkit: {how}: its members could not be listed"));
                Vec::new()
            }
        },
        _ => Vec::new(),
    };
    users.into_iter().filter(|u| u != "root").collect()
}

/// Why the polkit gate does not stand between `user` (`None`: a rule's
/// subjects the scan cannot name) and what polkit gives them; `None`: it
/// does. `before_gate`: polkitd runs the rule that gives it before the
/// gate's.
fn polkit_gap(polkit: &PolkitFacts, user: Option<&str>, before_gate: bool) -> Option<String> {
    if !polkit.gate {
        return Some("the polkit gate is off ([polkit] gate = false)".into());
    }
    if !polkit.rule_installed {
        return Some("the polkit gate's rule (20-jit.rules) is not installed".into());
    }
    if before_gate {
        return Some("polkitd runs this rule before the polkit gate's (20-jit.rules)".into());
    }
    match user {
        Some(user) if polkit.exempt.iter().any(|e| e == user) => Some(format!(
            "{user} is exempt from the polkit gate ([polkit] exempt)"
        )),
        Some(_) => None,
        None => {
            let exempt: Vec<&str> = polkit
                .exempt
                .iter()
                .map(String::as_str)
                .filter(|e| *e != "root")
                .collect();
            (!exempt.is_empty()).then(|| {
                format!(
                    "users exempt from the polkit gate may be among them ([polkit] exempt: {})",
                    exempt.join(", ")
                )
            })
        }
    }
}

//! The standing-privilege scan's edge (docs/design.md, "Standing-privilege
//! scan"): the facts `core::standing` decides on, read from the host.
//! Every path is read under [`Host`]'s root (`/` in jitd; a planted tree in
//! tests); the tools it runs (`cvtsudoers`, `sshd -T`) are bounded by a
//! timeout, with argv only. Runs on a thread of the blocking pool, never
//! under the engine lock ([`scanner`]).
//!
//! What cannot be read is an error in the facts, reported with the
//! findings, never an empty list.

pub(crate) mod scanner;
mod sudoers;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use zeroize::Zeroizing;

use crate::accounts::shadow::run_read_within;
use crate::config::PolkitConfig;
use crate::core::pam_stack::{account_gate, walk, AccountGate};
use crate::core::password::Secret;
use crate::core::standing::{
    polkit, ssh, Account, Facts, Group, Password, PolkitFacts, RuleGrant, SshFacts, SuStack,
    ADMIN_GROUPS,
};

const SSHD: &str = "/usr/sbin/sshd";
const SSHD_TIMEOUT: Duration = Duration::from_secs(10);
/// Where polkitd reads rules (polkit 126 added `/run` and `/usr/local/share`;
/// read everywhere, whichever version runs).
const RULES_DIRS: [&str; 4] = [
    "/etc/polkit-1/rules.d",
    "/run/polkit-1/rules.d",
    "/usr/local/share/polkit-1/rules.d",
    "/usr/share/polkit-1/rules.d",
];
const LOCAL_AUTHORITY: &str = "/etc/polkit-1/localauthority.conf.d";
/// The polkit gate's rule as the package installs it.
const JIT_RULE: &str = "20-jit.rules";

/// Where the scan reads the host: `/`, or a tree planted by a test.
pub struct Host {
    root: PathBuf,
}

impl Host {
    pub fn system() -> Host {
        Host::at(Path::new("/"))
    }

    pub fn at(root: &Path) -> Host {
        Host {
            root: root.to_owned(),
        }
    }

    /// An absolute path of the host, under the root.
    fn path(&self, absolute: &str) -> PathBuf {
        self.root.join(absolute.trim_start_matches('/'))
    }

    /// A path under the root as the host names it.
    fn shown(&self, path: &Path) -> String {
        match path.strip_prefix(&self.root) {
            Ok(rest) => format!("/{}", rest.display()),
            Err(_) => path.display().to_string(),
        }
    }

    /// A PAM configuration file as libpam finds a name: an absolute path,
    /// else in `/etc/pam.d`, else in `/usr/lib/pam.d`.
    fn pam_file(&self, name: &str) -> Option<String> {
        if name.starts_with('/') {
            return read_pam(&self.path(name));
        }
        ["/etc/pam.d", "/usr/lib/pam.d"]
            .iter()
            .find_map(|dir| read_pam(&self.path(&format!("{dir}/{name}"))))
    }

    /// `service`'s stack: its file, or `other` where it has none (libpam's
    /// fallback).
    fn stack_reader<'a>(&'a self, service: &'a str) -> impl Fn(&str) -> Option<String> + 'a {
        move |name: &str| match self.pam_file(name) {
            None if name == service => self.pam_file("other"),
            found => found,
        }
    }

    fn gate(&self, service: &str) -> AccountGate {
        account_gate(service, &self.stack_reader(service))
    }
}

/// A PAM file as libpam reads it: bytes, whatever their encoding (a
/// Latin-1 comment must not hide the lines after it). Only a file that is
/// not there is missing (libpam then looks elsewhere); one there that
/// cannot be read is an empty stack, which gates nobody: the scan then
/// reports what it stands for rather than trust a stack it did not see.
fn read_pam(path: &Path) -> Option<String> {
    match std::fs::read(path) {
        Ok(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(_) => Some(String::new()),
    }
}

/// What jitd's configuration tells the scan.
#[derive(Clone, Debug)]
pub struct Inputs {
    pub polkit: PolkitConfig,
    /// Managed accounts (`[[account]]`): jitd may hold their passwords.
    pub managed: Vec<String>,
}

/// The facts, and the password fields of the managed accounts, which the
/// engine compares with what jitd wrote (custody) before deciding.
pub struct Gathered {
    pub facts: Facts,
    pub managed_fields: Vec<(String, Secret)>,
}

/// Reads the host.
pub fn gather(host: &Host, inputs: &Inputs) -> Gathered {
    let mut errors = Vec::new();
    let accounts: Vec<Account> = match crate::directory::accounts() {
        Ok(list) => list
            .into_iter()
            .map(|(name, uid, gid)| Account { name, uid, gid })
            .collect(),
        Err(e) => {
            errors.push(format!("accounts: {e}"));
            Vec::new()
        }
    };
    let sudo = sudoers::read(host);
    let services = match &sudo {
        Ok(s) => s.policy.pam_services(),
        Err(_) => ["sudo".into(), "sudo-i".into()],
    };
    let sudo_gates = services.iter().map(|s| host.gate(s)).collect();
    let su: Vec<SuStack> = ["su", "su-l"]
        .into_iter()
        .map(|service| SuStack {
            gate: host.gate(service),
            auth: walk(service, "auth", &host.stack_reader(service)),
        })
        .collect();
    let polkit = polkit_facts(host, &inputs.polkit);
    let (passwords, managed_fields) = passwords(host, &inputs.managed);
    let (host_names, host_addresses) = this_host();
    let mut facts = Facts {
        host_names,
        host_addresses,
        accounts,
        groups: Vec::new(),
        netgroups: BTreeMap::new(),
        passwords,
        custody: BTreeSet::new(),
        sudo_gates,
        sudo,
        ssh: ssh_facts(host),
        su,
        polkit,
        errors,
    };
    let mut group_errors = Vec::new();
    facts.groups = groups(&facts, &mut group_errors);
    facts.errors.extend(group_errors);
    Gathered {
        facts,
        managed_fields,
    }
}

/// The groups the facts name, as NSS answers: the admin groups, those of
/// sudoers' lists, pam_wheel's and polkit's.
fn groups(facts: &Facts, errors: &mut Vec<String>) -> Vec<Group> {
    let mut names: BTreeSet<String> = ADMIN_GROUPS.iter().map(|g| (*g).to_owned()).collect();
    let mut gids: BTreeSet<u32> = BTreeSet::from([0]);
    if let Ok(sudo) = &facts.sudo {
        let policy = &sudo.policy;
        let lists = policy
            .specs
            .iter()
            .map(|s| &s.users)
            .chain(policy.user_aliases.values())
            .chain(policy.defaults.iter().filter_map(|d| match &d.binding {
                crate::core::standing::sudo::Binding::User(list) => Some(list),
                _ => None,
            }));
        for m in lists.flatten() {
            match m.kind.as_str() {
                "usergroup" => {
                    names.insert(m.value.clone());
                }
                "usergid" => {
                    gids.extend(m.value.parse::<u32>().ok());
                }
                _ => {}
            }
        }
    }
    for stack in &facts.su {
        for line in stack
            .auth
            .lines
            .iter()
            .filter(|l| l.module.module == "pam_wheel.so")
        {
            names.extend(
                line.module
                    .args
                    .iter()
                    .filter_map(|a| a.strip_prefix("group="))
                    .map(str::to_owned),
            );
        }
    }
    names.extend(facts.polkit.groups().map(str::to_owned));
    let mut out: Vec<Group> = Vec::new();
    let mut keep = |found: nix::Result<Option<nix::unistd::Group>>, asked: String| match found {
        Ok(Some(g)) if !out.iter().any(|o| o.name == g.name) => out.push(Group {
            name: g.name,
            gid: g.gid.as_raw(),
            members: g.mem,
        }),
        Ok(_) => {}
        Err(e) => errors.push(format!("groups: looking up {asked}: {e}")),
    };
    for name in names {
        keep(nix::unistd::Group::from_name(&name), name);
    }
    for gid in gids {
        keep(
            nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid)),
            format!("gid {gid}"),
        );
    }
    out
}

/// `/etc/shadow`'s password fields, and the managed accounts' own.
type Passwords = Result<BTreeMap<String, Password>, String>;

fn passwords(host: &Host, managed: &[String]) -> (Passwords, Vec<(String, Secret)>) {
    let path = host.path("/etc/shadow");
    let text = match std::fs::read(&path) {
        Ok(bytes) => Zeroizing::new(bytes),
        Err(e) => return (Err(format!("{}: {e}", host.shown(&path))), Vec::new()),
    };
    let mut fields = BTreeMap::new();
    let mut managed_fields = Vec::new();
    for line in text.split(|b| *b == b'\n') {
        let mut parts = line.split(|b| *b == b':');
        let (Some(name), Some(field)) = (parts.next(), parts.next()) else {
            continue;
        };
        let (Ok(name), Ok(field)) = (std::str::from_utf8(name), std::str::from_utf8(field)) else {
            continue;
        };
        if name.is_empty() {
            continue;
        }
        fields.insert(name.to_owned(), Password::of_field(field));
        if managed.iter().any(|m| m == name) {
            managed_fields.push((name.to_owned(), Secret::new(field.to_owned())));
        }
    }
    (Ok(fields), managed_fields)
}

/// The host's names (as gethostname(2) gives it, and its first label)
/// and addresses, for sudoers' host lists.
fn this_host() -> (Vec<String>, Vec<IpAddr>) {
    let mut names = Vec::new();
    if let Ok(name) = nix::unistd::gethostname() {
        let name = name.to_string_lossy().to_ascii_lowercase();
        if let Some((short, _)) = name.split_once('.') {
            names.push(short.to_owned());
        }
        names.push(name);
    }
    let addresses = nix::ifaddrs::getifaddrs()
        .into_iter()
        .flatten()
        .filter_map(|i| i.address)
        .filter_map(|a| {
            a.as_sockaddr_in()
                .map(|v4| IpAddr::V4(v4.ip()))
                .or_else(|| a.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip())))
        })
        .collect();
    (names, addresses)
}

/// What sshd says of root's logins, and root's keys.
fn ssh_facts(host: &Host) -> SshFacts {
    let gate = host.gate("sshd");
    // The host's own sshd, whatever tree its configuration is read from.
    if !Path::new(SSHD).exists() {
        return SshFacts {
            sshd: None,
            sshd_error: None,
            gate,
            keys: Vec::new(),
            unreadable: Vec::new(),
        };
    }
    let config = host.path("/etc/ssh/sshd_config");
    let config = config.to_string_lossy();
    // sshd's configuration for a root login (its Match blocks for root).
    let args = [
        "-T",
        "-f",
        &config,
        "-C",
        "user=root,host=localhost,addr=127.0.0.1",
    ];
    let (sshd, sshd_error) = match run_read_within(SSHD, "sshd -T", &args, SSHD_TIMEOUT) {
        Ok(out) => (ssh::Sshd::parse(&String::from_utf8_lossy(&out)), None),
        Err(e) => (ssh::Sshd::default(), Some(e.to_string())),
    };
    let home = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(0))
        .ok()
        .flatten()
        .map_or_else(|| "/root".to_owned(), |u| u.dir.display().to_string());
    let (mut keys, mut unreadable) = (Vec::new(), Vec::new());
    for file in sshd.root_key_files(&home) {
        match std::fs::read_to_string(host.path(&file)) {
            Ok(text) => keys.extend(ssh::keys(&file, &text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(_) => unreadable.push(file),
        }
    }
    SshFacts {
        sshd: Some(sshd),
        sshd_error,
        gate,
        keys,
        unreadable,
    }
}

/// polkit's admin identities, its rules that grant without an
/// administrator, and whether jit's polkit gate holds.
fn polkit_facts(host: &Host, config: &PolkitConfig) -> PolkitFacts {
    let mut facts = PolkitFacts {
        gate: config.gate,
        exempt: config.exempt.clone(),
        ..PolkitFacts::default()
    };
    let files = rules_files(host, &mut facts.errors);
    // The first file of the gate's name is where polkitd runs the gate.
    let gate_at = files
        .iter()
        .position(|p| p.file_name().is_some_and(|n| n == JIT_RULE));
    facts.rule_installed = gate_at.is_some();
    for (at, path) in files.iter().enumerate() {
        let file = host.shown(path);
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) => {
                facts.errors.push(format!("polkit: {file}: {e}"));
                continue;
            }
        };
        let (identities, grants) = polkit::read_rules(&text);
        facts
            .identities
            .extend(identities.into_iter().map(|i| (file.clone(), i)));
        let before_gate = gate_at.is_none_or(|gate| at <= gate);
        facts
            .grants
            .extend(grants.into_iter().map(|grant| RuleGrant {
                file: file.clone(),
                before_gate,
                grant,
            }));
    }
    // The local authority: the last file that sets AdminIdentities wins.
    let mut local = None;
    for path in files_in(host, LOCAL_AUTHORITY, ".conf", &mut facts.errors) {
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                if let Some(found) = polkit::conf_identities(&text) {
                    local = Some((host.shown(&path), found));
                }
            }
            Err(e) => facts
                .errors
                .push(format!("polkit: {}: {e}", host.shown(&path))),
        }
    }
    if let Some((file, found)) = local {
        facts
            .identities
            .extend(found.into_iter().map(|i| (file.clone(), i)));
    }
    facts
}

/// The rules files of every rules directory, in the order polkitd runs
/// them.
fn rules_files(host: &Host, errors: &mut Vec<String>) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = RULES_DIRS
        .iter()
        .flat_map(|dir| files_in(host, dir, ".rules", errors))
        .collect();
    files.sort_by(|a, b| polkit::load_order(&host.shown(a), &host.shown(b)));
    files
}

/// The files of `dir` ending in `suffix`, by name; a missing directory
/// has none, an unreadable one is an error.
fn files_in(host: &Host, dir: &str, suffix: &str, errors: &mut Vec<String>) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(host.path(dir)) {
        Ok(entries) => entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().ends_with(suffix))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            errors.push(format!("polkit: {dir}: {e}"));
            Vec::new()
        }
    };
    files.sort();
    files
}

#[cfg(test)]
mod tests;

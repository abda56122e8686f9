//! `[vendors]`, `[managers]` and `[[segment]]`: sponsored vendor accounts
//! (W4, docs/design.md "Vendor accounts"), the sponsors' managers who
//! approve them, and the network segments a vendor may reach.

use std::collections::{BTreeMap, HashSet};
use std::ops::Range;
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;
use toml::Spanned;

use super::polkit::AccountName;
use super::{HumanDuration, Principal, Resource};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownManager {
    /// Anyone holding the manager role approves in the manager's place;
    /// the request says the sponsor's manager is not known.
    Fallback,
    /// The request is refused.
    Refuse,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawVendors {
    sponsors: Vec<Principal>,
    #[serde(default = "default_prefix")]
    prefix: Spanned<String>,
    uid_min: Spanned<u32>,
    uid_max: Spanned<u32>,
    #[serde(default = "default_group")]
    group: Spanned<AccountName>,
    #[serde(default = "default_max_duration")]
    max_duration: HumanDuration,
    #[serde(default = "default_retention")]
    retention: HumanDuration,
    #[serde(default = "default_unknown_manager")]
    unknown_manager: UnknownManager,
}

fn default_prefix() -> Spanned<String> {
    Spanned::new(0..0, "v-".into())
}
fn default_group() -> Spanned<AccountName> {
    Spanned::new(0..0, AccountName("jit-vendors".into()))
}
fn default_max_duration() -> HumanDuration {
    HumanDuration(Duration::from_secs(7 * 86400))
}
fn default_retention() -> HumanDuration {
    HumanDuration(Duration::from_secs(30 * 86400))
}
fn default_unknown_manager() -> UnknownManager {
    UnknownManager::Fallback
}

/// Who may sponsor vendors, and how their accounts are made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VendorsConfig {
    pub sponsors: Vec<Principal>,
    /// Every vendor account's name starts with it (`v-jdoe`); an account
    /// with it that jitd did not make is reported, never trusted.
    pub prefix: String,
    /// Vendor accounts' uids, each used once (recordings and the audit
    /// trail are keyed by uid).
    pub uids: std::ops::RangeInclusive<u32>,
    /// Every vendor account's group: sshd's `Match Group` for them.
    pub group: String,
    pub max_duration: Duration,
    /// How long an ended vendor's locked account is kept before it is
    /// deleted (its home archived, its recordings and audit kept).
    pub retention: Duration,
    pub unknown_manager: UnknownManager,
}

/// A network a vendor may be given: addresses and, optionally, ports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    pub name: String,
    pub networks: Vec<IpNet>,
    /// TCP and UDP destination ports; empty: every port.
    pub ports: Vec<u16>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSegment {
    name: Spanned<String>,
    networks: Vec<Spanned<String>>,
    #[serde(default)]
    ports: Vec<Spanned<u16>>,
}

type Problem = (Range<usize>, String);

/// uids the system gives out itself: Debian's nobody (65534), systemd's
/// DynamicUser= (61184-65519) and the rest of the 16-bit range.
const RESERVED_UIDS: std::ops::RangeInclusive<u32> = 60001..=65535;
/// systemd-nspawn's and other containers' uid ranges start here.
const CONTAINER_UIDS: u32 = 524_288;

/// The longest name useradd takes is 32 bytes; the prefix leaves the rest
/// to vendors' names.
const MAX_ACCOUNT_NAME: usize = 32;

pub(super) fn resolve(raw: RawVendors, resources: &[Resource]) -> Result<VendorsConfig, Problem> {
    let prefix = raw.prefix.get_ref();
    let prefix_ok = !prefix.is_empty()
        && prefix.len() < MAX_ACCOUNT_NAME / 2
        && prefix.starts_with(|c: char| c.is_ascii_lowercase())
        && prefix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_'));
    if !prefix_ok {
        return Err((
            raw.prefix.span(),
            format!(
                "prefix '{prefix}' must be 1-15 characters of a-z, 0-9, '-' or '_', \
                 starting with a letter"
            ),
        ));
    }
    let (min, max) = (*raw.uid_min.get_ref(), *raw.uid_max.get_ref());
    if min < 1000 {
        return Err((
            raw.uid_min.span(),
            format!("uid_min {min} is a system uid; vendors' uids start at 1000 or above"),
        ));
    }
    if max < min || max >= CONTAINER_UIDS {
        return Err((
            raw.uid_max.span(),
            format!(
                "uid_max {max} must be at least uid_min ({min}) and below {CONTAINER_UIDS} \
                 (systemd's container uids start there)"
            ),
        ));
    }
    // Every uid of the range loses the network and is ended with its
    // vendor: none may be one the system hands out itself.
    if min <= *RESERVED_UIDS.end() && *RESERVED_UIDS.start() <= max {
        return Err((
            raw.uid_min.span(),
            format!(
                "uids {min}-{max} include {}-{} (nobody and systemd's dynamic users): choose a \
                 range above them, e.g. 70000-79999",
                RESERVED_UIDS.start(),
                RESERVED_UIDS.end()
            ),
        ));
    }
    if resources.iter().all(|r| !r.vendors) {
        return Err((
            raw.prefix.span(),
            "[vendors] is set but no [[resource]] has vendors = true: nothing could be \
             granted to a vendor"
                .into(),
        ));
    }
    Ok(VendorsConfig {
        sponsors: raw.sponsors,
        prefix: prefix.clone(),
        uids: min..=max,
        group: raw.group.into_inner().0,
        max_duration: raw.max_duration.0,
        retention: raw.retention.0,
        unknown_manager: raw.unknown_manager,
    })
}

/// `[managers]`: each sponsor's manager, by user name.
pub(super) fn resolve_managers(
    raw: BTreeMap<String, Spanned<AccountName>>,
) -> Result<BTreeMap<String, String>, Problem> {
    let mut managers = BTreeMap::new();
    for (person, manager) in raw {
        let span = manager.span();
        let AccountName(name) = manager.into_inner();
        if name == person {
            return Err((span, format!("'{person}' cannot be their own manager")));
        }
        managers.insert(person, name);
    }
    Ok(managers)
}

pub(super) fn resolve_segments(raw: Vec<RawSegment>) -> Result<Vec<Segment>, Problem> {
    let mut seen = HashSet::new();
    let mut segments = Vec::with_capacity(raw.len());
    for s in raw {
        let name = s.name.get_ref();
        if !super::valid_resource_name(name) {
            return Err((
                s.name.span(),
                format!(
                    "segment name '{name}' must be 1-64 characters of a-z, 0-9, '-', '_' or '.'"
                ),
            ));
        }
        if !seen.insert(name.clone()) {
            return Err((s.name.span(), format!("segment '{name}' is defined twice")));
        }
        if s.networks.is_empty() {
            return Err((s.name.span(), format!("segment '{name}' has no networks")));
        }
        let mut networks = Vec::with_capacity(s.networks.len());
        for network in &s.networks {
            let text = network.get_ref();
            let parsed: IpNet = text.parse().map_err(|_| {
                (
                    network.span(),
                    format!(
                        "'{text}' is not a network; use e.g. \"10.20.0.0/24\" or \"2001:db8::/64\""
                    ),
                )
            })?;
            if parsed.trunc() != parsed {
                return Err((
                    network.span(),
                    format!(
                        "'{text}' has host bits set; did you mean \"{}\"?",
                        parsed.trunc()
                    ),
                ));
            }
            networks.push(parsed);
        }
        let mut ports = Vec::with_capacity(s.ports.len());
        for port in &s.ports {
            if *port.get_ref() == 0 {
                return Err((port.span(), "port 0 is not a port".into()));
            }
            ports.push(*port.get_ref());
        }
        segments.push(Segment {
            name: s.name.into_inner(),
            networks,
            ports,
        });
    }
    Ok(segments)
}

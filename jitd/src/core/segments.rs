//! Vendors' network segments (W4, docs/design.md "Network segments"): the
//! one nftables script that holds every active vendor's egress rules.
//!
//! The script replaces jit's own table (`inet jit_vendors`) as a whole, in
//! one nft transaction: applying it twice is applying it once, and it
//! erases whatever was there (a table altered by hand, left by a jitd
//! killed mid-change). In its `output` chain each vendor uid may send to
//! its segments' networks (and, when the segment lists ports, only to those
//! TCP and UDP ports); every other packet from that uid is counted and
//! dropped. Loopback is not special: 127.0.0.0/8 and ::1 are dropped like
//! any address no segment names, so local services (databases, proxies,
//! resolvers on 127.0.0.53) are out of reach unless a segment grants them.
//! DNS is only what a segment allows (a resolver inside one, port 53). The
//! family is `inet`: one rule set for IPv4 and IPv6, each network matched
//! with `ip daddr` or `ip6 daddr`, so a vendor with IPv4 segments only
//! sends no IPv6 at all.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use ipnet::IpNet;

use super::model::Uid;
use crate::config::Segment;

/// jit's table: nothing else in it, nobody else's rules in it.
pub const TABLE: &str = "jit_vendors";
/// IPv4 and IPv6 in one table.
pub const FAMILY: &str = "inet";

/// One vendor's uid and the segments it may reach.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VendorEgress<'a> {
    pub uid: Uid,
    pub segments: Vec<&'a Segment>,
}

/// What a vendor's drop rule has counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counted {
    pub packets: u64,
    pub bytes: u64,
}

const DROP_COMMENT: &str = "jit vendor uid ";

/// The comment on `uid`'s drop rule: how its counter is found again.
pub fn drop_comment(uid: Uid) -> String {
    format!("{DROP_COMMENT}{uid}")
}

/// The uid whose drop rule has `comment`, if it is one.
pub fn uid_of_comment(comment: &str) -> Option<Uid> {
    comment.strip_prefix(DROP_COMMENT)?.parse().ok()
}

/// The comment on the rule that drops the rest of the vendors' uid range.
pub const RANGE_COMMENT: &str = "jit vendors' uid range";

/// The nft script (for `nft -f -`) that makes jit's table hold exactly the
/// rules of `vendors`, then a drop of every other uid of `range` (the
/// vendors' uids: an ended vendor's process that outlived its account's
/// lock, or an account of the range jitd did not make, sends nothing);
/// with neither, it only removes the table. The table is made anew, so each
/// drop counter starts from `counted` (what the table counted before): one
/// vendor's change does not zero the others'.
pub fn script(
    vendors: &[VendorEgress<'_>],
    range: Option<&std::ops::RangeInclusive<Uid>>,
    counted: &BTreeMap<Uid, Counted>,
) -> String {
    // `add` first: `delete` of a missing table would fail the transaction.
    let mut out = format!("add table {FAMILY} {TABLE}\ndelete table {FAMILY} {TABLE}\n");
    if vendors.is_empty() && range.is_none() {
        return out;
    }
    let _ = writeln!(out, "table {FAMILY} {TABLE} {{");
    out.push_str("\tchain output {\n");
    out.push_str("\t\ttype filter hook output priority filter; policy accept;\n");
    // By uid, each once: the same rules whatever order the store gives.
    let mut sorted: Vec<&VendorEgress<'_>> = vendors.iter().collect();
    sorted.sort_by_key(|v| v.uid);
    sorted.dedup_by_key(|v| v.uid);
    for vendor in sorted {
        for segment in &vendor.segments {
            for (match_, nets) in families(segment) {
                let _ = write!(
                    out,
                    "\t\tmeta skuid {} {match_} daddr {}",
                    vendor.uid,
                    set(nets.iter().map(ToString::to_string))
                );
                let ports: BTreeSet<u16> = segment.ports.iter().copied().collect();
                if !ports.is_empty() {
                    let _ = write!(
                        out,
                        " meta l4proto {{ tcp, udp }} th dport {}",
                        set(ports.iter().map(ToString::to_string))
                    );
                }
                // Segment names are [a-z0-9._-] (config): safe in quotes.
                let _ = writeln!(out, " accept comment \"{}\"", segment.name);
            }
        }
        let counter = match counted.get(&vendor.uid) {
            Some(c) => format!("counter packets {} bytes {}", c.packets, c.bytes),
            None => "counter".to_owned(),
        };
        let _ = writeln!(
            out,
            "\t\tmeta skuid {} {counter} drop comment \"{}\"",
            vendor.uid,
            drop_comment(vendor.uid)
        );
    }
    if let Some(range) = range {
        let _ = writeln!(
            out,
            "\t\tmeta skuid {}-{} counter drop comment \"{RANGE_COMMENT}\"",
            range.start(),
            range.end()
        );
    }
    out.push_str("\t}\n}\n");
    out
}

/// A segment's networks split by address family, each set sorted and
/// without duplicates: `("ip", v4)` then `("ip6", v6)`, empty ones left out.
fn families(segment: &Segment) -> Vec<(&'static str, BTreeSet<IpNet>)> {
    let (v4, v6): (BTreeSet<IpNet>, BTreeSet<IpNet>) = segment
        .networks
        .iter()
        .partition(|n| matches!(n, IpNet::V4(_)));
    [("ip", v4), ("ip6", v6)]
        .into_iter()
        .filter(|(_, nets)| !nets.is_empty())
        .collect()
}

/// An anonymous nft set: `{ a, b }`.
fn set(items: impl Iterator<Item = String>) -> String {
    format!("{{ {} }}", items.collect::<Vec<_>>().join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(name: &str, networks: &[&str], ports: &[u16]) -> Segment {
        Segment {
            name: name.into(),
            networks: networks.iter().map(|n| n.parse().unwrap()).collect(),
            ports: ports.to_vec(),
        }
    }

    const HEAD: &str = "add table inet jit_vendors\ndelete table inet jit_vendors\n";

    #[test]
    fn no_vendor_only_removes_the_table() {
        assert_eq!(script(&[], None, &BTreeMap::new()), HEAD);
    }

    #[test]
    fn the_whole_table_for_one_vendor() {
        let db = segment("db-net", &["10.20.0.0/24"], &[5432]);
        let text = script(
            &[VendorEgress {
                uid: 70_500,
                segments: vec![&db],
            }],
            Some(&(70_500..=70_599)),
            &BTreeMap::new(),
        );
        let expected = format!(
            "{HEAD}table inet jit_vendors {{\n\tchain output {{\n\
             \t\ttype filter hook output priority filter; policy accept;\n\
             \t\tmeta skuid 70500 ip daddr {{ 10.20.0.0/24 }} meta l4proto {{ tcp, udp }} \
             th dport {{ 5432 }} accept comment \"db-net\"\n\
             \t\tmeta skuid 70500 counter drop comment \"jit vendor uid 70500\"\n\
             \t\tmeta skuid 70500-70599 counter drop comment \"jit vendors' uid range\"\n\
             \t}}\n}}\n"
        );
        assert_eq!(text, expected);
    }

    #[test]
    fn with_no_vendor_left_the_range_is_still_dropped() {
        let text = script(&[], Some(&(70_500..=70_599)), &BTreeMap::new());
        assert_eq!(
            rules(&text),
            ["meta skuid 70500-70599 counter drop comment \"jit vendors' uid range\""]
        );
    }

    /// The rule lines between the chain's type and its end.
    fn rules(text: &str) -> Vec<&str> {
        text.lines()
            .map(str::trim)
            .filter(|l| l.starts_with("meta skuid"))
            .collect()
    }

    #[test]
    fn rules_by_case() {
        let db = segment("db-net", &["10.20.0.0/24"], &[5432]);
        let mixed = segment(
            "dual",
            &["2001:db8::/64", "10.9.0.0/16", "10.1.0.0/16", "10.1.0.0/16"],
            &[443, 22, 443],
        );
        let any_port = segment("lab", &["192.0.2.0/24"], &[]);
        let lo = segment("local", &["127.0.0.0/8", "::1/128"], &[]);
        let cases: Vec<(&str, Vec<VendorEgress<'_>>, Vec<&str>)> = vec![
            (
                "no segment: everything dropped",
                vec![VendorEgress {
                    uid: 7,
                    segments: vec![],
                }],
                vec!["meta skuid 7 counter drop comment \"jit vendor uid 7\""],
            ),
            (
                "every port: the address alone",
                vec![VendorEgress {
                    uid: 7,
                    segments: vec![&any_port],
                }],
                vec![
                    "meta skuid 7 ip daddr { 192.0.2.0/24 } accept comment \"lab\"",
                    "meta skuid 7 counter drop comment \"jit vendor uid 7\"",
                ],
            ),
            (
                "both families, sorted and without duplicates",
                vec![VendorEgress {
                    uid: 7,
                    segments: vec![&mixed],
                }],
                vec![
                    "meta skuid 7 ip daddr { 10.1.0.0/16, 10.9.0.0/16 } meta l4proto { tcp, udp } \
                     th dport { 22, 443 } accept comment \"dual\"",
                    "meta skuid 7 ip6 daddr { 2001:db8::/64 } meta l4proto { tcp, udp } \
                     th dport { 22, 443 } accept comment \"dual\"",
                    "meta skuid 7 counter drop comment \"jit vendor uid 7\"",
                ],
            ),
            (
                "loopback only when a segment names it",
                vec![VendorEgress {
                    uid: 7,
                    segments: vec![&lo],
                }],
                vec![
                    "meta skuid 7 ip daddr { 127.0.0.0/8 } accept comment \"local\"",
                    "meta skuid 7 ip6 daddr { ::1/128 } accept comment \"local\"",
                    "meta skuid 7 counter drop comment \"jit vendor uid 7\"",
                ],
            ),
            (
                "vendors by uid, each once, each its own drop",
                vec![
                    VendorEgress {
                        uid: 9,
                        segments: vec![&db],
                    },
                    VendorEgress {
                        uid: 8,
                        segments: vec![&any_port, &db],
                    },
                    VendorEgress {
                        uid: 9,
                        segments: vec![&db],
                    },
                ],
                vec![
                    "meta skuid 8 ip daddr { 192.0.2.0/24 } accept comment \"lab\"",
                    "meta skuid 8 ip daddr { 10.20.0.0/24 } meta l4proto { tcp, udp } \
                     th dport { 5432 } accept comment \"db-net\"",
                    "meta skuid 8 counter drop comment \"jit vendor uid 8\"",
                    "meta skuid 9 ip daddr { 10.20.0.0/24 } meta l4proto { tcp, udp } \
                     th dport { 5432 } accept comment \"db-net\"",
                    "meta skuid 9 counter drop comment \"jit vendor uid 9\"",
                ],
            ),
        ];
        for (what, vendors, expected) in cases {
            let text = script(&vendors, None, &BTreeMap::new());
            assert!(text.starts_with(HEAD), "{what}: {text}");
            assert_eq!(rules(&text), expected, "{what}");
        }
    }

    #[test]
    fn the_same_vendors_in_another_order_give_the_same_script() {
        let db = segment("db-net", &["10.20.0.0/24"], &[5432]);
        let a = VendorEgress {
            uid: 1,
            segments: vec![&db],
        };
        let b = VendorEgress {
            uid: 2,
            segments: vec![],
        };
        let none = BTreeMap::new();
        assert_eq!(
            script(&[a.clone(), b.clone()], None, &none),
            script(&[b, a], None, &none),
            "the keeper compares scripts to know whether to apply"
        );
    }

    #[test]
    fn counters_carry_over_the_replacement() {
        let counted = BTreeMap::from([
            (
                7,
                Counted {
                    packets: 5,
                    bytes: 300,
                },
            ),
            (8, Counted::default()),
        ]);
        let text = script(
            &[VendorEgress {
                uid: 7,
                segments: vec![],
            }],
            None,
            &counted,
        );
        assert_eq!(
            rules(&text),
            ["meta skuid 7 counter packets 5 bytes 300 drop comment \"jit vendor uid 7\""]
        );
        assert_eq!(uid_of_comment(&drop_comment(70_500)), Some(70_500));
        assert_eq!(uid_of_comment("db-net"), None);
    }
}

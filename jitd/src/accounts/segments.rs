//! Vendors' egress rules on the host (docs/design.md "Network segments"):
//! the script `core::segments` renders, given to `nft -f -` on its standard
//! input (one nft transaction: the table is replaced whole or not at all),
//! and the drop counters read back with `nft -j`.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use super::shadow::{run, run_read, AccountError};
use crate::core::segments::{uid_of_comment, Counted, FAMILY, TABLE};

const NFT: &str = "/usr/sbin/nft";

/// What jitd does to the host's packet filter: the keeper decides when
/// (others in tests).
pub trait Firewall: Send + Sync {
    /// Applies an nft script (`core::segments::script`).
    fn apply(&self, script: &str) -> Result<(), AccountError>;
    /// What each vendor uid's drop rule in jit's table has counted; empty
    /// when nft or the table is missing.
    fn counters(&self) -> BTreeMap<u32, Counted>;
}

/// The host's nftables.
pub struct Nft;

impl Firewall for Nft {
    fn apply(&self, script: &str) -> Result<(), AccountError> {
        apply(script)
    }

    fn counters(&self) -> BTreeMap<u32, Counted> {
        counters()
    }
}

fn installed() -> Result<(), AccountError> {
    if Path::new(NFT).exists() {
        return Ok(());
    }
    Err(AccountError::Io(io::Error::new(
        io::ErrorKind::NotFound,
        format!("nftables is not installed ({NFT} is missing): vendors' egress cannot be limited"),
    )))
}

/// Runs `nft -f -` with `script` on its standard input (bounded like the
/// shadow-utils tools, and killed with jitd).
pub fn apply(script: &str) -> Result<(), AccountError> {
    installed()?;
    run(NFT, "nft", &["-f", "-"], Some(script.as_bytes()))
}

/// The drop counters of jit's table, by uid (`nft -j list table`).
pub fn counters() -> BTreeMap<u32, Counted> {
    let Ok(()) = installed() else {
        return BTreeMap::new();
    };
    run_read(NFT, "nft", &["-j", "list", "table", FAMILY, TABLE], None)
        .ok()
        .and_then(|out| serde_json::from_slice(&out).ok())
        .map(|doc| counters_of(&doc))
        .unwrap_or_default()
}

/// The counters of the drop rules (found by their comments) in `nft -j`
/// output.
fn counters_of(doc: &serde_json::Value) -> BTreeMap<u32, Counted> {
    let items = doc["nftables"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    items
        .iter()
        .filter_map(|item| {
            let rule = item.get("rule")?;
            let uid = uid_of_comment(rule["comment"].as_str()?)?;
            let counter = rule["expr"]
                .as_array()?
                .iter()
                .find_map(|e| e.get("counter"))?;
            Some((
                uid,
                Counted {
                    packets: counter["packets"].as_u64()?,
                    bytes: counter["bytes"].as_u64()?,
                },
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counters_are_found_by_their_comments() {
        // nft 1.0.6's `-j list table inet jit_vendors`, trimmed.
        let doc: serde_json::Value = serde_json::from_str(
            r#"{"nftables": [{"metainfo": {"version": "1.0.6"}},
            {"table": {"family": "inet", "name": "jit_vendors", "handle": 2}},
            {"rule": {"family": "inet", "table": "jit_vendors", "chain": "output", "handle": 2,
              "comment": "db-net", "expr": [{"accept": null}]}},
            {"rule": {"family": "inet", "table": "jit_vendors", "chain": "output", "handle": 4,
              "comment": "jit vendor uid 70500", "expr": [
                {"match": {"op": "==", "left": {"meta": {"key": "skuid"}}, "right": 70500}},
                {"counter": {"packets": 3, "bytes": 180}}, {"drop": null}]}}]}"#,
        )
        .unwrap();
        let expected = Counted {
            packets: 3,
            bytes: 180,
        };
        assert_eq!(counters_of(&doc), BTreeMap::from([(70_500, expected)]));
        assert!(counters_of(&serde_json::json!({})).is_empty());
    }
}

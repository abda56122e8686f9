//! Vendors' egress rules on the host (docs/design.md "Network segments"):
//! the script `core::segments` renders, given to `nft -f -` on its standard
//! input (one nft transaction: the table is replaced whole or not at all),
//! and the drop counters read back with `nft -j`.

use std::io;
use std::path::Path;

use super::shadow::{run, run_read, AccountError};
use crate::core::segments::{drop_comment, FAMILY, TABLE};

const NFT: &str = "/usr/sbin/nft";

/// What jitd does to the host's packet filter: the keeper decides when
/// (others in tests).
pub trait Firewall: Send + Sync {
    /// Applies an nft script (`core::segments::script`).
    fn apply(&self, script: &str) -> Result<(), AccountError>;
    /// Packets dropped from `uid` since its rules were last made, if jit's
    /// table has them.
    fn dropped(&self, uid: u32) -> Option<u64>;
}

/// The host's nftables.
pub struct Nft;

impl Firewall for Nft {
    fn apply(&self, script: &str) -> Result<(), AccountError> {
        apply(script)
    }

    fn dropped(&self, uid: u32) -> Option<u64> {
        dropped(uid)
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

/// The packets counted by `uid`'s drop rule in jit's table: `None` when
/// nft, the table or the rule is missing.
pub fn dropped(uid: u32) -> Option<u64> {
    installed().ok()?;
    let out = run_read(NFT, "nft", &["-j", "list", "table", FAMILY, TABLE], None).ok()?;
    let doc: serde_json::Value = serde_json::from_slice(&out).ok()?;
    counter_of(&doc, &drop_comment(uid))
}

/// The packet count of the rule commented `comment` in `nft -j` output.
fn counter_of(doc: &serde_json::Value, comment: &str) -> Option<u64> {
    doc["nftables"].as_array()?.iter().find_map(|item| {
        let rule = item.get("rule")?;
        if rule["comment"].as_str() != Some(comment) {
            return None;
        }
        rule["expr"]
            .as_array()?
            .iter()
            .find_map(|e| e.get("counter")?["packets"].as_u64())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counter_is_found_by_its_comment() {
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
        assert_eq!(counter_of(&doc, "jit vendor uid 70500"), Some(3));
        assert_eq!(counter_of(&doc, "jit vendor uid 70501"), None);
        assert_eq!(counter_of(&serde_json::json!({}), "x"), None);
    }
}

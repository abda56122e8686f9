//! `jitctl siem status` and `jitctl audit verify --anchors FILE`: the SIEM
//! feed's lag, and the audit trail checked against what a SIEM received.

use std::io::{BufRead, BufReader};
use std::path::Path;

use super::args::Output;
use super::client::{failure, Daemon1Proxy};
use super::commands::{parse, show};
use super::{render, CliError, Exit};
use crate::api::{AnchorView, SinkView, VerifyView};

/// Most rows checked in one call (jitd's limit): more go in several.
const MAX_ANCHORS: usize = 100_000;

pub async fn status(jitd: &Daemon1Proxy<'_>, out: Output) -> Result<Exit, CliError> {
    let sinks: Vec<SinkView> = parse(&jitd.siem_status().await.map_err(failure)?)?;
    show(out, &sinks, |s| render::sinks(s));
    Ok(Exit::Ok)
}

pub async fn verify_anchors(
    jitd: &Daemon1Proxy<'_>,
    file: &Path,
    out: Output,
) -> Result<Exit, CliError> {
    let unreadable = |e: std::io::Error| {
        CliError::new(
            Exit::Usage,
            format!("cannot read the SIEM's records in {}: {e}", file.display()),
        )
    };
    let reader = BufReader::new(std::fs::File::open(file).map_err(unreadable)?);
    let mut lines = Vec::new();
    for line in reader.lines() {
        lines.push(line.map_err(unreadable)?);
    }
    let deliverer = nix::unistd::User::from_name(crate::deliver::USER)
        .ok()
        .flatten()
        .map(|u| u.uid.as_raw());
    let rows = match rows_in(lines.iter().map(String::as_str), deliverer) {
        Ok(rows) => rows,
        // The SIEM's own records show a rollback: no need to ask the host.
        Err(problem) => {
            let view = VerifyView {
                ok: false,
                rows: 0,
                problem: Some(problem),
                anchors: Some(0),
            };
            show(out, &view, render::verification);
            return Ok(Exit::Failed);
        }
    };
    if rows.is_empty() {
        return Err(CliError::new(
            Exit::Usage,
            format!(
                "{} holds no jit anchors or events: give the records the SIEM received from jitd \
                 (JSON lines, syslog lines, or journalctl -o json)",
                file.display()
            ),
        ));
    }
    // In chunks of what jitd takes at once: every row is checked.
    let mut checked = 0;
    let mut result: Option<VerifyView> = None;
    for chunk in rows.chunks(MAX_ANCHORS) {
        let json =
            serde_json::to_string(chunk).map_err(|e| CliError::new(Exit::Failed, e.to_string()))?;
        let view: VerifyView = parse(&jitd.verify_anchors(&json).await.map_err(failure)?)?;
        checked += view.anchors.unwrap_or(0);
        let failed = !view.ok;
        result = Some(view);
        if failed {
            break;
        }
    }
    let mut result = result.unwrap_or(VerifyView {
        ok: false,
        rows: 0,
        problem: Some("nothing was checked".into()),
        anchors: None,
    });
    result.anchors = Some(checked);
    show(out, &result, render::verification);
    Ok(if result.ok { Exit::Ok } else { Exit::Failed })
}

/// The JSON object a line carries: the line itself (a JSON line, a
/// journalctl record), or the MSG at the end of a syslog line.
fn object_in(line: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    let line = line.trim();
    line.match_indices('{').find_map(|(at, _)| {
        serde_json::from_str::<serde_json::Value>(&line[at..])
            .ok()
            .and_then(|v| match v {
                serde_json::Value::Object(o) => Some(o),
                _ => None,
            })
            .filter(|o| o.contains_key("mac") || o.contains_key("JIT_MAC"))
    })
}

/// The row a record names, with its MAC. A journald record counts only if
/// journald says the worker sent it (`_UID`, which the sender cannot
/// forge): anyone on the host may log fields named `JIT_MAC`.
fn row_of(
    o: &serde_json::Map<String, serde_json::Value>,
    deliverer: Option<u32>,
) -> Option<AnchorView> {
    let number = |key: &str| {
        o.get(key).and_then(|v| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
    };
    let text = |key: &str| o.get(key).and_then(|v| v.as_str()).map(str::to_owned);
    let (id, mac) = match o.get("type").and_then(|t| t.as_str()) {
        Some("anchor") => (number("last_id")?, text("mac")?),
        Some("event") => (number("id")?, text("mac")?),
        _ => {
            let sender = number("_UID").and_then(|uid| u32::try_from(uid).ok());
            if sender.is_none() || sender != deliverer {
                return None;
            }
            (
                number("JIT_ANCHOR_ID").or_else(|| number("JIT_ID"))?,
                text("JIT_MAC")?,
            )
        }
    };
    Some(AnchorView {
        id,
        mac: mac.to_ascii_lowercase(),
    })
}

/// Every row the SIEM's records name (anchors and events), once each, in
/// id order. An id received with two different MACs is the sign of a
/// database rolled back and written again: that is the error.
pub(super) fn rows_in<'a>(
    lines: impl Iterator<Item = &'a str>,
    deliverer: Option<u32>,
) -> Result<Vec<AnchorView>, String> {
    let mut rows: std::collections::BTreeMap<u64, String> = std::collections::BTreeMap::new();
    for row in lines
        .filter_map(object_in)
        .filter_map(|o| row_of(&o, deliverer))
    {
        match rows.get(&row.id) {
            Some(mac) if *mac != row.mac => {
                return Err(format!(
                    "the SIEM received row {} twice with two different MACs: the database was \
                     rolled back and written again",
                    row.id
                ))
            }
            Some(_) => {}
            None => {
                rows.insert(row.id, row.mac);
            }
        }
    }
    Ok(rows
        .into_iter()
        .map(|(id, mac)| AnchorView { id, mac })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DELIVERER: Option<u32> = Some(998);

    #[test]
    fn rows_come_from_json_lines_syslog_and_the_workers_journald_records() {
        let lines = [
            r#"{"type":"event","id":1,"mac":"aa","detail":{}}"#,
            r#"{"type":"anchor","last_id":1,"mac":"AA","at":5}"#,
            r#"<86>1 2026-12-06T10:00:00Z h jitd - audit_anchor [jit@32473 anchor="3" mac="cc"] {"type":"anchor","last_id":3,"mac":"cc","at":9}"#,
            r#"<85>1 2026-12-06T10:00:00Z h jitd - granted [jit@32473 id="4" detail.reason="{\"x\"\]"] {"type":"event","id":4,"mac":"dd","detail":{"reason":"{\"x\"]"}}"#,
            r#"{"__CURSOR":"s=1","_UID":"998","JIT_RECORD":"anchor","JIT_ANCHOR_ID":"2","JIT_MAC":"bb"}"#,
            r#"{"__CURSOR":"s=2","_UID":"998","JIT_RECORD":"event","JIT_ID":"2","JIT_MAC":"bb"}"#,
            // Logged by someone else: not the SIEM's record of jitd.
            r#"{"__CURSOR":"s=3","_UID":"1000","JIT_RECORD":"anchor","JIT_ANCHOR_ID":"9","JIT_MAC":"00"}"#,
            "Dec  6 10:00:00 h sshd[1]: unrelated",
            "",
        ];
        let rows = rows_in(lines.into_iter(), DELIVERER).unwrap();
        let got: Vec<(u64, &str)> = rows.iter().map(|a| (a.id, a.mac.as_str())).collect();
        assert_eq!(got, vec![(1, "aa"), (2, "bb"), (3, "cc"), (4, "dd")]);
    }

    #[test]
    fn one_row_with_two_macs_is_a_rollback_whatever_came_last() {
        let lines = [
            r#"{"type":"event","id":5,"mac":"11"}"#,
            r#"{"type":"event","id":6,"mac":"22"}"#,
            r#"{"type":"anchor","last_id":5,"mac":"99","at":9}"#,
        ];
        let err = rows_in(lines.into_iter(), DELIVERER).unwrap_err();
        assert!(err.contains("row 5 twice with two different MACs"), "{err}");
    }

    #[test]
    fn every_row_is_kept_for_checking() {
        let lines: Vec<String> = (1..=MAX_ANCHORS as u64 + 5)
            .map(|id| format!(r#"{{"type":"event","id":{id},"mac":"ff"}}"#))
            .collect();
        let rows = rows_in(lines.iter().map(String::as_str), DELIVERER).unwrap();
        assert_eq!(rows.len(), MAX_ANCHORS + 5);
        assert_eq!(rows.chunks(MAX_ANCHORS).count(), 2);
    }
}

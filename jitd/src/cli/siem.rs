//! `jitctl siem status` and `jitctl audit verify --anchors FILE`: the SIEM
//! feed's lag, and the audit trail checked against what a SIEM received.

use std::io::{BufRead, BufReader};
use std::path::Path;

use super::args::Output;
use super::client::{failure, Daemon1Proxy};
use super::commands::{parse, show};
use super::{render, CliError, Exit};
use crate::api::{AnchorView, SinkView, VerifyView};

/// Most anchors sent to jitd (its limit): the newest are kept.
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
    let anchors = anchors_in(lines.iter().map(String::as_str));
    if anchors.is_empty() {
        return Err(CliError::new(
            Exit::Usage,
            format!(
                "{} holds no jit anchors or events: give the records the SIEM received from jitd \
                 (JSON lines, syslog lines, or journalctl -o json)",
                file.display()
            ),
        ));
    }
    let json =
        serde_json::to_string(&anchors).map_err(|e| CliError::new(Exit::Failed, e.to_string()))?;
    let result: VerifyView = parse(&jitd.verify_anchors(&json).await.map_err(failure)?)?;
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

/// One row a record names, with its MAC.
fn anchor_of(o: &serde_json::Map<String, serde_json::Value>) -> Option<(bool, AnchorView)> {
    let number = |key: &str| {
        o.get(key).and_then(|v| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
    };
    let text = |key: &str| o.get(key).and_then(|v| v.as_str()).map(str::to_owned);
    // jit's records (JSON lines, syslog MSG), then journald's fields.
    let (is_anchor, id, mac) = match o.get("type").and_then(|t| t.as_str()) {
        Some("anchor") => (true, number("last_id")?, text("mac")?),
        Some("event") => (false, number("id")?, text("mac")?),
        _ => match number("JIT_ANCHOR_ID") {
            Some(id) => (true, id, text("JIT_MAC")?),
            None => (false, number("JIT_ID")?, text("JIT_MAC")?),
        },
    };
    Some((is_anchor, AnchorView { id, mac }))
}

/// What to check: every anchor, and the newest event (the newest row the
/// SIEM holds), one per row; the newest [`MAX_ANCHORS`] of them.
pub(super) fn anchors_in<'a>(lines: impl Iterator<Item = &'a str>) -> Vec<AnchorView> {
    let mut rows = std::collections::BTreeMap::new();
    let mut newest_event: Option<AnchorView> = None;
    for (is_anchor, anchor) in lines.filter_map(object_in).filter_map(|o| anchor_of(&o)) {
        if is_anchor {
            rows.insert(anchor.id, anchor.mac);
        } else if newest_event.as_ref().is_none_or(|e| e.id < anchor.id) {
            newest_event = Some(anchor);
        }
    }
    if let Some(event) = newest_event {
        rows.entry(event.id).or_insert(event.mac);
    }
    let skip = rows.len().saturating_sub(MAX_ANCHORS);
    rows.into_iter()
        .skip(skip)
        .map(|(id, mac)| AnchorView { id, mac })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_come_from_json_lines_syslog_and_journald_records() {
        let lines = [
            r#"{"type":"event","id":1,"mac":"aa","detail":{}}"#,
            r#"{"type":"anchor","last_id":1,"mac":"aa","at":5}"#,
            r#"<86>1 2026-12-06T10:00:00Z h jitd - audit_anchor [jit@32473 anchor="3" mac="cc"] {"type":"anchor","last_id":3,"mac":"cc","at":9}"#,
            r#"<85>1 2026-12-06T10:00:00Z h jitd - granted [jit@32473 id="4" detail.reason="{\"x\"\]"] {"type":"event","id":4,"mac":"dd","detail":{"reason":"{\"x\"]"}}"#,
            r#"{"__CURSOR":"s=1","JIT_RECORD":"anchor","JIT_ANCHOR_ID":"2","JIT_MAC":"bb"}"#,
            r#"{"__CURSOR":"s=2","JIT_RECORD":"event","JIT_ID":"2","JIT_MAC":"bb"}"#,
            "Dec  6 10:00:00 h sshd[1]: unrelated",
            "",
        ];
        let anchors = anchors_in(lines.into_iter());
        let got: Vec<(u64, &str)> = anchors.iter().map(|a| (a.id, a.mac.as_str())).collect();
        assert_eq!(got, vec![(1, "aa"), (2, "bb"), (3, "cc"), (4, "dd")]);
    }

    #[test]
    fn only_the_newest_are_kept() {
        let lines: Vec<String> = (1..=MAX_ANCHORS as u64 + 5)
            .map(|id| format!(r#"{{"type":"anchor","last_id":{id},"mac":"ff"}}"#))
            .collect();
        let anchors = anchors_in(lines.iter().map(String::as_str));
        assert_eq!(anchors.len(), MAX_ANCHORS);
        assert_eq!(anchors[0].id, 6);
    }
}

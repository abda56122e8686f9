//! How a record is written for each kind of sink (docs/design.md "SIEM
//! feed"): an RFC 5424 message, a JSON line, journald's fields. Pure.

use serde::Serialize;
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use jitd::deliver::feed::{Labels, Record};

/// RFC 5424's structured-data id. 32473 is the private enterprise number
/// RFC 5612 sets aside for examples: jit has none of its own.
pub const SD_ID: &str = "jit@32473";
const APP_NAME: &str = "jitd";

/// Syslog severities (RFC 5424 section 6.2.1).
const WARNING: u8 = 4;
const NOTICE: u8 = 5;
const INFO: u8 = 6;

/// Events a SIEM should look at first: emergencies, refusals, failures.
fn severity(record: &Record) -> u8 {
    match record {
        Record::Anchor(_) => INFO,
        Record::Event(e) => {
            let name = e.event.as_str();
            let loud = [
                "break_glass",
                "denied",
                "incident",
                "failed",
                "lockout",
                "clock",
                "unknown",
            ];
            if loud.iter().any(|word| name.contains(word)) {
                WARNING
            } else {
                NOTICE
            }
        }
    }
}

fn rfc3339(at: i64) -> String {
    let time = UNIX_EPOCH + Duration::from_secs(u64::try_from(at).unwrap_or(0));
    humantime::format_rfc3339_seconds(time).to_string()
}

/// One line of the JSON lines format (and the RFC 5424 MSG): the
/// record's fields, the host and the time; the detail passed through.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Line<'a> {
    Event {
        id: u64,
        at: i64,
        time: String,
        host: &'a str,
        event: &'a str,
        actor: &'a str,
        actor_uid: Option<u32>,
        request: Option<u64>,
        user: Option<&'a str>,
        resource: Option<&'a str>,
        detail: &'a RawValue,
        mac: &'a str,
    },
    Anchor {
        last_id: u64,
        mac: &'a str,
        at: i64,
        time: String,
        host: &'a str,
    },
}

/// The record as one JSON object.
pub fn json(record: &Record, labels: &Labels) -> String {
    let host = labels.host.as_str();
    let line = match record {
        Record::Event(e) => Line::Event {
            id: e.id,
            at: e.at,
            time: rfc3339(e.at),
            host,
            event: &e.event,
            actor: &e.actor,
            actor_uid: e.actor_uid,
            request: e.request,
            user: e.user.as_deref(),
            resource: e.resource.as_deref(),
            detail: &e.detail,
            mac: &e.mac,
        },
        Record::Anchor(a) => Line::Anchor {
            last_id: a.last_id,
            mac: &a.mac,
            at: a.at,
            time: rfc3339(a.at),
            host,
        },
    };
    // Strings, numbers and raw JSON only: serializing cannot fail.
    serde_json::to_string(&line).unwrap_or_default()
}

/// One line of the JSON lines file, newline included.
pub fn json_line(record: &Record, labels: &Labels) -> String {
    let mut line = json(record, labels);
    line.push('\n');
    line
}

/// PRINTUSASCII only, at most `max` characters, "-" if nothing is left
/// (RFC 5424's HOSTNAME, APP-NAME, MSGID, SD-NAME).
fn token(text: &str, max: usize) -> String {
    let kept: String = text
        .chars()
        .filter(|c| c.is_ascii_graphic() && !matches!(c, '=' | ']' | '"'))
        .take(max)
        .collect();
    if kept.is_empty() {
        "-".into()
    } else {
        kept
    }
}

/// Longest PARAM-VALUE, in characters: the whole value is in the MSG's
/// JSON; the structured data is for matching, and rsyslog's default
/// message limit is 8 KiB.
const MAX_PARAM_CHARS: usize = 256;

/// A PARAM-VALUE: control and invisible characters escaped as for a
/// terminal (what a user typed may hold them), cut to [`MAX_PARAM_CHARS`],
/// then `"`, `\` and `]` escaped (RFC 5424 section 6.3.3).
fn param_value(text: &str) -> String {
    let clean = jitd::core::sanitize::for_terminal(text);
    let mut out = String::with_capacity(clean.len().min(MAX_PARAM_CHARS + 8));
    for (n, c) in clean.chars().enumerate() {
        if n == MAX_PARAM_CHARS {
            out.push('…');
            break;
        }
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A detail field's value as text: a string's content, anything else as JSON.
fn scalar(value: &RawValue) -> String {
    serde_json::from_str::<String>(value.get()).unwrap_or_else(|_| value.get().to_owned())
}

/// The record's fields as PARAM="VALUE" pairs: its own, then its
/// detail's top-level fields as `detail.NAME`.
fn params(record: &Record) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    match record {
        Record::Event(e) => {
            out.push(("id".into(), e.id.to_string()));
            out.push(("event".into(), e.event.clone()));
            out.push(("actor".into(), e.actor.clone()));
            if let Some(uid) = e.actor_uid {
                out.push(("actor_uid".into(), uid.to_string()));
            }
            if let Some(request) = e.request {
                out.push(("request".into(), request.to_string()));
            }
            if let Some(user) = &e.user {
                out.push(("user".into(), user.clone()));
            }
            if let Some(resource) = &e.resource {
                out.push(("resource".into(), resource.clone()));
            }
            out.push(("mac".into(), e.mac.clone()));
            let fields: BTreeMap<String, &RawValue> =
                serde_json::from_str(e.detail.get()).unwrap_or_default();
            for (name, value) in fields {
                out.push((token(&format!("detail.{name}"), 32), scalar(value)));
            }
        }
        Record::Anchor(a) => {
            out.push(("anchor".into(), a.last_id.to_string()));
            out.push(("mac".into(), a.mac.clone()));
        }
    }
    out
}

/// The record as an RFC 5424 message: structured data with its fields,
/// the JSON object as MSG.
pub fn rfc5424(record: &Record, labels: &Labels) -> String {
    let (at, msgid) = match record {
        Record::Event(e) => (e.at, token(&e.event, 32)),
        Record::Anchor(a) => (a.at, "audit_anchor".to_owned()),
    };
    let pri = u16::from(labels.facility.code()) * 8 + u16::from(severity(record));
    let mut sd = format!("[{SD_ID}");
    for (name, value) in params(record) {
        sd.push(' ');
        sd.push_str(&name);
        sd.push_str("=\"");
        sd.push_str(&param_value(&value));
        sd.push('"');
    }
    sd.push(']');
    format!(
        "<{pri}>1 {} {} {APP_NAME} - {msgid} {sd} {}",
        rfc3339(at),
        token(&labels.host, 255),
        json(record, labels)
    )
}

/// journald's fields (`NAME`, value) for the record.
pub fn journal_fields(record: &Record, labels: &Labels) -> Vec<(&'static str, String)> {
    let mut fields = vec![
        ("SYSLOG_IDENTIFIER", APP_NAME.to_owned()),
        ("SYSLOG_FACILITY", labels.facility.code().to_string()),
        ("PRIORITY", severity(record).to_string()),
    ];
    match record {
        Record::Event(e) => {
            let about = match (&e.resource, e.request) {
                (Some(resource), Some(request)) => format!(" (request {request}, {resource})"),
                (None, Some(request)) => format!(" (request {request})"),
                _ => String::new(),
            };
            fields.push(("MESSAGE", format!("jit: {} by {}{about}", e.event, e.actor)));
            fields.push(("JIT_RECORD", "event".into()));
            fields.push(("JIT_ID", e.id.to_string()));
            fields.push(("JIT_TIME", e.at.to_string()));
            fields.push(("JIT_EVENT", e.event.clone()));
            fields.push(("JIT_ACTOR", e.actor.clone()));
            if let Some(uid) = e.actor_uid {
                fields.push(("JIT_ACTOR_UID", uid.to_string()));
            }
            if let Some(request) = e.request {
                fields.push(("JIT_REQUEST", request.to_string()));
            }
            if let Some(user) = &e.user {
                fields.push(("JIT_USER", user.clone()));
            }
            if let Some(resource) = &e.resource {
                fields.push(("JIT_RESOURCE", resource.clone()));
            }
            fields.push(("JIT_DETAIL", e.detail.get().to_owned()));
            fields.push(("JIT_MAC", e.mac.clone()));
        }
        Record::Anchor(a) => {
            fields.push(("MESSAGE", format!("jit audit anchor: row {}", a.last_id)));
            fields.push(("JIT_RECORD", "anchor".into()));
            fields.push(("JIT_ANCHOR_ID", a.last_id.to_string()));
            fields.push(("JIT_TIME", a.at.to_string()));
            fields.push(("JIT_MAC", a.mac.clone()));
        }
    }
    fields
}

/// journald's native datagram: `NAME=value\n`, or, for a value with a
/// newline, `NAME\n`, its length as 64-bit little-endian, the value, `\n`.
pub fn journal_datagram(fields: &[(&str, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        out.extend_from_slice(name.as_bytes());
        if value.contains('\n') {
            out.push(b'\n');
            out.extend_from_slice(&(value.len() as u64).to_le_bytes());
        } else {
            out.push(b'=');
        }
        out.extend_from_slice(value.as_bytes());
        out.push(b'\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use jitd::config::Facility;
    use jitd::deliver::feed::{Anchor, EventRecord};

    fn labels() -> Labels {
        Labels {
            host: "db 1".into(),
            facility: Facility::Authpriv,
            timeout_ms: 1000,
        }
    }

    fn event(event: &str, detail: serde_json::Value) -> Record {
        let detail = RawValue::from_string(detail.to_string()).unwrap();
        Record::Event(EventRecord {
            id: 12,
            at: 1_765_000_000,
            event: event.into(),
            actor: "alice".into(),
            actor_uid: Some(1000),
            request: Some(5),
            user: Some("alice".into()),
            resource: Some("sudo".into()),
            detail,
            mac: "ab01".into(),
        })
    }

    #[test]
    fn rfc5424_carries_every_field_escaped() {
        let record = event(
            "granted",
            serde_json::json!({"reason": "fix \"db\" [now] \\ ok", "minutes": 30}),
        );
        let line = rfc5424(&record, &labels());
        assert_eq!(
            line.split(" {").next().unwrap(),
            "<85>1 2025-12-06T05:46:40Z db1 jitd - granted [jit@32473 id=\"12\" event=\"granted\" \
             actor=\"alice\" actor_uid=\"1000\" request=\"5\" user=\"alice\" resource=\"sudo\" \
             mac=\"ab01\" detail.minutes=\"30\" detail.reason=\"fix \\\"db\\\" [now\\] \\\\ ok\"]"
        );
        let msg = &line[line.find(" {").unwrap() + 1..];
        let json: serde_json::Value = serde_json::from_str(msg).unwrap();
        assert_eq!(json["id"], 12);
        assert_eq!(json["host"], "db 1");
        assert_eq!(json["type"], "event");
    }

    #[test]
    fn structured_data_values_hold_no_controls_and_are_bounded() {
        let long = "x".repeat(5000);
        let record = event(
            "requested",
            serde_json::json!({"reason": "two\nlines \u{1b}[2J", "long": long}),
        );
        let line = rfc5424(&record, &labels());
        let sd = line.split(" {").next().unwrap();
        assert!(!sd.chars().any(char::is_control), "{sd}");
        assert!(
            sd.contains(r#"detail.reason="two\\nlines \\u{1b}[2J""#),
            "{sd}"
        );
        assert!(sd.len() < 1200, "{}", sd.len());
        // The MSG keeps the whole value, JSON-escaped.
        assert!(line.contains(&long) && line.contains("two\\nlines"));
    }

    #[test]
    fn refusals_are_warnings_and_anchors_are_info() {
        let denied = rfc5424(&event("break_glass_used", serde_json::json!({})), &labels());
        assert!(denied.starts_with("<84>1 "), "{denied}");
        let anchor = Record::Anchor(Anchor {
            last_id: 40,
            mac: "ff".into(),
            at: 1_765_000_000,
        });
        let line = rfc5424(&anchor, &labels());
        assert!(
            line.starts_with("<86>1 2025-12-06T05:46:40Z db1 jitd - audit_anchor [jit@32473 anchor=\"40\" mac=\"ff\"] {"),
            "{line}"
        );
    }

    #[test]
    fn json_lines_are_one_object_each() {
        let record = event("requested", serde_json::json!({"reason": "two\nlines"}));
        let line = json_line(&record, &labels());
        assert_eq!(line.matches('\n').count(), 1);
        let json: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(json["detail"]["reason"], "two\nlines");
        assert_eq!(json["time"], "2025-12-06T05:46:40Z");
        assert_eq!(json["mac"], "ab01");
    }

    #[test]
    fn journal_values_with_newlines_are_length_prefixed() {
        let fields = journal_fields(
            &event("requested", serde_json::json!({"reason": "a"})),
            &labels(),
        );
        assert!(fields.contains(&("JIT_ID", "12".into())));
        assert!(fields.contains(&("PRIORITY", "5".into())));
        let datagram = journal_datagram(&[("A", "one".into()), ("B", "x\ny".into())]);
        let mut want = b"A=one\nB\n".to_vec();
        want.extend_from_slice(&3u64.to_le_bytes());
        want.extend_from_slice(b"x\ny\n");
        assert_eq!(datagram, want);
    }
}

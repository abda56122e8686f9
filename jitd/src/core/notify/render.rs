//! A [`Notice`] in each wire format. Values come from users (reasons,
//! comments, tickets, names): they are already free of control characters,
//! and each format escapes what its renderer would interpret.

use serde_json::{json, Value};
use std::fmt::Write;

use super::Notice;

/// The footer that names the delivery, so receivers can drop a duplicate.
fn footer(id: u64) -> String {
    format!("jit notification {id}")
}

/// Plain-text email body.
pub fn email_text(n: &Notice, id: u64) -> String {
    let width = n
        .fields
        .iter()
        .map(|f| f.label.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = format!("{}\n\n", n.title);
    for f in &n.fields {
        let _ = writeln!(
            out,
            "{:<width$}  {}",
            format!("{}:", f.label),
            f.value,
            width = width + 1
        );
    }
    if let Some(action) = &n.action {
        let _ = write!(out, "\n    {action}\n");
    }
    let _ = write!(out, "\n-- \n{}\n", footer(id));
    out
}

/// For HTML text and attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// HTML email body (the alternative to [`email_text`]).
pub fn email_html(n: &Notice, id: u64) -> String {
    let mut out = format!(
        "<!DOCTYPE html>\n<html><body>\n<p><strong>{}</strong></p>\n<table>\n",
        escape_html(&n.title)
    );
    for f in &n.fields {
        let _ = writeln!(
            out,
            "<tr><th align=\"left\">{}</th><td>{}</td></tr>",
            escape_html(&f.label),
            escape_html(&f.value)
        );
    }
    out.push_str("</table>\n");
    if let Some(action) = &n.action {
        let _ = writeln!(out, "<p><code>{}</code></p>", escape_html(action));
    }
    let _ = write!(
        out,
        "<p><small>{}</small></p>\n</body></html>\n",
        footer(id)
    );
    out
}

/// Slack mrkdwn: `&`, `<` and `>` are the characters Slack itself asks to
/// escape (they open links and @-mentions). Formatting marks (`*`, `_`, `~`)
/// have no escape in mrkdwn, so values go into inline code, where they are
/// shown literally; a backquote, which would end it, becomes a look-alike.
pub fn escape_slack(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('`');
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '`' => out.push('\u{2cb}'),
            c => out.push(c),
        }
    }
    out.push('`');
    out
}

/// Slack escaping without the code span, for jit's own titles (which hold
/// user names and resources).
fn escape_slack_plain(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A Slack incoming-webhook payload.
pub fn slack(n: &Notice, id: u64) -> Value {
    let mut text = format!("*{}*\n", escape_slack_plain(&n.title).replace('*', ""));
    for f in &n.fields {
        let _ = writeln!(text, "*{}:* {}", f.label, escape_slack(&f.value));
    }
    if let Some(action) = &n.action {
        let _ = writeln!(text, "```{}```", escape_slack_plain(action));
    }
    let _ = write!(text, "_{}_", footer(id));
    json!({ "text": text })
}

/// Markdown in Teams cards (a CommonMark subset): every ASCII punctuation
/// mark that could start formatting, a link or an HTML tag gets a backslash.
pub fn escape_teams(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '~' | '[' | ']' | '(' | ')' | '#' | '<' | '>' | '|' | '!'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A Microsoft Teams (Workflows) webhook payload: one Adaptive Card.
pub fn teams(n: &Notice, id: u64) -> Value {
    let facts: Vec<Value> = n
        .fields
        .iter()
        .map(|f| json!({"title": f.label, "value": escape_teams(&f.value)}))
        .collect();
    let mut body = vec![
        json!({"type": "TextBlock", "text": escape_teams(&n.title), "weight": "Bolder", "wrap": true}),
        json!({"type": "FactSet", "facts": facts}),
    ];
    if let Some(action) = &n.action {
        body.push(json!({"type": "TextBlock", "text": escape_teams(action), "fontType": "Monospace", "wrap": true}));
    }
    body.push(json!({"type": "TextBlock", "text": footer(id), "isSubtle": true, "size": "Small"}));
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": body,
            }
        }]
    })
}

/// The generic JSON webhook: the notice as data (JSON escaping by serde).
pub fn json(n: &Notice, id: u64) -> Value {
    let fields: serde_json::Map<String, Value> = n
        .fields
        .iter()
        .map(|f| (f.label.clone(), Value::String(f.value.clone())))
        .collect();
    json!({
        "id": id,
        "event": n.event,
        "request": n.request,
        "title": n.title,
        "fields": fields,
        "action": n.action,
    })
}

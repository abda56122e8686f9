//! `jitctl vendor request|list|show|approve|deny|revoke`: sponsored
//! vendor accounts (W4, docs/design.md "Vendor accounts").

use super::args::VendorAction;
use super::client::{failure, Daemon1Proxy};
use super::commands::{parse, show};
use super::render::{fields, table, truncate};
use super::{CliError, Exit};
use crate::api::{VendorAskView, VendorView};
use crate::core::sanitize::for_terminal as clean;

/// The longest key file read: one public key line is far shorter.
const MAX_KEY_BYTES: u64 = 16 * 1024;

pub async fn run(jitd: &Daemon1Proxy<'_>, action: VendorAction) -> Result<Exit, CliError> {
    let (json, out) = match action {
        VendorAction::Request {
            vendor,
            name,
            email,
            resources,
            segments,
            duration,
            project,
            reason,
            key,
            out,
        } => {
            let key = key.map(|path| read_key(&path)).transpose()?;
            let ask = VendorAskView {
                organization: vendor,
                name,
                email,
                resources,
                segments,
                duration_secs: duration.as_secs(),
                project,
                reason,
                key,
            };
            let ask = serde_json::to_string(&ask)
                .map_err(|e| CliError::new(Exit::Failed, e.to_string()))?;
            let json = jitd.vendor_request(&ask).await.map_err(failure)?;
            (json, out)
        }
        VendorAction::List { all, out } => {
            let filter = if all { "all" } else { "open" };
            let json = jitd.vendor_list(filter).await.map_err(failure)?;
            let views: Vec<VendorView> = parse(&json)?;
            show(out, &views, |v| list(v));
            return Ok(Exit::Ok);
        }
        VendorAction::Show { id, out } => (jitd.vendor_show(id).await.map_err(failure)?, out),
        VendorAction::Approve { id, comment, out } => {
            let json = jitd
                .vendor_decide(id, "approve", &comment)
                .await
                .map_err(failure)?;
            (json, out)
        }
        VendorAction::Deny { id, comment, out } => {
            let json = jitd
                .vendor_decide(id, "deny", &comment)
                .await
                .map_err(failure)?;
            (json, out)
        }
        VendorAction::Revoke { id, comment, out } => {
            let json = jitd.vendor_revoke(id, &comment).await.map_err(failure)?;
            (json, out)
        }
    };
    let view: VendorView = parse(&json)?;
    show(out, &view, detail);
    Ok(Exit::Ok)
}

/// The key file's text, bounded (jitd parses it).
fn read_key(path: &std::path::Path) -> Result<String, CliError> {
    use std::io::Read;
    let unreadable = |e: std::io::Error| {
        CliError::new(
            Exit::Usage,
            format!("cannot read the key file {}: {e}", path.display()),
        )
    };
    let mut text = String::new();
    std::fs::File::open(path)
        .map_err(unreadable)?
        .take(MAX_KEY_BYTES)
        .read_to_string(&mut text)
        .map_err(unreadable)?;
    Ok(text)
}

fn list(views: &[VendorView]) -> String {
    if views.is_empty() {
        return "No vendors.\n".into();
    }
    let rows = views
        .iter()
        .map(|v| {
            vec![
                v.id.to_string(),
                v.state.clone(),
                clean(&v.account).into_owned(),
                v.host.clone(),
                clean(&v.sponsor).into_owned(),
                v.expires_at.clone().unwrap_or_else(|| "-".into()),
                truncate(&clean(&v.organization), 40),
            ]
        })
        .collect();
    table(
        &[
            "ID", "STATE", "ACCOUNT", "HOST", "SPONSOR", "EXPIRES", "VENDOR",
        ],
        rows,
    )
}

fn detail(v: &VendorView) -> String {
    let manager = match &v.manager {
        Some(m) => clean(m).into_owned(),
        None => "not known: the manager role approves in their place".into(),
    };
    let mut rows: Vec<(&str, String)> = vec![
        ("id", v.id.to_string()),
        ("vendor", clean(&v.organization).into_owned()),
        ("name", clean(&v.name).into_owned()),
        ("email", clean(&v.email).into_owned()),
        (
            "account",
            match v.uid {
                Some(uid) => format!("{} (uid {uid}, {})", clean(&v.account), v.host),
                None => clean(&v.account).into_owned(),
            },
        ),
        ("state", v.state.clone()),
        ("resources", clean(&v.resources.join(", ")).into_owned()),
        ("segments", clean(&v.segments.join(", ")).into_owned()),
        (
            "duration",
            humantime::format_duration(std::time::Duration::from_secs(v.duration_secs)).to_string(),
        ),
        ("project", clean(&v.project).into_owned()),
        ("reason", clean(&v.reason).into_owned()),
        (
            "key",
            v.key
                .clone()
                .unwrap_or_else(|| "none (no ssh login)".into()),
        ),
        ("sponsor", clean(&v.sponsor).into_owned()),
        ("manager", manager),
        ("requested", v.requested_at.clone()),
        (
            "expires",
            v.expires_at.clone().unwrap_or_else(|| "-".into()),
        ),
    ];
    if !v.awaiting.is_empty() {
        rows.push(("awaiting", v.awaiting.join(" + ")));
    }
    if let (Some(at), Some(by)) = (&v.ended_at, &v.ended_by) {
        rows.push(("ended", format!("{at} by {}", clean(by))));
    }
    for a in &v.approvals {
        rows.push((
            "decision",
            format!(
                "{} {} as {} at {}: {}",
                clean(&a.who),
                a.verdict,
                a.role,
                a.when,
                clean(&a.comment)
            ),
        ));
    }
    fields(rows)
}

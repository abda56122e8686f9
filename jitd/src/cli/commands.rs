//! Running one jitctl command against jitd.

use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::time::Duration;
use zeroize::Zeroizing;

use super::args::{
    AuditAction, Command, IncidentsAction, Output, PolicyAction, RecordingsAction, RecoveryAction,
    SiemAction,
};
use super::client::{connect, failure, Daemon1Proxy};
use super::play;
use super::recordings;
use super::render;
use super::siem;
use super::step_up;
use super::{CliError, Exit};
use crate::api::{
    AuditView, IncidentView, PolicyExplanationView, RecordingView, RequestView, StatusView,
    VerifyView,
};
use crate::clock::{Clock, SystemClock};

/// The comment of a holder's `jitctl checkin`, on the audit trail.
const CHECKED_IN: &str = "checked in by the holder";

pub(super) fn parse<T: DeserializeOwned>(json: &str) -> Result<T, CliError> {
    serde_json::from_str(json)
        .map_err(|e| CliError::new(Exit::Failed, format!("unexpected reply from jitd: {e}")))
}

/// Prints `value` as JSON or through `human`.
pub(super) fn show<T: Serialize>(out: Output, value: &T, human: impl FnOnce(&T) -> String) {
    if out.json {
        println!("{}", render::json(value));
    } else {
        print!("{}", human(value));
    }
}

fn with_newline(text: String) -> String {
    text + "\n"
}

/// Prints one request (the reply of every state change).
fn print_request(out: Output, json: &str) -> Result<RequestView, CliError> {
    let view: RequestView = parse(json)?;
    show(out, &view, |v| with_newline(render::summary(v)));
    Ok(view)
}

pub async fn run(command: Command) -> Result<Exit, CliError> {
    let jitd = connect().await?;
    match command {
        Command::Request {
            resource,
            duration,
            reason,
            ticket,
            start,
            wait,
            out,
        } => {
            let ticket = ticket.as_deref().unwrap_or("");
            let json = match start {
                None => {
                    jitd.request(&resource, duration.as_secs(), &reason, ticket)
                        .await
                }
                Some(text) => {
                    let (at, said) = resolve_start(&text)?;
                    if !out.json {
                        println!("{said}");
                    }
                    jitd.request_scheduled(&resource, duration.as_secs(), &reason, ticket, at)
                        .await
                }
            }
            .map_err(failure)?;
            let view: RequestView = parse(&json)?;
            match wait {
                Some(limit) if view.state == "pending" => {
                    if !out.json {
                        println!("{}", render::summary(&view));
                    }
                    let decided = wait_for_decision(&jitd, view.id, limit).await?;
                    let decided = step_up::activate_if_approved(&jitd, decided).await?;
                    show(out, &decided, |v| with_newline(render::summary(v)));
                    Ok(exit_for_state(&decided.state))
                }
                _ => {
                    let view = step_up::activate_if_approved(&jitd, view).await?;
                    show(out, &view, |v| with_newline(render::summary(v)));
                    Ok(Exit::Ok)
                }
            }
        }
        Command::List {
            pending,
            active,
            all,
            out,
        } => {
            let filter = match (pending, active, all) {
                (true, _, _) => "pending",
                (_, true, _) => "active",
                (_, _, true) => "all",
                _ => "open",
            };
            let views: Vec<RequestView> = parse(&jitd.list(filter).await.map_err(failure)?)?;
            show(out, &views, |v| render::list(v));
            Ok(Exit::Ok)
        }
        Command::Show { id, out } => {
            let view: RequestView = parse(&jitd.show(id).await.map_err(failure)?)?;
            show(out, &view, render::detail);
            Ok(Exit::Ok)
        }
        Command::Approve { id, comment, out } => {
            let view = print_request(out, &step_up::approve(&jitd, id, &comment).await?)?;
            if let Some(warning) = render::unchecked_approval(&view) {
                eprintln!("{warning}");
            }
            Ok(Exit::Ok)
        }
        Command::Activate { id, out } => {
            let view = step_up::activate(&jitd, id).await?;
            show(out, &view, |v| with_newline(render::summary(v)));
            Ok(Exit::Ok)
        }
        Command::Deny { id, comment, out } => {
            print_request(out, &jitd.deny(id, &comment).await.map_err(failure)?)?;
            Ok(Exit::Ok)
        }
        Command::Revoke { id, comment, out } => {
            print_request(out, &jitd.revoke(id, &comment).await.map_err(failure)?)?;
            Ok(Exit::Ok)
        }
        Command::Checkin { id, out } => {
            let json = jitd.revoke(id, CHECKED_IN).await.map_err(failure)?;
            print_request(out, &json)?;
            Ok(Exit::Ok)
        }
        Command::Recovery {
            action: RecoveryAction::Take,
        } => {
            let password = Zeroizing::new(jitd.take_recovery_password().await.map_err(failure)?);
            println!(
                "Root's recovery password (no longer on this host: store it offline now):\n{}",
                password.as_str()
            );
            Ok(Exit::Ok)
        }
        Command::Mfa { action } => super::mfa::run(&jitd, action).await,
        Command::Vendor { action } => super::vendors::run(&jitd, action).await,
        Command::Policy {
            action:
                PolicyAction::Explain {
                    resource,
                    duration,
                    user,
                    ticket,
                    out,
                },
        } => {
            let json = jitd
                .explain_policy(
                    &resource,
                    duration.as_secs(),
                    user.as_deref().unwrap_or_default(),
                    ticket.as_deref().unwrap_or_default(),
                )
                .await
                .map_err(failure)?;
            let view: PolicyExplanationView = parse(&json)?;
            show(out, &view, render::explanation);
            Ok(Exit::Ok)
        }
        Command::Reveal { id } => {
            let password = Zeroizing::new(jitd.reveal_password(id).await.map_err(failure)?);
            println!("{}", password.as_str());
            Ok(Exit::Ok)
        }
        Command::Extend {
            id,
            duration,
            reason,
            out,
        } => {
            print_request(
                out,
                &jitd
                    .extend(id, duration.as_secs(), &reason)
                    .await
                    .map_err(failure)?,
            )?;
            Ok(Exit::Ok)
        }
        Command::BreakGlass {
            resource,
            reason,
            duration,
            out,
        } => {
            let secs = duration.map_or(0, |d| d.as_secs());
            let json = jitd
                .break_glass(&resource, secs, &reason)
                .await
                .map_err(failure)?;
            let view = step_up::activate_if_approved(&jitd, parse(&json)?).await?;
            show(out, &view, |v| with_newline(render::break_glass(v)));
            Ok(Exit::Ok)
        }
        Command::Justify { id, reason, out } => {
            let view: RequestView = parse(&jitd.justify(id, &reason).await.map_err(failure)?)?;
            show(out, &view, render::detail);
            Ok(Exit::Ok)
        }
        Command::Review {
            id,
            verdict,
            comment,
            out,
        } => {
            let json = jitd
                .review(id, verdict.as_str(), &comment)
                .await
                .map_err(failure)?;
            let view: RequestView = parse(&json)?;
            show(out, &view, render::detail);
            Ok(Exit::Ok)
        }
        Command::Incidents {
            action: IncidentsAction::List { out },
        } => {
            let views: Vec<IncidentView> = parse(&jitd.incidents().await.map_err(failure)?)?;
            show(out, &views, |v| render::incidents(v));
            Ok(Exit::Ok)
        }
        Command::Incidents {
            action: IncidentsAction::Show { id, out },
        } => {
            let view: IncidentView = parse(&jitd.incident(id).await.map_err(failure)?)?;
            show(out, &view, render::incident);
            Ok(Exit::Ok)
        }
        Command::Siem {
            action: SiemAction::Status { out },
        } => siem::status(&jitd, out).await,
        Command::Audit {
            action:
                Some(AuditAction::Verify {
                    anchors: Some(file),
                    out,
                }),
            ..
        } => siem::verify_anchors(&jitd, &file, out).await,
        Command::Audit {
            action: Some(AuditAction::Verify { anchors: None, out }),
            ..
        } => {
            let result: VerifyView = parse(&jitd.verify_audit().await.map_err(failure)?)?;
            show(out, &result, render::verification);
            Ok(if result.ok { Exit::Ok } else { Exit::Failed })
        }
        Command::Audit {
            action: None,
            since,
            out,
        } => {
            let since = since.map_or(0, |d| unix_now().saturating_sub(d.as_secs()) as i64);
            let events: Vec<AuditView> = parse(&jitd.audit(since).await.map_err(failure)?)?;
            show(out, &events, |e| render::audit(e));
            Ok(Exit::Ok)
        }
        Command::Scan {
            history,
            since,
            out,
        } => super::scan::scan(&jitd, history, since, out).await,
        Command::Report {
            kind,
            since,
            html,
            out,
        } => super::reports::run(&jitd, kind, since, html.as_deref(), out).await,
        Command::Status { out } => {
            let status: StatusView = parse(&jitd.status().await.map_err(failure)?)?;
            show(out, &status, render::status);
            Ok(Exit::Ok)
        }
        Command::Shell { id, account } => {
            recordings::elevate(&jitd, id, account.as_deref(), &[]).await
        }
        Command::Run {
            id,
            account,
            command,
        } => recordings::elevate(&jitd, Some(id), account.as_deref(), &command).await,
        Command::Recordings { action } => match action {
            RecordingsAction::List {
                user,
                resource,
                since,
                live,
                out,
            } => {
                let since = since.map_or(0, |d| unix_now().saturating_sub(d.as_secs()) as i64);
                let filter = serde_json::json!(
                    {"user": user, "resource": resource, "since": since, "live": live}
                );
                let views: Vec<RecordingView> = parse(
                    &jitd
                        .list_recordings(&filter.to_string())
                        .await
                        .map_err(failure)?,
                )?;
                show(out, &views, |v| render::recordings(v));
                Ok(Exit::Ok)
            }
            RecordingsAction::Play {
                id,
                speed,
                max_idle,
                raw,
            } => play::play(&jitd, id, speed, max_idle, raw).await,
            RecordingsAction::Watch { id } => play::watch(&jitd, id).await,
            RecordingsAction::Verify { id } => recordings::verify(&jitd, id).await,
            RecordingsAction::Export { id, out } => recordings::export(&jitd, id, &out).await,
        },
        // jitctl.rs prints them before connecting: jitd is not needed.
        Command::Completions { .. } => Err(CliError::new(
            Exit::Usage,
            "completions are printed without connecting to jitd".to_owned(),
        )),
    }
}

pub(super) fn unix_now() -> u64 {
    SystemClock.wall_precise().as_secs()
}

/// `--start TIME` in seconds since the epoch, and the line that says it
/// back in the user's time zone.
fn resolve_start(text: &str) -> Result<(i64, String), CliError> {
    let now = jiff::Timestamp::from_second(unix_now() as i64)
        .map_err(|e| CliError::new(Exit::Failed, format!("the clock reads wrong: {e}")))?;
    let tz = jiff::tz::TimeZone::system();
    let at = super::start::resolve(text, now, &tz)
        .map_err(|e| CliError::new(Exit::Usage, e.to_string()))?;
    Ok((at.as_second(), super::start::said_back(at, now, &tz)))
}

fn exit_for_state(state: &str) -> Exit {
    match state {
        "active" | "scheduled" => Exit::Ok,
        "denied" => Exit::Denied,
        _ => Exit::Failed,
    }
}

/// Waits for the request's RequestDecided signal (or its current state, if it
/// was decided before we subscribed).
async fn wait_for_decision(
    jitd: &Daemon1Proxy<'_>,
    id: u64,
    limit: Duration,
) -> Result<RequestView, CliError> {
    let mut decided = jitd.receive_request_decided().await.map_err(failure)?;
    let current: RequestView = parse(&jitd.show(id).await.map_err(failure)?)?;
    if current.state != "pending" {
        return Ok(current);
    }
    let waiting = async {
        while let Some(signal) = decided.next().await {
            if signal.args().is_ok_and(|a| *a.id() == id) {
                return Ok(());
            }
        }
        Err(CliError::new(
            Exit::Unreachable,
            "lost the connection to jitd while waiting",
        ))
    };
    match tokio::time::timeout(limit, waiting).await {
        Ok(result) => result?,
        Err(_) => {
            return Err(CliError::new(
                Exit::Failed,
                format!(
                    "request {id} is still pending after {}; check later with 'jitctl show {id}'",
                    humantime::format_duration(limit)
                ),
            ))
        }
    }
    parse(&jitd.show(id).await.map_err(failure)?)
}

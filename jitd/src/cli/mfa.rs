//! `jitctl mfa enroll|confirm|status|reset`: the caller's TOTP second
//! factor (docs/design.md "MFA"). Codes are read from standard input,
//! never taken from the command line (other users see argv).

use std::io::{BufRead, IsTerminal};

use zeroize::Zeroizing;

use super::args::MfaAction;
use super::client::{failure, Daemon1Proxy};
use super::commands::{parse, show};
use super::{CliError, Exit};
use crate::api::MfaView;
use crate::core::sanitize::for_terminal as clean;

pub async fn run(jitd: &Daemon1Proxy<'_>, action: MfaAction) -> Result<Exit, CliError> {
    match action {
        MfaAction::Enroll { show_uri } => {
            if !show_uri && !std::io::stdout().is_terminal() {
                return Err(CliError::new(
                    Exit::Usage,
                    "the seed is shown on a terminal only (a file or a pipe would keep it); \
                     run it on your terminal, or add --show-uri",
                ));
            }
            let uri = Zeroizing::new(jitd.mfa_enroll().await.map_err(failure)?);
            print_enrollment(&uri, show_uri);
            println!("Enter the 6-digit code your app shows now:");
            confirm(jitd).await
        }
        MfaAction::Confirm => confirm(jitd).await,
        MfaAction::Status { user, out } => {
            let json = jitd
                .mfa_status(user.as_deref().unwrap_or_default())
                .await
                .map_err(failure)?;
            let view: MfaView = parse(&json)?;
            show(out, &view, status_line);
            Ok(Exit::Ok)
        }
        MfaAction::Reset { user } => {
            jitd.mfa_reset(&user).await.map_err(failure)?;
            println!(
                "The second factor of {} is removed: they enroll again.",
                clean(&user)
            );
            Ok(Exit::Ok)
        }
    }
}

/// The seed as a QR code for an authenticator app, and as text when asked
/// for (or when the QR code cannot be drawn).
fn print_enrollment(uri: &str, show_uri: bool) {
    let drawn = crate::core::mfa::qr_code(uri);
    match &drawn {
        Ok(qr) => println!("{}", qr.as_str()),
        Err(e) => eprintln!("jitctl: cannot draw the QR code ({e}); enter the URI below"),
    }
    if show_uri || drawn.is_err() {
        println!("{}", Zeroizing::new(clean(uri).into_owned()).as_str());
    }
}

/// A code from the caller's authenticator app, read from standard input
/// (after `prompt`, on a terminal); `retry` says how to try again when
/// there is none.
pub(super) fn read_code(prompt: &str, retry: &str) -> Result<Zeroizing<String>, CliError> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("{prompt}: ");
    }
    let mut line = Zeroizing::new(String::new());
    let read = stdin.lock().read_line(&mut line);
    let code = Zeroizing::new(line.trim().to_owned());
    if read.is_err() || code.is_empty() {
        return Err(CliError::new(
            Exit::Usage,
            format!("no code on standard input; {retry} and type the code your app shows"),
        ));
    }
    Ok(code)
}

/// Reads a code from standard input and confirms the pending enrollment.
async fn confirm(jitd: &Daemon1Proxy<'_>) -> Result<Exit, CliError> {
    let code = read_code("Code", "run 'jitctl mfa confirm'")?;
    jitd.mfa_confirm(&code).await.map_err(failure)?;
    println!("Enrolled: jit asks for a code from this app where a second factor is required.");
    Ok(Exit::Ok)
}

fn status_line(v: &MfaView) -> String {
    let mut line = format!("{}: {}", clean(&v.user), v.state);
    if let Some(by) = &v.confirm_by {
        line += &format!(" (confirm by {by})");
    }
    if v.failures > 0 {
        line += &format!(", {} wrong code(s) in a row", v.failures);
    }
    if let Some(until) = &v.locked_until {
        line += &format!(", locked out until {until}");
    }
    line + "\n"
}

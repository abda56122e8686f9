//! MFA step-up in jitctl (docs/design.md "MFA step-up"): the approver's
//! code with an approval, and the holder's code that activates a grant
//! approved for a resource with `require_mfa`. Codes come from standard
//! input, never from the command line.

use super::client::{failure, Daemon1Proxy};
use super::commands::parse;
use super::mfa::read_code;
use super::{render, CliError};
use crate::api::{RequestView, ERROR_PREFIX};

/// Approves request `id`; asks for the approver's code when jitd says the
/// resource requires one (most resources do not, so no code is read
/// before jitd says so).
pub async fn approve(jitd: &Daemon1Proxy<'_>, id: u64, comment: &str) -> Result<String, CliError> {
    match jitd.approve(id, comment).await {
        Err(zbus::Error::MethodError(name, _, _))
            if name.as_str() == format!("{ERROR_PREFIX}.MfaRequired") =>
        {
            let code = read_code(
                &format!("Request {id} needs a code from your second factor"),
                &format!("run 'jitctl approve {id}'"),
            )?;
            jitd.approve_with_code(id, comment, &code)
                .await
                .map_err(failure)
        }
        answer => answer.map_err(failure),
    }
}

/// Activates approved grant `id` with a code read from standard input.
pub async fn activate(jitd: &Daemon1Proxy<'_>, id: u64) -> Result<RequestView, CliError> {
    let code = read_code(
        &format!("Code from your second factor to activate {id}"),
        &format!("run 'jitctl activate {id}'"),
    )?;
    parse(&jitd.activate(id, &code).await.map_err(failure)?)
}

/// A request just approved for a resource that requires its holder's
/// second factor is activated at once (a code on standard input); any
/// other is returned as it is.
pub async fn activate_if_approved(
    jitd: &Daemon1Proxy<'_>,
    view: RequestView,
) -> Result<RequestView, CliError> {
    if view.state != "approved" {
        return Ok(view);
    }
    eprintln!("{}", render::summary(&view));
    activate(jitd, view.id).await
}

//! Talking to jitd: the proxy, the impostor check and error mapping.

use zbus::fdo::DBusProxy;
use zbus::names::BusName;
use zbus::{proxy, Connection};

use super::{CliError, Exit};
use crate::api::{BUS_NAME, ERROR_PREFIX};

#[proxy(
    interface = "org.jit.Daemon1",
    default_service = "org.jit.Daemon1",
    default_path = "/org/jit/Daemon1"
)]
pub trait Daemon1 {
    fn request(
        &self,
        resource: &str,
        duration: u64,
        reason: &str,
        ticket: &str,
    ) -> zbus::Result<String>;
    fn request_scheduled(
        &self,
        resource: &str,
        duration: u64,
        reason: &str,
        ticket: &str,
        starts_at: i64,
    ) -> zbus::Result<String>;
    fn extend(&self, grant: u64, duration: u64, reason: &str) -> zbus::Result<String>;
    fn approve(&self, id: u64, comment: &str) -> zbus::Result<String>;
    fn approve_with_code(&self, id: u64, comment: &str, code: &str) -> zbus::Result<String>;
    fn activate(&self, id: u64, code: &str) -> zbus::Result<String>;
    fn deny(&self, id: u64, comment: &str) -> zbus::Result<String>;
    fn revoke(&self, id: u64, comment: &str) -> zbus::Result<String>;
    fn reveal_password(&self, id: u64) -> zbus::Result<String>;
    fn take_recovery_password(&self) -> zbus::Result<String>;
    fn mfa_enroll(&self) -> zbus::Result<String>;
    fn mfa_confirm(&self, code: &str) -> zbus::Result<()>;
    fn mfa_reset(&self, user: &str) -> zbus::Result<()>;
    fn mfa_status(&self, user: &str) -> zbus::Result<String>;
    fn explain_policy(
        &self,
        resource: &str,
        duration: u64,
        user: &str,
        ticket: &str,
    ) -> zbus::Result<String>;
    fn break_glass(&self, resource: &str, duration: u64, reason: &str) -> zbus::Result<String>;
    fn justify(&self, grant: u64, justification: &str) -> zbus::Result<String>;
    fn vendor_request(&self, ask: &str) -> zbus::Result<String>;
    fn vendor_decide(&self, id: u64, verdict: &str, comment: &str) -> zbus::Result<String>;
    fn vendor_revoke(&self, id: u64, comment: &str) -> zbus::Result<String>;
    fn vendor_list(&self, filter: &str) -> zbus::Result<String>;
    fn vendor_show(&self, id: u64) -> zbus::Result<String>;
    fn review(&self, grant: u64, verdict: &str, comment: &str) -> zbus::Result<String>;
    fn incidents(&self) -> zbus::Result<String>;
    fn incident(&self, id: u64) -> zbus::Result<String>;
    fn show(&self, id: u64) -> zbus::Result<String>;
    fn list(&self, filter: &str) -> zbus::Result<String>;
    fn audit(&self, since: i64) -> zbus::Result<String>;
    fn verify_audit(&self) -> zbus::Result<String>;
    fn verify_anchors(&self, anchors: &str) -> zbus::Result<String>;
    fn siem_status(&self) -> zbus::Result<String>;
    fn report(&self, kind: &str, since: i64) -> zbus::Result<String>;
    fn status(&self) -> zbus::Result<String>;
    fn scan(&self) -> zbus::Result<String>;
    fn scan_history(&self, since: i64) -> zbus::Result<String>;
    fn list_recordings(&self, filter: &str) -> zbus::Result<String>;
    fn open_recording_file(&self, id: u64) -> zbus::Result<(zbus::OwnedFd, String)>;
    fn watch_recording(&self, id: u64) -> zbus::Result<(zbus::OwnedFd, String)>;
    fn check_grant(&self, uid: u32, resource: &str) -> zbus::Result<(bool, u64, i64, u64)>;
    #[zbus(signal)]
    fn request_decided(&self, id: u64, state: &str) -> zbus::Result<()>;
}

fn bus_unreachable(e: zbus::Error) -> CliError {
    CliError::new(
        Exit::Unreachable,
        format!("cannot reach the system bus: {e}"),
    )
}

/// Connects to the system bus (honouring `DBUS_SYSTEM_BUS_ADDRESS`) and makes
/// sure jitd's name belongs to root, so nobody can impersonate it (threat T2).
pub async fn connect() -> Result<Daemon1Proxy<'static>, CliError> {
    let conn = Connection::system().await.map_err(bus_unreachable)?;
    owned_by_root(conn).await
}

/// [`connect`] at the system bus's fixed address, for programs whose
/// environment is not theirs to trust (`DBUS_SYSTEM_BUS_ADDRESS` is ignored).
pub async fn connect_fixed() -> Result<Daemon1Proxy<'static>, CliError> {
    let conn = zbus::connection::Builder::address(crate::api::SYSTEM_BUS)
        .build()
        .await
        .map_err(bus_unreachable)?;
    owned_by_root(conn).await
}

/// jitd's proxy on `conn`, if root owns jitd's name there.
async fn owned_by_root(conn: Connection) -> Result<Daemon1Proxy<'static>, CliError> {
    let owner_uid = DBusProxy::new(&conn)
        .await
        .map_err(failure)?
        .get_connection_unix_user(BusName::try_from(BUS_NAME).map_err(failure)?)
        .await
        .map_err(|_| {
            CliError::new(
                Exit::Unreachable,
                "jitd is not running (nobody owns org.jit.Daemon1); start it with 'systemctl start jitd'",
            )
        })?;
    if owner_uid != 0 {
        return Err(CliError::new(
            Exit::Unreachable,
            format!("org.jit.Daemon1 is owned by uid {owner_uid}, not root: refusing to talk to an impostor"),
        ));
    }
    Daemon1Proxy::new(&conn).await.map_err(failure)
}

/// Maps a failed call to one line and the matching exit status.
pub fn failure(e: zbus::Error) -> CliError {
    match &e {
        zbus::Error::MethodError(name, message, _) => {
            let text = message.clone().unwrap_or_else(|| name.to_string());
            let exit = match name
                .strip_prefix(ERROR_PREFIX)
                .and_then(|s| s.strip_prefix('.'))
            {
                Some("InvalidArgument") => Exit::Usage,
                Some("NotAuthorized") => Exit::Denied,
                Some("NotFound") => Exit::NotFound,
                Some("Conflict") => Exit::Conflict,
                Some(_) => Exit::Failed,
                None if name.as_str().ends_with("AccessDenied") => Exit::Denied,
                None if name.as_str().ends_with("ServiceUnknown")
                    || name.as_str().ends_with("NameHasNoOwner") =>
                {
                    Exit::Unreachable
                }
                None => Exit::Failed,
            };
            CliError::new(exit, text)
        }
        zbus::Error::InputOutput(_) => CliError::new(
            Exit::Unreachable,
            format!("lost the connection to jitd: {e}"),
        ),
        _ => CliError::new(Exit::Failed, e.to_string()),
    }
}

//! What a second factor adds to an ssh login (W4): pam_jit's `auth` hook
//! asks jitd what to ask for (`MfaLogin(uid, "")`) and then checks the
//! code, on jitd's private socket, against the account check that follows
//! (`CheckGrant`) on the same connection. Root enrolls for the benchmark;
//! the codes checked are wrong ones (`[mfa] max_failures` raised so none
//! locks out): a refusal is the same work as an acceptance (the code
//! judged, one transaction with its audit event), and a right code is good
//! once per 30 s. One right code is timed too.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pam_jit::client::Client;
use pam_jit::wire::Value;
use totp_rs::Totp;
use zbus::Connection;

use jitd::api::{BUS_NAME, INTERFACE, OBJECT_PATH};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn now() -> Result<u64, BoxError> {
    Ok(SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs())
}

/// Root's second factor, enrolled and confirmed; its generator.
async fn enroll_root() -> Result<Totp, BoxError> {
    let conn = Connection::system().await?;
    let reply = conn
        .call_method(
            Some(BUS_NAME),
            OBJECT_PATH,
            Some(INTERFACE),
            "MfaEnroll",
            &(),
        )
        .await?;
    let uri: String = reply.body().deserialize()?;
    let app = Totp::from_url(&uri)?;
    let code = app.generate(now()?).to_string();
    conn.call_method(
        Some(BUS_NAME),
        OBJECT_PATH,
        Some(INTERFACE),
        "MfaConfirm",
        &(code,),
    )
    .await?;
    Ok(app)
}

/// Nanoseconds of one call on `client`.
fn timed(client: &mut Client, member: &str, args: &[Value]) -> Result<u64, BoxError> {
    client.set_deadline(Instant::now() + Duration::from_secs(5));
    let start = Instant::now();
    client
        .call_private(member, args)
        .map_err(|e| e.to_string())?;
    Ok(start.elapsed().as_nanos() as u64)
}

/// (what to ask, a code checked, the account check) for `calls` logins,
/// and one right code; nanoseconds.
pub async fn run(
    socket: &Path,
    resource: &str,
    calls: usize,
) -> Result<(Vec<u64>, Vec<u64>, Vec<u64>, u64), BoxError> {
    let app = enroll_root().await?;
    let path = socket.to_str().ok_or("socket path")?;
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut client = Client::connect_private(path, deadline)
        .map_err(|e| e.to_string())?
        .ok_or("no private socket")?;
    let (ask, wrong) = (
        [Value::U32(0), Value::Str(String::new())],
        [Value::U32(0), Value::Str("000000".into())],
    );
    let check = [Value::U32(0), Value::Str(resource.into())];
    let (mut asks, mut codes, mut checks) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..calls {
        asks.push(timed(&mut client, "MfaLogin", &ask)?);
        codes.push(timed(&mut client, "MfaLogin", &wrong)?);
        checks.push(timed(&mut client, "CheckGrant", &check)?);
    }
    let right = [
        Value::U32(0),
        Value::Str(app.generate(now()? + 30).to_string()),
    ];
    let accepted = timed(&mut client, "MfaLogin", &right)?;
    Ok((asks, codes, checks, accepted))
}

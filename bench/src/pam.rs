//! In-process PAM transactions through the real libpam (pam_start,
//! pam_acct_mgmt, then pam_open_session and pam_close_session if asked,
//! pam_end), as sudo and sshd do them.

use std::ffi::{c_char, c_int, c_void, CString};
use std::time::{Duration, Instant};

#[repr(C)]
struct PamMessage {
    style: c_int,
    msg: *const c_char,
}

#[repr(C)]
struct PamResponse {
    resp: *mut c_char,
    retcode: c_int,
}

type ConvFn =
    extern "C" fn(c_int, *mut *const PamMessage, *mut *mut PamResponse, *mut c_void) -> c_int;

#[repr(C)]
struct PamConv {
    conv: Option<ConvFn>,
    appdata: *mut c_void,
}

#[link(name = "pam")]
extern "C" {
    fn pam_start(
        service: *const c_char,
        user: *const c_char,
        conv: *const PamConv,
        pamh: *mut *mut c_void,
    ) -> c_int;
    fn pam_acct_mgmt(pamh: *mut c_void, flags: c_int) -> c_int;
    fn pam_open_session(pamh: *mut c_void, flags: c_int) -> c_int;
    fn pam_close_session(pamh: *mut c_void, flags: c_int) -> c_int;
    fn pam_end(pamh: *mut c_void, status: c_int) -> c_int;
}

const PAM_SILENT: c_int = 0x8000;

/// Accepts every message with an empty answer (libpam frees what we allocate).
extern "C" fn quiet_conv(
    n: c_int,
    _msgs: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    _data: *mut c_void,
) -> c_int {
    // SAFETY: calloc of n zeroed responses; libpam owns and frees them.
    let block = unsafe { libc::calloc(n.max(1) as usize, std::mem::size_of::<PamResponse>()) };
    if block.is_null() {
        return 5; // PAM_BUF_ERR
    }
    // SAFETY: resp is the out-pointer libpam passed us.
    unsafe { *resp = block.cast() };
    0
}

/// What a transaction runs after `pam_start`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stack {
    /// `pam_acct_mgmt` alone.
    Account,
    /// `pam_acct_mgmt`, then `pam_open_session` and `pam_close_session`,
    /// as sudo runs a command.
    AccountAndSession,
}

/// One transaction (`pam_start`, the stack, `pam_end`); returns the first
/// PAM result code that is not success, or success.
pub fn transaction(service: &str, user: &str, stack: Stack) -> c_int {
    let (Ok(service), Ok(user)) = (CString::new(service), CString::new(user)) else {
        return 4;
    };
    let conv = PamConv {
        conv: Some(quiet_conv),
        appdata: std::ptr::null_mut(),
    };
    let mut pamh: *mut c_void = std::ptr::null_mut();
    // SAFETY: valid C strings and conversation; pamh is written by pam_start.
    let rc = unsafe { pam_start(service.as_ptr(), user.as_ptr(), &conv, &mut pamh) };
    if rc != 0 {
        return rc;
    }
    // SAFETY: pamh came from a successful pam_start and is ended exactly once.
    unsafe {
        let mut rc = pam_acct_mgmt(pamh, PAM_SILENT);
        if rc == 0 && stack == Stack::AccountAndSession {
            rc = pam_open_session(pamh, PAM_SILENT);
            if rc == 0 {
                rc = pam_close_session(pamh, PAM_SILENT);
            }
        }
        pam_end(pamh, rc);
        rc
    }
}

/// One account check (`pam_start`, `pam_acct_mgmt`, `pam_end`).
pub fn account_check(service: &str, user: &str) -> c_int {
    transaction(service, user, Stack::Account)
}

/// Times `count` transactions; returns nanoseconds each and the failures.
pub fn timed(service: &str, user: &str, stack: Stack, count: usize) -> (Vec<u64>, usize) {
    let mut samples = Vec::with_capacity(count);
    let mut failed = 0;
    for _ in 0..count {
        let start = Instant::now();
        if transaction(service, user, stack) != 0 {
            failed += 1;
        }
        samples.push(start.elapsed().as_nanos() as u64);
    }
    (samples, failed)
}

/// Transactions per second with `threads` running back to back for `secs`.
pub fn concurrent(
    service: &str,
    user: &str,
    threads: usize,
    secs: Duration,
) -> (f64, usize, usize) {
    let deadline = Instant::now() + secs;
    let start = Instant::now();
    let results: Vec<(usize, usize)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let (mut ok, mut failed) = (0, 0);
                    while Instant::now() < deadline {
                        if account_check(service, user) == 0 {
                            ok += 1;
                        } else {
                            failed += 1;
                        }
                    }
                    (ok, failed)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or((0, 0)))
            .collect()
    });
    let ok: usize = results.iter().map(|r| r.0).sum();
    let failed: usize = results.iter().map(|r| r.1).sum();
    (ok as f64 / start.elapsed().as_secs_f64(), ok, failed)
}

/// How pam_jit reaches jitd.
#[derive(Clone, Copy)]
pub enum Carrier<'a> {
    /// The system bus socket at this path.
    Bus(&'a str),
    /// jitd's private socket at this path.
    Private(&'a str),
}

/// One fresh connection per call, as pam_jit makes them: `CheckGrant`
/// against the floor (the same exchange for a method jitd does not have, so
/// jitd does no work). Nanoseconds each.
pub fn fresh_connections(
    carrier: Carrier<'_>,
    uid: u32,
    resource: &str,
    count: usize,
) -> (Vec<u64>, Vec<u64>) {
    use pam_jit::client::{Client, ClientError};
    use pam_jit::wire::Value;
    let call = |member: &str, args: &[Value]| {
        let start = Instant::now();
        let deadline = start + Duration::from_secs(2);
        let _ = match carrier {
            Carrier::Bus(path) => {
                Client::connect(path, deadline).and_then(|mut c| c.call_jitd(member, args))
            }
            Carrier::Private(path) => Client::connect_private(path, deadline)
                .and_then(|c| c.ok_or(ClientError::NotRunning)?.call_private(member, args)),
        };
        start.elapsed().as_nanos() as u64
    };
    let check = [Value::U32(uid), Value::Str(resource.into())];
    let (mut checks, mut floor) = (Vec::with_capacity(count), Vec::with_capacity(count));
    for _ in 0..count {
        checks.push(call("CheckGrant", &check));
        floor.push(call("NoSuchMethod", &[]));
    }
    (checks, floor)
}

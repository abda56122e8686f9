//! The libpam edge: entry points, items, the conversation and syslog.
//! Every entry point catches panics (T9): a bug must cost a denial, never
//! sudo or sshd.

use std::cell::Cell;
use std::ffi::{CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use pam::constants::{PamFlag, PamResultCode, PAM_ERROR_MSG, PAM_PROMPT_ECHO_OFF, PAM_TEXT_INFO};
use pam::conv::Conv;
use pam::items::{RHost, RUser, Service, Tty, User};
use pam::module::{PamHandle, PamHooks};

use crate::args::{self, Args};
use crate::client::Client;
use crate::gate::{self, Bus, Code, Scope, SessionInfo, Verdict};
use crate::second_factor;

const SESSION_KEY: &str = "pam_jit_session";
const CONNECTION_KEY: &str = "pam_jit_connection";

pub struct PamJit;
pam::pam_hooks!(PamJit);

impl PamHooks for PamJit {
    /// A second factor's code, checked by jitd (sshd's keyboard-interactive
    /// after the key); a vendor's first login enrolls one here.
    fn sm_authenticate(pamh: &mut PamHandle, args: Vec<&CStr>, _flags: PamFlag) -> PamResultCode {
        guarded(|| {
            let (args, Holder { name: user, uid }) = match prepare_auth(pamh, &args) {
                Ok(ready) => ready,
                Err(code) => return code,
            };
            let mut bus = bus(pamh, &args);
            let mut conv = Talk(pamh.get_item::<Conv>().ok().flatten());
            let verdict = second_factor::authenticate(&args, &user, uid, &mut bus, &mut conv);
            // The account check of this login asks on the same connection.
            if let Some(client) = bus.kept {
                keep_connection(pamh, &args, client);
            }
            finish(pamh, &args, "auth", verdict)
        })
    }

    /// Nothing to establish: the code proved who is at the keyboard.
    fn sm_setcred(_pamh: &mut PamHandle, _args: Vec<&CStr>, _flags: PamFlag) -> PamResultCode {
        PamResultCode::PAM_SUCCESS
    }

    fn acct_mgmt(pamh: &mut PamHandle, args: Vec<&CStr>, _flags: PamFlag) -> PamResultCode {
        guarded(|| {
            let (args, Holder { name: user, uid }) = match prepare(pamh, &args, "account") {
                Ok(ready) => ready,
                Err(code) => return code,
            };
            // What jitd records of a denial (T39): the items as the host
            // program set them, never the environment.
            let asking = SessionInfo {
                service: item::<Service>(pamh),
                tty: item::<Tty>(pamh),
                rhost: item::<RHost>(pamh),
            };
            let mut bus = bus(pamh, &args);
            let verdict = gate::account(&args, &user, uid, &asking, &mut bus);
            // Granted on the private socket: jitd bound this process to the
            // grant, and its session hook will say so on this connection.
            if verdict.granted {
                if let Some(client) = bus.kept {
                    keep_connection(pamh, &args, client);
                }
            }
            finish(pamh, &args, "account", verdict)
        })
    }

    fn sm_open_session(pamh: &mut PamHandle, args: Vec<&CStr>, _flags: PamFlag) -> PamResultCode {
        guarded(|| {
            let (args, Holder { name: user, uid }) = match prepare(pamh, &args, "session") {
                Ok(ready) => ready,
                Err(code) => return code,
            };
            let info = SessionInfo {
                service: item::<Service>(pamh),
                tty: item::<Tty>(pamh),
                rhost: item::<RHost>(pamh),
            };
            // The connection closes after the session opens: sudo and sshd
            // may run for hours, and jitd needs nothing more from them.
            let mut bus = bus(pamh, &args);
            let bound = bus.kept.is_some();
            let verdict = gate::open_session(&args, &user, uid, &info, bound, &mut bus);
            if let Some(session) = verdict.session {
                if pamh.set_data(SESSION_KEY, Box::new(session)).is_err() {
                    log(
                        libc::LOG_WARNING,
                        &format!("user={user}: cannot remember session {session}"),
                    );
                }
            }
            finish(pamh, &args, "session", verdict)
        })
    }

    fn sm_close_session(pamh: &mut PamHandle, args: Vec<&CStr>, _flags: PamFlag) -> PamResultCode {
        guarded(|| {
            let args = match parse_args(&args) {
                Ok(args) => args,
                Err(code) => return code,
            };
            // Named from the items alone: the close asks jitd nothing, so it
            // looks nothing up (who is gated was decided at the open).
            let user = match item::<RUser>(pamh) {
                ruser if !ruser.is_empty() => ruser,
                _ => item::<User>(pamh),
            };
            // SAFETY: only this module stores SESSION_KEY, always as a Box<u64>.
            let session = unsafe { pamh.get_data::<u64>(SESSION_KEY) }.ok().copied();
            let verdict = gate::close_session(&args, &user, session);
            finish(pamh, &args, "close", verdict)
        })
    }
}

/// The login's conversation function, if the host program set one.
struct Talk<'a>(Option<Conv<'a>>);

impl second_factor::Conversation for Talk<'_> {
    fn info(&mut self, text: &str) {
        if let Some(conv) = &self.0 {
            let _ = conv.send(PAM_TEXT_INFO, text);
        }
    }

    fn ask_hidden(&mut self, prompt: &str) -> Option<String> {
        let answer = self.0.as_ref()?.send(PAM_PROMPT_ECHO_OFF, prompt).ok()??;
        answer.as_str().ok().map(str::to_owned)
    }
}

/// Runs a hook; a panic becomes PAM_SYSTEM_ERR.
fn guarded(hook: impl FnOnce() -> PamResultCode) -> PamResultCode {
    catch_unwind(AssertUnwindSafe(hook)).unwrap_or_else(|_| {
        log(libc::LOG_ERR, "internal error (panic); denying");
        PamResultCode::PAM_SYSTEM_ERR
    })
}

/// The person a hook decides for: their name, and their uid if they exist.
struct Holder {
    name: String,
    uid: Option<u32>,
}

/// Parses the arguments, finds the grant holder and decides whether the gate
/// applies; bad arguments are the admin's mistake: PAM_SERVICE_ERR, with the
/// reason in syslog. `Err` carries the hook's answer when it is decided here.
///
/// The holder is the person whose process asks (its real uid) when that is
/// not root: a setuid program (sudo, su, pkexec) runs with the real uid of
/// whoever started it, and no sudoers option changes that, whereas
/// `rootpw`, `targetpw`, `runaspw` or `-u` change PAM_USER and `!pam_ruser`
/// empties PAM_RUSER. A root process (sshd, login, root's own sudo) asks
/// for someone: PAM_RUSER when the service sets it, else PAM_USER.
fn prepare(
    pamh: &mut PamHandle,
    raw: &[&CStr],
    hook: &str,
) -> Result<(Args, Holder), PamResultCode> {
    let args = parse_args(raw)?;
    // Other services first: the line sits in stacks (`common-account`) that
    // cron and login share, where a caller with no name must not be refused.
    let service = item::<Service>(pamh);
    if !gate::covers_service(&args, &service) {
        return Err(PamResultCode::PAM_IGNORE);
    }
    // SAFETY: getuid has no preconditions and cannot fail.
    let real_uid = unsafe { libc::getuid() };
    let holder = if real_uid != 0 {
        let Some(name) = name_of(real_uid) else {
            log(
                libc::LOG_NOTICE,
                &format!(
                    "{hook} resource={}: uid {real_uid} has no name, denied",
                    args.resource
                ),
            );
            return Err(PamResultCode::PAM_USER_UNKNOWN);
        };
        Holder {
            name,
            uid: Some(real_uid),
        }
    } else {
        let ruser = item::<RUser>(pamh);
        let name = if ruser.is_empty() {
            pamh.get_user(None).inspect_err(|_| {
                log(
                    libc::LOG_ERR,
                    &format!("resource={}: cannot get the user name", args.resource),
                );
            })?
        } else {
            ruser
        };
        let uid = uid_of(&name);
        Holder { name, uid }
    };
    let target = || pamh.get_user(None).ok();
    match gate::scope(&args, &service, &holder.name, target) {
        Scope::Gated => Ok((args, holder)),
        Scope::OtherService | Scope::OtherTarget => Err(PamResultCode::PAM_IGNORE),
        Scope::Exempt => {
            if args.debug || hook == "account" {
                log(
                    libc::LOG_INFO,
                    &format!(
                        "{hook} service={service} user={} resource={}: exempt",
                        holder.name, args.resource
                    ),
                );
            }
            Err(PamResultCode::PAM_SUCCESS)
        }
    }
}

/// [`prepare`] for the `auth` hook, which proves who logs in: always the
/// account being authenticated (`PAM_USER`), never the gate's holder (a
/// `su` by alice authenticates the target, not alice). A process that is
/// not root may only prove itself. Exempt holders and other services get
/// `PAM_IGNORE`, never a success: this line cannot let anyone in unasked.
fn prepare_auth(pamh: &mut PamHandle, raw: &[&CStr]) -> Result<(Args, Holder), PamResultCode> {
    let args = parse_args(raw)?;
    let user = pamh.get_user(None).inspect_err(|_| {
        log(
            libc::LOG_ERR,
            &format!("auth resource={}: cannot get the user name", args.resource),
        );
    })?;
    let service = item::<Service>(pamh);
    match gate::scope(&args, &service, &user, || Some(user.clone())) {
        Scope::Gated => {}
        Scope::Exempt | Scope::OtherService | Scope::OtherTarget => {
            return Err(PamResultCode::PAM_IGNORE)
        }
    }
    // SAFETY: getuid has no preconditions and cannot fail.
    let real_uid = unsafe { libc::getuid() };
    if real_uid != 0 && name_of(real_uid).as_deref() != Some(user.as_str()) {
        log(
            libc::LOG_NOTICE,
            &format!(
                "auth resource={}: uid {real_uid} asked for {user}'s code, denied",
                args.resource
            ),
        );
        return Err(PamResultCode::PAM_AUTH_ERR);
    }
    let uid = uid_of(&user);
    Ok((args, Holder { name: user, uid }))
}

/// The module's arguments; bad ones are PAM_SERVICE_ERR, the reason in syslog.
fn parse_args(raw: &[&CStr]) -> Result<Args, PamResultCode> {
    let texts: Vec<&str> = raw
        .iter()
        .map(|a| a.to_str().unwrap_or("\u{fffd}"))
        .collect();
    args::parse(texts.iter().copied()).map_err(|e| {
        log(libc::LOG_ERR, &format!("bad module arguments: {e}"));
        PamResultCode::PAM_SERVICE_ERR
    })
}

/// jitd, through the connection an earlier hook of this transaction left,
/// if there is one.
fn bus<'a>(pamh: &PamHandle, args: &'a Args) -> Bus<'a> {
    Bus {
        socket: &args.socket,
        bus: &args.bus,
        timeout: args.timeout,
        kept: kept_connection(pamh, args),
    }
}

/// A private connection waiting for the next hook, in pam data: libpam owns
/// it and pam_end closes it.
struct KeptConnection {
    pid: u32,
    socket: String,
    client: Client,
}

type ConnectionSlot = Cell<Option<KeptConnection>>;

/// Takes the connection an earlier hook kept, if this process made it to
/// the same socket. jitd takes the process that connected for the caller,
/// and sshd forks between hooks: a child must not speak on its parent's
/// connection.
fn kept_connection(pamh: &PamHandle, args: &Args) -> Option<Client> {
    // SAFETY: only this module stores CONNECTION_KEY, always as a ConnectionSlot.
    let slot = unsafe { pamh.get_data::<ConnectionSlot>(CONNECTION_KEY) }.ok()?;
    let kept = slot.take()?;
    (kept.pid == std::process::id() && kept.socket == args.socket).then_some(kept.client)
}

fn keep_connection(pamh: &mut PamHandle, args: &Args, client: Client) {
    let kept = KeptConnection {
        pid: std::process::id(),
        socket: args.socket.clone(),
        client,
    };
    // SAFETY: as in kept_connection.
    match unsafe { pamh.get_data::<ConnectionSlot>(CONNECTION_KEY) } {
        Ok(slot) => slot.set(Some(kept)),
        // If libpam cannot hold it, it is closed here: the next hook connects.
        Err(_) => {
            let _ = pamh.set_data(CONNECTION_KEY, Box::new(Cell::new(Some(kept))));
        }
    }
}

/// Tells the user (even under PAM_SILENT: it is the one message that explains
/// a denial, see docs/design.md, "pam_jit.so (contract)"), logs, and maps the
/// verdict to a PAM code.
fn finish(pamh: &PamHandle, args: &Args, hook: &str, verdict: Verdict) -> PamResultCode {
    let service = item::<Service>(pamh);
    let level = match verdict.code {
        Code::Success => libc::LOG_INFO,
        _ => libc::LOG_NOTICE,
    };
    // Every account denial and every session opened reach syslog; a close
    // only with `debug`: jitd records when the session really ended.
    if verdict.code != Code::Success || args.debug || hook == "session" {
        log(level, &format!("{hook} service={service} {}", verdict.log));
    }
    if let Some(message) = &verdict.tell_user {
        if let Ok(Some(conv)) = pamh.get_item::<Conv>() {
            let _ = conv.send(PAM_ERROR_MSG, &terminal_safe(message));
        }
    }
    if verdict.end_process {
        end_own_process(&service);
    }
    match verdict.code {
        Code::Success => PamResultCode::PAM_SUCCESS,
        Code::AuthErr => PamResultCode::PAM_AUTH_ERR,
        Code::PermDenied => PamResultCode::PAM_PERM_DENIED,
        Code::UserUnknown => PamResultCode::PAM_USER_UNKNOWN,
        Code::AuthinfoUnavail => PamResultCode::PAM_AUTHINFO_UNAVAIL,
    }
}

/// A session that could not be registered, in a process jitd has not put
/// into its grant's cgroup, must not start: sshd starts it whatever the
/// module answers. SIGKILL, since the host may handle every other signal.
fn end_own_process(service: &str) {
    log(
        libc::LOG_ERR,
        &format!("service={service}: session not registered and not contained; ending the process"),
    );
    // SAFETY: kill(2) on our own pid has no memory-safety preconditions.
    unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
}

fn item<'a, T: pam::items::Item<'a> + std::ops::Deref<Target = &'a CStr>>(
    pamh: &'a PamHandle,
) -> String {
    match pamh.get_item::<T>() {
        Ok(Some(value)) => value.to_string_lossy().into_owned(),
        _ => String::new(),
    }
}

/// Error texts from the bus end up in the user's terminal: keep line breaks,
/// replace every other control character (escape sequences, `\r`).
fn terminal_safe(message: &str) -> String {
    message
        .chars()
        .map(|c| if c.is_control() && c != '\n' { '?' } else { c })
        .collect()
}

/// The user's uid from NSS, or None if there is no such user.
fn uid_of(user: &str) -> Option<u32> {
    let name = CString::new(user).ok()?;
    passwd(
        |pwd, buf, result| {
            // SAFETY: all pointers are valid for the call; buf.len() is its size.
            unsafe { libc::getpwnam_r(name.as_ptr(), pwd, buf.as_mut_ptr(), buf.len(), result) }
        },
        |pwd| Some(pwd.pw_uid),
    )
}

/// The name of `uid` from NSS, or None if it has none (or not UTF-8).
fn name_of(uid: u32) -> Option<String> {
    passwd(
        |pwd, buf, result| {
            // SAFETY: as in uid_of.
            unsafe { libc::getpwuid_r(uid, pwd, buf.as_mut_ptr(), buf.len(), result) }
        },
        |pwd| {
            // SAFETY: on success pw_name points to a NUL-terminated string in
            // the buffer, which `passwd` keeps alive while this reads it.
            unsafe { CStr::from_ptr(pwd.pw_name) }
                .to_str()
                .ok()
                .map(str::to_owned)
        },
    )
}

/// Runs a `getpw*_r` call with a buffer of its own and reads what it found
/// with `read` while the buffer its strings point into still lives.
fn passwd<T>(
    call: impl FnOnce(&mut libc::passwd, &mut [libc::c_char], &mut *mut libc::passwd) -> libc::c_int,
    read: impl FnOnce(&libc::passwd) -> Option<T>,
) -> Option<T> {
    // SAFETY: passwd is plain old data; the call fills it and points its
    // strings into `buf`.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let rc = call(&mut pwd, &mut buf, &mut result);
    (rc == 0 && !result.is_null()).then(|| read(&pwd)).flatten()
}

/// One line to syslog (authpriv). No openlog: the host program's ident stays.
fn log(level: libc::c_int, message: &str) {
    let Ok(line) = CString::new(format!("pam_jit: {message}").replace('\0', "?")) else {
        return;
    };
    // SAFETY: a constant format and a valid C string.
    unsafe { libc::syslog(libc::LOG_AUTHPRIV | level, c"%s".as_ptr(), line.as_ptr()) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_reach_the_terminal_without_control_characters() {
        assert_eq!(terminal_safe("a\x1b]52;c;x\x07\rb\nc"), "a?]52;c;x??b\nc");
    }

    #[test]
    fn a_panic_in_a_hook_is_a_system_error() {
        assert_eq!(
            guarded(|| panic!("injected")),
            PamResultCode::PAM_SYSTEM_ERR
        );
        assert_eq!(
            guarded(|| PamResultCode::PAM_SUCCESS),
            PamResultCode::PAM_SUCCESS
        );
    }
}

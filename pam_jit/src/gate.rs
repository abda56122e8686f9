//! What pam_jit decides, separated from libpam and the socket so that every
//! path (and especially every failure path) is tested without either.
//! No path returns success for an error unless `audit_only` says so (T6).

use std::time::{Duration, Instant};

use crate::args::Args;
use crate::client::{Client, ClientError};
use crate::wire::Value;

/// What CheckGrant said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Standing {
    pub grant: Option<(u64, i64)>,
    pub pending: Option<u64>,
}

/// jitd, as the gate sees it.
pub trait Jitd {
    fn check(&mut self, uid: u32, resource: &str) -> Result<Standing, ClientError>;
    /// The account check: [`Jitd::check`], and jitd records a denial with
    /// the PAM service, tty and remote host.
    fn check_access(
        &mut self,
        uid: u32,
        resource: &str,
        asking: &SessionInfo,
    ) -> Result<Standing, ClientError>;
    /// Returns (session, grant, expires_at).
    fn register(
        &mut self,
        uid: u32,
        resource: &str,
        session: &SessionInfo,
    ) -> Result<(u64, u64, i64), ClientError>;
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionInfo {
    pub service: String,
    pub tty: String,
    pub rhost: String,
}

impl SessionInfo {
    /// `(uid, resource, service, tty, rhost)`, as `CheckAccess` and
    /// `RegisterSession` take them, each PAM item cut ([`clip`]).
    fn args(&self, uid: u32, resource: &str) -> [Value; 5] {
        [
            Value::U32(uid),
            Value::Str(resource.into()),
            Value::Str(clip(&self.service).into()),
            Value::Str(clip(&self.tty).into()),
            Value::Str(clip(&self.rhost).into()),
        ]
    }
}

/// PAM codes the gate answers with. A session hook never answers
/// `PAM_SESSION_ERR`: sudo treats exactly that code as non-fatal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    Success,
    /// A wrong or missing second factor (the `auth` hook).
    AuthErr,
    PermDenied,
    UserUnknown,
    AuthinfoUnavail,
}

/// Whether the gate applies to a PAM transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The holder needs a grant.
    Gated,
    /// The holder is in `exempt=`: let through, logged.
    Exempt,
    /// A service outside `services=`: not the gate's business (PAM_IGNORE).
    OtherService,
    /// A login as an account outside `targets=`: not this line's business
    /// (PAM_IGNORE).
    OtherTarget,
}

/// Whether the line is for `service` (`services=`; every service without it).
pub fn covers_service(args: &Args, service: &str) -> bool {
    args.services.is_empty() || args.services.iter().any(|s| s == service)
}

/// Decided on names alone: nothing that can fail to look up (a group, a
/// directory) can make a holder ungated.
/// `target` (PAM_USER) is asked for only when the line has `targets=`.
pub fn scope(
    args: &Args,
    service: &str,
    holder: &str,
    target: impl FnOnce() -> Option<String>,
) -> Scope {
    if !covers_service(args, service) {
        Scope::OtherService
    } else if !args.targets.is_empty() && !target().is_some_and(|t| args.targets.contains(&t)) {
        Scope::OtherTarget
    } else if args.exempt.iter().any(|u| u == holder) {
        Scope::Exempt
    } else {
        Scope::Gated
    }
}

/// The module's answer, what to tell the user, and what to log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub code: Code,
    pub tell_user: Option<String>,
    pub log: String,
    /// Set on a successful session open: remember it for close.
    pub session: Option<u64>,
    /// jitd answered the account check with an active grant.
    pub granted: bool,
    /// The session hook could not register, and the process is not known
    /// to be inside its grant's cgroup: the host (sshd) may start the
    /// session anyway, so the module must end its process.
    pub end_process: bool,
}

impl Verdict {
    pub(crate) fn new(code: Code, log: String) -> Verdict {
        Verdict {
            code,
            tell_user: None,
            log,
            session: None,
            granted: false,
            end_process: false,
        }
    }

    /// In `audit_only` mode a denial is logged, and access allowed.
    pub(crate) fn enforce(mut self, args: &Args) -> Verdict {
        if args.audit_only && self.code != Code::Success {
            self.log = format!("audit_only: would deny: {}", self.log);
            self.code = Code::Success;
            self.tell_user = None;
            self.end_process = false;
        }
        if args.quiet {
            self.tell_user = None;
        }
        self
    }
}

fn request_hint(resource: &str) -> String {
    format!("jitctl request {resource} --for 30m --reason \"...\"")
}

/// The account hook: is `user` (uid, if they exist) holding an active
/// grant? `asking` (the PAM service, tty and remote host) goes with the
/// question, for jitd's record of a denial.
pub fn account(
    args: &Args,
    user: &str,
    uid: Option<u32>,
    asking: &SessionInfo,
    jitd: &mut impl Jitd,
) -> Verdict {
    let r = &args.resource;
    let Some(uid) = uid else {
        return Verdict::new(
            Code::UserUnknown,
            format!("user={user} resource={r}: unknown user, denied"),
        )
        .enforce(args);
    };
    let verdict = match jitd.check_access(uid, r, asking) {
        Ok(Standing {
            grant: Some((grant, expires_at)),
            ..
        }) => Verdict {
            granted: true,
            ..Verdict::new(
                Code::Success,
                format!("user={user} resource={r} grant={grant} expires_at={expires_at}: allowed"),
            )
        },
        Ok(Standing {
            grant: None,
            pending,
        }) => {
            let mut message = format!(
                "jit: you hold no active grant for '{r}'. Request one with:\n  {}",
                request_hint(r)
            );
            if let Some(id) = pending {
                message.push_str(&format!(
                    "\n(request {id} is pending approval: jitctl show {id})"
                ));
            }
            Verdict {
                tell_user: Some(message),
                ..Verdict::new(
                    Code::PermDenied,
                    format!("user={user} resource={r}: no active grant, denied"),
                )
            }
        }
        Err(e) => unavailable(args, user, &e),
    };
    verdict.enforce(args)
}

/// jitd could not give a trustworthy answer: deny (T6, T8).
fn unavailable(args: &Args, user: &str, e: &ClientError) -> Verdict {
    let r = &args.resource;
    let code = match e {
        ClientError::Impostor { .. }
        | ClientError::Remote { .. }
        | ClientError::Unexpected(_)
        | ClientError::Wire(_) => Code::PermDenied,
        _ => Code::AuthinfoUnavail,
    };
    Verdict {
        tell_user: Some(format!(
            "jit: cannot verify your grant for '{r}' ({e}); access denied."
        )),
        ..Verdict::new(code, format!("user={user} resource={r}: {e}, denied"))
    }
}

/// The session hook: register the session so jitd can end it with the
/// grant. `bound`: this process's own account check was granted on jitd's
/// private socket, so jitd already put it into the grant's cgroup.
///
/// Every failure is a code sudo treats as fatal. sshd treats none as fatal
/// and would start the shell: a process that is not bound is ended by the
/// module itself, after the user is told why (jitd also ends a process it
/// refuses, a second later, in case the module could not). A bound one is
/// already inside its grant's cgroup and ends with it.
pub fn open_session(
    args: &Args,
    user: &str,
    uid: Option<u32>,
    info: &SessionInfo,
    bound: bool,
    jitd: &mut impl Jitd,
) -> Verdict {
    let r = &args.resource;
    let Some(uid) = uid else {
        return Verdict::new(
            Code::UserUnknown,
            format!("user={user} resource={r}: unknown user, session refused"),
        )
        .enforce(args);
    };
    // jitd ends a process it refuses: under audit_only, only one that holds
    // a grant is registered (bound: its own check said so).
    if args.audit_only && !bound {
        match jitd.check(uid, r) {
            Ok(Standing { grant: Some(_), .. }) => {}
            Ok(_) => {
                return Verdict::new(
                    Code::PermDenied,
                    format!("user={user} resource={r}: no active grant, session not registered"),
                )
                .enforce(args)
            }
            Err(e) => return unavailable(args, user, &e).enforce(args),
        }
    }
    let verdict = match jitd.register(uid, r, info) {
        Ok((session, grant, expires_at)) => Verdict {
            session: Some(session),
            ..Verdict::new(
                Code::Success,
                format!("user={user} resource={r} grant={grant} session={session} service={} tty={} expires_at={expires_at}: session registered", info.service, info.tty),
            )
        },
        Err(e) => {
            let answered = matches!(e, ClientError::Remote { .. });
            Verdict {
                tell_user: Some(format!("jit: cannot open a session under your grant for '{r}' ({e}).")),
                end_process: !bound,
                ..Verdict::new(
                    if answered { Code::PermDenied } else { Code::AuthinfoUnavail },
                    format!("user={user} resource={r}: {e}, session refused"),
                )
            }
        }
    };
    verdict.enforce(args)
}

/// The close hook asks jitd nothing: jitd holds the session's process (the
/// one that opened it, about to exit) and records the end when it exits,
/// which also covers a host program killed before its close. sudo and sshd
/// wait for no exchange when a session ends.
pub fn close_session(args: &Args, user: &str, session: Option<u64>) -> Verdict {
    let r = &args.resource;
    let log = match session {
        None => format!("user={user} resource={r}: no session to close"),
        Some(id) => format!("user={user} resource={r} session={id}: closing"),
    };
    Verdict::new(Code::Success, log)
}

/// The real jitd under the module's timeout: its private socket if it
/// serves one, else the system bus (a connection per call).
///
/// A private connection outlives its call in `kept`, so that the hooks of
/// one PAM transaction (sudo's account check, then its session) share one
/// connection and one handshake.
pub struct Bus<'a> {
    pub socket: &'a str,
    pub bus: &'a str,
    pub timeout: Duration,
    pub kept: Option<Client>,
}

impl Bus<'_> {
    pub(crate) fn call(&mut self, member: &str, args: &[Value]) -> Result<Vec<Value>, ClientError> {
        let deadline = Instant::now() + self.timeout;
        if let Some(mut private) = self.kept.take() {
            private.set_deadline(deadline);
            match private.call_private(member, args) {
                Ok(values) => {
                    self.kept = Some(private);
                    return Ok(values);
                }
                // jitd restarted, or dropped a connection idle for too
                // long: nothing was answered, ask again on a new one.
                Err(e) if e.is_closed() => {}
                Err(e) => return Err(e),
            }
        }
        match Client::connect_private(self.socket, deadline)? {
            Some(mut private) => {
                let values = private.call_private(member, args)?;
                self.kept = Some(private);
                Ok(values)
            }
            None => Client::connect(self.bus, deadline)?.call_jitd(member, args),
        }
    }
}

/// At most [`MAX_ITEM`] bytes of `text` (on a character boundary): what a
/// denial records of a PAM item is shorter still (jitd cuts it), and the
/// check must not grow with what a client put in `PAM_RHOST`.
fn clip(text: &str) -> &str {
    let mut end = text.len().min(MAX_ITEM);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The longest PAM item the account check sends.
const MAX_ITEM: usize = 1024;

/// CheckGrant's and CheckAccess's answer.
fn standing(values: &[Value]) -> Result<Standing, ClientError> {
    match values {
        [Value::Bool(active), Value::U64(grant), Value::I64(expires_at), Value::U64(pending)] => {
            Ok(Standing {
                grant: active.then_some((*grant, *expires_at)),
                pending: (*pending != 0).then_some(*pending),
            })
        }
        _ => Err(ClientError::Unexpected("CheckGrant reply")),
    }
}

impl Jitd for Bus<'_> {
    fn check(&mut self, uid: u32, resource: &str) -> Result<Standing, ClientError> {
        standing(&self.call(
            "CheckGrant",
            &[Value::U32(uid), Value::Str(resource.into())],
        )?)
    }

    /// A jitd older than this module (during a package upgrade) has no
    /// CheckAccess: it is asked CheckGrant, and records nothing.
    fn check_access(
        &mut self,
        uid: u32,
        resource: &str,
        s: &SessionInfo,
    ) -> Result<Standing, ClientError> {
        match self.call("CheckAccess", &s.args(uid, resource)) {
            Ok(values) => standing(&values),
            Err(ClientError::Remote { name, .. })
                if name == "org.freedesktop.DBus.Error.UnknownMethod" =>
            {
                self.check(uid, resource)
            }
            Err(e) => Err(e),
        }
    }

    fn register(
        &mut self,
        uid: u32,
        resource: &str,
        s: &SessionInfo,
    ) -> Result<(u64, u64, i64), ClientError> {
        match self
            .call("RegisterSession", &s.args(uid, resource))?
            .as_slice()
        {
            [Value::U64(session), Value::U64(grant), Value::I64(expires_at)] => {
                Ok((*session, *grant, *expires_at))
            }
            _ => Err(ClientError::Unexpected("RegisterSession reply")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args;

    /// A scripted jitd.
    struct Fake {
        check: Result<Standing, fn() -> ClientError>,
        calls: Vec<String>,
    }

    impl Jitd for Fake {
        fn check(&mut self, uid: u32, resource: &str) -> Result<Standing, ClientError> {
            self.calls.push(format!("check {uid} {resource}"));
            self.check.map_err(|f| f())
        }
        fn check_access(
            &mut self,
            uid: u32,
            resource: &str,
            s: &SessionInfo,
        ) -> Result<Standing, ClientError> {
            self.calls.push(format!(
                "check {uid} {resource} from {} {}",
                s.service, s.tty
            ));
            self.check.map_err(|f| f())
        }
        fn register(
            &mut self,
            uid: u32,
            resource: &str,
            s: &SessionInfo,
        ) -> Result<(u64, u64, i64), ClientError> {
            self.calls
                .push(format!("register {uid} {resource} {}", s.service));
            match self.check {
                Ok(Standing {
                    grant: Some((g, e)),
                    ..
                }) => Ok((5, g, e)),
                Ok(_) => Err(ClientError::Remote {
                    name: "org.jit.Daemon1.Error.NotAuthorized".into(),
                    message: "no grant".into(),
                }),
                Err(f) => Err(f()),
            }
        }
    }

    fn fake(check: Result<Standing, fn() -> ClientError>) -> Fake {
        Fake {
            check,
            calls: Vec::new(),
        }
    }

    const GRANTED: Standing = Standing {
        grant: Some((7, 1_800_000_000)),
        pending: None,
    };
    const NOTHING: Standing = Standing {
        grant: None,
        pending: None,
    };
    const PENDING: Standing = Standing {
        grant: None,
        pending: Some(12),
    };

    fn sudo(extra: &[&str]) -> Args {
        args::parse(["resource=sudo"].into_iter().chain(extra.iter().copied())).unwrap()
    }

    /// What a sudo on a terminal says about itself.
    fn asking() -> SessionInfo {
        SessionInfo {
            service: "sudo".into(),
            tty: "/dev/pts/1".into(),
            rhost: String::new(),
        }
    }

    #[test]
    fn active_grant_allows() {
        let mut j = fake(Ok(GRANTED));
        let v = account(&sudo(&[]), "alice", Some(1000), &asking(), &mut j);
        assert_eq!(v.code, Code::Success);
        assert!(v.granted);
        assert_eq!(v.tell_user, None);
        assert!(v.log.contains("grant=7"), "{}", v.log);
        // The account check names the service and tty, for jitd's record
        // of a denial.
        assert_eq!(j.calls, ["check 1000 sudo from sudo /dev/pts/1"]);
    }

    #[test]
    fn no_grant_denies_with_the_command_to_run() {
        let v = account(
            &sudo(&[]),
            "alice",
            Some(1000),
            &asking(),
            &mut fake(Ok(NOTHING)),
        );
        assert_eq!(v.code, Code::PermDenied);
        let msg = v.tell_user.unwrap();
        assert!(
            msg.contains("jitctl request sudo --for 30m --reason"),
            "{msg}"
        );
        assert!(!msg.contains("pending"), "{msg}");
        let v = account(
            &sudo(&[]),
            "alice",
            Some(1000),
            &asking(),
            &mut fake(Ok(PENDING)),
        );
        assert!(v.tell_user.unwrap().contains("request 12 is pending"));
    }

    #[test]
    fn every_failure_denies() {
        let failures: [fn() -> ClientError; 7] = [
            || ClientError::NotRunning,
            || ClientError::Timeout,
            || ClientError::Connect {
                path: "/run/dbus/system_bus_socket".into(),
                source: std::io::ErrorKind::NotFound.into(),
            },
            || ClientError::Impostor { uid: 1000 },
            || ClientError::Wire(crate::wire::WireError::Malformed("x")),
            || ClientError::Unexpected("reply from the wrong sender"),
            || ClientError::Remote {
                name: "org.jit.Daemon1.Error.Failed".into(),
                message: "x".into(),
            },
        ];
        for f in failures {
            let v = account(
                &sudo(&[]),
                "alice",
                Some(1000),
                &asking(),
                &mut fake(Err(f)),
            );
            assert_ne!(v.code, Code::Success, "{}", f());
            assert!(v.tell_user.is_some());
            for bound in [false, true] {
                let v = open_session(
                    &sudo(&[]),
                    "alice",
                    Some(1000),
                    &SessionInfo::default(),
                    bound,
                    &mut fake(Err(f)),
                );
                // Never PAM_SESSION_ERR, which sudo ignores.
                assert!(
                    matches!(v.code, Code::PermDenied | Code::AuthinfoUnavail),
                    "{}",
                    f()
                );
                // Not already in the grant's cgroup: the module ends the
                // process (sshd would start the shell).
                assert_eq!(v.end_process, !bound, "{}", f());
            }
        }
        let v = account(&sudo(&[]), "ghost", None, &asking(), &mut fake(Ok(GRANTED)));
        assert_eq!(v.code, Code::UserUnknown);
    }

    #[test]
    fn audit_only_allows_but_logs_what_it_would_deny() {
        let v = account(
            &sudo(&["audit_only"]),
            "alice",
            Some(1000),
            &asking(),
            &mut fake(Ok(NOTHING)),
        );
        assert_eq!(v.code, Code::Success);
        assert!(v.log.starts_with("audit_only: would deny:"), "{}", v.log);
        assert_eq!(v.tell_user, None);
        // Allowed, not granted: jitd bound nothing.
        assert!(!v.granted);
    }

    #[test]
    fn quiet_keeps_the_user_message_to_itself() {
        let v = account(
            &sudo(&["quiet"]),
            "alice",
            Some(1000),
            &asking(),
            &mut fake(Ok(NOTHING)),
        );
        assert_eq!((v.code, v.tell_user), (Code::PermDenied, None));
    }

    #[test]
    fn sessions_register_and_close() {
        let mut j = fake(Ok(GRANTED));
        let info = SessionInfo {
            service: "sudo".into(),
            tty: "/dev/pts/1".into(),
            rhost: String::new(),
        };
        let v = open_session(&sudo(&[]), "alice", Some(1000), &info, true, &mut j);
        assert_eq!((v.code, v.session), (Code::Success, Some(5)));
        let v = close_session(&sudo(&[]), "alice", Some(5));
        assert_eq!(v.code, Code::Success);
        assert_eq!(
            j.calls,
            ["register 1000 sudo sudo"],
            "close asks jitd nothing"
        );
        let v = open_session(
            &sudo(&[]),
            "alice",
            Some(1000),
            &info,
            false,
            &mut fake(Ok(NOTHING)),
        );
        assert_eq!(v.code, Code::PermDenied);
        assert!(v.end_process, "not bound: refused, and ended");
    }

    #[test]
    fn only_the_exempt_and_other_services_are_not_gated() {
        let a = sudo(&["services=sudo,sudo-i"]);
        let any = || None;
        assert_eq!(scope(&a, "sudo", "alice", any), Scope::Gated);
        assert_eq!(scope(&a, "sudo-i", "alice", any), Scope::Gated);
        assert_eq!(scope(&a, "sudo", "root", any), Scope::Exempt);
        assert_eq!(scope(&a, "cron", "alice", any), Scope::OtherService);
        let a = sudo(&["exempt=nagios"]);
        assert_eq!(scope(&a, "sudo", "root", any), Scope::Gated);
        assert_eq!(scope(&a, "sshd", "nagios", any), Scope::Exempt);
        assert_eq!(scope(&a, "anything", "alice", any), Scope::Gated);
        // A name is exempt only as written: no case folding, no prefix.
        assert_eq!(scope(&sudo(&[]), "sudo", "Root", any), Scope::Gated);
        assert_eq!(scope(&sudo(&[]), "sudo", "root2", any), Scope::Gated);
    }

    #[test]
    fn a_targets_line_gates_logins_as_its_accounts_only() {
        let a = args::parse(["resource=dba", "targets=postgres,dba"]).unwrap();
        let to = |name: &'static str| move || Some(name.to_owned());
        assert_eq!(scope(&a, "su", "alice", to("postgres")), Scope::Gated);
        assert_eq!(scope(&a, "login", "dba", to("dba")), Scope::Gated);
        assert_eq!(scope(&a, "su", "alice", to("bob")), Scope::OtherTarget);
        assert_eq!(scope(&a, "su", "alice", to("Postgres")), Scope::OtherTarget);
        assert_eq!(scope(&a, "su", "alice", || None), Scope::OtherTarget);
        // Root stays exempt when it logs in as the account.
        assert_eq!(scope(&a, "su", "root", to("postgres")), Scope::Exempt);
    }

    #[test]
    fn audit_only_registers_only_sessions_that_hold_a_grant() {
        let open = |j: &mut Fake| {
            let args = sudo(&["audit_only"]);
            open_session(
                &args,
                "alice",
                Some(1000),
                &SessionInfo::default(),
                false,
                j,
            )
        };
        let mut j = fake(Ok(NOTHING));
        let v = open(&mut j);
        assert_eq!(v.code, Code::Success);
        assert!(v.log.starts_with("audit_only: would deny:"), "{}", v.log);
        // Never asked to register: jitd would end the refused process.
        assert_eq!(j.calls, ["check 1000 sudo"]);
        let mut j = fake(Ok(GRANTED));
        assert_eq!(open(&mut j).session, Some(5));
        assert_eq!(j.calls, ["check 1000 sudo", "register 1000 sudo "]);
    }

    #[test]
    fn audit_only_never_ends_the_process() {
        let v = open_session(
            &sudo(&["audit_only"]),
            "alice",
            Some(1000),
            &SessionInfo::default(),
            false,
            &mut fake(Err(|| ClientError::Timeout)),
        );
        assert_eq!(v.code, Code::Success);
        assert!(!v.end_process);
    }

    /// What a client put in PAM_RHOST is cut before it is sent, on a
    /// character boundary.
    #[test]
    fn long_items_are_cut_on_a_character_boundary() {
        let rhost = format!("a{}", "é".repeat(600));
        assert_eq!(clip(&rhost).len(), MAX_ITEM - 1);
        assert_eq!(clip("host.example"), "host.example");
    }

    /// A jitd older than this module (as a package upgrade runs them
    /// together for a moment) has no CheckAccess: the account check asks it
    /// CheckGrant on a new connection, and keeps working.
    #[test]
    fn an_older_jitd_without_check_access_is_asked_check_grant() {
        use std::io::{Read, Write};
        use std::os::unix::net::UnixListener;
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: pam_jit trusts only a root listener");
            return;
        }
        let dir = std::env::temp_dir().join(format!("pam_jit-old-jitd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("pam.socket");
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).unwrap();
        // The old jitd: one call per connection, CheckGrant only.
        let old_jitd = std::thread::spawn(move || {
            let mut asked = Vec::new();
            for stream in listener.incoming().take(2) {
                let mut stream = stream.unwrap();
                let mut buf = Vec::new();
                let message = loop {
                    let mut chunk = [0u8; 4096];
                    let n = stream.read(&mut chunk).unwrap();
                    assert!(n > 0, "closed before the call");
                    buf.extend_from_slice(&chunk[..n]);
                    let Some(at) = buf.windows(7).position(|w| w == b"BEGIN\r\n") else {
                        continue;
                    };
                    let frame = &buf[at + 7..];
                    match crate::wire::frame_len(frame) {
                        Ok(len) if frame.len() >= len => {
                            break crate::wire::decode(&frame[..len]).unwrap()
                        }
                        _ => continue,
                    }
                };
                let member = message.member.clone().unwrap_or_default();
                let reply = if member == "CheckGrant" {
                    crate::wire::encode_return(
                        1,
                        message.serial,
                        &[
                            Value::Bool(true),
                            Value::U64(9),
                            Value::I64(1_900_000_000),
                            Value::U64(0),
                        ],
                    )
                } else {
                    crate::wire::encode_error(
                        1,
                        message.serial,
                        "org.freedesktop.DBus.Error.UnknownMethod",
                        "no method CheckAccess",
                    )
                };
                let mut out = b"OK 0123456789abcdef0123456789abcdef\r\n".to_vec();
                out.extend(reply);
                stream.write_all(&out).unwrap();
                asked.push(member);
            }
            asked
        });
        let socket = path.to_str().unwrap().to_owned();
        let mut bus = Bus {
            socket: &socket,
            bus: "/nonexistent",
            timeout: Duration::from_secs(5),
            kept: None,
        };
        let v = account(&sudo(&[]), "alice", Some(1000), &asking(), &mut bus);
        assert_eq!((v.code, v.granted), (Code::Success, true), "{}", v.log);
        assert_eq!(old_jitd.join().unwrap(), ["CheckAccess", "CheckGrant"]);
        std::fs::remove_dir_all(&dir).ok();
    }
}

//! The `auth` hook: a TOTP code checked by jitd (docs/design.md "Vendor
//! accounts", "MFA"), for sshd's keyboard-interactive after the key
//! (`AuthenticationMethods publickey,keyboard-interactive`). jitd says what
//! to ask for; a vendor's first login shows its new seed here, in the
//! login's conversation, before any session (so never in a recording).
//! Every failure denies (T6).

use crate::args::Args;
use crate::client::ClientError;
use crate::gate::{Bus, Code, Verdict};
use crate::wire::Value;

/// The login's conversation with the person at the keyboard.
pub trait Conversation {
    /// Text to show (a QR code, a URI).
    fn info(&mut self, text: &str);
    /// An answer typed without echo; `None` when there is none (the client
    /// gave up, or no conversation).
    fn ask_hidden(&mut self, prompt: &str) -> Option<String>;
}

/// jitd's answer to a login step, as `MfaLogin` gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Ask for a code.
    Code,
    /// Show the text (the new seed), then ask for its first code.
    Enroll(String),
    Accepted,
    Refused(String),
}

/// jitd, as the `auth` hook sees it.
pub trait Verifier {
    /// The next step for `uid`: with an empty `code`, what to ask for.
    fn login_step(&mut self, uid: u32, code: &str) -> Result<Step, ClientError>;
}

impl Verifier for Bus<'_> {
    fn login_step(&mut self, uid: u32, code: &str) -> Result<Step, ClientError> {
        let args = [Value::U32(uid), Value::Str(code.to_owned())];
        match self.call("MfaLogin", &args)?.as_slice() {
            [Value::Str(state), Value::Str(text)] => match state.as_str() {
                "code" => Ok(Step::Code),
                "enroll" => Ok(Step::Enroll(text.clone())),
                "accepted" => Ok(Step::Accepted),
                "refused" => Ok(Step::Refused(text.clone())),
                _ => Err(ClientError::Unexpected("MfaLogin state")),
            },
            _ => Err(ClientError::Unexpected("MfaLogin reply")),
        }
    }
}

/// Asks `user` (uid, if they exist) for a code jitd accepts.
pub fn authenticate(
    args: &Args,
    user: &str,
    uid: Option<u32>,
    jitd: &mut impl Verifier,
    conv: &mut impl Conversation,
) -> Verdict {
    let r = &args.resource;
    let Some(uid) = uid else {
        return Verdict::new(
            Code::UserUnknown,
            format!("user={user} resource={r}: unknown user, no code asked"),
        )
        .enforce(args);
    };
    let prompt = match jitd.login_step(uid, "") {
        Ok(Step::Code) => "Verification code: ",
        Ok(Step::Enroll(text)) => {
            conv.info(&text);
            "Code your app shows now (confirms it): "
        }
        Ok(Step::Refused(why)) => return refused(args, user, why),
        Ok(Step::Accepted) => {
            return Verdict::new(
                Code::PermDenied,
                format!("user={user} resource={r}: jitd accepted no code, denied"),
            )
            .enforce(args)
        }
        Err(e) => return unavailable(args, user, &e),
    };
    let Some(code) = conv.ask_hidden(prompt).filter(|c| !c.trim().is_empty()) else {
        return Verdict {
            tell_user: Some("jit: no code given; access denied.".into()),
            ..Verdict::new(
                Code::AuthErr,
                format!("user={user} resource={r}: no code given, denied"),
            )
        }
        .enforce(args);
    };
    match jitd.login_step(uid, code.trim()) {
        Ok(Step::Accepted) => Verdict::new(
            Code::Success,
            format!("user={user} resource={r}: code accepted"),
        )
        .enforce(args),
        Ok(Step::Refused(why)) => refused(args, user, why),
        Ok(_) => Verdict::new(
            Code::PermDenied,
            format!("user={user} resource={r}: unexpected answer to a code, denied"),
        )
        .enforce(args),
        Err(e) => unavailable(args, user, &e),
    }
}

fn refused(args: &Args, user: &str, why: String) -> Verdict {
    Verdict {
        tell_user: Some(format!("jit: {why}")),
        ..Verdict::new(
            Code::AuthErr,
            format!(
                "user={user} resource={}: code refused ({why})",
                args.resource
            ),
        )
    }
    .enforce(args)
}

fn unavailable(args: &Args, user: &str, e: &ClientError) -> Verdict {
    Verdict {
        tell_user: Some(format!("jit: cannot check your code ({e}); access denied.")),
        ..Verdict::new(
            Code::AuthinfoUnavail,
            format!("user={user} resource={}: {e}, denied", args.resource),
        )
    }
    .enforce(args)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args;

    /// A scripted jitd: the answers to the steps, in order.
    struct Fake {
        answers: Vec<Result<Step, fn() -> ClientError>>,
        codes: Vec<String>,
    }

    impl Verifier for Fake {
        fn login_step(&mut self, _uid: u32, code: &str) -> Result<Step, ClientError> {
            self.codes.push(code.to_owned());
            self.answers.remove(0).map_err(|f| f())
        }
    }

    /// A scripted person: what they type.
    struct Person {
        types: Option<&'static str>,
        shown: Vec<String>,
        asked: Vec<String>,
    }

    impl Conversation for Person {
        fn info(&mut self, text: &str) {
            self.shown.push(text.to_owned());
        }
        fn ask_hidden(&mut self, prompt: &str) -> Option<String> {
            self.asked.push(prompt.to_owned());
            self.types.map(str::to_owned)
        }
    }

    fn run(
        answers: Vec<Result<Step, fn() -> ClientError>>,
        types: Option<&'static str>,
        extra: &[&str],
    ) -> (Verdict, Fake, Person) {
        let args = args::parse(["resource=ssh"].into_iter().chain(extra.iter().copied())).unwrap();
        let mut jitd = Fake {
            answers,
            codes: Vec::new(),
        };
        let mut person = Person {
            types,
            shown: Vec::new(),
            asked: Vec::new(),
        };
        let verdict = authenticate(&args, "v-jdoe", Some(70001), &mut jitd, &mut person);
        (verdict, jitd, person)
    }

    #[test]
    fn an_enrolled_user_gets_in_with_the_code_jitd_accepts() {
        let (v, jitd, person) = run(
            vec![Ok(Step::Code), Ok(Step::Accepted)],
            Some(" 123456\n"),
            &[],
        );
        assert_eq!(v.code, Code::Success);
        assert_eq!(jitd.codes, ["", "123456"]);
        assert_eq!(person.asked, ["Verification code: "]);
    }

    #[test]
    fn a_wrong_missing_or_unchecked_code_denies() {
        let refused = || Ok(Step::Refused("wrong code; 4 more before a lockout".into()));
        let (v, _, _) = run(vec![Ok(Step::Code), refused()], Some("000000"), &[]);
        assert_eq!(v.code, Code::AuthErr);
        assert!(v.tell_user.unwrap().contains("4 more"));
        let (v, jitd, _) = run(vec![Ok(Step::Code)], None, &[]);
        assert_eq!(v.code, Code::AuthErr);
        assert_eq!(jitd.codes, [""], "no empty code is sent to jitd");
        let (v, _, _) = run(vec![Ok(Step::Code)], Some("  "), &[]);
        assert_eq!(v.code, Code::AuthErr);
        let down = || -> Result<Step, fn() -> ClientError> { Err(|| ClientError::Timeout) };
        let (v, _, _) = run(vec![down()], Some("123456"), &[]);
        assert_eq!(v.code, Code::AuthinfoUnavail);
        let (v, _, _) = run(vec![Ok(Step::Code), down()], Some("123456"), &[]);
        assert_eq!(v.code, Code::AuthinfoUnavail);
        // jitd saying "accepted" before any code is not believed.
        let (v, _, _) = run(vec![Ok(Step::Accepted)], Some("123456"), &[]);
        assert_eq!(v.code, Code::PermDenied);
        let (v, _, person) = run(vec![Ok(Step::Refused("no factor".into()))], Some("1"), &[]);
        assert_eq!(v.code, Code::AuthErr);
        assert!(person.asked.is_empty());
    }

    #[test]
    fn a_vendors_first_login_shows_the_seed_then_asks_for_its_code() {
        let (v, jitd, person) = run(
            vec![
                Ok(Step::Enroll("QR otpauth://totp/x".into())),
                Ok(Step::Accepted),
            ],
            Some("654321"),
            &[],
        );
        assert_eq!(v.code, Code::Success);
        assert_eq!(person.shown, ["QR otpauth://totp/x"]);
        assert_eq!(jitd.codes, ["", "654321"]);
    }

    #[test]
    fn audit_only_logs_what_it_would_deny() {
        let (v, _, _) = run(vec![Ok(Step::Code)], None, &["audit_only"]);
        assert_eq!(v.code, Code::Success);
        assert!(v.log.starts_with("audit_only: would deny"), "{}", v.log);
    }
}

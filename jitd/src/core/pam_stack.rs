//! The order of session modules in a PAM service's stack, as libpam runs
//! them. pam_systemd moves the process it is given into a logind session
//! scope; after pam_jit's session hook it would take a registered login out
//! of its grant's cgroup (docs/threats.md, T33), so admins are told.

/// A module line's place in the PAM configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    pub file: String,
    /// 1-based.
    pub line: usize,
}

/// One `session` module of a stack.
#[derive(Clone, Debug, PartialEq, Eq)]
struct SessionModule {
    /// The module's file name, without its directory.
    module: String,
    args: Vec<String>,
    place: Place,
}

/// A stack where pam_systemd's session hook runs after pam_jit's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LateSessionMove {
    pub service: String,
    pub jit: Place,
    pub systemd: Place,
}

/// How deep `@include` and `include`/`substack` are followed (libpam's own
/// limit).
const MAX_DEPTH: usize = 16;
/// How many files one stack may read: included files can fan out.
const MAX_FILES: usize = 64;

/// Whether `service`'s stack (the file of that name, as `read` returns the
/// files libpam would read for a name: `/etc/pam.d` or an absolute path)
/// runs a `pam_systemd.so` session line after a `pam_jit.so` session line
/// that applies to the service.
pub fn late_session_move(
    service: &str,
    read: &impl Fn(&str) -> Option<String>,
) -> Option<LateSessionMove> {
    let mut modules = Vec::new();
    let mut files = 0;
    session_modules(service, read, 0, &mut files, &mut modules);
    let jit = modules
        .iter()
        .position(|m| m.module.ends_with("pam_jit.so") && applies_to(&m.args, service))?;
    let systemd = modules[jit..]
        .iter()
        .find(|m| m.module == "pam_systemd.so")?;
    Some(LateSessionMove {
        service: service.to_owned(),
        jit: modules[jit].place.clone(),
        systemd: systemd.place.clone(),
    })
}

/// pam_jit's `services=` argument (the last one, as pam_jit reads them):
/// without one, it applies to every service.
fn applies_to(args: &[String], service: &str) -> bool {
    args.iter()
        .filter_map(|a| a.strip_prefix("services="))
        .next_back()
        .is_none_or(|list| list.split(',').any(|s| s == service))
}

fn session_modules(
    file: &str,
    read: &impl Fn(&str) -> Option<String>,
    depth: usize,
    files: &mut usize,
    out: &mut Vec<SessionModule>,
) {
    if depth > MAX_DEPTH || *files >= MAX_FILES {
        return;
    }
    *files += 1;
    let Some(text) = read(file) else { return };
    for (line, fields) in lines(&text) {
        let place = Place {
            file: file.to_owned(),
            line,
        };
        match fields.as_slice() {
            [include, name] if include == "@include" => {
                session_modules(name, read, depth + 1, files, out)
            }
            // libpam reads types and controls case-insensitively.
            [kind, control, rest @ ..]
                if kind.trim_start_matches('-').eq_ignore_ascii_case("session") =>
            {
                let includes = control.eq_ignore_ascii_case("include")
                    || control.eq_ignore_ascii_case("substack");
                match (includes, rest) {
                    (true, [name, ..]) => session_modules(name, read, depth + 1, files, out),
                    (false, [module, args @ ..]) => out.push(SessionModule {
                        module: module.rsplit('/').next().unwrap_or(module).to_owned(),
                        args: args.to_vec(),
                        place,
                    }),
                    _ => {}
                }
            }
            _ => {}
        }
    }
}

/// The configuration lines of a PAM file with their 1-based numbers, split
/// into fields: comments dropped, `\` continuations joined, and a
/// `[value=action ...]` control kept as one field.
fn lines(text: &str) -> Vec<(usize, Vec<String>)> {
    let mut out = Vec::new();
    let mut pending = String::new();
    let mut first = 0;
    for (n, raw) in text.lines().enumerate() {
        if pending.is_empty() {
            first = n + 1;
        }
        let code = raw.split('#').next().unwrap_or_default();
        // libpam continues a line on a backslash before trailing blanks too.
        if let Some(part) = code.trim_end().strip_suffix('\\') {
            pending.push_str(part);
            pending.push(' ');
            continue;
        }
        pending.push_str(code);
        let fields = fields(&std::mem::take(&mut pending));
        if !fields.is_empty() {
            out.push((first, fields));
        }
    }
    out
}

fn fields(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut in_brackets = false;
    for c in line.chars() {
        match c {
            '[' if field.is_empty() => {
                in_brackets = true;
                field.push(c);
            }
            ']' if in_brackets => {
                in_brackets = false;
                field.push(c);
                fields.push(std::mem::take(&mut field));
            }
            c if c.is_whitespace() && !in_brackets => {
                if !field.is_empty() {
                    fields.push(std::mem::take(&mut field));
                }
            }
            c => field.push(c),
        }
    }
    if !field.is_empty() {
        fields.push(field);
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(list: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            list.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, t)| (*t).to_owned())
        }
    }

    const COMMON_SESSION: &str = "# managed\nsession [default=1] pam_permit.so\n\
        session requisite pam_deny.so\nsession required pam_unix.so\n\
        session optional pam_systemd.so\n";

    #[test]
    fn pam_systemd_in_an_include_after_pam_jit_is_found_with_both_places() {
        let read = files(&[
            (
                "sshd",
                "@include common-account\naccount required pam_jit.so resource=ssh\n\
                 session required pam_jit.so resource=ssh\n@include common-session\n",
            ),
            ("common-session", COMMON_SESSION),
        ]);
        let found = late_session_move("sshd", &read).expect("found");
        assert_eq!(
            found.jit,
            Place {
                file: "sshd".into(),
                line: 3
            }
        );
        assert_eq!(
            found.systemd,
            Place {
                file: "common-session".into(),
                line: 5
            }
        );
    }

    #[test]
    fn pam_jit_after_pam_systemd_is_the_right_order() {
        let read = files(&[
            (
                "sshd",
                "@include common-session\nsession required /lib/security/pam_jit.so resource=ssh\n",
            ),
            ("common-session", COMMON_SESSION),
        ]);
        assert_eq!(late_session_move("sshd", &read), None);
    }

    #[test]
    fn a_pam_jit_line_for_other_services_does_not_count() {
        let read = files(&[
            (
                "common-session",
                "session required pam_jit.so resource=sudo services=sudo,sudo-i\n\
                 -session optional pam_systemd.so\n",
            ),
            ("sshd", "@include common-session\n"),
            ("sudo-i", "session include common-session\n"),
        ]);
        assert_eq!(late_session_move("sshd", &read), None);
        let found = late_session_move("sudo-i", &read).expect("sudo-i is gated");
        assert_eq!(found.systemd.line, 2);
    }

    #[test]
    fn brackets_comments_continuations_and_other_types_are_read_as_libpam_does() {
        let read = files(&[(
            "login",
            "account required pam_systemd.so\n\
             session [success=ok ignore=ignore default=bad] pam_jit.so resource=x # gate\n\
             # session optional pam_systemd.so\n\
             session optional \\\n  pam_systemd.so\n",
        )]);
        let found = late_session_move("login", &read).expect("found");
        assert_eq!((found.jit.line, found.systemd.line), (2, 4));
    }

    #[test]
    fn include_cycles_end() {
        let read = files(&[
            ("a", "@include b\nsession required pam_jit.so r=1\n"),
            ("b", "@include a\n"),
        ]);
        assert_eq!(late_session_move("a", &read), None);
    }

    #[test]
    fn what_libpam_also_accepts_is_read_too() {
        let read = files(&[
            (
                "sshd",
                "Session REQUIRED pam_jit.so services=cron services=sshd\n\
                 SESSION Include /usr/lib/pam.d/extra\n",
            ),
            (
                "/usr/lib/pam.d/extra",
                "session [default=ignore]pam_permit.so\nsession optional \\ \t\n pam_systemd.so\n",
            ),
        ]);
        let found = late_session_move("sshd", &read).expect("found");
        assert_eq!(
            found.systemd,
            Place {
                file: "/usr/lib/pam.d/extra".into(),
                line: 2
            }
        );
    }
}

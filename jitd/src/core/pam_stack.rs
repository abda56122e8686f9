//! PAM service stacks as libpam runs them.
//!
//! - The order of session modules: pam_systemd moves the process it is
//!   given into a logind session scope; after pam_jit's session hook it
//!   would take a registered login out of its grant's cgroup (docs/threats.md,
//!   T33), so admins are told ([`late_session_move`]).
//! - The path libpam takes through a phase (`account`, `auth`) when every
//!   module succeeds but those that fail for anyone who is not root
//!   (`pam_rootok`, `pam_deny`): which lines it reaches, and whether a
//!   failure of a line reached denies ([`walk`]). The standing-privilege
//!   scan asks it whether su runs pam_wheel.
//! - Whether pam_jit's account check gates a service ([`account_gate`]):
//!   on every path libpam can take, whatever the other modules return. A
//!   `done` or a jump on another value skips pam_jit as surely as one on
//!   success: Debian's `common-account` ends the stack on pam_unix's
//!   `new_authtok_reqd` (an expired password), so pam_jit's line must come
//!   before it (docs/threats.md, T41).

use std::collections::HashMap;

/// A module line's place in the PAM configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    pub file: String,
    /// 1-based.
    pub line: usize,
}

/// One module line of a phase.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Module {
    /// The module's file name, without its directory.
    pub module: String,
    pub control: Control,
    pub args: Vec<String>,
    pub place: Place,
}

/// A line's control: a keyword, or `[value=action ...]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Control {
    Required,
    Requisite,
    Sufficient,
    Optional,
    /// `[value=action ...]`: the pairs as written (values lower-case).
    Actions(Vec<(String, Action)>),
}

/// What libpam does with a module's return value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Ignore,
    Ok,
    Done,
    Bad,
    Die,
    Reset,
    /// Skip this many following modules.
    Jump(usize),
}

/// A return value a control does not name (it takes `default`).
const OTHER_VALUE: &str = "";

impl Control {
    fn parse(text: &str) -> Option<Control> {
        if let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            let mut pairs = Vec::new();
            for pair in inner.split_whitespace() {
                let (value, action) = pair.split_once('=')?;
                let action = match action.to_ascii_lowercase().as_str() {
                    "ignore" => Action::Ignore,
                    "ok" => Action::Ok,
                    "done" => Action::Done,
                    "bad" => Action::Bad,
                    "die" => Action::Die,
                    "reset" => Action::Reset,
                    n => Action::Jump(n.parse().ok()?),
                };
                pairs.push((value.to_ascii_lowercase(), action));
            }
            return Some(Control::Actions(pairs));
        }
        Some(match text.to_ascii_lowercase().as_str() {
            "required" => Control::Required,
            "requisite" => Control::Requisite,
            "sufficient" => Control::Sufficient,
            "optional" => Control::Optional,
            _ => return None,
        })
    }

    /// The action for a module's return value (`success`, `perm_denied`,
    /// ...). The keywords are libpam's shorthands: `required` is
    /// `[success=ok new_authtok_reqd=ok ignore=ignore default=bad]`,
    /// `requisite` the same with `default=die`, `sufficient`
    /// `[success=done new_authtok_reqd=done default=ignore]`, `optional`
    /// `[success=ok new_authtok_reqd=ok default=ignore]`. libpam gives values
    /// a bracketed control does not name, and has no `default` for, `bad`.
    pub fn action(&self, value: &str) -> Action {
        let passes = matches!(value, "success" | "new_authtok_reqd");
        match self {
            Control::Required | Control::Requisite if passes => Action::Ok,
            Control::Required | Control::Requisite if value == "ignore" => Action::Ignore,
            Control::Required => Action::Bad,
            Control::Requisite => Action::Die,
            Control::Sufficient if passes => Action::Done,
            Control::Optional if passes => Action::Ok,
            Control::Sufficient | Control::Optional => Action::Ignore,
            // libpam sets a named value's action (the last one written
            // wins) and gives `default`'s to the values still unset then (the
            // first `default` wins).
            Control::Actions(pairs) => {
                let mut action = None;
                for (name, act) in pairs {
                    if name == value || (name == "default" && action.is_none()) {
                        action = Some(*act);
                    }
                }
                action.unwrap_or(Action::Bad)
            }
        }
    }

    /// The return values worth trying for a module under this control:
    /// success, those libpam and the programs treat apart (the expired
    /// password codes, `ignore`), those the control names, and
    /// [`OTHER_VALUE`] for the rest.
    fn values(&self) -> Vec<&str> {
        let mut values = vec!["success", "new_authtok_reqd", "authtok_expired", "ignore"];
        if let Control::Actions(pairs) = self {
            for (value, _) in pairs {
                if !values.contains(&value.as_str()) && value != "default" {
                    values.push(value);
                }
            }
        }
        values.push(OTHER_VALUE);
        values
    }

    /// Whether a failure (`PAM_PERM_DENIED`, what pam_wheel answers) of a
    /// module reached with this control makes the stack fail: `ok` and
    /// `done` set the stack's result to the failure as `bad` and `die` do.
    /// A jump or `ignore` does not (a jump may land anywhere: counted as not
    /// denying).
    pub fn failure_denies(&self) -> bool {
        self.denies("perm_denied")
    }

    fn denies(&self, value: &str) -> bool {
        matches!(
            self.action(value),
            Action::Ok | Action::Done | Action::Bad | Action::Die
        )
    }

    fn word(&self) -> String {
        match self {
            Control::Required => "required".into(),
            Control::Requisite => "requisite".into(),
            Control::Sufficient => "sufficient".into(),
            Control::Optional => "optional".into(),
            Control::Actions(pairs) => {
                let pairs: Vec<String> = pairs
                    .iter()
                    .map(|(v, a)| format!("{v}={}", a.word()))
                    .collect();
                format!("[{}]", pairs.join(" "))
            }
        }
    }
}

impl Action {
    fn word(self) -> String {
        match self {
            Action::Ignore => "ignore".into(),
            Action::Ok => "ok".into(),
            Action::Done => "done".into(),
            Action::Bad => "bad".into(),
            Action::Die => "die".into(),
            Action::Reset => "reset".into(),
            Action::Jump(n) => n.to_string(),
        }
    }
}

/// A phase's stack: `include`d lines in place, a `substack` as one entry
/// (libpam counts it as one module in a jump, and its `done` and `die` end
/// only the substack).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Entry {
    Line(Module),
    Substack(Vec<Entry>),
}

/// How deep `@include` and `include`/`substack` are followed (libpam's own
/// limit).
const MAX_DEPTH: usize = 16;
/// How many files one stack may read: included files can fan out.
const MAX_FILES: usize = 64;

/// The `phase` lines (`account`, `auth`, `session`, `password`) of the
/// stack of `file`, as `read` returns the files libpam would read for a
/// name (`/etc/pam.d` or an absolute path).
fn stack(file: &str, phase: &str, read: &impl Fn(&str) -> Option<String>) -> Vec<Entry> {
    stack_read(file, phase, read).0
}

/// [`stack`], and whether [`MAX_FILES`] cut it short (libpam reads on).
fn stack_read(
    file: &str,
    phase: &str,
    read: &impl Fn(&str) -> Option<String>,
) -> (Vec<Entry>, bool) {
    let mut files = 0;
    let mut out = Vec::new();
    entries(file, phase, read, 0, &mut files, &mut out);
    (out, files > MAX_FILES)
}

fn entries(
    file: &str,
    phase: &str,
    read: &impl Fn(&str) -> Option<String>,
    depth: usize,
    files: &mut usize,
    out: &mut Vec<Entry>,
) {
    // Past MAX_FILES the count goes on, so that the caller sees the cut.
    if depth > MAX_DEPTH || *files >= MAX_FILES {
        *files += usize::from(depth <= MAX_DEPTH);
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
                entries(name, phase, read, depth + 1, files, out)
            }
            // libpam reads types and controls case-insensitively.
            [kind, control, rest @ ..]
                if kind.trim_start_matches('-').eq_ignore_ascii_case(phase) =>
            {
                match (control.to_ascii_lowercase().as_str(), rest) {
                    ("include", [name, ..]) => entries(name, phase, read, depth + 1, files, out),
                    ("substack", [name, ..]) => {
                        let mut inner = Vec::new();
                        entries(name, phase, read, depth + 1, files, &mut inner);
                        out.push(Entry::Substack(inner));
                    }
                    (_, [module, args @ ..]) => {
                        // A control libpam cannot read makes it refuse the
                        // line: counted as a line that denies.
                        let control = Control::parse(control)
                            .unwrap_or(Control::Actions(vec![("default".into(), Action::Die)]));
                        out.push(Entry::Line(Module {
                            module: module.rsplit('/').next().unwrap_or(module).to_owned(),
                            control,
                            args: args.to_vec(),
                            place,
                        }));
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
}

/// Every module line of a stack, in order.
fn flat(entries: &[Entry], out: &mut Vec<Module>) {
    for entry in entries {
        match entry {
            Entry::Line(m) => out.push(m.clone()),
            Entry::Substack(inner) => flat(inner, out),
        }
    }
}

/// A stack where pam_systemd's session hook runs after pam_jit's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LateSessionMove {
    pub service: String,
    pub jit: Place,
    pub systemd: Place,
}

/// Whether `service`'s stack (the file of that name, as `read` returns the
/// files libpam would read for a name: `/etc/pam.d` or an absolute path)
/// runs a `pam_systemd.so` session line after a `pam_jit.so` session line
/// that applies to the service.
pub fn late_session_move(
    service: &str,
    read: &impl Fn(&str) -> Option<String>,
) -> Option<LateSessionMove> {
    let mut modules = Vec::new();
    flat(&stack(service, "session", read), &mut modules);
    let jit = modules
        .iter()
        .position(|m| is_jit(&m.module) && applies_to(&m.args, service))?;
    let systemd = modules[jit..]
        .iter()
        .find(|m| m.module == "pam_systemd.so")?;
    Some(LateSessionMove {
        service: service.to_owned(),
        jit: modules[jit].place.clone(),
        systemd: systemd.place.clone(),
    })
}

/// pam_jit's module file (`pam_jit.so`; a build's `libpam_jit.so`).
fn is_jit(module: &str) -> bool {
    module.ends_with("pam_jit.so")
}

/// pam_jit's `services=` argument (the last one, as pam_jit reads them):
/// without one, it applies to every service.
fn applies_to(args: &[String], service: &str) -> bool {
    last_list(args, "services").is_none_or(|list| list.iter().any(|s| s == service))
}

/// The last `key=a,b` argument's names, as pam_jit reads its arguments.
fn last_list(args: &[String], key: &str) -> Option<Vec<String>> {
    args.iter()
        .filter_map(|a| a.strip_prefix(key)?.strip_prefix('='))
        .next_back()
        .map(|list| {
            list.split(',')
                .filter(|n| !n.is_empty())
                .map(str::to_owned)
                .collect()
        })
}

/// Whether a line of a phase is reached on the path [`walk`] takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reached {
    Yes,
    /// The line at this place ended the stack (or its substack) first, or
    /// jumped over it.
    SkippedBy(Place),
    /// The stack had already failed for everyone: this line denied.
    DeniedBy(Place),
}

/// A line of a phase, and whether libpam gets to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Walked {
    pub module: Module,
    pub reached: Reached,
}

/// A phase of a stack, walked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Walk {
    pub lines: Vec<Walked>,
}

/// Modules that fail for a holder who is not root wherever they run.
fn fails_for_users(module: &str) -> bool {
    matches!(module, "pam_rootok.so" | "pam_deny.so")
}

/// What `pam_rootok` (for anyone but root) and `pam_deny` answer, in
/// `auth` and `account` alike.
const THEIR_FAILURE: &str = "auth_err";

/// The `phase` lines of `service`'s stack, each with whether libpam
/// reaches it when every module succeeds but those that fail for users
/// (`pam_rootok`, `pam_deny`). A line after one that ended the stack is
/// skipped by it; after one whose failure ended it, denied by it.
pub fn walk(service: &str, phase: &str, read: &impl Fn(&str) -> Option<String>) -> Walk {
    walked(&stack(service, phase, read))
}

fn walked(entries: &[Entry]) -> Walk {
    let mut lines = Vec::new();
    walk_entries(entries, &mut lines);
    Walk { lines }
}

/// How a stack (or substack) walk ended.
enum End {
    /// Ran off its end.
    Through,
    /// `done` on success, or a jump past the end: the rest is skipped.
    Skipped(Place),
    /// `die`, or `done` after a failure, or the end after one: denied.
    Denied(Place),
}

fn walk_entries(entries: &[Entry], out: &mut Vec<Walked>) -> End {
    let mut failed: Option<Place> = None;
    let mut i = 0;
    let end = loop {
        let Some(entry) = entries.get(i) else {
            break End::Through;
        };
        let module = match entry {
            Entry::Substack(inner) => {
                // Counted as one `required` module in its parent.
                if let End::Denied(place) = walk_entries(inner, out) {
                    failed.get_or_insert(place);
                }
                i += 1;
                continue;
            }
            Entry::Line(module) => module,
        };
        out.push(Walked {
            module: module.clone(),
            reached: Reached::Yes,
        });
        let value = if fails_for_users(&module.module) {
            THEIR_FAILURE
        } else {
            "success"
        };
        let place = module.place.clone();
        match module.control.action(value) {
            Action::Ignore | Action::Ok => {}
            Action::Reset => failed = None,
            Action::Bad => {
                failed.get_or_insert(place);
            }
            Action::Die => break End::Denied(failed.take().unwrap_or(place)),
            Action::Done => match failed.take() {
                Some(first) => break End::Denied(first),
                None => break End::Skipped(place),
            },
            Action::Jump(n) => {
                let to = i + 1 + n;
                for skipped in entries
                    .get(i + 1..to.min(entries.len()))
                    .unwrap_or_default()
                {
                    mark(skipped, &Reached::SkippedBy(place.clone()), out);
                }
                if to > entries.len() {
                    break End::Skipped(place);
                }
                i = to;
                continue;
            }
        }
        i += 1;
    };
    let rest = match &end {
        End::Through => return failed.map_or(End::Through, End::Denied),
        End::Skipped(place) => Reached::SkippedBy(place.clone()),
        End::Denied(place) => Reached::DeniedBy(place.clone()),
    };
    for entry in entries.get(i + 1..).unwrap_or_default() {
        mark(entry, &rest, out);
    }
    end
}

fn mark(entry: &Entry, reached: &Reached, out: &mut Vec<Walked>) {
    let mut modules = Vec::new();
    flat(std::slice::from_ref(entry), &mut modules);
    out.extend(modules.into_iter().map(|module| Walked {
        module,
        reached: reached.clone(),
    }));
}

/// pam_jit's account check in one service's stack: the `pam_jit.so`
/// account lines that apply to the service (`services=`), whether libpam
/// gets to them when every module succeeds ([`walk`]), and the stack, for
/// the paths where a module returns something else.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountGate {
    pub service: String,
    pub lines: Vec<Walked>,
    stack: Vec<Entry>,
    /// [`MAX_FILES`] cut the stack short: what libpam reads after is unknown.
    cut_short: bool,
}

/// pam_jit's arguments as the gate reads them (pam_jit/src/args.rs): the
/// last of each, `exempt` root unless given (`exempt=` alone: nobody).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JitArgs {
    pub resource: String,
    pub exempt: Vec<String>,
    pub targets: Vec<String>,
    pub audit_only: bool,
}

impl JitArgs {
    pub fn of(args: &[String]) -> JitArgs {
        JitArgs {
            resource: args
                .iter()
                .filter_map(|a| a.strip_prefix("resource="))
                .next_back()
                .unwrap_or_default()
                .to_owned(),
            exempt: last_list(args, "exempt").unwrap_or_else(|| vec!["root".into()]),
            targets: last_list(args, "targets").unwrap_or_default(),
            audit_only: args.iter().any(|a| a == "audit_only"),
        }
    }

    /// What pam_jit answers for `holder` becoming `target` when it does not
    /// refuse them, or `None` when they need a grant for the line's
    /// resource (pam_jit/src/gate.rs: exempt holders succeed, other
    /// targets are ignored, `audit_only` lets everyone through).
    fn answer_without_grant(&self, holder: &str, target: &str) -> Option<&'static str> {
        if !self.targets.is_empty() && !self.targets.iter().any(|t| t == target) {
            Some("ignore")
        } else if self.audit_only || self.exempt.iter().any(|e| e == holder) {
            Some("success")
        } else {
            None
        }
    }
}

/// `service`'s account gate, from its stack as `read` returns the files.
pub fn account_gate(service: &str, read: &impl Fn(&str) -> Option<String>) -> AccountGate {
    let (stack, cut_short) = stack_read(service, "account", read);
    let lines = walked(&stack)
        .lines
        .into_iter()
        .filter(|w| is_jit(&w.module.module) && applies_to(&w.module.args, service))
        .collect();
    AccountGate {
        service: service.to_owned(),
        lines,
        stack,
        cut_short,
    }
}

impl AccountGate {
    /// Whether the account check stops `holder` (a user name; pam_jit
    /// gates by name alone) from becoming `target` (PAM_USER) without a
    /// grant, whatever the other modules return; if not, why, for the admin.
    /// With pam_jit lines for several resources, it is enough that one
    /// resource's grant is needed whatever grants of the others they hold.
    pub fn covers(&self, holder: &str, target: &str) -> Result<(), String> {
        if self.cut_short {
            return Err(format!(
                "the {} account stack includes more than {MAX_FILES} files: not followed",
                self.service
            ));
        }
        // With no line that refuses, the stack may still deny everyone.
        let mut resources: Vec<String> = Vec::new();
        for line in &self.lines {
            let args = JitArgs::of(&line.module.args);
            if args.answer_without_grant(holder, target).is_none()
                && !resources.contains(&args.resource)
            {
                resources.push(args.resource);
            }
        }
        if resources.is_empty() {
            resources.push(String::new());
        }
        let mut whys = Vec::new();
        for resource in &resources {
            let mut paths = Paths {
                service: &self.service,
                holder,
                target,
                resource,
                memo: HashMap::new(),
            };
            let start = Verdict::Undecided;
            let Some(turn) = paths.from(&self.stack, 0, start, start).passed else {
                return Ok(());
            };
            let refusing = self.lines.iter().find(|l| {
                let args = JitArgs::of(&l.module.args);
                &args.resource == resource && args.answer_without_grant(holder, target).is_none()
            });
            let why = match (turn, refusing) {
                (Some(turn), Some(jit)) => turn.explain(&jit.module.place),
                _ => self.why_passed(holder, target),
            };
            whys.push(match resources.len() {
                1 => why,
                _ => format!("without a grant for {resource}: {why}"),
            });
        }
        Err(whys.join("; "))
    }

    /// Why the stack passes when every module but pam_jit succeeds.
    fn why_passed(&self, holder: &str, target: &str) -> String {
        let why = self.lines.iter().find_map(|line| {
            let args = JitArgs::of(&line.module.args);
            let at = at(&line.module.place);
            Some(match &line.reached {
                _ if !args.targets.is_empty() && !args.targets.iter().any(|t| t == target) => {
                    format!(
                        "pam_jit at {at} gates only logins as {}",
                        args.targets.join(",")
                    )
                }
                Reached::SkippedBy(by) => format!(
                    "pam_jit at {at} is never reached: the line at {} ends the account stack first",
                    self::at(by)
                ),
                _ if args.audit_only => format!("pam_jit at {at} is audit_only"),
                _ if !JIT_REFUSALS.iter().all(|v| line.module.control.denies(v)) => format!(
                    "pam_jit at {at} is {}: its refusal does not deny",
                    line.module.control.word()
                ),
                _ if args.exempt.iter().any(|e| e == holder) => {
                    format!("{holder} is exempt (pam_jit at {at})")
                }
                _ => return None,
            })
        });
        why.unwrap_or_else(|| match self.lines.first() {
            None => format!("no pam_jit account line in the {} PAM stack", self.service),
            Some(_) => format!(
                "pam_jit's refusal does not make the {} account stack fail",
                self.service
            ),
        })
    }
}

/// A module's answer other than success (or a `reset` that clears a
/// failure) on a path through a stack: where the path turned.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Turn {
    place: Place,
    value: String,
    action: Action,
}

impl Turn {
    /// For the admin: how a holder passes pam_jit's refusal (at `jit`).
    fn explain(&self, jit: &Place) -> String {
        let value = match self.value.as_str() {
            OTHER_VALUE => "a value its control does not name".to_owned(),
            "new_authtok_reqd" => "new_authtok_reqd (a password that has expired)".to_owned(),
            "authtok_expired" => {
                "authtok_expired (a password expired past its inactive days)".to_owned()
            }
            value => value.to_owned(),
        };
        let (jit, by) = (at(jit), at(&self.place));
        match self.action {
            Action::Done => format!(
                "pam_jit at {jit} is skipped when the line at {by} returns {value}: \
                 that line ends the account stack first"
            ),
            Action::Jump(_) => format!(
                "pam_jit at {jit} is skipped when the line at {by} returns {value}: \
                 that line jumps past it"
            ),
            Action::Reset => format!(
                "the line at {by} undoes pam_jit's refusal (at {jit}) when it returns {value}: reset"
            ),
            _ => format!(
                "pam_jit's refusal (at {jit}) is not the stack's answer when the line at {by} \
                 returns {value}: sudo and sshd go on"
            ),
        }
    }
}

/// How an answer counts for the program: sudo and sshd go on after an
/// account stack's `new_authtok_reqd` (asking for a new password, or not,
/// for a `NOPASSWD` rule) and, sudo at least, its `authtok_expired`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Answer {
    Success,
    Lenient,
    Refusal,
}

impl Answer {
    fn of(value: &str) -> Answer {
        match value {
            "success" => Answer::Success,
            "new_authtok_reqd" | "authtok_expired" => Answer::Lenient,
            _ => Answer::Refusal,
        }
    }
}

/// libpam's state through a stack: no module has set the result yet, one
/// set it with `ok` or `done`, or one failed it (`bad`, `die`: the first
/// failure's answer is kept to the end).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Verdict {
    Undecided,
    Passed(Answer),
    Failed(Answer),
}

impl Verdict {
    /// After a module answered `value` and its control said `action`.
    fn after(self, value: &str, action: Action) -> Verdict {
        match action {
            Action::Ok | Action::Done
                if value != "ignore"
                    && matches!(self, Verdict::Undecided | Verdict::Passed(Answer::Success)) =>
            {
                Verdict::Passed(Answer::of(value))
            }
            Action::Bad | Action::Die if !matches!(self, Verdict::Failed(_)) => {
                Verdict::Failed(Answer::of(value))
            }
            _ => self,
        }
    }

    /// Whether the program goes on with this as the stack's answer (a stack
    /// no module decided is counted as passing: the scan errs toward
    /// reporting).
    fn lets_through(self) -> bool {
        matches!(
            self,
            Verdict::Undecided
                | Verdict::Passed(Answer::Success | Answer::Lenient)
                | Verdict::Failed(Answer::Lenient)
        )
    }
}

/// The ends of the paths from a point of a stack: whether one lets the
/// holder through, and the verdicts a substack's paths end with, each with
/// the first [`Turn`] it took (`Some(None)`: none).
#[derive(Clone, Debug, Default)]
struct Ends {
    passed: Option<Option<Turn>>,
    /// For a substack: every verdict its paths end with.
    verdicts: Vec<(Verdict, Option<Turn>)>,
}

impl Ends {
    fn at_end(verdict: Verdict) -> Ends {
        Ends {
            passed: verdict.lets_through().then_some(None),
            verdicts: vec![(verdict, None)],
        }
    }

    /// These ends, reached after `turn`.
    fn after(self, turn: &Option<Turn>) -> Ends {
        Ends {
            passed: self.passed.map(|t| turn.clone().or(t)),
            verdicts: self
                .verdicts
                .into_iter()
                .map(|(v, t)| (v, turn.clone().or(t)))
                .collect(),
        }
    }

    /// Both ends' paths; one without a turn is kept over one with.
    fn merge(&mut self, other: Ends) {
        if self.passed.is_none()
            || matches!((&self.passed, &other.passed), (Some(Some(_)), Some(None)))
        {
            self.passed = other.passed.or(self.passed.take());
        }
        for (verdict, turn) in other.verdicts {
            match self.verdicts.iter_mut().find(|(v, _)| *v == verdict) {
                Some((_, kept)) if kept.is_some() && turn.is_none() => *kept = None,
                Some(_) => {}
                None => self.verdicts.push((verdict, turn)),
            }
        }
    }
}

/// pam_jit's answers when it refuses (pam_jit/src/hooks.rs): no grant, no
/// answer from jitd (a holder can bring that about), a name it cannot
/// look up, a bad argument.
const JIT_REFUSALS: [&str; 5] = [
    "perm_denied",
    "authinfo_unavail",
    "user_unknown",
    "system_err",
    "service_err",
];

/// Every path libpam can take through an account stack for a holder with
/// no grant for `resource` (and any grants of other resources): its
/// pam_jit lines for `resource` refuse, those for other resources may
/// answer anything pam_jit does, `pam_rootok` and `pam_deny` fail,
/// `pam_permit` succeeds, and any other module may return any value (an
/// expired password, a user unknown to sssd, ...).
struct Paths<'a> {
    service: &'a str,
    holder: &'a str,
    target: &'a str,
    resource: &'a str,
    /// By (entries, index, verdict, verdict at the substack's start).
    memo: HashMap<(usize, usize, Verdict, Verdict), Ends>,
}

impl Paths<'_> {
    /// The values a line may return, each with whether a path that takes
    /// it turned there (the holder's doing: another module's answer, a
    /// grant for another resource; not a refusal).
    fn values<'m>(&self, module: &'m Module) -> Vec<(&'m str, bool)> {
        let name = module.module.as_str();
        if fails_for_users(name) {
            return vec![(THEIR_FAILURE, false)];
        }
        if name == "pam_permit.so" {
            return vec![("success", false)];
        }
        if !is_jit(name) {
            return module
                .control
                .values()
                .into_iter()
                .map(|v| (v, v != "success"))
                .collect();
        }
        if !applies_to(&module.args, self.service) {
            return vec![("ignore", false)];
        }
        let args = JitArgs::of(&module.args);
        match args.answer_without_grant(self.holder, self.target) {
            Some(answer) => vec![(answer, false)],
            None if args.resource == self.resource => {
                JIT_REFUSALS.iter().map(|v| (*v, false)).collect()
            }
            // A grant the holder may hold.
            None => std::iter::once("success")
                .chain(JIT_REFUSALS)
                .map(|v| (v, v == "success"))
                .collect(),
        }
    }

    /// The ends of the paths from `entries[i]` on, with libpam's verdict so
    /// far (`start`: at the substack's start, what `reset` returns to).
    fn from(&mut self, entries: &[Entry], i: usize, verdict: Verdict, start: Verdict) -> Ends {
        let Some(entry) = entries.get(i) else {
            return Ends::at_end(verdict);
        };
        let key = (entries.as_ptr() as usize, i, verdict, start);
        if let Some(ends) = self.memo.get(&key) {
            return ends.clone();
        }
        let mut ends = Ends::default();
        match entry {
            // libpam shares the stack's state with a substack; its `done`
            // and `die` end only the substack, its `reset` goes back to the
            // state at its start.
            Entry::Substack(inner) => {
                let inner = self.from(inner, 0, verdict, verdict);
                for (after, turn) in inner.verdicts {
                    ends.merge(self.from(entries, i + 1, after, start).after(&turn));
                }
            }
            Entry::Line(module) => {
                for (value, turned) in self.values(module) {
                    let action = module.control.action(value);
                    let clears = action == Action::Reset && matches!(verdict, Verdict::Failed(_));
                    let turn = (turned || clears).then(|| Turn {
                        place: module.place.clone(),
                        value: value.to_owned(),
                        action,
                    });
                    let next = verdict.after(value, action);
                    let rest = match action {
                        Action::Reset => self.from(entries, i + 1, start, start),
                        Action::Die => Ends::at_end(next),
                        // `done` ends the stack unless it has failed.
                        Action::Done if !matches!(next, Verdict::Failed(_)) => Ends::at_end(next),
                        Action::Jump(n) => self.from(entries, i + 1 + n, next, start),
                        _ => self.from(entries, i + 1, next, start),
                    };
                    ends.merge(rest.after(&turn));
                }
            }
        }
        self.memo.insert(key, ends.clone());
        ends
    }
}

/// `file:line`, the file as named in the configuration (a bare name is
/// in `/etc/pam.d`).
pub fn at(place: &Place) -> String {
    if place.file.starts_with('/') {
        format!("{}:{}", place.file, place.line)
    } else {
        format!("/etc/pam.d/{}:{}", place.file, place.line)
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

    const COMMON_ACCOUNT: &str =
        "account [success=1 new_authtok_reqd=done default=ignore] pam_unix.so\n\
        account requisite pam_deny.so\naccount required pam_permit.so\n";

    fn sudo_with(account: &'static str) -> impl Fn(&str) -> Option<String> {
        move |name| match name {
            "sudo" => Some(format!("{account}\n@include common-account\n")),
            "common-account" => Some(COMMON_ACCOUNT.into()),
            "sub" => Some("account sufficient pam_permit.so\n".into()),
            _ => None,
        }
    }

    #[test]
    fn the_account_gate_covers_whom_a_refusal_of_pam_jit_stops() {
        // (the service's own lines after common-account, holder, target, covered or why not)
        let cases: &[(&str, &str, &str, Result<(), &str>)] = &[
            ("account required pam_jit.so resource=sudo", "alice", "root", Ok(())),
            ("account required pam_jit.so resource=sudo", "root", "root", Err("root is exempt")),
            ("account required pam_jit.so resource=sudo exempt=root,oscar", "oscar", "root", Err("oscar is exempt")),
            ("account required pam_jit.so resource=sudo exempt=", "root", "root", Ok(())),
            ("account requisite /lib/security/pam_jit.so resource=sudo", "alice", "root", Ok(())),
            ("account [success=ok default=bad] pam_jit.so resource=sudo", "alice", "root", Ok(())),
            ("account [success=ok default=ok] pam_jit.so resource=sudo", "alice", "root", Ok(())),
            ("account [success=ok perm_denied=1 default=bad] pam_jit.so resource=sudo\naccount required pam_permit.so", "alice", "root", Err("its refusal does not deny")),
            ("account optional pam_jit.so resource=sudo", "alice", "root", Err("is optional: its refusal does not deny")),
            ("account sufficient pam_jit.so resource=sudo", "alice", "root", Err("is sufficient")),
            ("account required pam_jit.so resource=sudo audit_only", "alice", "root", Err("audit_only")),
            ("account required pam_jit.so resource=sudo services=sshd", "alice", "root", Err("no pam_jit account line in the sudo PAM stack")),
            ("account required pam_jit.so resource=sudo services=sshd services=sudo", "alice", "root", Ok(())),
            ("account required pam_jit.so resource=sudo targets=postgres", "alice", "root", Err("gates only logins as postgres")),
            ("account required pam_jit.so resource=sudo targets=postgres", "alice", "postgres", Ok(())),
            ("session required pam_jit.so resource=sudo", "alice", "root", Err("no pam_jit account line")),
            ("account sufficient pam_localuser.so\naccount required pam_jit.so resource=sudo", "alice", "root", Err("never reached: the line at /etc/pam.d/sudo:1 ends")),
            ("account [success=1 default=ignore] pam_succeed_if.so uid >= 1000\naccount required pam_jit.so resource=sudo", "alice", "root", Err("never reached")),
            ("account [success=1 default=ignore] pam_rootok.so\naccount required pam_jit.so resource=sudo", "alice", "root", Ok(())),
            ("account substack sub\naccount required pam_jit.so resource=sudo", "alice", "root", Ok(())),
            ("account include sub\naccount required pam_jit.so resource=sudo", "alice", "root", Err("never reached")),
            ("account required pam_deny.so\naccount optional pam_jit.so resource=sudo", "alice", "root", Ok(())),
            ("account requisite pam_deny.so", "alice", "root", Ok(())),
            ("account optional pam_jit.so resource=sudo\naccount required pam_jit.so resource=sudo exempt=", "root", "root", Ok(())),
        ];
        for (lines, holder, target, expected) in cases {
            let gate = account_gate("sudo", &sudo_with(lines));
            let got = gate.covers(holder, target);
            match (expected, &got) {
                (Ok(()), Ok(())) => {}
                (Err(part), Err(why)) if why.contains(part) => {}
                _ => panic!("{lines:?} {holder}->{target}: expected {expected:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn a_line_that_ends_or_resets_the_stack_on_another_value_passes_a_refusing_pam_jit() {
        let sudo = |text: &'static str| {
            move |name: &str| match name {
                "sudo" => Some(text.to_owned()),
                "common-account" => Some(COMMON_ACCOUNT.into()),
                _ => None,
            }
        };
        let jit = "account required pam_jit.so resource=sudo";
        let cases: Vec<(String, Result<(), &str>)> = vec![
            // Debian's common-account ends the stack on an expired password.
            (
                format!("@include common-account\n{jit}\n"),
                Err("pam_jit at /etc/pam.d/sudo:2 is skipped when the line at \
                     /etc/pam.d/common-account:1 returns new_authtok_reqd (a password that has \
                     expired): that line ends the account stack first"),
            ),
            // What the jit profile writes: pam_jit first in the Primary block.
            (
                format!("account requisite pam_jit.so resource=sudo\n{COMMON_ACCOUNT}"),
                Ok(()),
            ),
            // A `done` after pam_jit's refusal returns the refusal.
            (format!("{jit}\n@include common-account\n"), Ok(())),
            // A substack's `done` ends the substack alone.
            (format!("account substack common-account\n{jit}\n"), Ok(())),
            (
                format!("account sufficient pam_unix.so\n{jit}\n"),
                Err("never reached: the line at /etc/pam.d/sudo:1 ends the account stack first"),
            ),
            // libpam keeps the first failure's answer, which sudo goes on after.
            (
                format!("account [success=ok default=bad] pam_unix.so\n{jit}\n"),
                Err("line at /etc/pam.d/sudo:1 returns new_authtok_reqd (a password that has \
                     expired): sudo and sshd go on"),
            ),
            (
                format!("account required pam_unix.so\n{jit}\n"),
                Err("line at /etc/pam.d/sudo:1 returns authtok_expired"),
            ),
            // sudo goes on after authtok_expired too, for a NOPASSWD rule.
            (
                format!("account [success=ok new_authtok_reqd=ok default=die] pam_unix.so\n{jit}\n"),
                Err("returns authtok_expired (a password expired past its inactive days)"),
            ),
            (
                format!(
                    "account [success=ok new_authtok_reqd=ok authtok_expired=ok default=die] \
                     pam_unix.so\n{jit}\n"
                ),
                Ok(()),
            ),
            // libpam's first `default` wins.
            (
                "account [success=ok default=ignore default=bad] pam_jit.so resource=sudo\n".into(),
                Err("is [success=ok default=ignore default=bad]: its refusal does not deny"),
            ),
            // pam_jit refuses with authinfo_unavail when jitd does not answer.
            (
                "account [success=ok perm_denied=bad default=ignore] pam_jit.so resource=sudo\n"
                    .into(),
                Err("is [success=ok perm_denied=bad default=ignore]: its refusal does not deny"),
            ),
            // A `done` after a failure does not end the stack.
            (
                format!(
                    "{jit}\naccount sufficient pam_permit.so\naccount [default=reset] pam_permit.so\n"
                ),
                Err("undoes pam_jit's refusal"),
            ),
            // pam_rootok answers auth_err.
            (
                format!("account [success=ok auth_err=1 default=ignore] pam_rootok.so\n{jit}\n"),
                Err("never reached"),
            ),
            (
                format!(
                    "account [success=ok new_authtok_reqd=ok authtok_expired=ok ignore=ignore \
                     default=2] pam_sss.so\n{jit}\n"
                ),
                Err("returns a value its control does not name: that line jumps past it"),
            ),
            // A grant for another resource may be held.
            (
                format!("account sufficient pam_jit.so resource=logs\n{jit}\n"),
                Err("without a grant for sudo: pam_jit at /etc/pam.d/sudo:2 is skipped when the \
                     line at /etc/pam.d/sudo:1 returns success"),
            ),
            (
                format!("account required pam_jit.so resource=logs\n{jit}\n"),
                Ok(()),
            ),
            (
                format!(
                    "account [success=ok new_authtok_reqd=ok authtok_expired=ok user_unknown=1 \
                     default=bad] pam_sss.so\n{jit}\n"
                ),
                Err("/etc/pam.d/sudo:1 returns user_unknown: that line jumps past it"),
            ),
            (
                format!("account [success=ok default=2] pam_sss.so\n{jit}\n"),
                Err("/etc/pam.d/sudo:1 returns new_authtok_reqd (a password that has expired): that \
                     line jumps past it"),
            ),
            (
                format!("{jit}\naccount [success=ok authinfo_unavail=reset] pam_ldap.so\n"),
                Err("the line at /etc/pam.d/sudo:2 undoes pam_jit's refusal (at /etc/pam.d/sudo:1) \
                     when it returns authinfo_unavail: reset"),
            ),
            (
                format!("{jit}\naccount [default=reset] pam_permit.so\n"),
                Err("undoes pam_jit's refusal (at /etc/pam.d/sudo:1) when it returns success"),
            ),
            // A reset inside a substack goes back to the substack's start.
            (format!("{jit}\naccount substack reset\n"), Ok(())),
            // `ok` on a failure value fails the stack: nothing passes.
            (
                format!("account [success=ok default=ok] pam_unix.so\n{jit}\n"),
                Ok(()),
            ),
        ];
        for (text, expected) in cases {
            let text: &'static str = Box::leak(text.into_boxed_str());
            let read = move |name: &str| match name {
                "reset" => Some("account [default=reset] pam_permit.so\n".to_owned()),
                name => sudo(text)(name),
            };
            let got = account_gate("sudo", &read).covers("alice", "root");
            match (&expected, &got) {
                (Ok(()), Ok(())) => {}
                (Err(part), Err(why)) if why.contains(part) => {}
                _ => panic!("{text:?}: expected {expected:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn a_stack_of_more_files_than_are_read_is_not_a_gate() {
        // libpam reads every include: the cut one would skip pam_jit.
        let includes: String = (1..=MAX_FILES)
            .map(|n| format!("@include f{n}\n"))
            .collect();
        let sudo = format!("{includes}@include skip\naccount required pam_jit.so resource=sudo\n");
        let read = |name: &str| {
            Some(match name {
                "sudo" => sudo.clone(),
                "skip" => "account sufficient pam_permit.so\n".to_owned(),
                _ => String::new(),
            })
        };
        assert_eq!(
            account_gate("sudo", &read).covers("alice", "root"),
            Err(format!(
                "the sudo account stack includes more than {MAX_FILES} files: not followed"
            ))
        );
        let few = |name: &str| {
            Some(match name {
                "sudo" => "@include f1\naccount required pam_jit.so resource=sudo\n".to_owned(),
                _ => String::new(),
            })
        };
        assert_eq!(account_gate("sudo", &few).covers("alice", "root"), Ok(()));
    }

    #[test]
    fn keyword_controls_act_as_libpam_defines_them() {
        let control = |word: &str| Control::parse(word).expect("a control");
        let cases = [
            (
                "required",
                [Action::Ok, Action::Ok, Action::Ignore, Action::Bad],
            ),
            (
                "requisite",
                [Action::Ok, Action::Ok, Action::Ignore, Action::Die],
            ),
            (
                "sufficient",
                [Action::Done, Action::Done, Action::Ignore, Action::Ignore],
            ),
            (
                "optional",
                [Action::Ok, Action::Ok, Action::Ignore, Action::Ignore],
            ),
            (
                "[success=1]",
                [Action::Jump(1), Action::Bad, Action::Bad, Action::Bad],
            ),
            // libpam: the last value named wins, the first default fills the rest.
            (
                "[default=ignore success=bad default=die success=ok]",
                [Action::Ok, Action::Ignore, Action::Ignore, Action::Ignore],
            ),
        ];
        for (word, actions) in cases {
            let got = ["success", "new_authtok_reqd", "ignore", "perm_denied"]
                .map(|value| control(word).action(value));
            assert_eq!(got, actions, "{word}");
        }
    }

    #[test]
    fn the_walk_reaches_pam_wheel_past_pam_rootok_and_not_past_a_done() {
        let su = |text: &'static str| move |name: &str| (name == "su").then(|| text.to_owned());
        let walk = walk(
            "su",
            "auth",
            &su("auth sufficient pam_rootok.so\nauth required pam_wheel.so group=admins\n"),
        );
        assert_eq!(walk.lines[1].module.module, "pam_wheel.so");
        assert_eq!(walk.lines[1].reached, Reached::Yes);
        assert!(walk.lines[1].module.control.failure_denies());
        let walk = walk_of("auth sufficient pam_permit.so\nauth required pam_wheel.so\n");
        assert_eq!(
            walk.lines[1].reached,
            Reached::SkippedBy(Place {
                file: "su".into(),
                line: 1
            })
        );
        let walk = walk_of("auth requisite pam_deny.so\nauth required pam_wheel.so\n");
        assert!(matches!(walk.lines[1].reached, Reached::DeniedBy(_)));
    }

    fn walk_of(text: &'static str) -> Walk {
        walk("su", "auth", &move |name: &str| {
            (name == "su").then(|| text.to_owned())
        })
    }
}

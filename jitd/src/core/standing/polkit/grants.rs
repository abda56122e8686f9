//! Rules that let a subject through without an administrator: an
//! `addRule` function that answers YES (no authentication at all), or
//! AUTH_SELF / AUTH_SELF_KEEP (the subject proves only that they are
//! themselves). Read from the rule's tokens, never run: a heuristic whose
//! every doubt counts as a grant (docs/design.md, "Standing-privilege
//! scan").
//!
//! - Every `Result.YES`, `Result.AUTH_SELF` and `Result.AUTH_SELF_KEEP`
//!   (or `Result["YES"]`, ...) outside comments and strings is a grant,
//!   wherever it is.
//! - Every `return` of an `addRule` function itself (not of a function
//!   inside it) whose value is not one of `polkit.Result`'s (or its
//!   string), `null` or `undefined` is a grant of an answer the scan
//!   cannot read, unless it names a granting result (counted above). An
//!   `addRule` whose argument is not a function literal is one too. The
//!   calls are `.addRule(...)` and `["addRule"](...)`; an alias is not
//!   followed: `addRule` named anywhere else (`.call`, `.bind`, `var f =
//!   polkit.addRule`), `polkit[` anything but a string `]`, and `eval` or
//!   `Function` are each a grant the scan cannot read.
//! - Its subjects are named by the innermost `if` around it, in that
//!   function itself, whose condition is `subject.user == "NAME"`,
//!   `subject.isInGroup("GROUP")`, or these joined by `||`, or any
//!   condition joined to one of them by `&&` (`subject` being the
//!   function's second parameter). Anything else (an `else` branch, an
//!   early return, a negation, a ternary, a variable, a netgroup) leaves
//!   them unnamed.

use std::ops::Range;

use super::js::{closing, function_bodies, simple_statement_end, statement_end, Tok, Token};

/// What a rule answers that needs no administrator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Answer {
    Yes,
    AuthSelf,
    AuthSelfKeep,
    /// A value the scan cannot read: it may be YES.
    Unread,
}

impl Answer {
    /// `polkit.Result`'s name, or its string value, as an answer; `None`
    /// for the answers that need an administrator, refuse, or pass.
    fn of_result(name: &str) -> Option<Answer> {
        match name {
            "YES" | "yes" => Some(Answer::Yes),
            "AUTH_SELF" | "auth_self" => Some(Answer::AuthSelf),
            "AUTH_SELF_KEEP" | "auth_self_keep" => Some(Answer::AuthSelfKeep),
            _ => None,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Answer::Yes => "YES (no authentication)",
            Answer::AuthSelf => "AUTH_SELF (the user's own password, no administrator's)",
            Answer::AuthSelfKeep => "AUTH_SELF_KEEP (the user's own password, no administrator's)",
            Answer::Unread => "a value the scan cannot read (it may be YES)",
        }
    }
}

/// One place of a rules file that grants without an administrator.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Grant {
    pub line: usize,
    pub answer: Answer,
    /// The identities (`unix-user:NAME`, `unix-group:NAME`) its guard lets
    /// through; `None`: subjects the scan cannot name.
    pub subjects: Option<Vec<String>>,
}

/// The grants of a `.rules` file.
#[cfg(test)]
pub fn rule_grants(text: &str) -> Vec<Grant> {
    grants_in(&super::js::tokens(text))
}

/// The grants of a `.rules` file's tokens.
pub(super) fn grants_in(tokens: &[Token]) -> Vec<Grant> {
    let script = Script::read(tokens);
    let mut grants = script.result_mentions();
    grants.extend(script.unread_returns());
    grants.sort();
    grants.dedup();
    grants
}

/// An `addRule` call's function.
struct Rule {
    /// The function's body (its braces); `None`: the argument is no
    /// function literal.
    body: Option<(usize, usize)>,
    /// Its second parameter: polkit's subject.
    subject: Option<String>,
    line: usize,
}

/// An `if`: its condition (inside the parentheses) and the statement it
/// guards, as ranges of tokens.
struct Guard {
    condition: Range<usize>,
    guarded: Range<usize>,
}

/// A rules file's tokens, with what the grants are read from.
struct Script<'a> {
    t: &'a [Token],
    rules: Vec<Rule>,
    /// Every function literal's body.
    bodies: Vec<(usize, usize)>,
    guards: Vec<Guard>,
}

impl<'a> Script<'a> {
    fn read(t: &'a [Token]) -> Script<'a> {
        let rules = (0..t.len())
            .filter_map(|i| match add_rule_call(t, i) {
                Some(open) => Some(rule_at(t, open)),
                None => hidden_rule(t, i).then(|| Rule {
                    body: None,
                    subject: None,
                    line: t[i].line,
                }),
            })
            .collect();
        let guards = (0..t.len())
            .filter(|&i| t[i].is_word("if") && t.get(i + 1).is_some_and(|p| p.is_punct('(')))
            .filter_map(|i| {
                let close = closing(t, i + 1)?;
                Some(Guard {
                    condition: i + 2..close,
                    guarded: close + 1..statement_end(t, close + 1),
                })
            })
            .collect();
        Script {
            t,
            rules,
            bodies: function_bodies(t),
            guards,
        }
    }

    /// Each granting `Result.NAME` or `Result["NAME"]`.
    fn result_mentions(&self) -> Vec<Grant> {
        (0..self.t.len())
            .filter_map(|i| {
                let (name, _) = result_at(self.t, i)?;
                Some(Grant {
                    line: self.t[i].line,
                    answer: Answer::of_result(name)?,
                    subjects: self.subjects_at(i),
                })
            })
            .collect()
    }

    /// Each `addRule` function's `return` of what the scan cannot read,
    /// and each `addRule` of no function literal.
    fn unread_returns(&self) -> Vec<Grant> {
        let mut out = Vec::new();
        for rule in &self.rules {
            let Some(body) = rule.body else {
                out.push(Grant {
                    line: rule.line,
                    answer: Answer::Unread,
                    subjects: None,
                });
                continue;
            };
            for i in body.0..body.1 {
                if !self.t[i].is_word("return") || self.function_of(i) != Some(body) {
                    continue;
                }
                let end = simple_statement_end(self.t, i);
                let value = match &self.t[i + 1..end] {
                    [value @ .., last] if last.is_punct(';') => value,
                    value => value,
                };
                if let Some(answer) = returned(value) {
                    out.push(Grant {
                        line: self.t[i].line,
                        answer,
                        subjects: self.subjects_at(i),
                    });
                }
            }
        }
        out
    }

    /// The innermost function body around token `i`.
    fn function_of(&self, i: usize) -> Option<(usize, usize)> {
        self.bodies
            .iter()
            .filter(|(open, close)| *open < i && i < *close)
            .max_by_key(|(open, _)| *open)
            .copied()
    }

    /// Whom the guards around token `i` let through, where `i` is in an
    /// `addRule` function itself.
    fn subjects_at(&self, i: usize) -> Option<Vec<String>> {
        let body = self.function_of(i)?;
        let rule = self.rules.iter().find(|r| r.body == Some(body))?;
        let subject = rule.subject.as_deref()?;
        let mut around: Vec<&Guard> = self
            .guards
            .iter()
            .filter(|g| g.guarded.contains(&i) && self.function_of(g.condition.start) == Some(body))
            .collect();
        around.sort_by_key(|g| std::cmp::Reverse(g.guarded.start));
        around
            .into_iter()
            .find_map(|g| named_by(&self.t[g.condition.clone()], subject))
    }
}

/// Whether token `i` names `addRule` in a call (`.addRule(` or
/// `["addRule"](`): the index of the call's `(`.
fn add_rule_call(t: &[Token], i: usize) -> Option<usize> {
    let is = |at: usize, c: char| t.get(at).is_some_and(|p| p.is_punct(c));
    if t[i].is_word("addRule") && is(i + 1, '(') {
        Some(i + 1)
    } else if t[i].string() == Some("addRule") && is(i + 1, ']') && is(i + 2, '(') {
        Some(i + 2)
    } else {
        None
    }
}

/// Whether token `i` may add a rule the scan cannot read: `addRule` named
/// other than in a call (`polkit.addRule.call(...)`, an alias), `polkit`
/// indexed by what is no string (`polkit["add" + "Rule"]`), or code made
/// from strings (`eval`, `Function`).
fn hidden_rule(t: &[Token], i: usize) -> bool {
    let is = |at: usize, c: char| t.get(at).is_some_and(|p| p.is_punct(c));
    let indexed = |at: usize| i.checked_sub(1).is_some_and(|b| is(b, '[')) && is(at, ']');
    match &t[i].tok {
        Tok::Word(w) if w == "addRule" || w == "eval" || w == "Function" => true,
        Tok::Str(s) => s == "addRule" && indexed(i + 1),
        Tok::Word(w) if w == "polkit" && is(i + 1, '[') => {
            !(t.get(i + 2).is_some_and(|s| s.string().is_some()) && is(i + 3, ']'))
        }
        _ => false,
    }
}

/// The `addRule` call whose `(` is token `open`: its argument read as
/// `function [NAME](PARAMS) {...}` or `(PARAMS) => {...}`.
fn rule_at(t: &[Token], open: usize) -> Rule {
    let line = t[open].line;
    let unread = Rule {
        body: None,
        subject: None,
        line,
    };
    let start = open + 1;
    let Some(first) = t.get(start) else {
        return unread;
    };
    let is_function = first.is_word("function");
    let params = match is_function {
        true => start + 1 + usize::from(t.get(start + 1).is_some_and(|n| n.word().is_some())),
        false => start,
    };
    if !t.get(params).is_some_and(|p| p.is_punct('(')) {
        return unread;
    }
    let Some(close) = closing(t, params) else {
        return unread;
    };
    let brace = match is_function {
        true => close + 1,
        false if is_arrow(t, close + 1) => close + 3,
        false => return unread,
    };
    let body = t
        .get(brace)
        .filter(|b| b.is_punct('{'))
        .and_then(|_| closing(t, brace));
    let Some(end) = body else {
        return unread;
    };
    Rule {
        body: Some((brace, end)),
        subject: second_parameter(&t[params + 1..close]),
        line,
    }
}

fn is_arrow(t: &[Token], at: usize) -> bool {
    t.get(at).is_some_and(|e| e.is_punct('=')) && t.get(at + 1).is_some_and(|g| g.is_punct('>'))
}

fn second_parameter(params: &[Token]) -> Option<String> {
    match params {
        [first, comma, second, ..] if first.word().is_some() && comma.is_punct(',') => {
            second.word().map(str::to_owned)
        }
        _ => None,
    }
}

/// `Result.NAME` or `Result["NAME"]` at token `i`: the name and how many
/// tokens it takes.
fn result_at(t: &[Token], i: usize) -> Option<(&str, usize)> {
    if !t[i].is_word("Result") {
        return None;
    }
    let rest = t.get(i + 1..)?;
    match rest {
        [dot, name, ..] if dot.is_punct('.') => Some((name.word()?, 3)),
        [open, name, close, ..] if open.is_punct('[') && close.is_punct(']') => {
            Some((name.string()?, 4))
        }
        _ => None,
    }
}

/// What a `return` of `value` grants: `None` for nothing (a result that
/// needs an administrator, refuses or passes; `null`, `undefined`, no
/// value; or a value that names a granting result, counted where it is).
fn returned(value: &[Token]) -> Option<Answer> {
    let unprefixed = match value {
        [polkit, dot, rest @ ..] if polkit.is_word("polkit") && dot.is_punct('.') => rest,
        _ => value,
    };
    let constant = match unprefixed {
        [] => return None,
        [only] if only.is_word("null") || only.is_word("undefined") => return None,
        [only] => only.string(),
        _ => result_at(unprefixed, 0)
            .filter(|(_, len)| *len == unprefixed.len())
            .map(|(name, _)| name),
    };
    if let Some(name) = constant {
        return Answer::of_result(name);
    }
    let names_a_grant = (0..value.len())
        .any(|i| result_at(value, i).is_some_and(|(name, _)| Answer::of_result(name).is_some()));
    (!names_a_grant).then_some(Answer::Unread)
}

/// The identities a condition lets through, `None` if it can let through
/// others: every alternative of `||` must name its own, and of terms
/// joined by `&&` one naming them is enough (the others only narrow it).
fn named_by(condition: &[Token], subject: &str) -> Option<Vec<String>> {
    let mut named = Vec::new();
    for alternative in split(condition, '|') {
        let found = split(alternative, '&')
            .into_iter()
            .find_map(|term| term_names(term, subject))?;
        named.extend(found);
    }
    named.sort();
    named.dedup();
    (!named.is_empty()).then_some(named)
}

fn term_names(term: &[Token], subject: &str) -> Option<Vec<String>> {
    let wrapped =
        term.first().is_some_and(|t| t.is_punct('(')) && closing(term, 0) == Some(term.len() - 1);
    if wrapped {
        return named_by(&term[1..term.len() - 1], subject);
    }
    subject_test(term, subject).map(|identity| vec![identity])
}

/// `subject.isInGroup("GROUP")`, or `subject.user` compared (`==` or
/// `===`, either way round) with a string.
fn subject_test(term: &[Token], subject: &str) -> Option<String> {
    match term {
        [s, dot, is_in, open, group, close]
            if s.is_word(subject)
                && dot.is_punct('.')
                && is_in.is_word("isInGroup")
                && open.is_punct('(')
                && close.is_punct(')') =>
        {
            nonempty(group.string()?).map(|g| format!("unix-group:{g}"))
        }
        _ => {
            let name = match equality(term)? {
                (side, [name]) | ([name], side) if is_subject_user(side, subject) => {
                    name.string()?
                }
                _ => return None,
            };
            nonempty(name).map(|n| format!("unix-user:{n}"))
        }
    }
}

/// `subject.user`.
fn is_subject_user(side: &[Token], subject: &str) -> bool {
    matches!(side, [s, dot, user] if s.is_word(subject) && dot.is_punct('.') && user.is_word("user"))
}

fn nonempty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

/// The two sides of `==` or `===` (not `!=`, `<=`, `=`).
fn equality(term: &[Token]) -> Option<(&[Token], &[Token])> {
    let at = term.iter().position(|t| t.is_punct('='))?;
    let run = term[at..].iter().take_while(|t| t.is_punct('=')).count();
    // `at` is the first `=`: what comes before it is no `=`.
    let negated = at
        .checked_sub(1)
        .is_some_and(|before| matches!(term[before].tok, Tok::Punct('!' | '<' | '>')));
    if !(run == 2 || run == 3) || negated {
        return None;
    }
    Some((&term[..at], &term[at + run..]))
}

/// `tokens` split at each `||` (`op` `|`) or `&&` (`op` `&`) outside
/// brackets.
fn split(tokens: &[Token], op: char) -> Vec<&[Token]> {
    let mut parts = Vec::new();
    let (mut depth, mut from, mut i) = (0usize, 0, 0);
    while i < tokens.len() {
        let t = &tokens[i];
        if t.opens() {
            depth += 1;
        } else if t.closes() {
            depth = depth.saturating_sub(1);
        } else if depth == 0 && t.is_punct(op) && tokens.get(i + 1).is_some_and(|n| n.is_punct(op))
        {
            parts.push(&tokens[from..i]);
            i += 2;
            from = i;
            continue;
        }
        i += 1;
    }
    parts.push(&tokens[from..]);
    parts
}

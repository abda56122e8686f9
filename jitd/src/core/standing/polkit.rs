//! polkit's admin identities: whom polkit lets authenticate, with their
//! own password, for an action that needs an administrator (pkexec). In
//! `.rules` files they are what `polkit.addAdminRule` functions return
//! (Debian: `unix-group:sudo`); the old local authority names them in
//! `AdminIdentities=`.
//!
//! A rule is JavaScript and not run here: every `unix-user:` or
//! `unix-group:` string inside an `addAdminRule(...)` call counts, whatever
//! condition guards its `return`.

/// An identity and the line of its file that names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// `unix-user:NAME`, `unix-group:NAME`, `unix-netgroup:NAME`.
    pub identity: String,
    pub line: usize,
}

/// The admin identities a `.rules` file's `addAdminRule` calls name.
pub fn rule_identities(text: &str) -> Vec<Identity> {
    let tokens = tokens(text);
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let at_call = matches!(&tokens[i], Token::Word(w) if w == "addAdminRule")
            && matches!(tokens.get(i + 1), Some(Token::Punct('(')));
        if !at_call {
            i += 1;
            continue;
        }
        // The call's arguments: up to its closing parenthesis.
        let mut depth = 0usize;
        let mut j = i + 1;
        while let Some(token) = tokens.get(j) {
            match token {
                Token::Punct('(') => depth += 1,
                Token::Punct(')') => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                Token::Str(s, line) if is_identity(s) => out.push(Identity {
                    identity: s.clone(),
                    line: *line,
                }),
                _ => {}
            }
            j += 1;
        }
        i = j;
    }
    out
}

fn is_identity(s: &str) -> bool {
    ["unix-user:", "unix-group:", "unix-netgroup:"]
        .iter()
        .any(|p| s.strip_prefix(p).is_some_and(|n| !n.is_empty()))
}

#[derive(Debug, PartialEq)]
enum Token {
    Word(String),
    /// A string literal's value and the line it starts on.
    Str(String, usize),
    Punct(char),
}

/// Words, string literals and punctuation of JavaScript text, comments
/// left out (enough to find calls and the strings in them).
fn tokens(text: &str) -> Vec<Token> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\n' => {
                line += 1;
                i += 1;
            }
            '/' if chars.get(i + 1) == Some(&'/') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if chars.get(i + 1) == Some(&'*') => {
                i += 2;
                while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                    if chars[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
                i += 2;
            }
            '"' | '\'' | '`' => {
                let start = line;
                let mut value = String::new();
                i += 1;
                while i < chars.len() && chars[i] != c {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    if let Some(&ch) = chars.get(i) {
                        if ch == '\n' {
                            line += 1;
                        }
                        value.push(ch);
                    }
                    i += 1;
                }
                i += 1;
                out.push(Token::Str(value, start));
            }
            c if c.is_alphanumeric() || c == '_' || c == '$' => {
                let mut word = String::new();
                while i < chars.len()
                    && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$')
                {
                    word.push(chars[i]);
                    i += 1;
                }
                out.push(Token::Word(word));
            }
            c if c.is_whitespace() => i += 1,
            c => {
                out.push(Token::Punct(c));
                i += 1;
            }
        }
    }
    out
}

/// The `AdminIdentities=` of a local authority `.conf` file (its last), if
/// it sets them.
pub fn conf_identities(text: &str) -> Option<Vec<Identity>> {
    let mut in_configuration = false;
    let mut found = None;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.starts_with('[') {
            in_configuration = line == "[Configuration]";
        } else if let (true, Some(value)) =
            (in_configuration, line.strip_prefix("AdminIdentities="))
        {
            found = Some(
                value
                    .split(';')
                    .map(str::trim)
                    .filter(|s| is_identity(s))
                    .map(|s| Identity {
                        identity: s.to_owned(),
                        line: n + 1,
                    })
                    .collect(),
            );
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_returned_by_admin_rules_are_found_with_their_lines() {
        let text = r#"/* polkit.addAdminRule(function() { return ["unix-user:commented"]; }); */
// polkit.addAdminRule(... "unix-group:alsocommented")
polkit.addRule(function(action, subject) {
    return ["unix-group:notadmin"];
});
polkit.addAdminRule(function(action, subject) {
    if (action.id == "x") { return ['unix-user:alice']; }
    return ["unix-group:sudo", "unix-group:wheel" /* ) */, "unix-netgroup:ops"];
});
"#;
        let found: Vec<(String, usize)> = rule_identities(text)
            .into_iter()
            .map(|i| (i.identity, i.line))
            .collect();
        assert_eq!(
            found,
            [
                ("unix-user:alice".into(), 7),
                ("unix-group:sudo".into(), 8),
                ("unix-group:wheel".into(), 8),
                ("unix-netgroup:ops".into(), 8),
            ]
        );
    }

    #[test]
    fn admin_identities_of_the_local_authority_are_the_last_set() {
        let text = "[Configuration]\nAdminIdentities=unix-user:0\n\n[Other]\nAdminIdentities=unix-user:x\n\
                    [Configuration]\nAdminIdentities=unix-group:sudo;unix-group:admin\n";
        let found = conf_identities(text).unwrap();
        assert_eq!(
            found
                .iter()
                .map(|i| i.identity.as_str())
                .collect::<Vec<_>>(),
            ["unix-group:sudo", "unix-group:admin"]
        );
        assert_eq!(found[0].line, 7);
        assert_eq!(conf_identities("[Configuration]\n"), None);
    }
}

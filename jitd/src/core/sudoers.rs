//! sudoers options that switch a pam_jit hook off for sudo. sudo then skips
//! the account check (`!pam_acct_mgmt`) or the session hook (`!pam_session`)
//! without a word: the gate is weaker, and admins must be told.

/// One `Defaults` entry that turns a PAM hook off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookOff {
    /// 1-based line of the entry's first physical line.
    pub line: usize,
    pub option: &'static str,
}

const HOOK_OPTIONS: [&str; 2] = ["pam_acct_mgmt", "pam_session"];

/// The entries of a sudoers file's `text` that negate a PAM hook option,
/// whatever the `Defaults` scope (`Defaults:user`, `Defaults>runas`, ...).
pub fn hooks_off(text: &str) -> Vec<HookOff> {
    let mut found = Vec::new();
    let mut entry = String::new();
    let mut first_line = 0;
    for (n, raw) in text.lines().enumerate() {
        if entry.is_empty() {
            first_line = n + 1;
        }
        // A trailing backslash continues the entry on the next line.
        match raw.strip_suffix('\\') {
            Some(part) => {
                entry.push_str(part);
                entry.push(' ');
                continue;
            }
            None => entry.push_str(raw),
        }
        let line = std::mem::take(&mut entry);
        let code = line.split('#').next().unwrap_or_default().trim_start();
        let Some(rest) = code.strip_prefix("Defaults") else {
            continue;
        };
        // Past the scope: `Defaults:alice !x` has its options after a space.
        let options = match rest.chars().next() {
            Some(':' | '@' | '!' | '>') => {
                rest.split_once(char::is_whitespace).map_or("", |(_, o)| o)
            }
            Some(c) if c.is_whitespace() => rest,
            _ => continue,
        };
        for token in options.split([',', ' ', '\t']).map(str::trim) {
            if let Some(option) = token
                .strip_prefix('!')
                .and_then(|name| HOOK_OPTIONS.iter().find(|o| **o == name.trim()))
            {
                found.push(HookOff {
                    line: first_line,
                    option,
                });
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negated_hook_options_are_found_in_every_scope() {
        let text = "\
# Defaults !pam_session (a comment)\n\
Defaults env_reset, !pam_acct_mgmt\n\
Defaults:alice   !pam_session\n\
Defaults>root !lecture,\\\n  !pam_acct_mgmt\n\
Defaults pam_session\n\
Defaultsx !pam_session\n\
alice ALL=(ALL) ALL # !pam_session\n";
        let found = hooks_off(text);
        assert_eq!(
            found,
            [
                HookOff {
                    line: 2,
                    option: "pam_acct_mgmt"
                },
                HookOff {
                    line: 3,
                    option: "pam_session"
                },
                HookOff {
                    line: 4,
                    option: "pam_acct_mgmt"
                },
            ]
        );
    }
}

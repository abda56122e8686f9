//! Root's ssh keys: what `sshd -T` says of root logins, and the keys in
//! root's `authorized_keys` files, each named by its SHA-256 fingerprint
//! (never the key).

/// What `sshd -T` (its effective configuration for a root login) says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sshd {
    /// `PermitRootLogin`: yes, prohibit-password (without-password),
    /// forced-commands-only or no.
    pub permit_root_login: String,
    pub use_pam: bool,
    /// `AuthorizedKeysFile` patterns (`%h`, `%u`, `%%`; relative to the
    /// home).
    pub authorized_keys_files: Vec<String>,
    /// `AuthorizedKeysCommand`, if one is set: keys from it are not seen.
    pub authorized_keys_command: Option<String>,
}

impl Default for Sshd {
    /// OpenSSH's defaults, for when `sshd -T` cannot answer: root may log
    /// in by key, and PAM is not counted on.
    fn default() -> Sshd {
        Sshd {
            permit_root_login: "prohibit-password".into(),
            use_pam: false,
            authorized_keys_files: vec![
                ".ssh/authorized_keys".into(),
                ".ssh/authorized_keys2".into(),
            ],
            authorized_keys_command: None,
        }
    }
}

impl Sshd {
    /// The output of `sshd -T`: one `keyword value...` a line, keywords
    /// lower-case.
    pub fn parse(text: &str) -> Sshd {
        let mut sshd = Sshd::default();
        for line in text.lines() {
            let Some((key, value)) = line.trim().split_once(' ') else {
                continue;
            };
            let value = value.trim();
            match key {
                "permitrootlogin" => sshd.permit_root_login = value.to_owned(),
                "usepam" => sshd.use_pam = value == "yes",
                "authorizedkeysfile" => {
                    sshd.authorized_keys_files =
                        value.split_whitespace().map(str::to_owned).collect();
                }
                "authorizedkeyscommand" => {
                    sshd.authorized_keys_command = (value != "none").then(|| value.to_owned());
                }
                _ => {}
            }
        }
        sshd
    }

    /// Whether root may log in with a key.
    pub fn root_logs_in_by_key(&self) -> bool {
        matches!(
            self.permit_root_login.as_str(),
            "yes" | "prohibit-password" | "without-password" | "forced-commands-only"
        )
    }

    /// The files sshd reads root's keys from (home `home`): patterns
    /// expanded, relative ones under the home; `none` names none.
    pub fn root_key_files(&self, home: &str) -> Vec<String> {
        let mut files: Vec<String> = Vec::new();
        for pattern in self.authorized_keys_files.iter().filter(|p| *p != "none") {
            let expanded = pattern
                .replace("%%", "\u{0}")
                .replace("%h", home)
                .replace("%u", "root")
                .replace("%U", "0")
                .replace('\u{0}', "%");
            let path = if expanded.starts_with('/') {
                expanded
            } else {
                format!("{}/{expanded}", home.trim_end_matches('/'))
            };
            if !files.contains(&path) {
                files.push(path);
            }
        }
        files
    }
}

/// One key line of an `authorized_keys` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    pub file: String,
    /// 1-based.
    pub line: usize,
    /// `SHA256:...` as ssh-keygen prints it, or `None` for a line that is
    /// not a key this parser knows (sshd may still take it).
    pub fingerprint: Option<String>,
    /// `ssh-ed25519`, ...
    pub algorithm: String,
    /// Its comment (the key's owner, often): untrusted text.
    pub comment: String,
    /// Its options (`from=`, `command=`, `restrict`): untrusted text.
    pub options: String,
}

/// The key lines of `text` (the file at `file`); comments and blank lines
/// are not keys.
pub fn keys(file: &str, text: &str) -> Vec<Key> {
    text.lines()
        .enumerate()
        .map(|(n, l)| (n + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .map(|(line, l)| {
            let mut key = Key {
                file: file.to_owned(),
                line,
                fingerprint: None,
                algorithm: String::new(),
                comment: String::new(),
                options: String::new(),
            };
            // As sshd reads a line: a key, else options and then a key.
            let (options, parsed) = match ssh_key::PublicKey::from_openssh(l) {
                Ok(parsed) => ("", Ok(parsed)),
                Err(_) => {
                    let (options, rest) = split_options(l);
                    (options, ssh_key::PublicKey::from_openssh(rest.trim_start()))
                }
            };
            if let Ok(parsed) = parsed {
                key.fingerprint = Some(parsed.fingerprint(ssh_key::HashAlg::Sha256).to_string());
                key.algorithm = parsed.algorithm().as_str().to_owned();
                key.comment = parsed.comment().to_owned();
                key.options = options.to_owned();
            }
            key
        })
        .collect()
}

/// A line's options (up to the first blank outside double quotes) and
/// the rest.
fn split_options(line: &str) -> (&str, &str) {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => return (&line[..i], &line[i..]),
            _ => {}
        }
    }
    (line, "")
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED25519: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEyf0tOGKa4YIyk5aefbyu2sRfK8zpy/mQjzC4u5bRYX";

    #[test]
    fn keys_are_named_by_fingerprint_with_their_options_and_comment() {
        let text = format!(
            "# admins\n\n{ED25519} alice@laptop\nrestrict,command=\"echo \\\"a b\\\"\" {ED25519}\nnot a key\n"
        );
        let keys = keys("/root/.ssh/authorized_keys", &text);
        assert_eq!(keys.len(), 3);
        assert_eq!(keys[0].line, 3);
        let fingerprint = keys[0].fingerprint.clone().unwrap();
        assert!(fingerprint.starts_with("SHA256:"), "{fingerprint}");
        assert_eq!(keys[0].algorithm, "ssh-ed25519");
        assert_eq!(keys[0].comment, "alice@laptop");
        assert_eq!(keys[1].fingerprint.as_deref(), Some(fingerprint.as_str()));
        assert_eq!(keys[1].options, r#"restrict,command="echo \"a b\"""#);
        assert_eq!(keys[2].fingerprint, None);
    }

    #[test]
    fn sshd_t_is_read_and_root_key_files_expanded() {
        let sshd = Sshd::parse(
            "port 22\nusepam yes\npermitrootlogin without-password\n\
             authorizedkeysfile .ssh/authorized_keys /etc/ssh/keys/%u %h/.k%%\n\
             authorizedkeyscommand none\n",
        );
        assert!(sshd.use_pam && sshd.root_logs_in_by_key());
        assert_eq!(
            sshd.root_key_files("/root"),
            [
                "/root/.ssh/authorized_keys",
                "/etc/ssh/keys/root",
                "/root/.k%"
            ]
        );
        assert!(!Sshd::parse("permitrootlogin no\n").root_logs_in_by_key());
        assert!(Sshd::default().root_logs_in_by_key());
    }
}

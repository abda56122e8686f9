//! sudoers through sudo's own tooling: `cvtsudoers -f json`, which follows
//! the includes. Its JSON names no file, so each file sudo reads is also
//! converted alone, and each rule named by the file holding it
//! (`core::standing::sudo::sources`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Host;
use crate::accounts::shadow::run_read_within;
use crate::core::standing::sudo::{self, Policy};
use crate::core::standing::SudoFacts;

pub const CVTSUDOERS: &str = "/usr/bin/cvtsudoers";
pub const SUDO: &str = "/usr/bin/sudo";
/// Per run of cvtsudoers; it reads files only.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Files of sudoers converted alone to name rules; more are not named.
const MAX_FILES: usize = 64;

/// The policy, or why it could not be read. A host without sudo has an
/// empty one.
pub fn read(host: &Host) -> Result<SudoFacts, String> {
    let sudoers = host.path("/etc/sudoers");
    if !sudoers.exists() && !Path::new(SUDO).exists() {
        return Ok(SudoFacts {
            policy: Policy::default(),
            sources: Vec::new(),
        });
    }
    let file = path_arg(&sudoers)?;
    let main = cvtsudoers(&["-f", "json", "-d", "global,user,host,command", &file])?;
    let runas = cvtsudoers(&[
        "-f",
        "json",
        "-d",
        "runas",
        "-s",
        "aliases,privileges",
        &file,
    ])?;
    let policy = sudo::parse(&main, &runas)?;
    let all = sudo::spec_values(&main)?;
    Ok(SudoFacts {
        sources: sources(host, &sudoers, &all),
        policy,
    })
}

fn path_arg(path: &Path) -> Result<String, String> {
    path.to_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("{} is not a UTF-8 path", path.display()))
}

fn cvtsudoers(args: &[&str]) -> Result<String, String> {
    let out =
        run_read_within(CVTSUDOERS, "cvtsudoers", args, TIMEOUT).map_err(|e| e.to_string())?;
    String::from_utf8(out).map_err(|_| "cvtsudoers: its output is not UTF-8".to_owned())
}

/// The file of each user specification of `all`: every file sudo reads,
/// converted alone, those that include others last. Unnamed where a file
/// could not be converted (a rule using an alias of another file is
/// still converted; cvtsudoers does not expand it here).
fn sources(host: &Host, sudoers: &Path, all: &[serde_json::Value]) -> Vec<Option<String>> {
    let mut files = Vec::new();
    included(host, sudoers, 0, &mut files);
    if files.len() == 1 {
        return vec![Some("/etc/sudoers".to_owned()); all.len()];
    }
    files.sort_by_key(|(_, includes)| *includes);
    let converted: Vec<(String, Vec<serde_json::Value>)> = files
        .iter()
        .filter_map(|(path, _)| {
            let arg = path_arg(path).ok()?;
            let json = cvtsudoers(&["-f", "json", "-s", "defaults,aliases", &arg]).ok()?;
            Some((host.shown(path), sudo::spec_values(&json).ok()?))
        })
        .collect();
    sudo::sources(all, &converted)
}

/// `file` and the files it includes, as sudo finds them: `@include` and
/// `@includedir` (and their `#` spellings), a relative path against the
/// including file's directory, a directory's files but those with a `.`
/// or ending in `~`, in order. Each with whether it includes others.
fn included(host: &Host, file: &Path, depth: usize, out: &mut Vec<(PathBuf, bool)>) {
    if depth > 8 || out.len() >= MAX_FILES || out.iter().any(|(f, _)| f == file) {
        return;
    }
    let Ok(text) = std::fs::read_to_string(file) else {
        return;
    };
    let at = out.len();
    out.push((file.to_owned(), false));
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let (directive, target) = match words.as_slice() {
            [d, t] => (*d, t.trim_matches('"')),
            _ => continue,
        };
        let target = match target.strip_prefix('/') {
            Some(_) => host.path(target),
            None => file.parent().unwrap_or(Path::new("/")).join(target),
        };
        match directive {
            "@include" | "#include" => {
                out[at].1 = true;
                included(host, &target, depth + 1, out);
            }
            "@includedir" | "#includedir" => {
                out[at].1 = true;
                for name in crate::sudoers::includedir_files(&target) {
                    included(host, &name, depth + 1, out);
                }
            }
            _ => {}
        }
    }
}

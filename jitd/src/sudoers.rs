//! What jitd tells admins about a host's sudo and cgroup set-up that makes
//! the gate weaker than it looks: logged at start, shown by `jitctl status`.

use std::path::{Path, PathBuf};

use crate::core::sudoers::hooks_off;

const SUDOERS: &str = "/etc/sudoers";
const SUDOERS_D: &str = "/etc/sudoers.d";

/// One line per sudoers entry that switches a pam_jit hook off, read now
/// (sudoers changes without telling jitd).
pub fn gate_warnings() -> Vec<String> {
    let mut warnings = Vec::new();
    for path in sudoers_files() {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        for off in hooks_off(&text) {
            let hook = match off.option {
                "pam_acct_mgmt" => "account check",
                _ => "session hook",
            };
            warnings.push(format!(
                "{}:{}: Defaults !{} turns pam_jit's {hook} off for sudo; remove it",
                path.display(),
                off.line,
                off.option
            ));
        }
    }
    warnings
}

/// `/etc/sudoers` and the files sudo reads from `/etc/sudoers.d`.
fn sudoers_files() -> Vec<PathBuf> {
    let mut files = vec![PathBuf::from(SUDOERS)];
    files.append(&mut includedir_files(Path::new(SUDOERS_D)));
    files
}

/// The files sudo's `@includedir DIR` reads: names without a `.` and not
/// ending in `~`, in order.
pub(crate) fn includedir_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| !n.contains('.') && !n.ends_with('~'))
        })
        .collect();
    files.sort();
    files
}

//! What jitd tells admins about the PAM stacks in `/etc/pam.d` that weaken
//! the gate: logged at start, shown by `jitctl status` (read each time: the
//! files change without telling jitd).

use std::collections::BTreeMap;
use std::path::Path;

use crate::core::pam_stack::{at, late_session_move};

const PAM_D: &str = "/etc/pam.d";
/// Where libpam looks for a service file that `/etc/pam.d` does not have.
const VENDOR_PAM_D: &str = "/usr/lib/pam.d";

/// One line per place where a `pam_systemd.so` session line runs after
/// pam_jit's, naming the services whose stacks do so.
pub fn order_warnings() -> Vec<String> {
    let dir = Path::new(PAM_D);
    let mut services: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        // Followed: config management links service files.
        .filter(|e| e.path().is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    services.sort();
    let mut found: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for service in services {
        if let Some(late) = late_session_move(&service, &read) {
            found
                .entry((at(&late.systemd), at(&late.jit)))
                .or_default()
                .push(late.service);
        }
    }
    found
        .into_iter()
        .map(|((systemd, jit), services)| {
            format!(
                "{systemd}: pam_systemd.so's session line runs after pam_jit.so's ({jit}) for {}: \
                 it moves a login out of its grant's cgroup after registration; \
                 put pam_jit's session line after it",
                services.join(", ")
            )
        })
        .collect()
}

/// A file as libpam finds it: an absolute path as it is, a name in
/// `/etc/pam.d`, else in `/usr/lib/pam.d`.
fn read(name: &str) -> Option<String> {
    if name.starts_with('/') {
        return std::fs::read_to_string(name).ok();
    }
    [PAM_D, VENDOR_PAM_D]
        .iter()
        .find_map(|dir| std::fs::read_to_string(Path::new(dir).join(name)).ok())
}

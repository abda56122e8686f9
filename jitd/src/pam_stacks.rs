//! What jitd tells admins about the PAM stacks in `/etc/pam.d` that weaken
//! the gate: logged at start, shown by `jitctl status` (read each time: the
//! files change without telling jitd).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::core::pam_stack::{account_gate, at, late_session_move, JitArgs};

const PAM_D: &str = "/etc/pam.d";
/// Where libpam looks for a service file that `/etc/pam.d` does not have.
const VENDOR_PAM_D: &str = "/usr/lib/pam.d";
/// A holder no `exempt=` names: whom the account check is tried for.
const PROBE_HOLDER: &str = "jit-probe";

/// Every warning about the PAM stacks, in order.
pub fn warnings() -> Vec<String> {
    let services = services();
    // Every service includes the same common-* files: each is read once.
    let files = RefCell::new(HashMap::new());
    let cached = |name: &str| {
        files
            .borrow_mut()
            .entry(name.to_owned())
            .or_insert_with(|| read(name))
            .clone()
    };
    let mut out = skip_warnings(&services, &cached);
    out.extend(order_warnings(&services, &cached));
    out
}

/// The service files of `/etc/pam.d`, sorted.
fn services() -> Vec<String> {
    let mut services: Vec<String> = std::fs::read_dir(PAM_D)
        .into_iter()
        .flatten()
        .flatten()
        // Followed: config management links service files.
        .filter(|e| e.path().is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    services.sort();
    services
}

/// One line per way past a pam_jit account line that some stack has (a
/// line before it that ends the stack on an expired password, a `reset`
/// after it, a control under which its refusal does not deny: T41),
/// naming the services. Deliberate choices (`audit_only`, `exempt=`,
/// `targets=`) are not warned about.
fn skip_warnings(services: &[String], read: &impl Fn(&str) -> Option<String>) -> Vec<String> {
    let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for service in services {
        let gate = account_gate(service, read);
        let Some(line) = gate.lines.first() else {
            continue;
        };
        let args = JitArgs::of(&line.module.args);
        if args.audit_only {
            continue;
        }
        let target = args.targets.first().map_or("root", String::as_str);
        if let Err(why) = gate.covers(PROBE_HOLDER, target) {
            found.entry(why).or_default().push(service.clone());
        }
    }
    found
        .into_iter()
        .map(|(why, services)| {
            format!(
                "{why} (for {}): the account check can be passed without a grant; \
                 put pam_jit's account line first",
                services.join(", ")
            )
        })
        .collect()
}

/// One line per place where a `pam_systemd.so` session line runs after
/// pam_jit's, naming the services whose stacks do so.
fn order_warnings(services: &[String], read: &impl Fn(&str) -> Option<String>) -> Vec<String> {
    let mut found: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for service in services {
        if let Some(late) = late_session_move(service, read) {
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

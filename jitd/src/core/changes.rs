//! What changed on the host during a privileged grant (W3 item 6,
//! docs/design.md "What changed during a grant"): two snapshots of the
//! places attackers use for persistence, and their difference. No I/O:
//! `persistence/` takes the snapshots.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// The kind of persistence a watched place is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Cron,
    At,
    Unit,
    Timer,
    Generator,
    AuthorizedKeys,
    Sudoers,
    Account,
    PrivilegedGroup,
    Password,
    Setuid,
    Capability,
    Preload,
    Pam,
    ShellStartup,
    Sshd,
    Polkit,
    Udev,
    Modules,
    /// A process left running as a managed account (`process:PID:COMMAND`),
    /// not a snapshot's entry: found at the end (`accounts::leftovers`).
    Process,
}

/// One watched thing: its kind and a digest of what it is (a file's
/// content and metadata, an account's uid and shell, ...).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub kind: Kind,
    pub digest: String,
}

/// The watched places at one moment, by path (or `account:NAME`,
/// `group:GROUP:MEMBER`, ...). `truncated`: a place was cut short or could
/// not be read, and what was not read is unknown; `truncated_places` names
/// them (a home, a tree, a file; empty in snapshots stored before it).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub entries: BTreeMap<String, Entry>,
    pub truncated: bool,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub truncated_places: BTreeSet<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum What {
    Added,
    Removed,
    Modified,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub kind: Kind,
    pub path: String,
    pub what: What,
}

/// The difference of two snapshots. `truncated` if either was, with the
/// places either cut short: a capped snapshot never reads as "no changes".
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changes {
    pub changes: Vec<Change>,
    pub truncated: bool,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub truncated_places: BTreeSet<String>,
}

impl Changes {
    /// Whether anyone should look: something changed, or not all was seen.
    pub fn worth_telling(&self) -> bool {
        self.truncated || !self.changes.is_empty()
    }
}

pub fn diff(before: &Snapshot, after: &Snapshot) -> Changes {
    let mut changes = Vec::new();
    for (path, entry) in &after.entries {
        let what = match before.entries.get(path) {
            None => What::Added,
            Some(old) if old != entry => What::Modified,
            Some(_) => continue,
        };
        changes.push(Change {
            kind: entry.kind,
            path: path.clone(),
            what,
        });
    }
    for (path, entry) in &before.entries {
        if !after.entries.contains_key(path) {
            changes.push(Change {
                kind: entry.kind,
                path: path.clone(),
                what: What::Removed,
            });
        }
    }
    changes.sort_by(|a, b| (a.kind, &a.path).cmp(&(b.kind, &b.path)));
    Changes {
        changes,
        truncated: before.truncated || after.truncated,
        truncated_places: before
            .truncated_places
            .union(&after.truncated_places)
            .cloned()
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(entries: &[(&str, Kind, &str)], truncated: bool) -> Snapshot {
        Snapshot {
            entries: entries
                .iter()
                .map(|(p, k, d)| {
                    (
                        (*p).to_owned(),
                        Entry {
                            kind: *k,
                            digest: (*d).to_owned(),
                        },
                    )
                })
                .collect(),
            truncated,
            truncated_places: BTreeSet::new(),
        }
    }

    #[test]
    fn added_removed_and_modified_entries_are_reported_by_kind() {
        let before = snap(
            &[
                ("/etc/cron.d/a", Kind::Cron, "1"),
                ("/etc/sudoers", Kind::Sudoers, "1"),
                ("/etc/pam.d/su", Kind::Pam, "1"),
            ],
            false,
        );
        let after = snap(
            &[
                ("/etc/cron.d/a", Kind::Cron, "1"),
                ("/etc/sudoers", Kind::Sudoers, "2"),
                ("account:evil", Kind::Account, "uid=0"),
            ],
            false,
        );
        let got = diff(&before, &after);
        assert_eq!(
            got.changes,
            [
                Change {
                    kind: Kind::Sudoers,
                    path: "/etc/sudoers".into(),
                    what: What::Modified
                },
                Change {
                    kind: Kind::Account,
                    path: "account:evil".into(),
                    what: What::Added
                },
                Change {
                    kind: Kind::Pam,
                    path: "/etc/pam.d/su".into(),
                    what: What::Removed
                },
            ]
        );
        assert!(got.worth_telling());
    }

    #[test]
    fn nothing_changed_is_nothing_to_tell_unless_a_snapshot_was_capped() {
        let same = snap(&[("/etc/sudoers", Kind::Sudoers, "1")], false);
        assert!(!diff(&same, &same).worth_telling());
        let capped = snap(&[("/etc/sudoers", Kind::Sudoers, "1")], true);
        let got = diff(&same, &capped);
        assert!(got.changes.is_empty() && got.truncated && got.worth_telling());
    }

    #[test]
    fn the_places_cut_short_in_either_snapshot_are_named_once() {
        let mut before = snap(&[], true);
        before.truncated_places = ["/home/a".into(), "/var/spool/cron".into()].into();
        let mut after = snap(&[], true);
        after.truncated_places = ["/home/a".into(), "/home/b".into()].into();
        let got = diff(&before, &after);
        assert_eq!(
            got.truncated_places.iter().collect::<Vec<_>>(),
            ["/home/a", "/home/b", "/var/spool/cron"]
        );
    }

    #[test]
    fn snapshots_and_changes_stored_before_the_places_were_named_still_read() {
        let snapshot: Snapshot =
            serde_json::from_str(r#"{"entries":{},"truncated":true}"#).unwrap();
        assert!(snapshot.truncated && snapshot.truncated_places.is_empty());
        let changes: Changes = serde_json::from_str(r#"{"changes":[],"truncated":false}"#).unwrap();
        assert_eq!(changes, Changes::default());
        // And a complete one is stored as before.
        assert_eq!(
            serde_json::to_string(&Changes::default()).unwrap(),
            r#"{"changes":[],"truncated":false}"#
        );
    }
}

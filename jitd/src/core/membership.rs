//! Group membership for a grant's lifetime (M.1, docs/design.md "Group
//! membership"): which memberships to add or remove, from the ones active
//! grants call for, the ones jitd recorded adding, and who is a member now.
//! A membership jitd did not add (the user's standing membership) is never
//! touched: not added, and not removed when the grant ends.

use super::model::RequestId;

/// One user's membership of one local group.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Membership {
    pub user: String,
    pub group: String,
}

/// What jitd last wrote about a membership it manages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Toggle {
    /// Being added for the grant (or was, when jitd stopped or failed).
    Adding,
    /// Added by jitd; removed when no grant calls for it.
    Added,
    /// Being removed (or was).
    Removing,
}

/// A change to make to `/etc/group`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Add {
        membership: Membership,
        grant: RequestId,
    },
    Remove {
        membership: Membership,
    },
}

/// The changes that bring the recorded memberships to the wanted ones,
/// removals first (an add that keeps failing must not hold up the end of
/// someone's privilege). `wanted`: what active grants call for (with the
/// grant); `recorded`: jitd's rows; `is_member`: `/etc/group` now, asked
/// only for wanted memberships jitd has no row for (a member already:
/// standing, left alone). An interrupted add is done again (adding is
/// idempotent) while wanted, and every row no grant wants any more is
/// removed.
pub fn changes(
    wanted: &[(Membership, RequestId)],
    recorded: &[(Membership, Toggle)],
    mut is_member: impl FnMut(&Membership) -> bool,
) -> Vec<Change> {
    let mut out = Vec::new();
    for (membership, _) in recorded {
        if !wanted.iter().any(|(m, _)| m == membership) {
            out.push(Change::Remove {
                membership: membership.clone(),
            });
        }
    }
    for (membership, grant) in wanted {
        let row = recorded
            .iter()
            .find(|(m, _)| m == membership)
            .map(|(_, t)| *t);
        let add = match row {
            Some(Toggle::Added) => false,
            Some(Toggle::Adding | Toggle::Removing) => true,
            None => !is_member(membership),
        };
        if add
            && !out
                .iter()
                .any(|c| matches!(c, Change::Add { membership: m, .. } if m == membership))
        {
            out.push(Change::Add {
                membership: membership.clone(),
                grant: *grant,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(user: &str, group: &str) -> Membership {
        Membership {
            user: user.into(),
            group: group.into(),
        }
    }

    #[test]
    fn a_wanted_membership_is_added_unless_the_user_is_a_member_already() {
        let wanted = [(m("alice", "docker"), 7), (m("bob", "docker"), 8)];
        let got = changes(&wanted, &[], |x| x.user == "bob");
        assert_eq!(
            got,
            [Change::Add {
                membership: m("alice", "docker"),
                grant: 7
            }]
        );
    }

    #[test]
    fn a_recorded_membership_no_grant_wants_is_removed_and_a_standing_one_never() {
        let recorded = [(m("alice", "docker"), Toggle::Added)];
        let got = changes(&[], &recorded, |_| true);
        assert_eq!(
            got,
            [Change::Remove {
                membership: m("alice", "docker")
            }]
        );
        // bob was a member before his grant: nothing recorded, nothing removed.
        assert!(changes(&[], &[], |_| true).is_empty());
    }

    #[test]
    fn an_interrupted_change_is_done_again_or_undone_as_the_grants_say() {
        for toggle in [Toggle::Adding, Toggle::Removing] {
            let recorded = [(m("alice", "adm"), toggle)];
            let wanted = [(m("alice", "adm"), 3)];
            assert_eq!(
                changes(&wanted, &recorded, |_| true),
                [Change::Add {
                    membership: m("alice", "adm"),
                    grant: 3
                }],
                "{toggle:?} while wanted"
            );
            assert_eq!(
                changes(&[], &recorded, |_| false),
                [Change::Remove {
                    membership: m("alice", "adm")
                }],
                "{toggle:?} once no grant wants it"
            );
        }
    }

    #[test]
    fn removals_come_before_adds() {
        let wanted = [(m("bob", "adm"), 4)];
        let recorded = [(m("alice", "adm"), Toggle::Added)];
        let got = changes(&wanted, &recorded, |_| false);
        assert!(matches!(got[0], Change::Remove { .. }), "{got:?}");
        assert!(matches!(got[1], Change::Add { .. }), "{got:?}");
    }

    #[test]
    fn two_grants_wanting_one_membership_add_it_once_and_keep_it_while_either_lasts() {
        let wanted = [(m("alice", "adm"), 3), (m("alice", "adm"), 4)];
        assert_eq!(changes(&wanted, &[], |_| false).len(), 1);
        let recorded = [(m("alice", "adm"), Toggle::Added)];
        assert!(changes(&wanted[1..], &recorded, |_| true).is_empty());
    }
}

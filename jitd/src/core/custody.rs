//! What to do next with a managed account (W3, docs/design.md "Managed
//! accounts"): from what the store says jitd last did to it, the grants
//! that hold it now and what `/etc/shadow` holds, one step. jitd takes the
//! step, writes what it did and asks again, so that a start after a crash,
//! a grant's end and a failed rotation's retry are the same code.

use super::model::RequestId;

/// What jitd last wrote about an account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Custody {
    /// Never taken into custody.
    Unknown,
    /// Being given a new password and locked (or was, when jitd stopped,
    /// or when it failed).
    Rotating,
    /// Locked, with a password nobody knows.
    Held,
    /// Being unlocked with a new password for `grant` (or was, when jitd
    /// stopped or failed).
    CheckingOut { grant: RequestId },
    /// Unlocked, with a password set for `grant`.
    CheckedOut { grant: RequestId },
}

/// Why an account is locked with a new password.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockReason {
    /// jitd did not hold it yet.
    Adopted,
    /// A rotation or a checkout was interrupted (jitd stopped, or the tool
    /// failed): whatever it left may be known to someone.
    Interrupted,
    /// Held, yet its `/etc/shadow` field is not the one jitd wrote: someone
    /// set a password (or unlocked it) behind jitd's back.
    Changed,
    /// The grant that held it is over (expired, revoked, checked in).
    CheckIn { grant: RequestId },
    /// Taken out of the config while checked out or half-changed: locked
    /// once, then left to the admin.
    Unmanaged,
    /// Root's recovery file was on the host while a privileged grant
    /// lasted: its holder could read it, so root gets a new one.
    Exposed,
}

impl LockReason {
    pub fn as_str(self) -> &'static str {
        match self {
            LockReason::Adopted => "adopted",
            LockReason::Interrupted => "interrupted",
            LockReason::Changed => "changed",
            LockReason::CheckIn { .. } => "checkin",
            LockReason::Unmanaged => "unmanaged",
            LockReason::Exposed => "exposed",
        }
    }

    pub fn grant(self) -> Option<RequestId> {
        match self {
            LockReason::CheckIn { grant } => Some(grant),
            _ => None,
        }
    }
}

/// The next thing to do to an account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Nothing,
    /// A new random password, locked.
    Lock(LockReason),
    /// A new random password, unlocked, for `grant`.
    CheckOut {
        grant: RequestId,
    },
}

/// The facts [`next_step`] decides on.
#[derive(Clone, Debug)]
pub struct Facts<'a> {
    pub custody: Custody,
    /// The active grants of the account's resource, oldest first.
    pub holders: &'a [RequestId],
    /// Whether `/etc/shadow` still holds the field jitd last wrote.
    pub field_as_written: bool,
    /// Whether jitd has the checked-out password in memory: a holder who
    /// may see it needs it, and a restarted jitd no longer has it.
    pub password_in_memory: bool,
    pub reveal: bool,
}

/// Whether an account no longer in the config must still be locked: it
/// was left checked out or half-changed, so someone may know its password.
/// One held (locked, its password unknown) is the admin's again.
pub fn left_unlocked(custody: Custody) -> bool {
    !matches!(custody, Custody::Unknown | Custody::Held)
}

/// One step towards "locked unless a grant holds it, and then checked out
/// to the oldest holder". An interrupted step is never resumed: it is
/// undone by a lock with a new password, since the password it set may
/// have been seen (or written) by then.
pub fn next_step(facts: &Facts<'_>) -> Step {
    match facts.custody {
        Custody::Unknown => Step::Lock(LockReason::Adopted),
        Custody::Rotating | Custody::CheckingOut { .. } => Step::Lock(LockReason::Interrupted),
        Custody::Held => match facts.holders.first() {
            _ if !facts.field_as_written => Step::Lock(LockReason::Changed),
            Some(&grant) => Step::CheckOut { grant },
            None => Step::Nothing,
        },
        Custody::CheckedOut { grant } if !facts.holders.contains(&grant) => {
            Step::Lock(LockReason::CheckIn { grant })
        }
        // Checked out to a live grant whose holder may see the password,
        // which a restarted jitd no longer has: a new one replaces it.
        Custody::CheckedOut { grant } if facts.reveal && !facts.password_in_memory => {
            Step::CheckOut { grant }
        }
        Custody::CheckedOut { .. } => Step::Nothing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(custody: Custody, holders: &[RequestId]) -> Facts<'_> {
        Facts {
            custody,
            holders,
            field_as_written: true,
            password_in_memory: true,
            reveal: false,
        }
    }

    #[test]
    fn an_account_not_yet_held_is_adopted_whatever_holds_it() {
        assert_eq!(
            next_step(&facts(Custody::Unknown, &[4])),
            Step::Lock(LockReason::Adopted)
        );
    }

    #[test]
    fn an_interrupted_rotation_or_checkout_is_undone_by_a_lock() {
        for custody in [Custody::Rotating, Custody::CheckingOut { grant: 4 }] {
            assert_eq!(
                next_step(&facts(custody, &[4])),
                Step::Lock(LockReason::Interrupted),
                "{custody:?}"
            );
        }
    }

    #[test]
    fn a_held_account_is_checked_out_to_its_oldest_holder() {
        assert_eq!(
            next_step(&facts(Custody::Held, &[3, 9])),
            Step::CheckOut { grant: 3 }
        );
        assert_eq!(next_step(&facts(Custody::Held, &[])), Step::Nothing);
    }

    #[test]
    fn a_held_account_changed_behind_jitds_back_is_locked_again_first() {
        let mut changed = facts(Custody::Held, &[3]);
        changed.field_as_written = false;
        assert_eq!(next_step(&changed), Step::Lock(LockReason::Changed));
    }

    #[test]
    fn a_checkout_whose_grant_is_over_is_checked_in_even_if_another_holds_it_now() {
        assert_eq!(
            next_step(&facts(Custody::CheckedOut { grant: 3 }, &[])),
            Step::Lock(LockReason::CheckIn { grant: 3 })
        );
        assert_eq!(
            next_step(&facts(Custody::CheckedOut { grant: 3 }, &[5])),
            Step::Lock(LockReason::CheckIn { grant: 3 })
        );
    }

    #[test]
    fn a_live_checkout_stays_unless_its_revealable_password_was_lost() {
        let mut live = facts(Custody::CheckedOut { grant: 3 }, &[3, 5]);
        live.password_in_memory = false;
        assert_eq!(next_step(&live), Step::Nothing, "nobody may see it");
        live.reveal = true;
        assert_eq!(next_step(&live), Step::CheckOut { grant: 3 });
        live.password_in_memory = true;
        assert_eq!(next_step(&live), Step::Nothing);
    }

    #[test]
    fn an_account_taken_out_of_the_config_is_locked_only_if_it_was_left_open() {
        assert!(left_unlocked(Custody::CheckedOut { grant: 1 }));
        assert!(left_unlocked(Custody::CheckingOut { grant: 1 }));
        assert!(left_unlocked(Custody::Rotating));
        assert!(!left_unlocked(Custody::Held));
    }

    #[test]
    fn a_field_changed_during_a_checkout_is_replaced_at_check_in_not_before() {
        // The holder works as the account and may run passwd: the password
        // it set dies with the check-in's rotation.
        let mut changed = facts(Custody::CheckedOut { grant: 3 }, &[3]);
        changed.field_as_written = false;
        assert_eq!(next_step(&changed), Step::Nothing);
    }
}

//! Group memberships for a grant's lifetime (M.1, docs/design.md "Group
//! membership"): the store's side of the changes `core::membership`
//! decides. Each change is written (and audited) before `gpasswd` runs and
//! after; `accounts::keeper` runs them.

use serde_json::json;

use super::custody::{audit, CustodyError};
use super::{Engine, EngineError, Result};
use crate::accounts::Groups;
use crate::core::membership::{self, Change, Membership, Toggle};
use crate::core::model::{RequestId, UnixTime};
use crate::store::Writer;

impl Engine {
    /// The membership changes due now: what active grants call for against
    /// what jitd recorded adding (and, for a membership it has no row for,
    /// whether the user is a member already).
    pub fn membership_changes(
        &self,
        groups: &dyn Groups,
    ) -> std::result::Result<Vec<Change>, CustodyError> {
        let mut wanted = Vec::new();
        for resource in self
            .config
            .resources
            .iter()
            .filter(|r| !r.groups.is_empty())
        {
            let holders = self
                .store
                .active_holders_of(&resource.name)
                .map_err(EngineError::from)?;
            for (grant, user) in holders {
                for group in &resource.groups {
                    let membership = Membership {
                        user: user.clone(),
                        group: group.clone(),
                    };
                    wanted.push((membership, grant));
                }
            }
        }
        let recorded = self.store.memberships().map_err(EngineError::from)?;
        // A membership that cannot be read (a group not in /etc/group) is
        // tried as an add, which fails on its own and is audited, rather
        // than stop every other change.
        Ok(membership::changes(&wanted, &recorded, |m| {
            groups.is_member(m).unwrap_or(false)
        }))
    }

    /// Writes that `change` is about to be made.
    pub fn membership_begin(&mut self, change: &Change) -> Result<()> {
        let (membership, toggle, grant, event) = match change {
            Change::Add { membership, grant } => (
                membership,
                Toggle::Adding,
                Some(*grant),
                "group_member_adding",
            ),
            Change::Remove { membership } => {
                (membership, Toggle::Removing, None, "group_member_removing")
            }
        };
        let detail = json!({"user": membership.user, "group": membership.group});
        self.membership_write(event, grant, detail, |w, now| {
            w.set_membership(membership, toggle, grant, now)
        })
    }

    /// Writes that `change` was made (and read back from `/etc/group`);
    /// `ended`: the user's processes killed for still holding the group.
    pub fn membership_done(&mut self, change: &Change, ended: &[u32]) -> Result<()> {
        match change {
            Change::Add { membership, grant } => {
                let grant = Some(*grant);
                let detail = json!({"user": membership.user, "group": membership.group});
                self.membership_write("group_member_added", grant, detail, |w, now| {
                    w.set_membership(membership, Toggle::Added, grant, now)
                })
            }
            Change::Remove { membership } => {
                if !ended.is_empty() {
                    tracing::info!(user = %membership.user, group = %membership.group, ?ended,
                        "ended processes that kept a removed group");
                }
                let detail = json!({
                    "user": membership.user,
                    "group": membership.group,
                    "processes_ended": ended.len(),
                });
                self.membership_write("group_member_removed", None, detail, |w, _| {
                    w.forget_membership(membership)
                })
            }
        }
    }

    /// Audits a failed change (`None`: reading `/etc/group` failed). The
    /// first failure in a row tells security: a membership that cannot be
    /// removed is standing privilege.
    pub fn membership_failed(
        &mut self,
        change: Option<&Change>,
        error: &str,
        escalate: bool,
    ) -> Result<()> {
        let event = if escalate {
            "group_membership_failed"
        } else {
            "group_membership_retry_failed"
        };
        let (membership, grant, what) = match change {
            Some(Change::Add { membership, grant }) => (Some(membership), Some(*grant), "add"),
            Some(Change::Remove { membership }) => (Some(membership), None, "remove"),
            None => (None, None, "check"),
        };
        let detail = json!({
            "user": membership.map(|m| &m.user),
            "group": membership.map(|m| &m.group),
            "change": what,
            "error": error,
        });
        self.membership_write(event, grant, detail, |_, _| Ok(()))
    }

    fn membership_write(
        &mut self,
        event: &str,
        grant: Option<RequestId>,
        detail: serde_json::Value,
        row: impl FnOnce(&mut Writer<'_>, UnixTime) -> crate::store::Result<()>,
    ) -> Result<()> {
        let now = self.clock.wall();
        self.store.write(|w| -> Result<()> {
            row(w, now)?;
            audit(w, now, event, grant, detail)
        })
    }
}

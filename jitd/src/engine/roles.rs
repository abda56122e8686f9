//! What a person's roles let them do with a request: decide on it
//! ([`Actor`]) or see it ([`Viewer`]).

use super::{Engine, EngineError, Result};
use crate::config::Resource;
use crate::core::model::{Request, Role, Uid};
use crate::core::workflow::Actor;
use crate::directory::Person;

/// A reader of requests, with the roles that decide what they may see.
pub(super) struct Viewer {
    uid: Uid,
    pub(super) sees_all: bool,
    /// Manager and security, which apply to every resource.
    pub(super) roles: Vec<Role>,
    /// Resources this person owns.
    pub(super) owns: Vec<String>,
}

impl Viewer {
    /// Their own requests, those they decided on, and those their roles
    /// may decide on.
    pub(super) fn may_see(&self, req: &Request) -> bool {
        let owner = self.owns.contains(&req.resource);
        req.uid == self.uid
            || self.sees_all
            || req.decisions.iter().any(|d| d.uid == self.uid)
            || req
                .route
                .deciding_roles()
                .iter()
                .any(|r| self.roles.contains(r) || (owner && *r == Role::Owner))
    }
}

impl Engine {
    /// The roles `who` holds for requests on `resource`.
    pub(super) fn roles_of(&self, who: &Person, resource: Option<&Resource>) -> Vec<Role> {
        let roles = &self.config.roles;
        let mut held = Vec::new();
        if resource.is_some_and(|r| who.matches_any(&r.owners)) {
            held.push(Role::Owner);
        }
        if who.matches_any(&roles.manager) {
            held.push(Role::Manager);
        }
        if who.matches_any(&roles.security) {
            held.push(Role::Security);
        }
        held
    }

    pub(super) fn actor(&self, who: &Person, req: &Request) -> Actor {
        let roles = self.roles_of(who, self.config.resource(&req.resource));
        Actor {
            uid: who.uid,
            name: who.name.clone(),
            may_revoke_any: who.is_root() || roles.contains(&Role::Security),
            roles,
        }
    }

    /// Root, security and auditors see every request and the whole audit trail.
    pub(super) fn sees_all(&self, who: &Person) -> bool {
        who.is_root()
            || who.matches_any(&self.config.roles.security)
            || who.matches_any(&self.config.roles.auditor)
    }

    /// Refuses `who` unless they see everything (root, security, auditors).
    pub fn require_sees_all(&self, who: &Person) -> Result<()> {
        if self.sees_all(who) {
            Ok(())
        } else {
            Err(EngineError::NotAuditor)
        }
    }

    /// What `who` may see, worked out once per call: every role check is
    /// an NSS group lookup.
    pub(super) fn viewer(&self, who: &Person) -> Viewer {
        Viewer {
            uid: who.uid,
            sees_all: self.sees_all(who),
            roles: self.roles_of(who, None),
            owns: self
                .config
                .resources
                .iter()
                .filter(|r| who.matches_any(&r.owners))
                .map(|r| r.name.clone())
                .collect(),
        }
    }
}

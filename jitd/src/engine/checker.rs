//! CheckGrant, pam_jit's and polkit's hot path: answered from the shared
//! grant index, never SQLite and never the engine's lock.

use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use super::{Engine, EngineError, Result};
use crate::clock::Clock;
use crate::core::model::{RequestId, Uid, UnixTime};
use crate::grants::GrantIndex;
use crate::polkit::asker::PolkitAsker;

/// Whether the vendors' egress rules are in place (docs/design.md
/// "Network segments"): until the keeper has applied them in this run of
/// jitd (after a start, after a failure to apply them), no uid of the
/// vendors' range holds a grant, so no vendor logs in unfiltered.
#[derive(Debug, Default)]
pub struct EgressGate {
    range: Option<RangeInclusive<Uid>>,
    ready: AtomicBool,
}

impl EgressGate {
    pub fn new(range: Option<RangeInclusive<Uid>>) -> EgressGate {
        EgressGate {
            range,
            ready: AtomicBool::new(false),
        }
    }

    /// The rules are in place (`true`), or may not be (`false`).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    fn holds_back(&self, uid: Uid) -> bool {
        self.range.as_ref().is_some_and(|r| r.contains(&uid)) && !self.ready.load(Ordering::Acquire)
    }
}

#[derive(Clone)]
pub struct GrantChecker {
    grants: Arc<RwLock<GrantIndex>>,
    egress: Arc<EgressGate>,
    clock: Arc<dyn Clock>,
    /// polkitd's account while the polkit gate is on.
    polkit: Option<PolkitAsker>,
}

impl GrantChecker {
    /// Lets `asker` (polkitd's account) ask about anyone's grant for its resource.
    pub fn with_polkit_asker(self, asker: Option<PolkitAsker>) -> GrantChecker {
        GrantChecker {
            polkit: asker,
            ..self
        }
    }

    /// Root may ask about anyone, a user about themselves, and polkitd's
    /// account about anyone's grant for the polkit gate's resource.
    fn may_ask(&self, caller: Uid, uid: Uid, resource: &str) -> Result<()> {
        let polkitd = self
            .polkit
            .as_ref()
            .is_some_and(|a| a.may_ask(caller, resource));
        if caller == 0 || caller == uid || polkitd {
            Ok(())
        } else {
            Err(EngineError::CheckOthers)
        }
    }

    /// The newest pending request of `uid` for `resource` ([`GrantChecker::may_ask`]).
    pub fn pending(&self, caller: Uid, uid: Uid, resource: &str) -> Result<Option<RequestId>> {
        self.may_ask(caller, uid, resource)?;
        Ok(self
            .grants
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .pending(uid, resource))
    }

    /// Whether `uid` is a vendor's held back until the vendors' egress
    /// rules are in place.
    pub fn holds_back(&self, uid: Uid) -> bool {
        self.egress.holds_back(uid)
    }

    /// The active grant of `uid` for `resource` ([`GrantChecker::may_ask`]).
    pub fn check(
        &self,
        caller: Uid,
        uid: Uid,
        resource: &str,
    ) -> Result<Option<(RequestId, UnixTime)>> {
        self.may_ask(caller, uid, resource)?;
        if self.holds_back(uid) {
            return Ok(None);
        }
        let index = self.grants.read().unwrap_or_else(|e| e.into_inner());
        Ok(index.check(uid, resource, self.clock.wall()))
    }
}

impl Engine {
    /// Answers CheckGrant from the shared index, without the engine's lock.
    pub fn checker(&self) -> GrantChecker {
        GrantChecker {
            grants: Arc::clone(&self.grants),
            egress: Arc::clone(&self.egress),
            clock: Arc::clone(&self.clock),
            polkit: None,
        }
    }

    /// What the keeper opens once the vendors' egress rules are in place.
    pub fn egress_gate(&self) -> Arc<EgressGate> {
        Arc::clone(&self.egress)
    }
}

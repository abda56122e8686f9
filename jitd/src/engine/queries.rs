//! What people may read: requests, the audit trail and its check, and the
//! daemon's status, each filtered by what the reader may see.

use super::{Engine, EngineError, Result};
use crate::api::{RequestView, ResourceView, StatusView, VerifyView};
use crate::core::model::{Request, RequestId, Role, State, UnixTime};
use crate::core::workflow::WorkflowError;
use crate::directory::Person;
use crate::store::{AuditRecord, ListFilter, NotificationRecord};

/// `List` answers with at most this many of the newest matching requests,
/// keeping replies well under the system bus's message size limit.
const LIST_LIMIT: u32 = 1000;

impl Engine {
    pub fn show(&self, who: &Person, id: RequestId) -> Result<Request> {
        let req = self.load(id)?;
        if !self.viewer(who).may_see(&req) {
            return Err(WorkflowError::NotYours(id).into());
        }
        Ok(req)
    }

    /// A request with the delivery state of its notifications, for whoever may see it.
    pub fn show_with_notifications(
        &self,
        who: &Person,
        id: RequestId,
    ) -> Result<(Request, Vec<NotificationRecord>)> {
        let req = self.show(who, id)?;
        Ok((req, self.store.notifications(id)?))
    }

    pub fn list(&self, who: &Person, filter: &str) -> Result<Vec<RequestView>> {
        let filter =
            ListFilter::parse(filter).ok_or_else(|| EngineError::BadFilter(filter.to_owned()))?;
        let viewer = self.viewer(who);
        // Plain requesters only ever see their own: let SQLite pick them.
        let only_uid = (!viewer.sees_all && viewer.roles.is_empty() && viewer.owns.is_empty())
            .then_some(who.uid);
        Ok(self
            .store
            .newest_requests(filter, only_uid, LIST_LIMIT)?
            .iter()
            .filter(|r| viewer.may_see(r))
            .map(RequestView::from)
            .collect())
    }

    pub fn audit(&mut self, who: &Person, since: UnixTime) -> Result<Vec<AuditRecord>> {
        self.write_admitted()?;
        let only = (!self.sees_all(who)).then_some(who.uid);
        Ok(self.store.audit_since(since, only)?)
    }

    pub fn verify_audit(&mut self, who: &Person) -> Result<VerifyView> {
        if !self.sees_all(who) {
            return Err(EngineError::NotAuditor);
        }
        self.write_admitted()?;
        let v = self.store.verify_audit()?;
        Ok(VerifyView {
            ok: v.ok,
            rows: v.rows,
            problem: v.problem,
        })
    }

    pub fn status(&self, who: &Person) -> Result<StatusView> {
        let boot = self.clock.boot();
        let viewer = self.viewer(who);
        let owner = (!viewer.owns.is_empty()).then_some(Role::Owner);
        let mut roles: Vec<String> = owner
            .iter()
            .chain(&viewer.roles)
            .map(|r| r.as_str().to_owned())
            .collect();
        if who.matches_any(&self.config.roles.auditor) {
            roles.push("auditor".into());
        }
        Ok(StatusView {
            version: crate::api::VERSION.into(),
            started_at: crate::api::rfc3339(self.started_at),
            you: who.name.clone(),
            roles,
            pending: self.store.count(State::Pending)?,
            active: self.store.count(State::Active)?,
            next_deadline_secs: self
                .deadlines
                .next()
                .map(|d| d.saturating_sub(boot).as_secs()),
            resources: self
                .config
                .resources
                .iter()
                .filter(|r| who.matches_any(&r.eligible))
                .map(|r| ResourceView {
                    name: r.name.clone(),
                    privileged: r.privileged,
                    sensitivity: r.sensitivity.as_str().into(),
                    environment: r.environment.clone(),
                    max_duration_secs: r.max_duration.as_secs(),
                })
                .collect(),
            // The bus edge adds them: they are facts of the host, not the store.
            warnings: Vec::new(),
        })
    }
}

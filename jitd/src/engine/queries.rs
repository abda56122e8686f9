//! What people may read: requests, the audit trail and its check, and the
//! daemon's status, each filtered by what the reader may see.

use super::{Engine, EngineError, Result};
use crate::api::{AnchorView, RequestView, ResourceView, SinkView, StatusView, VerifyView};
use crate::core::model::{rfc3339, Request, RequestId, Role, State, UnixTime};
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
        self.require_sees_all(who)?;
        self.write_admitted()?;
        let v = self.store.verify_audit()?;
        Ok(VerifyView {
            ok: v.ok,
            rows: v.rows,
            problem: v.problem,
            anchors: None,
        })
    }

    /// The chain verified, then checked against rows a SIEM received
    /// (anchors, events with their MACs): a database rolled back, cut
    /// short or rewritten, even with the key, no longer has them.
    pub fn verify_anchors(&mut self, who: &Person, anchors: &[AnchorView]) -> Result<VerifyView> {
        let mut view = self.verify_audit(who)?;
        let mut anchors: Vec<&AnchorView> = anchors.iter().collect();
        anchors.sort_by_key(|a| a.id);
        let ids: Vec<u64> = anchors.iter().map(|a| a.id).collect();
        let macs = self.store.audit_macs(&ids)?;
        view.anchors = Some(anchors.len() as u64);
        let mismatch = anchors.iter().zip(&macs).find_map(|(anchor, mac)| match mac {
            None => Some(format!(
                "the SIEM holds row {}, which the database does not: it was rolled back or cut short",
                anchor.id
            )),
            Some(mac) if !mac.eq_ignore_ascii_case(&anchor.mac) => Some(format!(
                "row {} is not the row the SIEM received: the database was rewritten or rolled back",
                anchor.id
            )),
            Some(_) => None,
        });
        if let (true, Some(problem)) = (view.ok, mismatch) {
            view.ok = false;
            view.problem = Some(problem);
        }
        Ok(view)
    }

    /// Each SIEM sink and how far behind the audit trail it is.
    pub fn siem_status(&mut self, who: &Person) -> Result<Vec<SinkView>> {
        self.require_sees_all(who)?;
        let now = self.clock.wall();
        let mut views = Vec::new();
        for (name, kind) in &self.config.siem.sinks {
            let lag = self.store.sink_lag(name)?;
            let cursor = lag.cursor;
            views.push(SinkView {
                name: name.clone(),
                transport: kind.label().into(),
                destination: kind.destination(),
                through: cursor.through,
                behind: lag.behind,
                lag_secs: lag
                    .oldest_unsent_at
                    .map(|at| u64::try_from(now.saturating_sub(at)).unwrap_or(0)),
                delivered_at: cursor.delivered_at.map(rfc3339),
                failing_since: cursor.failing_since.map(rfc3339),
                last_error: cursor.last_error,
            });
        }
        Ok(views)
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
            scheduled: self.store.count(State::Scheduled)?,
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
            oncall: self.rosters.status(),
        })
    }
}

//! Sponsored vendor access (W4, docs/design.md "Vendor accounts") in the
//! engine: the request, the two approvals that make the vendor's uid and
//! grants, the end (revoked, or every grant over), and what the keeper
//! reports of the host (account made, locked, deleted; unknown ones).

use serde_json::json;
use std::time::Duration;

use super::{Engine, EngineError, Event, Result, JITD};
use crate::config::{Segment, UnknownManager, VendorsConfig};
use crate::core::model::{
    Decision, Kind, Request, RequestId, Route, State, Uid, UnixTime, Verdict,
};
use crate::core::risk::RiskAssessment;
use crate::core::vendor::{self, Approver, Host, Vendor, VendorAsk, VendorError, VendorId};
use crate::core::workflow;
use crate::deadlines::Due;
use crate::directory::Person;
use crate::store::{AuditEvent, Writer};

/// The audit detail of a vendor: what approvers and auditors need, the
/// key only as its fingerprint.
fn described(v: &Vendor) -> serde_json::Value {
    json!({
        "vendor": v.id,
        "organization": v.ask.organization,
        "name": v.ask.name,
        "email": v.ask.email,
        "account": v.account,
        "resources": v.ask.resources,
        "segments": v.ask.segments,
        "duration_secs": v.ask.duration.as_secs(),
        "project": v.ask.project,
        "reason": v.ask.reason,
        "key": vendor::fingerprint(v),
        "sponsor": v.sponsor,
        "manager": v.manager,
    })
}

fn vendor_event<'a>(
    who: Option<&'a Person>,
    at: UnixTime,
    event: &'a str,
    detail: serde_json::Value,
) -> AuditEvent<'a> {
    AuditEvent {
        at,
        actor_uid: who.map(|p| p.uid),
        actor: who.map_or(JITD, |p| p.name.as_str()),
        event,
        request: None,
        detail,
    }
}

impl Engine {
    fn vendors_config(&self) -> std::result::Result<&VendorsConfig, VendorError> {
        self.config
            .vendors
            .as_ref()
            .ok_or(VendorError::NotConfigured)
    }

    /// Whether `who` is a vendor account (its uid in the vendors' range, or
    /// its name with their prefix): vendors ask for nothing themselves;
    /// their sponsors do (no privileged resource ever reaches a vendor).
    pub(super) fn is_vendor(&self, who: &Person) -> bool {
        self.config
            .vendors
            .as_ref()
            .is_some_and(|c| c.uids.contains(&who.uid) || who.name.starts_with(&c.prefix))
    }

    /// Whether `who` is a vendor whose access is active: the one kind of
    /// user who enrolls a second factor at login (their first), since they
    /// have no shell before it.
    pub(super) fn enrolls_at_login(&self, who: &Person) -> Result<bool> {
        if !self.is_vendor(who) {
            return Ok(false);
        }
        Ok(self
            .store
            .vendors(true)?
            .iter()
            .any(|v| v.uid == Some(who.uid) && v.account == who.name && v.state == State::Active))
    }

    pub(super) fn load_vendor(&self, id: VendorId) -> Result<Vendor> {
        Ok(self.store.vendor(id)?.ok_or(VendorError::NotFound(id))?)
    }

    /// A sponsor asks for a vendor account: pending until the sponsor's
    /// manager and security approve.
    pub fn vendor_request(&mut self, who: &Person, ask: VendorAsk) -> Result<Vendor> {
        let config = self.vendors_config()?.clone();
        if !who.matches_any(&config.sponsors) {
            return Err(VendorError::NotSponsor.into());
        }
        let vendor_resources: Vec<&str> = self
            .config
            .resources
            .iter()
            .filter(|r| r.vendors)
            .map(|r| r.name.as_str())
            .collect();
        let segments: Vec<&str> = self
            .config
            .segments
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        vendor::validate(
            &ask,
            &config.prefix,
            &vendor_resources,
            &segments,
            config.max_duration,
        )?;
        let account = format!("{}{}", config.prefix, ask.name);
        let known = nix::unistd::User::from_name(&account)
            .ok()
            .flatten()
            .is_some();
        if known || self.store.vendor_account_in_use(&account)? {
            return Err(VendorError::NameTaken(account).into());
        }
        let pending = self
            .store
            .vendors(true)?
            .iter()
            .filter(|v| v.sponsor_uid == who.uid && v.state == State::Pending)
            .count();
        let limit = self.config.limits.pending_per_user;
        if pending >= limit as usize {
            return Err(super::EngineError::TooManyPending { limit });
        }
        let manager = self.config.managers.get(&who.name).cloned();
        if manager.is_none() && config.unknown_manager == UnknownManager::Refuse {
            return Err(VendorError::NoManager.into());
        }
        let now = self.clock.wall();
        let mut vendor = Vendor {
            id: 0,
            ask,
            account,
            uid: None,
            sponsor_uid: who.uid,
            sponsor: who.name.clone(),
            manager,
            requested_at: now,
            state: State::Pending,
            decisions: Vec::new(),
            expires_at: None,
            ended_at: None,
            ended_by: None,
            host: Host::None,
        };
        vendor.id = self.store.write(|w| -> Result<VendorId> {
            let id = w.insert_vendor(&vendor)?;
            vendor.id = id;
            let mut detail = described(&vendor);
            detail["manager_known"] = json!(vendor.manager.is_some());
            w.audit(&vendor_event(Some(who), now, "vendor_requested", detail))?;
            Ok(id)
        })?;
        self.track_vendor(&vendor);
        Ok(vendor)
    }

    /// `who` approves or denies vendor request `id`; the second approval
    /// gives the vendor a uid and one grant per resource, from now for the
    /// asked duration.
    pub fn vendor_decide(
        &mut self,
        who: &Person,
        id: VendorId,
        verdict: Verdict,
        comment: &str,
    ) -> Result<(Vendor, Vec<Event>)> {
        let config = self.vendors_config()?.clone();
        let vendor = self.load_vendor(id)?;
        let lapses_at = vendor.requested_at + workflow::secs(self.config.requests.pending_ttl.0);
        if vendor.state == State::Pending && self.clock.wall() >= lapses_at {
            // Its deadline is due: lapsed, whether or not the tick ran yet.
            return Err(VendorError::NotPending {
                id,
                state: State::Lapsed,
            }
            .into());
        }
        let role = vendor::approver_role(
            &vendor,
            &Approver {
                uid: who.uid,
                name: &who.name,
                manager_role: who.matches_any(&self.config.roles.manager),
                security: who.matches_any(&self.config.roles.security),
            },
        )?;
        workflow::validate_comment(comment, verdict == Verdict::Deny)?;
        let now = self.clock.wall();
        let decision = Decision {
            uid: who.uid,
            name: who.name.clone(),
            role,
            verdict,
            comment: comment.to_owned(),
            at: now,
        };
        let mut decided = vendor.clone();
        decided.decisions.push(decision.clone());
        let complete = verdict == Verdict::Approve && vendor::awaiting(&decided).is_empty();
        let uid = if complete {
            let highest = self.store.highest_vendor_uid()?;
            Some(vendor::next_uid(&config.uids, highest, |uid| {
                nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
                    .ok()
                    .flatten()
                    .is_some()
            })?)
        } else {
            None
        };
        let grants = self.store.write(|w| -> Result<Vec<RequestId>> {
            w.add_vendor_decision(id, &decision)?;
            let event = match verdict {
                Verdict::Approve => "vendor_approved",
                Verdict::Deny => "vendor_denied",
            };
            let detail = json!({
                "vendor": id,
                "account": vendor.account,
                "sponsor": vendor.sponsor,
                "role": role.as_str(),
                "comment": comment,
            });
            w.audit(&vendor_event(Some(who), now, event, detail))?;
            if verdict == Verdict::Deny {
                w.end_vendor(id, State::Denied, now, &who.name)?;
                return Ok(Vec::new());
            }
            match uid {
                Some(uid) => grant_vendor(w, &vendor, uid, now),
                None => Ok(Vec::new()),
            }
        })?;
        let vendor = self.load_vendor(id)?;
        let mut events = Vec::new();
        if vendor.state != State::Pending {
            self.vendor_deadlines.cancel(id);
            events.push(Event::VendorChanged { id });
        }
        for grant in grants {
            let grant = self.load(grant)?;
            events.extend(self.after_activation(&grant));
        }
        Ok((vendor, events))
    }

    /// Ends vendor `id`'s access now (its sponsor, security or root): its
    /// grants are revoked, its account locked by the keeper. A pending
    /// request is withdrawn.
    pub fn vendor_revoke(
        &mut self,
        who: &Person,
        id: VendorId,
        comment: &str,
    ) -> Result<(Vendor, Vec<Event>)> {
        let vendor = self.load_vendor(id)?;
        let admin = who.is_root() || who.matches_any(&self.config.roles.security);
        if !admin && who.uid != vendor.sponsor_uid {
            return Err(VendorError::NotApprover(
                id,
                "only its sponsor or security ends it".into(),
            )
            .into());
        }
        if !matches!(vendor.state, State::Pending | State::Active) {
            return Err(VendorError::NotActive {
                id,
                state: vendor.state,
            }
            .into());
        }
        let now = self.clock.wall();
        let mut ending = Vec::new();
        for grant in self.store.vendor_grants(id)? {
            let grant = self.load(grant)?;
            if !grant.state.is_final() {
                ending.push(grant);
            }
        }
        let event = match vendor.state {
            State::Pending => "vendor_withdrawn",
            _ => "vendor_revoked",
        };
        self.store.write(|w| -> Result<()> {
            for grant in &ending {
                w.set_state(
                    grant.id,
                    State::Revoked,
                    grant.expires_at,
                    Some((now, &who.name)),
                )?;
                w.audit(&AuditEvent {
                    at: now,
                    actor_uid: Some(who.uid),
                    actor: &who.name,
                    event: "revoked",
                    request: Some(grant.id),
                    detail: json!({"comment": comment, "vendor": id}),
                })?;
            }
            w.end_vendor(id, State::Revoked, now, &who.name)?;
            let detail = json!({
                "vendor": id,
                "account": vendor.account,
                "sponsor": vendor.sponsor,
                "comment": comment,
            });
            w.audit(&vendor_event(Some(who), now, event, detail))
                .map_err(Into::into)
        })?;
        let mut events = vec![Event::VendorChanged { id }];
        for grant in &ending {
            events.extend(self.after_end(grant, State::Revoked, &[]));
        }
        let vendor = self.load_vendor(id)?;
        self.track_vendor(&vendor);
        Ok((vendor, events))
    }

    /// Vendors whose every grant is over once `ending` end: their access
    /// ends with them, in the same transaction (`end_vendors`).
    pub(super) fn vendors_ended_by(&self, ending: &[RequestId]) -> Result<Vec<VendorId>> {
        let mut ended = Vec::new();
        for grant in ending {
            let Some(id) = self.store.vendor_of_grant(*grant)? else {
                continue;
            };
            if ended.contains(&id) || self.load_vendor(id)?.state != State::Active {
                continue;
            }
            let mut all_over = true;
            for other in self.store.vendor_grants(id)? {
                if !ending.contains(&other) && !self.load(other)?.state.is_final() {
                    all_over = false;
                }
            }
            if all_over {
                ended.push(id);
            }
        }
        Ok(ended)
    }

    /// After a commit that ended vendors: their retention deadline, and
    /// the keeper woken to lock their accounts.
    pub(super) fn after_vendors_ended(&mut self, ended: &[VendorId]) -> Result<Vec<Event>> {
        let mut events = Vec::new();
        for id in ended {
            let vendor = self.load_vendor(*id)?;
            self.track_vendor(&vendor);
            events.push(Event::VendorChanged { id: *id });
        }
        Ok(events)
    }

    /// The vendors a reader may see: their own sponsorships, those they
    /// approve (the named manager, the manager role for sponsors without
    /// one, security), and all of them for root, security and auditors.
    pub fn vendors_for(&self, who: &Person, all: bool) -> Result<Vec<Vendor>> {
        let sees_all = self.sees_all(who);
        let manager_role = who.matches_any(&self.config.roles.manager);
        Ok(self
            .store
            .vendors(!all)?
            .into_iter()
            .filter(|v| {
                sees_all
                    || v.sponsor_uid == who.uid
                    || v.manager.as_deref() == Some(who.name.as_str())
                    || (v.manager.is_none() && manager_role)
                    || v.decisions.iter().any(|d| d.uid == who.uid)
            })
            .collect())
    }

    pub fn vendor_for(&self, who: &Person, id: VendorId) -> Result<Vendor> {
        self.vendors_for(who, true)?
            .into_iter()
            .find(|v| v.id == id)
            .ok_or_else(|| VendorError::NotFound(id).into())
    }

    /// Every vendor whose account is not deleted yet, and what the host
    /// should hold for it now: the keeper's work list.
    pub fn vendor_host_work(&self) -> Result<Vec<(Vendor, Host)>> {
        let Some(config) = &self.config.vendors else {
            return Ok(Vec::new());
        };
        let now = self.clock.wall();
        Ok(self
            .store
            .vendors(true)?
            .into_iter()
            .map(|v| {
                let target = vendor::host_target(&v, now, config.retention);
                (v, target)
            })
            .filter(|(v, target)| v.host != *target)
            .collect())
    }

    /// The accounts jitd made for vendors and has not deleted, with their
    /// uids: any other of the prefix or range is unknown.
    pub fn vendor_accounts(&self) -> Result<std::collections::HashSet<(String, u32)>> {
        Ok(self
            .store
            .vendors(true)?
            .into_iter()
            .filter_map(|v| Some((v.account, v.uid?)))
            .collect())
    }

    /// The keeper brought vendor `id`'s account to `host`: recorded with
    /// its audit event (`detail` says what was done).
    pub fn vendor_host_reached(
        &mut self,
        id: VendorId,
        host: Host,
        detail: serde_json::Value,
    ) -> Result<()> {
        let event = match host {
            Host::Created => "vendor_account_created",
            Host::Locked => "vendor_account_locked",
            Host::Deleted => "vendor_account_deleted",
            Host::None => "vendor_account_none",
        };
        let now = self.clock.wall();
        self.store.write(|w| -> Result<()> {
            w.set_vendor_host(id, host)?;
            w.audit(&vendor_event(None, now, event, detail))?;
            Ok(())
        })
    }

    /// An account of the vendors' prefix or uid range that no vendor of
    /// jitd's is: reported (security is told), never trusted.
    pub fn report_unknown_vendor_account(&mut self, name: &str, uid: u32) -> Result<()> {
        let now = self.clock.wall();
        self.store.write(|w| -> Result<()> {
            let detail = json!({"account": name, "uid": uid});
            w.audit(&vendor_event(None, now, "vendor_account_unknown", detail))?;
            Ok(())
        })
    }

    /// Every active vendor's uid and the segments it was granted, as the
    /// config defines them now: the keeper's egress rules. A segment the
    /// config no longer has is left out (its traffic is dropped with the
    /// rest), never guessed.
    pub fn vendor_egress(&self) -> Result<Vec<(Uid, Vec<Segment>)>> {
        if self.config.vendors.is_none() {
            return Ok(Vec::new());
        }
        let mut egress = Vec::new();
        for v in self.store.vendors(true)? {
            let (State::Active, Some(uid)) = (v.state, v.uid) else {
                continue;
            };
            let mut segments = Vec::new();
            for name in &v.ask.segments {
                match self.config.segments.iter().find(|s| &s.name == name) {
                    Some(segment) => segments.push(segment.clone()),
                    None => tracing::warn!(
                        vendor = v.id,
                        segment = name,
                        "a vendor's segment is no longer in the config: not granted"
                    ),
                }
            }
            egress.push((uid, segments));
        }
        Ok(egress)
    }

    /// The vendors' egress rules could not be applied: audited once per
    /// run of failures (the keeper retries).
    pub fn report_segments_failure(&mut self, error: &str) -> Result<()> {
        let now = self.clock.wall();
        self.store.write(|w| -> Result<()> {
            let detail = json!({"table": "inet jit_vendors", "error": error});
            w.audit(&vendor_event(None, now, "vendor_segments_failed", detail))?;
            Ok(())
        })
    }

    /// A keeper step that failed: audited, security told.
    pub fn report_vendor_host_failure(&mut self, id: VendorId, error: &str) -> Result<()> {
        let now = self.clock.wall();
        self.store.write(|w| -> Result<()> {
            let detail = json!({"vendor": id, "error": error});
            w.audit(&vendor_event(None, now, "vendor_account_failed", detail))?;
            Ok(())
        })
    }

    /// A vendor's next deadline: a pending request lapses like any other;
    /// an ended vendor's account is due for deletion after the retention.
    pub(super) fn track_vendor(&mut self, vendor: &Vendor) {
        self.vendor_deadlines.cancel(vendor.id);
        let (precise, boot) = (self.clock.wall_precise(), self.clock.boot());
        let due = match vendor.state {
            State::Pending => Some((
                Due::Lapse,
                vendor.requested_at + workflow::secs(self.config.requests.pending_ttl.0),
            )),
            State::Expired | State::Revoked if vendor.host != Host::Deleted => {
                let retention = self
                    .config
                    .vendors
                    .as_ref()
                    .map_or(Duration::ZERO, |c| c.retention);
                vendor
                    .ended_at
                    .map(|ended| (Due::Expire, ended + workflow::secs(retention)))
            }
            _ => None,
        };
        if let Some((kind, at)) = due {
            self.vendor_deadlines
                .schedule(vendor.id, kind, at, precise, boot);
        }
    }

    /// At start: every vendor's deadline. Without `[vendors]`, or with a
    /// uid range that leaves them out, accounts jitd made and has not
    /// deleted would be left unlocked, unfiltered or no longer known as
    /// vendors': refused.
    pub(super) fn track_vendors(&mut self) -> Result<()> {
        let open = self.store.vendors(true)?;
        // Outside the range, a vendor's uid would be neither dropped by the
        // range's rule nor held back until the rules are in place.
        let range = self.config.vendors.as_ref().map(|v| &v.uids);
        let outside: Vec<String> = open
            .iter()
            .filter(|v| {
                v.uid
                    .is_some_and(|uid| !range.is_some_and(|r| r.contains(&uid)))
            })
            .map(|v| v.account.clone())
            .collect();
        if !outside.is_empty() {
            return Err(EngineError::VendorsUnconfigured(outside.join(", ")));
        }
        for vendor in open {
            self.track_vendor(&vendor);
        }
        Ok(())
    }

    /// Vendor deadlines due: pending requests lapse; ended vendors are due
    /// for deletion (the keeper does it).
    pub(super) fn tick_vendors(&mut self) -> Result<Vec<Event>> {
        let due = self.vendor_deadlines.take_due(self.clock.boot());
        let now = self.clock.wall();
        let mut events = Vec::new();
        for (id, kind) in due {
            let vendor = self.load_vendor(id)?;
            match (kind, vendor.state) {
                (Due::Lapse, State::Pending) => {
                    self.store.write(|w| -> Result<()> {
                        w.end_vendor(id, State::Lapsed, now, JITD)?;
                        let detail = json!({"vendor": id, "why": "nobody decided in time"});
                        w.audit(&vendor_event(None, now, "vendor_lapsed", detail))?;
                        Ok(())
                    })?;
                }
                (Due::Expire, _) => events.push(Event::VendorChanged { id }),
                _ => self.track_vendor(&vendor),
            }
        }
        Ok(events)
    }
}

/// Inside the approval's transaction: the vendor's uid and end, and one
/// active grant per resource, each linked to the vendor.
fn grant_vendor(
    w: &mut Writer<'_>,
    vendor: &Vendor,
    uid: u32,
    now: UnixTime,
) -> Result<Vec<RequestId>> {
    let expires_at = now + workflow::secs(vendor.ask.duration);
    w.activate_vendor(vendor.id, uid, expires_at)?;
    let mut grants = Vec::new();
    for resource in &vendor.ask.resources {
        let grant = Request {
            id: 0,
            kind: Kind::Grant,
            uid,
            user: vendor.account.clone(),
            resource: resource.clone(),
            duration: vendor.ask.duration,
            reason: vendor.ask.reason.clone(),
            ticket: Some(vendor.ask.project.clone()),
            requested_at: vendor.requested_at,
            starts_at: None,
            route: Route::Vendor,
            risk: RiskAssessment {
                score: 0,
                factors: Vec::new(),
            },
            state: State::Pending,
            decisions: Vec::new(),
            expires_at: None,
            activate_by: None,
            ended_at: None,
            ended_by: None,
            ticket_check: None,
            follow_up: None,
            policy: None,
        };
        let id = w.insert_request(&grant)?;
        w.link_vendor_grant(id, vendor.id)?;
        super::transitions::activate(w, id, &grant, now, "vendor")?;
        grants.push(id);
    }
    let detail = json!({
        "vendor": vendor.id,
        "account": vendor.account,
        "sponsor": vendor.sponsor,
        "uid": uid,
        "expires_at": expires_at,
        "grants": grants,
    });
    w.audit(&vendor_event(None, now, "vendor_activated", detail))?;
    Ok(grants)
}

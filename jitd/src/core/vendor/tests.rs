use super::*;

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJJoh7aFHdlOQw3F4ncOqGBGZVJfam3fUsQBinqqlwNT jdoe@laptop";

fn ask() -> VendorAsk {
    VendorAsk {
        organization: "Acme DB Tuning".into(),
        name: "jdoe".into(),
        email: "jdoe@acme.example".into(),
        resources: vec!["ssh".into()],
        segments: vec!["db-net".into()],
        duration: Duration::from_secs(2 * 86400),
        project: "PRJ-7".into(),
        reason: "tune the replica".into(),
        key: Some(KEY.into()),
    }
}

fn check(ask: &VendorAsk) -> Result<(), VendorError> {
    validate(
        ask,
        "v-",
        &["ssh", "db"],
        &["db-net"],
        Duration::from_secs(7 * 86400),
    )
}

fn vendor(manager: Option<&str>) -> Vendor {
    Vendor {
        id: 3,
        ask: ask(),
        account: "v-jdoe".into(),
        uid: None,
        sponsor_uid: 1000,
        sponsor: "alice".into(),
        manager: manager.map(Into::into),
        requested_at: 0,
        state: State::Pending,
        decisions: Vec::new(),
        expires_at: None,
        ended_at: None,
        ended_by: None,
        host: Host::None,
    }
}

fn approver(uid: Uid, name: &str, manager_role: bool, security: bool) -> Approver<'_> {
    Approver {
        uid,
        name,
        manager_role,
        security,
    }
}

fn approve(v: &mut Vendor, uid: Uid, role: Role) {
    v.decisions.push(Decision {
        uid,
        name: format!("u{uid}"),
        role,
        verdict: Verdict::Approve,
        comment: String::new(),
        at: 1,
    });
}

#[test]
fn a_well_formed_request_passes_and_each_bad_field_is_named() {
    assert_eq!(check(&ask()), Ok(()));
    let bad = |change: fn(&mut VendorAsk)| {
        let mut a = ask();
        change(&mut a);
        check(&a).unwrap_err()
    };
    assert!(matches!(
        bad(|a| a.name = "JDoe".into()),
        VendorError::BadName(..)
    ));
    assert!(matches!(
        bad(|a| a.name = "-x".into()),
        VendorError::BadName(..)
    ));
    assert!(matches!(
        bad(|a| a.name = "a:b".into()),
        VendorError::BadName(..)
    ));
    // The prefix and the name fit useradd's 32 characters.
    assert!(matches!(
        bad(|a| a.name = "a".repeat(31)),
        VendorError::BadName(_, 30)
    ));
    assert!(matches!(
        bad(|a| a.email = "not an address".into()),
        VendorError::BadEmail(_)
    ));
    assert_eq!(
        bad(|a| a.organization = " ".into()),
        VendorError::BadField("organization")
    );
    assert_eq!(
        bad(|a| a.project = "x".repeat(129)),
        VendorError::BadField("project")
    );
    assert!(matches!(
        bad(|a| a.reason = String::new()),
        VendorError::Workflow(_)
    ));
    assert!(matches!(
        bad(|a| a.duration = Duration::from_secs(8 * 86400)),
        VendorError::OverCap { .. }
    ));
    assert_eq!(bad(|a| a.resources.clear()), VendorError::NoResources);
    assert_eq!(
        bad(|a| a.resources = vec!["sudo".into()]),
        VendorError::NotForVendors("sudo".into())
    );
    assert_eq!(
        bad(|a| a.segments = vec!["office".into()]),
        VendorError::UnknownSegment("office".into())
    );
    assert!(matches!(
        bad(|a| a.key = Some("ssh-ed25519 AAAA".into())),
        VendorError::BadKey(_)
    ));
}

#[test]
fn the_host_gets_the_key_alone_under_restrict() {
    assert_eq!(
        key_line(KEY).unwrap(),
        "restrict ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJJoh7aFHdlOQw3F4ncOqGBGZVJfam3fUsQBinqqlwNT"
    );
    // Options of the sponsor's file and a second key are not carried over.
    let with_options = format!("command=\"/bin/sh\",no-pty {KEY}");
    assert!(key_line(&with_options).is_err());
    assert!(key_line(&format!("{KEY}\n{KEY}")).is_err());
}

#[test]
fn the_sponsors_manager_and_security_approve_two_distinct_people_never_the_sponsor() {
    let mut v = vendor(Some("mike"));
    // The sponsor, even holding both roles.
    assert_eq!(
        approver_role(&v, &approver(1000, "alice", true, true)),
        Err(VendorError::SelfApproval)
    );
    // Another manager is not alice's manager.
    assert!(matches!(
        approver_role(&v, &approver(1001, "maria", true, false)),
        Err(VendorError::NotApprover(3, _))
    ));
    assert_eq!(
        approver_role(&v, &approver(1002, "mike", false, false)),
        Ok(Role::Manager)
    );
    approve(&mut v, 1002, Role::Manager);
    // mike again, even as security too: one role per person.
    assert_eq!(
        approver_role(&v, &approver(1002, "mike", false, true)),
        Err(VendorError::AlreadyDecided(3))
    );
    assert_eq!(awaiting(&v), [Role::Security]);
    assert_eq!(
        approver_role(&v, &approver(1003, "sam", false, true)),
        Ok(Role::Security)
    );
    approve(&mut v, 1003, Role::Security);
    assert!(awaiting(&v).is_empty());
}

#[test]
fn without_a_known_manager_the_manager_role_approves_in_their_place() {
    let v = vendor(None);
    assert_eq!(
        approver_role(&v, &approver(1001, "maria", true, false)),
        Ok(Role::Manager)
    );
    assert!(matches!(
        approver_role(&v, &approver(1004, "oscar", false, false)),
        Err(VendorError::NotApprover(..))
    ));
}

#[test]
fn uids_are_never_reused_and_skip_those_taken() {
    let range = 70000..=70003;
    assert_eq!(next_uid(&range, None, |_| false), Ok(70000));
    // 70001 was given and its account deleted since: still not reused.
    assert_eq!(next_uid(&range, Some(70001), |_| false), Ok(70002));
    assert_eq!(next_uid(&range, Some(70001), |uid| uid == 70002), Ok(70003));
    assert_eq!(
        next_uid(&range, Some(70003), |_| false),
        Err(VendorError::UidsExhausted)
    );
}

#[test]
fn chage_gets_the_day_after_the_end_and_the_host_follows_the_state() {
    // 2026-12-06 23:59:59 UTC ends on day 20793: expired from day 20794.
    assert_eq!(expire_day(1_796_601_599), 20_794);
    assert_eq!(expire_day(1_796_601_600), 20_795);
    let retention = Duration::from_secs(30 * 86400);
    let mut v = vendor(None);
    assert_eq!(host_target(&v, 10, retention), Host::None);
    // Withdrawn before approval: no account, nothing to lock.
    v.state = State::Revoked;
    v.ended_at = Some(5);
    assert_eq!(host_target(&v, 10, retention), Host::None);
    v.uid = Some(70_000);
    v.state = State::Active;
    assert_eq!(host_target(&v, 10, retention), Host::Created);
    v.state = State::Revoked;
    v.ended_at = Some(100);
    assert_eq!(host_target(&v, 100, retention), Host::Locked);
    assert_eq!(host_target(&v, 100 + 30 * 86400, retention), Host::Deleted);
}

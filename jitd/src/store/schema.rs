//! Schema and migrations, versioned by `PRAGMA user_version`.

use rusqlite::Connection;

use super::{Result, StoreError};

const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE requests (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    extends       INTEGER REFERENCES requests(id),
    uid           INTEGER NOT NULL,
    user          TEXT NOT NULL,
    resource      TEXT NOT NULL,
    duration_secs INTEGER NOT NULL,
    reason        TEXT NOT NULL,
    ticket        TEXT,
    requested_at  INTEGER NOT NULL,
    route         TEXT NOT NULL,
    risk          TEXT NOT NULL,
    state         TEXT NOT NULL,
    expires_at    INTEGER,
    ended_at      INTEGER,
    ended_by      TEXT
);
CREATE INDEX requests_open ON requests(state) WHERE state IN ('pending', 'active');
CREATE INDEX requests_user ON requests(uid, resource);
CREATE INDEX requests_extends ON requests(extends) WHERE extends IS NOT NULL;
CREATE TABLE decisions (
    request INTEGER NOT NULL REFERENCES requests(id),
    uid     INTEGER NOT NULL,
    name    TEXT NOT NULL,
    role    TEXT NOT NULL,
    verdict TEXT NOT NULL,
    comment TEXT NOT NULL,
    at      INTEGER NOT NULL,
    PRIMARY KEY (request, uid)
);
CREATE TABLE audit (
    id        INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    actor_uid INTEGER,
    actor     TEXT NOT NULL,
    event     TEXT NOT NULL,
    request   INTEGER,
    detail    TEXT NOT NULL,
    mac       BLOB NOT NULL
);
CREATE INDEX audit_request ON audit(request);
CREATE INDEX audit_at ON audit(at);
CREATE TABLE audit_head (
    one     INTEGER PRIMARY KEY CHECK (one = 1),
    last_id INTEGER NOT NULL,
    mac     BLOB NOT NULL,
    seal    BLOB NOT NULL
);
"#,
    r#"
CREATE TABLE sessions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    grant_id     INTEGER NOT NULL REFERENCES requests(id),
    uid          INTEGER NOT NULL,
    service      TEXT NOT NULL,
    tty          TEXT NOT NULL,
    rhost        TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    cgroup       TEXT,
    opened_at    INTEGER NOT NULL,
    closed_at    INTEGER
);
CREATE INDEX sessions_grant ON sessions(grant_id);
"#,
    r#"
CREATE TABLE recordings (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    grant_id     INTEGER NOT NULL REFERENCES requests(id),
    uid          INTEGER NOT NULL,
    user         TEXT NOT NULL,
    resource     TEXT NOT NULL,
    path         TEXT NOT NULL,
    started_at   INTEGER NOT NULL,
    ended_at     INTEGER,
    sha256       TEXT,
    bytes        INTEGER,
    end_reason   TEXT
);
CREATE INDEX recordings_grant ON recordings(grant_id);
CREATE INDEX recordings_started ON recordings(started_at);
"#,
    r#"
CREATE TABLE break_glass_cases (
    grant_id       INTEGER PRIMARY KEY REFERENCES requests(id),
    holder         INTEGER NOT NULL,
    due_at         INTEGER NOT NULL,
    justification  TEXT,
    justified_at   INTEGER,
    overdue_at     INTEGER,
    closed_at      INTEGER
);
CREATE INDEX break_glass_open ON break_glass_cases(due_at) WHERE closed_at IS NULL;
CREATE TABLE break_glass_reviews (
    grant_id INTEGER NOT NULL REFERENCES break_glass_cases(grant_id),
    role     TEXT NOT NULL,
    uid      INTEGER NOT NULL,
    name     TEXT NOT NULL,
    verdict  TEXT NOT NULL,
    comment  TEXT NOT NULL,
    at       INTEGER NOT NULL,
    PRIMARY KEY (grant_id, role)
);
CREATE TABLE incidents (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    grant_id      INTEGER NOT NULL REFERENCES break_glass_cases(grant_id),
    opened_at     INTEGER NOT NULL,
    opened_by_uid INTEGER NOT NULL,
    opened_by     TEXT NOT NULL,
    comment       TEXT NOT NULL
);
CREATE INDEX requests_break_glass ON requests(uid, requested_at) WHERE route = 'break_glass';
"#,
    // The notification outbox: rows are queued in the transaction of the
    // audit event that causes them, and marked as their delivery goes.
    r#"
CREATE TABLE notifications (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    audit_id     INTEGER NOT NULL,
    request      INTEGER,
    event        TEXT NOT NULL,
    channel      TEXT NOT NULL,
    target       TEXT NOT NULL,
    subject      TEXT NOT NULL,
    notice       TEXT NOT NULL,
    state        TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL,
    next_at_ms   INTEGER NOT NULL,
    last_error   TEXT,
    delivered_at INTEGER
);
CREATE INDEX notifications_due ON notifications(next_at_ms) WHERE state = 'pending';
CREATE INDEX notifications_request ON notifications(request);
"#,
    // A session's process, named across restarts by (pid, start time):
    // jitd records the session's end when that process exits.
    "ALTER TABLE sessions ADD COLUMN started INTEGER;",
    // Sessions are never deleted, so plain rowids never repeat: without
    // AUTOINCREMENT, registering one (on every sudo) writes one page less.
    r#"
CREATE TABLE sessions_v2 (
    id           INTEGER PRIMARY KEY,
    grant_id     INTEGER NOT NULL REFERENCES requests(id),
    uid          INTEGER NOT NULL,
    service      TEXT NOT NULL,
    tty          TEXT NOT NULL,
    rhost        TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    cgroup       TEXT,
    opened_at    INTEGER NOT NULL,
    closed_at    INTEGER,
    started      INTEGER
);
INSERT INTO sessions_v2 (id, grant_id, uid, service, tty, rhost, pid, cgroup, opened_at, closed_at, started)
    SELECT id, grant_id, uid, service, tty, rhost, pid, cgroup, opened_at, closed_at, started FROM sessions;
DROP TABLE sessions;
ALTER TABLE sessions_v2 RENAME TO sessions;
CREATE INDEX sessions_grant ON sessions(grant_id);
"#,
    // A login shell's recording is written by jitd itself: one still open
    // when jitd starts has lost its writer and is sealed as found.
    r#"
ALTER TABLE recordings ADD COLUMN login INTEGER NOT NULL DEFAULT 0;
CREATE INDEX recordings_open ON recordings(grant_id) WHERE ended_at IS NULL;
"#,
    // Every recording is written by jitd from its recorder's pipe, one per
    // session. digest_of says what a digest vouches for: "session" (the
    // bytes jitd received), "file" (the file as found, its writer gone),
    // "recorder" (a root recorder's own report, before this version).
    r#"
ALTER TABLE recordings ADD COLUMN session INTEGER;
ALTER TABLE recordings ADD COLUMN digest_of TEXT;
UPDATE recordings SET digest_of = CASE
    WHEN end_reason = 'abandoned' THEN 'file'
    WHEN login = 1 THEN 'session'
    ELSE 'recorder' END
  WHERE ended_at IS NOT NULL;
CREATE UNIQUE INDEX recordings_session ON recordings(session) WHERE session IS NOT NULL;
"#,
    // Managed accounts (W3) in jitd's custody. state 'rotating': jitd is
    // giving the account a new random password and locking it (or was,
    // when it stopped: done again at start); 'held': locked, with a
    // password nobody knows. Keyed fingerprints of the current password
    // and of the /etc/shadow field jitd wrote (changed behind its back if
    // it differs at start).
    r#"
CREATE TABLE accounts (
    name              TEXT PRIMARY KEY,
    state             TEXT NOT NULL CHECK (state IN ('rotating', 'held')),
    fingerprint       TEXT,
    field_fingerprint TEXT,
    updated_at        INTEGER NOT NULL
);
"#,
    // Checkout and check-in (W3): 'checking_out' (being unlocked with a
    // new password for grant_id, or was when jitd stopped: locked again at
    // start) and 'checked_out' (unlocked for grant_id). SQLite cannot widen
    // a CHECK in place: the table is rebuilt.
    r#"
CREATE TABLE accounts_v2 (
    name              TEXT PRIMARY KEY,
    state             TEXT NOT NULL
                      CHECK (state IN ('rotating', 'held', 'checking_out', 'checked_out')),
    grant_id          INTEGER REFERENCES requests(id),
    fingerprint       TEXT,
    field_fingerprint TEXT,
    updated_at        INTEGER NOT NULL,
    CHECK ((grant_id IS NOT NULL) = (state IN ('checking_out', 'checked_out')))
);
INSERT INTO accounts_v2 (name, state, fingerprint, field_fingerprint, updated_at)
    SELECT name, state, fingerprint, field_fingerprint, updated_at FROM accounts;
DROP TABLE accounts;
ALTER TABLE accounts_v2 RENAME TO accounts;
"#,
    // Group memberships jitd adds for a grant's lifetime (M.1): 'adding'
    // and 'removing' are written before gpasswd runs, 'added' after; a
    // removed membership's row is deleted. A membership jitd did not add
    // has no row and is never touched.
    r#"
CREATE TABLE memberships (
    user       TEXT NOT NULL,
    grp        TEXT NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('adding', 'added', 'removing')),
    grant_id   INTEGER REFERENCES requests(id),
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (user, grp)
);
"#,
    // Root's recovery secret (W3, root_custody): the /etc/shadow field of
    // the escrowed password jitd writes between grants, and the password's
    // keyed fingerprint; never the password.
    r#"
ALTER TABLE accounts ADD COLUMN escrow_field TEXT;
ALTER TABLE accounts ADD COLUMN escrow_fingerprint TEXT;
"#,
    // What changed during a privileged grant (W3 item 6): the snapshot at
    // its start (JSON, core::changes::Snapshot), and once it ended, the
    // difference (JSON, core::changes::Changes).
    r#"
CREATE TABLE snapshots (
    grant_id INTEGER PRIMARY KEY REFERENCES requests(id),
    taken_at INTEGER NOT NULL,
    snapshot TEXT NOT NULL
);
CREATE TABLE grant_changes (
    grant_id INTEGER PRIMARY KEY REFERENCES requests(id),
    at       INTEGER NOT NULL,
    changes  TEXT NOT NULL
);
"#,
    // Root's recovery password may have been read (its file was on the
    // host while a privileged grant lasted): kept until a renewal succeeds.
    r#"
ALTER TABLE accounts ADD COLUMN escrow_exposed INTEGER NOT NULL DEFAULT 0;
"#,
    // TOTP second factors (docs/design.md "MFA"): the seed sealed to the
    // uid with a key derived from audit.key (never in clear), the last
    // step whose code was accepted (a code is good once), and the count of
    // wrong codes behind a lockout.
    r#"
CREATE TABLE mfa (
    uid           INTEGER PRIMARY KEY,
    user          TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('pending', 'enrolled')),
    secret        BLOB NOT NULL,
    pending_until INTEGER,
    last_step     INTEGER,
    failures      INTEGER NOT NULL DEFAULT 0,
    locked_until  INTEGER,
    updated_at    INTEGER NOT NULL,
    CHECK ((pending_until IS NOT NULL) = (state = 'pending'))
);
"#,
    // MFA step-up (docs/design.md "MFA step-up"): a grant of a resource
    // with `require_mfa` is approved first, and usable once its holder
    // proves a second factor before `activate_by`.
    r#"
ALTER TABLE requests ADD COLUMN activate_by INTEGER;
DROP INDEX requests_open;
CREATE INDEX requests_open ON requests(state) WHERE state IN ('pending', 'approved', 'active');
"#,
    // Sponsored vendor accounts (docs/design.md "Vendor accounts"): the
    // request and its approvals, the uid given at approval (never given
    // again: rows are kept after the account is deleted), where the host
    // is (`host`), and the grants the approval made.
    r#"
CREATE TABLE vendors (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    organization TEXT NOT NULL,
    name         TEXT NOT NULL,
    email        TEXT NOT NULL,
    resources    TEXT NOT NULL,
    segments     TEXT NOT NULL,
    duration_secs INTEGER NOT NULL,
    project      TEXT NOT NULL,
    reason       TEXT NOT NULL,
    key          TEXT,
    account      TEXT NOT NULL,
    uid          INTEGER UNIQUE,
    sponsor_uid  INTEGER NOT NULL,
    sponsor      TEXT NOT NULL,
    manager      TEXT,
    requested_at INTEGER NOT NULL,
    state        TEXT NOT NULL,
    expires_at   INTEGER,
    ended_at     INTEGER,
    ended_by     TEXT,
    host         TEXT NOT NULL DEFAULT 'none'
);
CREATE INDEX vendors_open ON vendors(state) WHERE host != 'deleted';
CREATE TABLE vendor_decisions (
    vendor  INTEGER NOT NULL REFERENCES vendors(id),
    uid     INTEGER NOT NULL,
    name    TEXT NOT NULL,
    role    TEXT NOT NULL,
    verdict TEXT NOT NULL,
    comment TEXT NOT NULL,
    at      INTEGER NOT NULL,
    PRIMARY KEY (vendor, uid)
);
CREATE TABLE vendor_grants (
    grant_id INTEGER PRIMARY KEY REFERENCES requests(id),
    vendor   INTEGER NOT NULL REFERENCES vendors(id)
);
CREATE INDEX vendor_grants_vendor ON vendor_grants(vendor);
"#,
    // The SIEM feed's cursor per sink (docs/design.md "SIEM feed").
    r#"
CREATE TABLE siem_cursors (
    sink             TEXT PRIMARY KEY,
    through          INTEGER NOT NULL DEFAULT 0,
    anchored_through INTEGER NOT NULL DEFAULT 0,
    anchored_at      INTEGER NOT NULL DEFAULT 0,
    delivered_at     INTEGER,
    failing_since    INTEGER,
    last_error       TEXT
);
"#,
    // Denied access (docs/design.md "Denied access"): the windows of
    // coalesced denials still open, each with its count so far, rewritten
    // by each flush that changed it; a window's row goes when its record
    // is in the audit trail. Rows found at start were left by a jitd that
    // stopped without closing them: written then. uid NULL: the overflow.
    r#"
CREATE TABLE denial_windows (
    id        INTEGER PRIMARY KEY,
    uid       INTEGER,
    resource  TEXT NOT NULL,
    service   TEXT NOT NULL,
    tty       TEXT NOT NULL,
    rhost     TEXT NOT NULL,
    count     INTEGER NOT NULL,
    first     INTEGER NOT NULL,
    last      INTEGER NOT NULL,
    closes_at INTEGER NOT NULL
);
"#,
    // The standing-privilege scan's snapshots: the count of each one for
    // the trend, the whole report for the first and the newest.
    r#"
CREATE TABLE standing_scans (
    id     INTEGER PRIMARY KEY,
    at     INTEGER NOT NULL,
    actor  TEXT NOT NULL,
    total  INTEGER NOT NULL,
    counts TEXT NOT NULL,
    errors INTEGER NOT NULL,
    report TEXT
);
"#,
    // The reports (docs/design.md "Reports"): requests by when they
    // were made, and when each was granted (or approved, then awaiting its
    // holder's second factor), found without reading every audit row (both
    // audit indexes are partial: appending any other event never touches
    // them); a grant's sessions in the order they opened (the same one
    // index entry a session as before, for their union without a sort).
    r#"
CREATE INDEX requests_requested ON requests(requested_at);
CREATE INDEX audit_granted ON audit(request, at) WHERE event = 'granted';
CREATE INDEX audit_awaiting ON audit(request, at) WHERE event = 'awaiting_activation';
DROP INDEX sessions_grant;
CREATE INDEX sessions_grant ON sessions(grant_id, opened_at);
"#,
    // The denied-access report: the `access_denied*` events by when they
    // were written, without reading any other audit row (partial: no
    // other event touches it).
    r#"
CREATE INDEX audit_denied ON audit(at) WHERE event LIKE 'access_denied%';
"#,
    // Scheduled grants (docs/design.md "Scheduled grants"): a request may
    // name its start; approved ahead of it, it is `scheduled` until then.
    // Time to access counts to the approval (`scheduled`), found like
    // `granted`.
    r#"
ALTER TABLE requests ADD COLUMN starts_at INTEGER;
DROP INDEX requests_open;
CREATE INDEX requests_open ON requests(state)
    WHERE state IN ('pending', 'approved', 'scheduled', 'active');
CREATE INDEX audit_scheduled ON audit(request, at) WHERE event = 'scheduled';
"#,
    // The `[[policy]]` rule that approved a request or lowered its route
    // (W1.10); NULL for every request before.
    "ALTER TABLE requests ADD COLUMN policy TEXT;",
    // The latest check of a request's ticket by the `[tickets]` validator
    // (W1.11), as JSON; NULL where none was made.
    "ALTER TABLE requests ADD COLUMN ticket_check TEXT;",
];

pub fn migrate(conn: &mut Connection) -> Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let supported = MIGRATIONS.len() as i64;
    if version > supported {
        return Err(StoreError::TooNew {
            found: version,
            supported,
        });
    }
    let tx = conn.transaction()?;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index as i64 + 1)?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database one migration behind: its sessions keep their ids and
    /// columns, and new ones carry on after the highest id.
    #[test]
    fn sessions_lose_autoincrement_and_keep_their_rows() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        let before = MIGRATIONS
            .iter()
            .position(|m| m.contains("sessions_v2"))
            .unwrap();
        for sql in &MIGRATIONS[..before] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", before as i64)
            .unwrap();
        conn.execute_batch(
            "INSERT INTO requests (id, uid, user, resource, duration_secs, reason, requested_at, route, risk, state)
                 VALUES (1, 61001, 'alice', 'logs', 60, 'r', 0, 'auto', '{}', 'active');
             INSERT INTO sessions (id, grant_id, uid, service, tty, rhost, pid, cgroup, opened_at, closed_at, started)
                 VALUES (7, 1, 61001, 'sudo', '/dev/pts/1', '', 42, NULL, 10, 20, 99);",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let row: (i64, String, i64, Option<i64>, Option<i64>) = conn
            .query_row(
                "SELECT id, service, pid, closed_at, started FROM sessions",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .unwrap();
        assert_eq!(row, (7, "sudo".into(), 42, Some(20), Some(99)));
        conn.execute(
            "INSERT INTO sessions (grant_id, uid, service, tty, rhost, pid, opened_at)
                 VALUES (1, 61001, 'sshd', '', '', 43, 30)",
            [],
        )
        .unwrap();
        assert_eq!(conn.last_insert_rowid(), 8);
        let sql: String = conn
            .query_row(
                "SELECT sql FROM sqlite_master WHERE name = 'sessions'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(!sql.contains("AUTOINCREMENT"), "{sql}");
        let indexed: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'sessions_grant'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(indexed, 1);
    }
}

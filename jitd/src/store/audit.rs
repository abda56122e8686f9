//! The append-only audit trail with an HMAC-SHA256 chain (threat T19).
//!
//! Row n's MAC covers row n's fields and row n-1's MAC, so editing or
//! deleting any row breaks every MAC after it. A sealed head (last id and
//! MAC, itself MACed) makes deleting the newest rows detectable too.

use ring::rand::{SecureRandom, SystemRandom};
use ring::{aead, hmac};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use std::fs::OpenOptions;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use zeroize::Zeroizing;

use super::{Result, StoreError};

const KEY_LEN: usize = 32;

pub struct AuditKey {
    chain: hmac::Key,
    /// For fingerprints of secrets, derived from the chain's key: one key
    /// file, and no fingerprint is ever a MAC of the chain.
    fingerprints: hmac::Key,
    /// Seals the secrets jitd must read back (MFA seeds), derived the same way.
    sealing: aead::LessSafeKey,
}

impl AuditKey {
    fn new(bytes: &[u8]) -> Result<AuditKey> {
        let chain = hmac::Key::new(hmac::HMAC_SHA256, bytes);
        let derived = hmac::sign(&chain, b"jit: the key of secrets' fingerprints");
        let sealing = hmac::sign(&chain, b"jit: the key of sealed secrets");
        let sealing = aead::UnboundKey::new(&aead::AES_256_GCM, sealing.as_ref())
            .map_err(|_| StoreError::Corrupt("cannot derive the sealing key".into()))?;
        Ok(AuditKey {
            fingerprints: hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()),
            chain,
            sealing: aead::LessSafeKey::new(sealing),
        })
    }

    /// `secret` sealed (AES-256-GCM under a random nonce, stored in front)
    /// to `context`: a sealed value copied to another row (another
    /// user's) does not open there.
    pub fn seal(&self, context: &[u8], secret: &[u8]) -> Result<Vec<u8>> {
        let failed = || StoreError::Corrupt("cannot seal a secret".into());
        let mut nonce = [0u8; aead::NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).map_err(|_| failed())?;
        let mut sealed = secret.to_vec();
        self.sealing
            .seal_in_place_append_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(context),
                &mut sealed,
            )
            .map_err(|_| failed())?;
        let mut out = nonce.to_vec();
        out.append(&mut sealed);
        Ok(out)
    }

    /// What [`AuditKey::seal`] sealed to `context`; `None` if it was
    /// sealed to another context or with another key, or was altered.
    pub fn open(&self, context: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        let (nonce, text) = sealed.split_at_checked(aead::NONCE_LEN)?;
        let nonce = aead::Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut text = Zeroizing::new(text.to_vec());
        let plain = self
            .sealing
            .open_in_place(nonce, aead::Aad::from(context), &mut text)
            .ok()?
            .len();
        text.truncate(plain);
        Some(text)
    }

    /// A keyed fingerprint of `secret` (a managed account's password): with
    /// the key, one can tell whether a text was that secret; without it,
    /// nothing about the secret can be learnt or guessed offline.
    pub fn fingerprint(&self, secret: &[u8]) -> String {
        let tag = hmac::sign(&self.fingerprints, secret);
        crate::core::hex(&tag.as_ref()[..16])
    }

    /// Reads the key, or creates it (0600, from the system CSPRNG) on first start.
    pub fn load_or_create(path: &Path) -> Result<AuditKey> {
        let key_error = |source| StoreError::Key {
            path: path.display().to_string(),
            source,
        };
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(mut file) => {
                let mut bytes = [0u8; KEY_LEN];
                SystemRandom::new()
                    .fill(&mut bytes)
                    .map_err(|_| key_error(std::io::Error::other("system random source failed")))?;
                file.write_all(&bytes).map_err(key_error)?;
                file.sync_all().map_err(key_error)?;
                AuditKey::new(&bytes)
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                let mut bytes = Vec::new();
                std::fs::File::open(path)
                    .and_then(|mut f| f.read_to_end(&mut bytes))
                    .map_err(key_error)?;
                if bytes.len() != KEY_LEN {
                    return Err(key_error(std::io::Error::other(format!(
                        "expected {KEY_LEN} bytes, found {}",
                        bytes.len()
                    ))));
                }
                AuditKey::new(&bytes)
            }
            Err(e) => Err(key_error(e)),
        }
    }
}

/// One event to append.
pub struct AuditEvent<'a> {
    pub at: i64,
    /// `None` for jitd itself (expiry, lapse, clock changes).
    pub actor_uid: Option<u32>,
    pub actor: &'a str,
    pub event: &'a str,
    pub request: Option<u64>,
    pub detail: serde_json::Value,
}

/// One stored event, as shown to readers.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRecord {
    pub id: i64,
    pub at: i64,
    pub actor_uid: Option<u32>,
    pub actor: String,
    pub event: String,
    pub request: Option<u64>,
    pub detail: serde_json::Value,
    /// The event concerns an emergency (break-glass) grant.
    pub break_glass: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Verification {
    pub ok: bool,
    pub rows: u64,
    pub problem: Option<String>,
}

/// Unambiguous encoding: every field is length-prefixed.
fn row_mac(key: &AuditKey, prev: &[u8], fields: &[&[u8]]) -> hmac::Tag {
    hmac::sign(&key.chain, &chain_input(prev, fields))
}

fn encode_row(
    id: i64,
    at: i64,
    actor_uid: Option<u32>,
    actor: &str,
    event: &str,
    request: Option<u64>,
    detail: &str,
) -> [Vec<u8>; 7] {
    let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into()).into_bytes();
    [
        id.to_string().into_bytes(),
        at.to_string().into_bytes(),
        opt(actor_uid.map(|u| u.to_string())),
        actor.as_bytes().to_vec(),
        event.as_bytes().to_vec(),
        opt(request.map(|r| r.to_string())),
        detail.as_bytes().to_vec(),
    ]
}

fn seal(key: &AuditKey, last_id: i64, mac: &[u8]) -> hmac::Tag {
    row_mac(key, mac, &[b"head", last_id.to_string().as_bytes()])
}

/// Appends `e` and returns its row id. Statements are cached: every state
/// change, every sudo and login included, comes through here.
pub fn append(conn: &Connection, key: &AuditKey, e: &AuditEvent<'_>) -> Result<i64> {
    let head: Option<(i64, Vec<u8>)> = conn
        .prepare_cached("SELECT last_id, mac FROM audit_head WHERE one = 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (prev_id, prev_mac) = head.unwrap_or((0, Vec::new()));
    let id = prev_id + 1;
    let detail = e.detail.to_string();
    let fields = encode_row(id, e.at, e.actor_uid, e.actor, e.event, e.request, &detail);
    let refs: Vec<&[u8]> = fields.iter().map(Vec::as_slice).collect();
    let mac = row_mac(key, &prev_mac, &refs);
    conn.prepare_cached(
        "INSERT INTO audit (id, at, actor_uid, actor, event, request, detail, mac)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        id,
        e.at,
        e.actor_uid,
        e.actor,
        e.event,
        e.request,
        detail,
        mac.as_ref()
    ])?;
    conn.prepare_cached(
        "INSERT INTO audit_head (one, last_id, mac, seal) VALUES (1, ?1, ?2, ?3)
         ON CONFLICT (one) DO UPDATE SET last_id = excluded.last_id, mac = excluded.mac, seal = excluded.seal",
    )?
    .execute(params![id, mac.as_ref(), seal(key, id, mac.as_ref()).as_ref()])?;
    Ok(id)
}

pub fn verify(conn: &Connection, key: &AuditKey) -> Result<Verification> {
    let failed = |rows, problem: String| Verification {
        ok: false,
        rows,
        problem: Some(problem),
    };
    let mut stmt = conn.prepare(
        "SELECT id, at, actor_uid, actor, event, request, detail, mac FROM audit ORDER BY id",
    )?;
    let mut rows = stmt.query([])?;
    let mut prev_mac: Vec<u8> = Vec::new();
    let mut expected_id = 1i64;
    let mut count = 0u64;
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        if id != expected_id {
            return Ok(failed(
                count,
                format!("row {expected_id} is missing (next row is {id})"),
            ));
        }
        let detail: String = row.get(6)?;
        let fields = encode_row(
            id,
            row.get(1)?,
            row.get(2)?,
            &row.get::<_, String>(3)?,
            &row.get::<_, String>(4)?,
            row.get(5)?,
            &detail,
        );
        let refs: Vec<&[u8]> = fields.iter().map(Vec::as_slice).collect();
        let stored: Vec<u8> = row.get(7)?;
        if hmac::verify(&key.chain, &chain_input(&prev_mac, &refs), &stored).is_err() {
            return Ok(failed(count, format!("row {id} was altered")));
        }
        prev_mac = stored;
        expected_id += 1;
        count += 1;
    }
    let head: Option<(i64, Vec<u8>, Vec<u8>)> = conn
        .query_row(
            "SELECT last_id, mac, seal FROM audit_head WHERE one = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let last_id = expected_id - 1;
    match head {
        None if count == 0 => {}
        None => return Ok(failed(count, "the audit head is missing".into())),
        Some((head_id, head_mac, head_seal)) => {
            let sealed = seal(key, head_id, &head_mac);
            if sealed.as_ref() != head_seal.as_slice() {
                return Ok(failed(count, "the audit head was altered".into()));
            }
            if head_id != last_id || head_mac != prev_mac {
                return Ok(failed(
                    count,
                    format!("rows {}..={head_id} are missing from the end", last_id + 1),
                ));
            }
        }
    }
    Ok(Verification {
        ok: true,
        rows: count,
        problem: None,
    })
}

/// What a MAC covers: the previous MAC and each field, length-prefixed.
fn chain_input(prev: &[u8], fields: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(prev.len() as u64).to_be_bytes());
    out.extend_from_slice(prev);
    for field in fields {
        out.extend_from_slice(&(field.len() as u64).to_be_bytes());
        out.extend_from_slice(field);
    }
    out
}

pub fn read_since(
    conn: &Connection,
    since: i64,
    only_uid: Option<u32>,
) -> Result<Vec<AuditRecord>> {
    // Events about the user's own requests, or that the user caused.
    let mut stmt = conn.prepare(
        "SELECT a.id, a.at, a.actor_uid, a.actor, a.event, a.request, a.detail,
                r.route IS 'break_glass'
         FROM audit a LEFT JOIN requests r ON r.id = a.request
         WHERE a.at >= ?1 AND (?2 IS NULL OR r.uid = ?2 OR a.actor_uid = ?2)
         ORDER BY a.id",
    )?;
    let rows = stmt.query_map(params![since, only_uid], |r| {
        let detail: String = r.get(6)?;
        Ok(AuditRecord {
            id: r.get(0)?,
            at: r.get(1)?,
            actor_uid: r.get(2)?,
            actor: r.get(3)?,
            event: r.get(4)?,
            request: r.get(5)?,
            detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::String(detail)),
            break_glass: r.get(7)?,
        })
    })?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn store_with_events(n: usize) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        for i in 0..n {
            store
                .write(|w| {
                    w.audit(&AuditEvent {
                        at: i as i64,
                        actor_uid: Some(1000),
                        actor: "alice",
                        event: "requested",
                        request: Some(i as u64),
                        detail: serde_json::json!({"reason": format!("r{i}'); DROP TABLE audit;--")}),
                    })
                })
                .unwrap();
        }
        (dir, store)
    }

    fn verify_after(sql: &str) -> Verification {
        let (_dir, store) = store_with_events(5);
        assert!(store.verify_audit().unwrap().ok);
        store.conn().execute_batch(sql).unwrap();
        store.verify_audit().unwrap()
    }

    #[test]
    fn intact_chain_verifies() {
        let (_dir, store) = store_with_events(5);
        assert_eq!(
            store.verify_audit().unwrap(),
            Verification {
                ok: true,
                rows: 5,
                problem: None
            }
        );
    }

    #[test]
    fn edits_and_deletions_anywhere_are_detected() {
        let cases = [
            (
                "UPDATE audit SET detail = '{}' WHERE id = 3",
                "row 3 was altered",
            ),
            (
                "UPDATE audit SET actor = 'mallory' WHERE id = 1",
                "row 1 was altered",
            ),
            (
                "UPDATE audit SET at = at + 1 WHERE id = 5",
                "row 5 was altered",
            ),
            ("DELETE FROM audit WHERE id = 2", "row 2 is missing"),
            (
                "DELETE FROM audit WHERE id = 5",
                "rows 5..=5 are missing from the end",
            ),
            (
                "DELETE FROM audit WHERE id >= 4",
                "rows 4..=5 are missing from the end",
            ),
            (
                "UPDATE audit_head SET last_id = 4",
                "the audit head was altered",
            ),
            ("DELETE FROM audit_head", "the audit head is missing"),
        ];
        for (sql, want) in cases {
            let v = verify_after(sql);
            assert!(!v.ok, "{sql}");
            assert!(
                v.problem.as_deref().unwrap().contains(want),
                "{sql}: {:?}",
                v.problem
            );
        }
    }

    #[test]
    fn a_different_key_fails_verification() {
        let (dir, store) = store_with_events(2);
        drop(store);
        std::fs::remove_file(dir.path().join("audit.key")).unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert!(!store.verify_audit().unwrap().ok);
    }

    #[test]
    fn key_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let (dir, _store) = store_with_events(0);
        let mode = std::fs::metadata(dir.path().join("audit.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

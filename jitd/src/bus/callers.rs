//! Who is calling: the Unix uid (and pid) the bus daemon reports for a connection.
//!
//! A connection's credentials are taken by the bus when it connects and never
//! change, and a bus never reuses a unique name, so an answer stays true for
//! as long as jitd's own connection lives: it is cached without following
//! disconnects. (Following them would wake jitd twice for every connection
//! any program on the host makes, every sudo included.) The cache is bounded;
//! a forgotten name is simply asked again. A failed lookup (the caller
//! already gone: polkit CVE-2021-3560) is an error, never a default identity.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use zbus::fdo::DBusProxy;
use zbus::names::{BusName, UniqueName};
use zbus::Connection;

use super::{BusError, CallLimits};
use crate::core::model::Uid;

/// Bounds memory: past this many names the cache starts over.
const MAX_CACHED: usize = 16_384;

#[derive(Clone, Copy, Debug)]
struct Credentials {
    uid: Uid,
    pid: Option<u32>,
}

#[derive(Clone)]
pub struct Callers {
    cache: Arc<Mutex<HashMap<String, Credentials>>>,
    limits: CallLimits,
}

impl Callers {
    pub fn new(limits: CallLimits) -> Callers {
        Callers {
            cache: Arc::default(),
            limits,
        }
    }

    /// The caller's uid and pid (the process that opened the connection).
    pub async fn uid_and_pid(
        &self,
        conn: &Connection,
        sender: Option<&UniqueName<'_>>,
    ) -> Result<(Uid, u32), BusError> {
        let creds = self.credentials(conn, sender).await?;
        let pid = creds.pid.ok_or_else(|| {
            BusError::NotAuthorized("the bus did not report the caller's pid".into())
        })?;
        Ok((creds.uid, pid))
    }

    pub async fn uid(
        &self,
        conn: &Connection,
        sender: Option<&UniqueName<'_>>,
    ) -> Result<Uid, BusError> {
        Ok(self.credentials(conn, sender).await?.uid)
    }

    async fn credentials(
        &self,
        conn: &Connection,
        sender: Option<&UniqueName<'_>>,
    ) -> Result<Credentials, BusError> {
        let creds = self.lookup(conn, sender).await?;
        // Every method asks who calls: each call counts against its user.
        self.limits.admit(creds.uid)?;
        Ok(creds)
    }

    async fn lookup(
        &self,
        conn: &Connection,
        sender: Option<&UniqueName<'_>>,
    ) -> Result<Credentials, BusError> {
        let sender =
            sender.ok_or_else(|| BusError::NotAuthorized("message has no sender".into()))?;
        if let Some(known) = self.lock().get(sender.as_str()).copied() {
            return Ok(known);
        }
        let reply = DBusProxy::new(conn)
            .await?
            .get_connection_credentials(BusName::Unique(sender.to_owned()))
            .await
            .map_err(|e| BusError::NotAuthorized(format!("cannot identify caller: {e}")))?;
        let uid = reply.unix_user_id().ok_or_else(|| {
            BusError::NotAuthorized("the bus did not report the caller's uid".into())
        })?;
        let creds = Credentials {
            uid,
            pid: reply.process_id(),
        };
        let mut cache = self.lock();
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(sender.to_string(), creds);
        Ok(creds)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Credentials>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }
}

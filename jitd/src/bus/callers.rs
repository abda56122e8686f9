//! Who is calling: the Unix uid the bus daemon reports for a connection.
//!
//! Unique names are never reused on a bus and a connection's credentials
//! never change, so answers are cached until the name disconnects. A failed
//! lookup (the caller already gone: polkit CVE-2021-3560) is an error, never a
//! default identity.

use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use zbus::fdo::{ConnectionCredentials, DBusProxy};
use zbus::names::{BusName, UniqueName};
use zbus::Connection;

use super::BusError;
use crate::core::model::Uid;

/// Bounds memory if disconnect signals were ever missed.
const MAX_CACHED: usize = 65_536;

#[derive(Clone)]
pub struct Callers {
    cache: Arc<Mutex<HashMap<String, Uid>>>,
}

impl Callers {
    /// Starts following disconnects on `conn`.
    pub async fn watch(conn: &Connection) -> zbus::Result<Callers> {
        let callers = Callers {
            cache: Arc::new(Mutex::new(HashMap::new())),
        };
        let proxy = DBusProxy::new(conn).await?;
        let mut gone = proxy.receive_name_owner_changed().await?;
        let cache = Arc::clone(&callers.cache);
        tokio::spawn(async move {
            while let Some(signal) = gone.next().await {
                let Ok(args) = signal.args() else { continue };
                if args.new_owner().is_none() {
                    cache
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(args.name().as_str());
                }
            }
        });
        Ok(callers)
    }

    /// The caller's uid and pid, asked afresh (pids are not cached: only the
    /// session hook needs one, and it must be the live process).
    pub async fn uid_and_pid(
        &self,
        conn: &Connection,
        sender: Option<&UniqueName<'_>>,
    ) -> Result<(Uid, u32), BusError> {
        let creds = self.credentials(conn, sender).await?;
        match (creds.unix_user_id(), creds.process_id()) {
            (Some(uid), Some(pid)) => Ok((uid, pid)),
            _ => Err(BusError::NotAuthorized(
                "the bus did not report the caller's uid and pid".into(),
            )),
        }
    }

    async fn credentials(
        &self,
        conn: &Connection,
        sender: Option<&UniqueName<'_>>,
    ) -> Result<ConnectionCredentials, BusError> {
        let sender =
            sender.ok_or_else(|| BusError::NotAuthorized("message has no sender".into()))?;
        DBusProxy::new(conn)
            .await?
            .get_connection_credentials(BusName::Unique(sender.to_owned()))
            .await
            .map_err(|e| BusError::NotAuthorized(format!("cannot identify caller: {e}")))
    }

    pub async fn uid(
        &self,
        conn: &Connection,
        sender: Option<&UniqueName<'_>>,
    ) -> Result<Uid, BusError> {
        if let Some(uid) = sender.and_then(|name| {
            self.cache
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(name.as_str())
                .copied()
        }) {
            return Ok(uid);
        }
        let creds = self.credentials(conn, sender).await?;
        let uid = creds.unix_user_id().ok_or_else(|| {
            BusError::NotAuthorized("the bus did not report the caller's uid".into())
        })?;
        if let Some(name) = sender {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
            cache.insert(name.to_string(), uid);
        }
        Ok(uid)
    }
}

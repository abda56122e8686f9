//! Who is calling: the Unix uid the bus daemon reports for a connection.
//!
//! Unique names are never reused on a bus and a connection's credentials
//! never change, so answers are cached until the name disconnects. A failed
//! lookup (the caller already gone: polkit CVE-2021-3560) is an error, never a
//! default identity.

use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use zbus::fdo::DBusProxy;
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

    pub async fn uid(
        &self,
        conn: &Connection,
        sender: Option<&UniqueName<'_>>,
    ) -> Result<Uid, BusError> {
        let sender =
            sender.ok_or_else(|| BusError::NotAuthorized("message has no sender".into()))?;
        if let Some(uid) = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(sender.as_str())
        {
            return Ok(*uid);
        }
        let creds = DBusProxy::new(conn)
            .await?
            .get_connection_credentials(BusName::Unique(sender.to_owned()))
            .await
            .map_err(|e| BusError::NotAuthorized(format!("cannot identify caller: {e}")))?;
        let uid = creds.unix_user_id().ok_or_else(|| {
            BusError::NotAuthorized("the bus did not report the caller's uid".into())
        })?;
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(sender.to_string(), uid);
        Ok(uid)
    }
}

//! How many D-Bus calls each user may make (`[limits]`): a flood of calls
//! from one unprivileged user must not delay anyone else's requests, nor
//! pile up work for jitd (threat T30). Root is not limited (pam_jit on the
//! bus, and the admin), nor polkitd's account, which asks for everyone.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::BusError;
use crate::config::LimitsConfig;
use crate::core::model::Uid;
use crate::core::rate::Bucket;

/// Past this many remembered callers, full buckets are forgotten.
const PRUNE_AT: usize = 4096;

#[derive(Clone)]
pub struct CallLimits {
    /// Besides root.
    unlimited: Option<Uid>,
    rate: u32,
    burst: u32,
    start: Instant,
    buckets: Arc<Mutex<HashMap<Uid, Bucket>>>,
}

impl CallLimits {
    pub fn new(limits: &LimitsConfig) -> CallLimits {
        CallLimits {
            unlimited: None,
            rate: limits.calls_per_second,
            burst: limits.call_burst,
            start: Instant::now(),
            buckets: Arc::default(),
        }
    }

    /// Leaves `uid` unlimited too.
    pub fn unlimited(self, uid: Option<Uid>) -> CallLimits {
        CallLimits {
            unlimited: uid,
            ..self
        }
    }

    /// Counts one call from `uid`; refuses it past the limit.
    pub fn admit(&self, uid: Uid) -> Result<(), BusError> {
        if uid == 0 || Some(uid) == self.unlimited {
            return Ok(());
        }
        let now = self.start.elapsed().as_secs_f64();
        let (rate, burst) = (self.rate, self.burst);
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= PRUNE_AT {
            buckets.retain(|_, b| !b.is_full(now, rate, burst));
        }
        let bucket = buckets
            .entry(uid)
            .or_insert_with(|| Bucket::full(burst, now));
        if bucket.take(now, rate, burst) {
            Ok(())
        } else {
            Err(BusError::LimitExceeded(format!(
                "too many calls to jitd (more than {rate} a second); try again in a moment"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_user_has_a_burst_and_root_and_the_unlimited_have_none() {
        let limits = CallLimits::new(&LimitsConfig {
            pending_per_user: 5,
            calls_per_second: 1,
            call_burst: 3,
            ..LimitsConfig::default()
        })
        .unlimited(Some(995));
        for _ in 0..3 {
            assert!(limits.admit(1000).is_ok());
        }
        assert!(limits.admit(1000).is_err(), "past the burst");
        assert!(
            limits.admit(1001).is_ok(),
            "another user has a bucket of their own"
        );
        assert!((0..100).all(|_| limits.admit(0).is_ok() && limits.admit(995).is_ok()));
    }
}

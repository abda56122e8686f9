//! A token bucket: `rate` tokens a second, at most `burst` saved up. Time
//! is passed in (seconds since any fixed point), so every case is a table.

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bucket {
    tokens: f64,
    at: f64,
}

impl Bucket {
    /// A full bucket at time `now`.
    pub fn full(burst: u32, now: f64) -> Bucket {
        Bucket {
            tokens: f64::from(burst),
            at: now,
        }
    }

    /// Takes one token at `now` if there is one.
    pub fn take(&mut self, now: f64, rate: u32, burst: u32) -> bool {
        let elapsed = (now - self.at).max(0.0);
        self.tokens = (self.tokens + elapsed * f64::from(rate)).min(f64::from(burst));
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Whether it has refilled to `burst` by `now` (nothing to remember).
    pub fn is_full(&self, now: f64, rate: u32, burst: u32) -> bool {
        self.tokens + (now - self.at).max(0.0) * f64::from(rate) >= f64::from(burst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let mut b = Bucket::full(3, 0.0);
        assert!(b.take(0.0, 2, 3) && b.take(0.0, 2, 3) && b.take(0.0, 2, 3));
        assert!(!b.take(0.0, 2, 3), "the burst is spent");
        assert!(!b.take(0.4, 2, 3), "0.8 tokens refilled");
        assert!(b.take(0.5, 2, 3), "one token after half a second at 2/s");
        assert!(!b.is_full(1.0, 2, 3));
        assert!(b.is_full(10.0, 2, 3), "refills to the burst, no further");
        for _ in 0..3 {
            assert!(b.take(10.0, 2, 3));
        }
        assert!(!b.take(10.0, 2, 3));
        // A clock that steps back refills nothing.
        assert!(!b.take(5.0, 2, 3));
    }
}

//! What the SIEM feed sends a sink next (docs/design.md "SIEM feed"):
//! how many events fit before the next anchor, and when an anchor is due.
//! No I/O, no clock.

/// Where a sink stands: the newest audit id it took, and its last anchor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Position {
    pub through: u64,
    pub anchored_through: u64,
    /// Unix seconds.
    pub anchored_at: i64,
}

/// `[siem]`'s anchor settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnchorPolicy {
    /// Events between two anchors (at least 1).
    pub every: u64,
    /// Longest time between two anchors, events or not (seconds).
    pub interval: i64,
}

/// How many events the next batch may carry, at most `max`: a batch ends
/// where the count calls for an anchor, so anchors fall every `every` events.
pub fn batch_limit(at: Position, max: u64, policy: AnchorPolicy) -> u64 {
    let since = at.through.saturating_sub(at.anchored_through);
    policy.every.saturating_sub(since).clamp(1, max.max(1))
}

/// Whether a batch ending with event `last` (the sink's position if it
/// carries none) ends with an anchor naming `last`. Nothing is anchored
/// before the first event.
pub fn anchor_due(at: Position, last: u64, now: i64, policy: AnchorPolicy) -> bool {
    last > 0
        && (last.saturating_sub(at.anchored_through) >= policy.every
            || now.saturating_sub(at.anchored_at) >= policy.interval)
}

/// Seconds until an anchor falls due by time alone.
pub fn until_next_anchor(at: Position, now: i64, policy: AnchorPolicy) -> i64 {
    (at.anchored_at.saturating_add(policy.interval) - now).max(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: AnchorPolicy = AnchorPolicy {
        every: 100,
        interval: 300,
    };

    fn at(through: u64, anchored_through: u64, anchored_at: i64) -> Position {
        Position {
            through,
            anchored_through,
            anchored_at,
        }
    }

    #[test]
    fn batches_end_where_the_next_anchor_falls() {
        let cases = [
            (at(0, 0, 0), 500, 100),
            (at(40, 0, 0), 500, 60),
            (at(40, 0, 0), 25, 25),
            (at(100, 100, 0), 500, 100),
            // Behind an anchor that named a newer id (cannot happen; still bounded).
            (at(90, 100, 0), 500, 100),
            (at(250, 100, 0), 500, 1),
        ];
        for (position, max, want) in cases {
            assert_eq!(batch_limit(position, max, POLICY), want, "{position:?}");
        }
        assert_eq!(
            batch_limit(at(0, 0, 0), 500, AnchorPolicy { every: 1, ..POLICY }),
            1
        );
    }

    #[test]
    fn anchors_fall_by_count_or_by_time_never_before_the_first_event() {
        let now = 1_000;
        let cases = [
            (at(0, 0, 0), 0, false),
            (at(0, 0, now), 100, true),
            (at(0, 0, now), 99, false),
            (at(150, 100, now), 199, false),
            (at(150, 100, now), 200, true),
            (at(150, 100, now - 299), 150, false),
            (at(150, 100, now - 300), 150, true),
            (at(150, 150, now - 300), 150, true),
        ];
        for (position, last, want) in cases {
            assert_eq!(
                anchor_due(position, last, now, POLICY),
                want,
                "{position:?} {last}"
            );
        }
        assert_eq!(until_next_anchor(at(5, 5, now - 100), now, POLICY), 200);
        assert_eq!(until_next_anchor(at(5, 5, now - 900), now, POLICY), 0);
    }
}

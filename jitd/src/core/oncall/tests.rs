use super::*;

/// Unix seconds of an RFC 3339 UTC time, by humantime (an independent reading).
fn utc(text: &str) -> UnixTime {
    let t = humantime::parse_rfc3339(text).unwrap();
    t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as UnixTime
}

fn time(text: &str) -> UnixTime {
    parse_time_at(text.as_bytes()).unwrap_or_else(|e| panic!("{text}: {}", e.why))
}

#[test]
fn times_read_with_their_offsets() {
    for (text, expected) in [
        ("1970-01-01T00:00:00Z", 0),
        ("2026-12-06T22:00:00+01:00", utc("2026-12-06T21:00:00Z")),
        ("2026-12-06T22:00:00-05:30", utc("2026-12-07T03:30:00Z")),
        ("2026-12-07t00:30:00+02:00", utc("2026-12-06T22:30:00Z")),
        ("2026-12-06T22:00:00.999z", utc("2026-12-06T22:00:00Z")),
        // Leap days, the ends of months and years, before the epoch.
        ("2024-02-29T12:00:00Z", utc("2024-02-29T12:00:00Z")),
        ("2000-02-29T00:00:00Z", utc("2000-02-29T00:00:00Z")),
        ("2026-12-31T23:59:59Z", utc("2026-12-31T23:59:59Z")),
        ("2027-01-01T00:30:00+01:00", utc("2026-12-31T23:30:00Z")),
        ("1969-12-31T23:00:00Z", -3600),
        ("9999-12-31T23:59:59+23:59", utc("9999-12-31T00:00:59Z")),
    ] {
        assert_eq!(time(text), expected, "{text}");
    }
}

#[test]
fn every_day_of_four_centuries_agrees_with_humantime() {
    let mut day = utc("1970-01-01T00:00:00Z");
    while day < utc("2370-01-01T00:00:00Z") {
        let text = crate::core::model::rfc3339(day);
        assert_eq!(time(&text), day, "{text}");
        day += 86_400;
    }
}

/// The error a one-line file gives, as `line:col: message`.
fn error(text: &str) -> String {
    parse(text.as_bytes()).unwrap_err().to_string()
}

#[test]
fn each_wrong_line_names_its_line_and_column() {
    let ok = "alice 2026-12-06T22:00:00+01:00 2026-12-07T06:00:00+01:00";
    for (text, expected) in [
        ("bad/name 2026-12-06T22:00:00Z 2026-12-07T06:00:00Z", "1:1: 'bad/name' is not a user name"),
        ("group:ops 2026-12-06T22:00:00Z 2026-12-07T06:00:00Z", "1:1: 'group:ops' is not a user name"),
        ("alice", "1:6: the shift has no start time"),
        ("alice 2026-12-06T22:00:00Z  ", "1:27: the shift has no end time"),
        ("alice 2026-12-06 2026-12-07T06:00:00Z", "1:17: '2026-12-06' is not an RFC 3339 time with an offset: expected 'T' between the date and the time"),
        ("alice 2026-12-06T22:00:00 2026-12-07T06:00:00Z", "1:26: '2026-12-06T22:00:00' is not an RFC 3339 time with an offset: expected the UTC offset"),
        ("alice 2026-13-06T22:00:00Z 2027-01-07T06:00:00Z", "1:12: '2026-13-06T22:00:00Z' is not an RFC 3339 time with an offset: the month must be 01-12"),
        ("alice 2026-00-06T22:00:00Z 2027-01-07T06:00:00Z", "1:12: '2026-00-06T22:00:00Z' is not an RFC 3339 time with an offset: the month must be 01-12"),
        ("alice 2026-02-29T22:00:00Z 2026-03-07T06:00:00Z", "1:15: '2026-02-29T22:00:00Z' is not an RFC 3339 time with an offset: no such day in that month"),
        ("alice 2026-12-06T24:00:00Z 2026-12-07T06:00:00Z", "1:18: '2026-12-06T24:00:00Z' is not an RFC 3339 time with an offset: the hour must be 00-23"),
        ("alice 2026-12-06T22:60:00Z 2026-12-07T06:00:00Z", "1:21: '2026-12-06T22:60:00Z' is not an RFC 3339 time with an offset: the minutes must be 00-59"),
        ("alice 2026-12-06T22:00:60Z 2026-12-07T06:00:00Z", "1:24: '2026-12-06T22:00:60Z' is not an RFC 3339 time with an offset: the seconds must be 00-59"),
        ("alice 2026-12-06T22:00:00+1:00 2026-12-07T06:00:00Z", "1:27: '2026-12-06T22:00:00+1:00' is not an RFC 3339 time with an offset: expected the offset's two-digit hours"),
        ("alice 2026-12-06T22:00:00+0100 2026-12-07T06:00:00Z", "1:29: '2026-12-06T22:00:00+0100' is not an RFC 3339 time with an offset: expected ':' in the offset"),
        ("alice 2026-12-06T22:00:00+01:60 2026-12-07T06:00:00Z", "1:30: '2026-12-06T22:00:00+01:60' is not an RFC 3339 time with an offset: the offset's minutes must be 00-59"),
        ("alice 2026-12-06T22:00:00-00:00 2026-12-07T06:00:00Z", "1:26: '2026-12-06T22:00:00-00:00' is not an RFC 3339 time with an offset: -00:00 means an unknown offset"),
        ("alice 2026-12-06T22:00:00ZZ 2026-12-07T06:00:00Z", "1:27: '2026-12-06T22:00:00ZZ' is not an RFC 3339 time with an offset: unexpected text after the offset"),
        ("alice 2026-12-06T22:00:00.Z 2026-12-07T06:00:00Z", "1:27: '2026-12-06T22:00:00.Z' is not an RFC 3339 time with an offset: expected digits after '.'"),
        ("alice 26-12-06T22:00:00Z 2026-12-07T06:00:00Z", "1:7: '26-12-06T22:00:00Z' is not an RFC 3339 time with an offset: expected a four-digit year"),
        ("alice 2026-12-06T22:00:00Z 2026-12-07T06:00:00Z bob", "1:49: unexpected 'bob' after the shift's end"),
        ("alice 2026-12-07T06:00:00Z 2026-12-06T22:00:00Z", "1:28: the shift ends before it starts, or when it starts"),
        // The same instant in two offsets: an empty shift.
        ("alice 2026-12-06T22:00:00+01:00 2026-12-06T21:00:00Z", "1:33: the shift ends before it starts"),
        // Columns count characters, not bytes; lines count from 1.
        (&format!("# rota\n\n{ok}\n\tbob 2026-12-06T2é:00:00Z x"), "4:17: '2026-12-06T2é:00:00Z' is not an RFC 3339 time with an offset: expected a two-digit hour"),
        ("é 2026-12-06T22:00:00Z 2026-12-07T06:00:00Z", "1:1: 'é' is not a user name"),
    ] {
        let got = error(text);
        assert!(got.starts_with(expected), "{text:?}\n got: {got}\nwant: {expected}");
    }
}

#[test]
fn a_file_that_is_not_utf8_is_wrong_where_it_stops_being() {
    let bytes = b"alice 2026-12-06T22:00:00Z 2026-12-07T06:00:00Z\nb\xffob";
    assert_eq!(
        parse(bytes).unwrap_err().to_string(),
        "2:2: the file is not UTF-8"
    );
}

#[test]
fn comments_blank_lines_tabs_and_crlf_are_allowed() {
    let text = "# primary rota, written by the pager\r\n\
                \r\n\
                alice\t2026-12-06T22:00:00+01:00  2026-12-07T06:00:00+01:00   # night\r\n\
                   # indented comment\n\
                bob 2026-12-07T06:00:00+01:00 2026-12-07T14:00:00+01:00";
    let schedule = parse(text.as_bytes()).unwrap();
    assert_eq!(schedule.len(), 2);
    assert!(parse(b"").unwrap().is_empty());
    assert!(parse(b"# nobody this week\n").unwrap().is_empty());
}

/// alice's night, bob's day with carol overlapping its end, dave's week.
fn rota() -> Schedule {
    parse(
        b"alice 2026-12-06T22:00:00+01:00 2026-12-07T06:00:00+01:00
bob   2026-12-07T06:00:00+01:00 2026-12-07T14:00:00+01:00
carol 2026-12-07T12:00:00+01:00 2026-12-07T22:00:00+01:00
dave  2026-12-01T00:00:00Z      2026-12-08T00:00:00Z
alice 2026-12-07T22:00:00+01:00 2026-12-08T06:00:00+01:00
",
    )
    .unwrap()
}

#[test]
fn a_shift_holds_from_its_start_inclusive_to_its_end_exclusive() {
    let s = rota();
    let start = utc("2026-12-06T21:00:00Z");
    let end = utc("2026-12-07T05:00:00Z");
    assert!(!s.is_on_call("alice", start - 1));
    assert!(s.is_on_call("alice", start));
    assert!(s.is_on_call("alice", end - 1));
    assert!(
        !s.is_on_call("alice", end),
        "bob's shift starts: alice's ended"
    );
    assert!(s.is_on_call("bob", end));
    assert_eq!(s.holders_at(end - 1), ["alice", "dave"]);
    assert_eq!(s.holders_at(end), ["bob", "dave"]);
    // alice's next shift, from 22:00 local.
    assert!(s.is_on_call("alice", utc("2026-12-07T21:00:00Z")));
}

#[test]
fn overlapping_shifts_put_everyone_holding_one_on_call() {
    let s = rota();
    let overlap = utc("2026-12-07T11:30:00Z");
    assert_eq!(s.holders_at(overlap), ["bob", "carol", "dave"]);
    // After dave's long shift, which reaches across all the others.
    let after = utc("2026-12-08T00:00:00Z");
    assert_eq!(s.holders_at(after), ["alice"]);
    assert!(s.holders_at(utc("2026-12-09T00:00:00Z")).is_empty());
    assert!(s.holders_at(utc("2026-11-01T00:00:00Z")).is_empty());
    assert!(!s.is_on_call("mallory", overlap));
}

#[test]
fn the_same_user_twice_over_the_same_time_is_listed_once() {
    let s = parse(
        b"alice 2026-12-06T00:00:00Z 2026-12-07T00:00:00Z
alice 2026-12-06T12:00:00Z 2026-12-06T13:00:00Z",
    )
    .unwrap();
    assert_eq!(s.holders_at(utc("2026-12-06T12:30:00Z")), ["alice"]);
    assert!(s.is_on_call("alice", utc("2026-12-06T13:30:00Z")));
}

/// Lookups agree with a walk over every shift, at every boundary and
/// between, for shifts of every length in any order.
#[test]
fn lookups_agree_with_a_walk_over_every_shift() {
    let users = ["ann", "ben", "cat", "dan"];
    let mut shifts = Vec::new();
    let mut seed = 7u64;
    let mut next = || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        seed >> 33
    };
    for _ in 0..400 {
        let from = (next() % 10_000) as UnixTime;
        let length = if next() % 10 == 0 {
            3000
        } else {
            1 + (next() % 200) as UnixTime
        };
        let user = users[(next() % 4) as usize];
        shifts.push(Shift {
            user: user.into(),
            from,
            to: from + length,
        });
    }
    let schedule = Schedule::new(shifts.clone());
    let mut times: Vec<UnixTime> = shifts
        .iter()
        .flat_map(|s| [s.from - 1, s.from, s.to - 1, s.to])
        .collect();
    times.extend((0..13_500).step_by(7));
    for at in times {
        let mut expected: Vec<&str> = shifts
            .iter()
            .filter(|s| s.from <= at && at < s.to)
            .map(|s| s.user.as_str())
            .collect();
        expected.sort_unstable();
        expected.dedup();
        assert_eq!(schedule.holders_at(at), expected, "at {at}");
        for user in users {
            assert_eq!(
                schedule.is_on_call(user, at),
                expected.contains(&user),
                "{user} at {at}"
            );
        }
    }
}

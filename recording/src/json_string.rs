//! A JSON string writer for session output, byte for byte what serde_json
//! writes. Terminal output is long runs that need no escaping; serde_json
//! looks at every byte, which made it the recorder's largest cost after
//! SHA-256 (perf over 200 MB of text). Here a run is skipped eight bytes at a
//! time.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Appends `text` to `out` as a JSON string, quotes included.
pub fn push(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    // Bytes before `copied` are in `out`.
    let (mut copied, mut at) = (0, 0);
    while at < bytes.len() {
        if let Some(word) = bytes.get(at..at + 8) {
            let word = u64::from_le_bytes(word.try_into().unwrap_or_default());
            match first_to_escape(word) {
                None => {
                    at += 8;
                    continue;
                }
                Some(offset) => at += offset,
            }
        }
        let b = bytes[at];
        if let Some(escaped) = escape(b) {
            out.extend_from_slice(&bytes[copied..at]);
            out.extend_from_slice(escaped.as_bytes());
            copied = at + 1;
        }
        at += 1;
    }
    out.extend_from_slice(&bytes[copied..]);
    out.push(b'"');
}

/// Where the JSON string whose content starts `bytes` (after its opening
/// quote) ends: the index of its closing quote, if the content is valid
/// (no raw control character, only JSON's escapes). UTF-8 is the caller's
/// to check. Quotes and backslashes are found with memchr (SIMD), and each
/// run between them is checked for control characters in a loop the
/// compiler vectorizes: this runs on every byte jitd records.
pub fn content_end(bytes: &[u8]) -> Option<usize> {
    let mut at = 0;
    loop {
        let special = at + memchr::memchr2(b'"', b'\\', &bytes[at..])?;
        let has_control = bytes[at..special]
            .iter()
            .fold(false, |seen, &b| seen | (b < 0x20));
        if has_control {
            return None;
        }
        if bytes[special] == b'"' {
            return Some(special);
        }
        at = special + 1 + escape_len(bytes.get(special + 1..)?)?;
    }
}

/// The length of the escape after a backslash at the start of `bytes`. A
/// `\u` escape of a UTF-16 surrogate counts only as a pair (high, then low),
/// as serde_json reads it: a lone one would make the line unreadable to
/// `jitctl recordings play`, and the rest of the session with it.
fn escape_len(bytes: &[u8]) -> Option<usize> {
    match bytes.first()? {
        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Some(1),
        b'u' => match code_unit(bytes.get(1..5)?)? {
            0xD800..=0xDBFF => match (bytes.get(5..7)?, code_unit(bytes.get(7..11)?)?) {
                (b"\\u", 0xDC00..=0xDFFF) => Some(11),
                _ => None,
            },
            0xDC00..=0xDFFF => None,
            _ => Some(5),
        },
        _ => None,
    }
}

/// Four hex digits as a UTF-16 code unit.
fn code_unit(hex: &[u8]) -> Option<u16> {
    if !hex.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    u16::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()
}

/// The index of the first byte of `word` (little-endian) that is a control
/// character, `"` or `\`. Borrows in these tests can only mark bytes above
/// a true match, so the lowest mark is exact.
fn first_to_escape(word: u64) -> Option<usize> {
    let below = |n: u8| word.wrapping_sub(ONES * u64::from(n)) & !word & HIGHS;
    let equal = |c: u8| {
        let x = word ^ (ONES * u64::from(c));
        x.wrapping_sub(ONES) & !x & HIGHS
    };
    let marks = below(0x20) | equal(b'"') | equal(b'\\');
    (marks != 0).then(|| marks.trailing_zeros() as usize / 8)
}

/// How serde_json writes byte `b`, if not as itself.
fn escape(b: u8) -> Option<std::borrow::Cow<'static, str>> {
    Some(match b {
        b'"' => "\\\"".into(),
        b'\\' => "\\\\".into(),
        b'\n' => "\\n".into(),
        b'\r' => "\\r".into(),
        b'\t' => "\\t".into(),
        0x08 => "\\b".into(),
        0x0C => "\\f".into(),
        0x00..=0x1F => format!("\\u{b:04x}").into(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours(text: &str) -> String {
        let mut out = Vec::new();
        push(&mut out, text);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn every_character_class_is_written_as_serde_json_writes_it() {
        let mut all: String = (0u8..0x80).map(char::from).collect();
        all.push_str("é€😀\u{10FF41}");
        for text in [
            "",
            "plain",
            "exactly8",
            "line one\r\nline two\r\n",
            "\"quoted\" and \\back\\",
            &all,
        ] {
            assert_eq!(ours(text), serde_json::to_string(text).unwrap(), "{text:?}");
        }
    }

    #[test]
    fn a_byte_to_escape_is_found_at_every_position_of_a_word() {
        for special in ['\n', '"', '\\', '\u{1f}', '\0'] {
            for len in 1..24 {
                for at in 0..len {
                    let mut text: String = "a~ b".chars().cycle().take(len).collect();
                    text.insert(at, special);
                    assert_eq!(
                        ours(&text),
                        serde_json::to_string(&text).unwrap(),
                        "{text:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_string_ends_at_its_closing_quote_and_only_if_valid() {
        let mut all: String = (0u8..0x80).map(char::from).collect();
        all.push_str("é€😀\u{10FF41}");
        for text in ["", "plain", "exactly8", "\"", "a\\\"b", &all] {
            let json = serde_json::to_string(text).unwrap();
            let content = &json.as_bytes()[1..];
            assert_eq!(content_end(content), Some(content.len() - 1), "{json}");
            let mut longer = content.to_vec();
            longer.extend_from_slice(b",\"more\"]");
            assert_eq!(content_end(&longer), Some(content.len() - 1), "{json}");
        }
        assert_eq!(content_end(br#"\u00e9\/x""#), Some(9));
        for bad in [
            &b"no end"[..],
            b"\\x\"",
            b"\\u12\"",
            b"\\u12G4\"",
            b"\\",
            b"tab\there\"",
            b"long enough to skip a word, then \x01\"",
        ] {
            assert_eq!(content_end(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn surrogate_escapes_count_only_as_pairs_as_serde_json_reads_them() {
        for (content, valid) in [
            (&br#"\ud83d\ude00""#[..], true),
            (br#"x\uD83D\uDE00y""#, true),
            (br#"\ud83d""#, false),
            (br#"\ud83dx""#, false),
            (br#"\ude00""#, false),
            (br#"\ud83d\u0041""#, false),
            (br#"\ud83d\ud83d""#, false),
        ] {
            let text = String::from_utf8_lossy(content);
            let serde_reads = serde_json::from_slice::<String>(&[b"\"", content].concat()).is_ok();
            assert_eq!(serde_reads, valid, "serde_json on {text}");
            assert_eq!(content_end(content).is_some(), valid, "{text}");
        }
    }
}

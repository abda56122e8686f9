//! Making other people's text safe to print on a terminal (threat T20).
//!
//! Control characters, escape sequences, bidirectional controls and
//! characters that show nothing are shown as visible escapes, so what an
//! approver reads is exactly what was typed, and nothing can move the cursor,
//! rewrite the line, reorder it or hide text in it. `for_terminal` writes
//! them as `\u{..}`, `for_json` as JSON's own `\uXXXX` (lossless).

use std::borrow::Cow;

/// Characters that reorder text or show nothing (Unicode's bidi controls
/// and Default_Ignorable_Code_Point, variation selectors aside), and the
/// line separators, which break a line without a control character.
fn is_hidden(c: char) -> bool {
    matches!(c,
        '\u{00AD}'                    // soft hyphen
        | '\u{034F}'                  // combining grapheme joiner
        | '\u{061C}'                  // arabic letter mark (bidi)
        | '\u{115F}'..='\u{1160}'     // hangul fillers (blank)
        | '\u{17B4}'..='\u{17B5}'     // khmer inherent vowels (invisible)
        | '\u{180E}'                  // mongolian vowel separator
        | '\u{200B}'..='\u{200F}'     // zero-width space/joiners, LRM/RLM
        | '\u{2028}'..='\u{202E}'     // line/paragraph separators, bidi embeddings/overrides
        | '\u{2060}'..='\u{206F}'     // word joiner, invisible operators, bidi isolates, deprecated format
        | '\u{3164}'                  // hangul filler
        | '\u{FEFF}'                  // zero-width no-break space
        | '\u{FFA0}'                  // halfwidth hangul filler
        | '\u{FFF0}'..='\u{FFFB}'     // unassigned ignorables, interlinear annotations
        | '\u{1BCA0}'..='\u{1BCA3}'   // shorthand format controls
        | '\u{1D173}'..='\u{1D17A}'   // musical symbol format controls
        | '\u{E0000}'..='\u{E00FF}'   // tags (invisible ASCII), unassigned ignorables
        | '\u{E01F0}'..='\u{E0FFF}'   // unassigned ignorables
    )
}

/// Variation selectors pick the glyph of the character before them (emoji
/// or text style, CJK variants): one after a visible character is kept, so
/// "❤️" stays itself. Any other (a run of them carries hidden data) is
/// escaped.
fn is_variation_selector(c: char) -> bool {
    matches!(c,
        '\u{180B}'..='\u{180D}' | '\u{180F}' | '\u{FE00}'..='\u{FE0F}' | '\u{E0100}'..='\u{E01EF}'
    )
}

fn is_unsafe(c: char) -> bool {
    c.is_control() || is_hidden(c)
}

/// Each character of `text` and whether it must be shown escaped.
fn judged(text: &str) -> impl Iterator<Item = (char, bool)> + '_ {
    let mut base = false;
    text.chars().map(move |c| {
        let escape = if is_variation_selector(c) {
            !std::mem::take(&mut base)
        } else {
            base = !is_unsafe(c) && !c.is_whitespace();
            is_unsafe(c)
        };
        (c, escape)
    })
}

/// One line of terminal-safe text.
pub fn for_terminal(text: &str) -> Cow<'_, str> {
    if !judged(text).any(|(_, escape)| escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for (c, escape) in judged(text) {
        match c {
            _ if !escape => out.push(c),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
        }
    }
    Cow::Owned(out)
}

/// Serialized JSON (serde_json's output) made safe for a terminal, with the
/// same meaning: the characters `for_terminal` escapes become `\uXXXX`
/// (surrogate pairs above U+FFFF). serde_json has escaped every C0 control
/// in strings already, so the C0 left are its layout (newlines); outside
/// strings it writes ASCII only, so every character escaped here is inside
/// a string, where `\uXXXX` means that character.
pub fn for_json(json: &str) -> Cow<'_, str> {
    let escaped = |(c, escape): (char, bool)| escape && u32::from(c) >= 0x20;
    if !judged(json).any(escaped) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    for (c, escape) in judged(json) {
        if escaped((c, escape)) {
            for unit in c.encode_utf16(&mut [0; 2]) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::{for_json, for_terminal};

    #[test]
    fn plain_text_is_untouched() {
        for text in [
            "fix prod db, INC-42 (ü)",
            "日本語 🎉 ❤\u{FE0F} #\u{FE0F}\u{20E3}",
        ] {
            assert_eq!(for_terminal(text), text);
            let json = serde_json::to_string(text).unwrap();
            assert_eq!(for_json(&json), json);
        }
    }

    /// Hostile text, its terminal form and its JSON form (as printed).
    const GOLDEN: &[(&str, &str, &str)] = &[
        (
            "\x1b[2J\x1b[Hhi",
            "\\u{1b}[2J\\u{1b}[Hhi",
            "\"\\u001b[2J\\u001b[Hhi\"",
        ),
        ("ok\rEVIL", "ok\\rEVIL", "\"ok\\rEVIL\""),
        ("a\nb\tc", "a\\nb\\tc", "\"a\\nb\\tc\""),
        (
            "\x1b]52;c;ZWNobw==\x07",
            "\\u{1b}]52;c;ZWNobw==\\u{7}",
            "\"\\u001b]52;c;ZWNobw==\\u0007\"",
        ),
        (
            "abc\u{202E}fdp.exe",
            "abc\\u{202e}fdp.exe",
            "\"abc\\u202efdp.exe\"",
        ),
        ("ad\u{200B}min", "ad\\u{200b}min", "\"ad\\u200bmin\""),
        ("\u{9b}31m", "\\u{9b}31m", "\"\\u009b31m\""),
        ("del\u{7f}", "del\\u{7f}", "\"del\\u007f\""),
        ("a\u{061C}b", "a\\u{61c}b", "\"a\\u061cb\""),
        ("a\u{180E}b", "a\\u{180e}b", "\"a\\u180eb\""),
        (
            "\u{2066}x\u{2069}",
            "\\u{2066}x\\u{2069}",
            "\"\\u2066x\\u2069\"",
        ),
        ("a\u{2028}b", "a\\u{2028}b", "\"a\\u2028b\""),
        ("\u{FEFF}bom", "\\u{feff}bom", "\"\\ufeffbom\""),
        ("ad\u{AD}min", "ad\\u{ad}min", "\"ad\\u00admin\""),
        ("\u{3164}", "\\u{3164}", "\"\\u3164\""),
        // Tag characters: invisible ASCII ("hi"), surrogate pairs in JSON.
        (
            "ok\u{E0001}\u{E0068}\u{E0069}",
            "ok\\u{e0001}\\u{e0068}\\u{e0069}",
            "\"ok\\udb40\\udc01\\udb40\\udc68\\udb40\\udc69\"",
        ),
        // A second variation selector, or one with nothing to select, hides data.
        (
            "a\u{FE0F}\u{FE01}",
            "a\u{FE0F}\\u{fe01}",
            "\"a\u{FE0F}\\ufe01\"",
        ),
        (
            "\u{202E}\u{FE0F}",
            "\\u{202e}\\u{fe0f}",
            "\"\\u202e\\ufe0f\"",
        ),
        ("x \u{E0100}", "x \\u{e0100}", "\"x \\udb40\\udd00\""),
    ];

    #[test]
    fn golden_escapes() {
        for (input, terminal, json) in GOLDEN {
            assert_eq!(for_terminal(input), *terminal, "input {input:?}");
            let serialized = serde_json::to_string(input).unwrap();
            assert_eq!(for_json(&serialized), *json, "input {input:?}");
        }
    }

    #[test]
    fn json_stays_valid_and_lossless() {
        let doc = serde_json::json!({
            "reason": GOLDEN.iter().map(|g| g.0).collect::<Vec<_>>().concat(),
            "nested": [{"comment": "\u{202E}\u{E0041}"}],
        });
        let pretty = serde_json::to_string_pretty(&doc).unwrap();
        let safe = for_json(&pretty);
        // Left raw: the layout's newlines, printable ASCII, the one
        // variation selector that follows a visible character.
        assert!(
            safe.chars()
                .all(|c| c == '\n' || (' '..'\u{7f}').contains(&c) || c == '\u{FE0F}'),
            "raw hostile characters left: {safe:?}"
        );
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back, doc);
        // The layout is serde_json's.
        assert_eq!(safe.lines().count(), pretty.lines().count());
    }
}

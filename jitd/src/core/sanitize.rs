//! Making other people's text safe to print on a terminal (threat T20).
//!
//! Control characters, escape sequences, bidirectional overrides and
//! zero-width characters are shown as visible `\u{..}` escapes, so what an
//! approver reads is exactly what was typed, and nothing can move the cursor,
//! rewrite the line or reach the clipboard.

use std::borrow::Cow;

fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200B}'..='\u{200F}'   // zero-width space/joiners, LRM/RLM
            | '\u{2028}'..='\u{202E}' // line/paragraph separators, bidi embeddings/overrides
            | '\u{2060}'..='\u{2069}' // word joiner, invisible operators, bidi isolates
            | '\u{FEFF}'              // zero-width no-break space
            | '\u{FFF9}'..='\u{FFFB}' // interlinear annotations
        )
}

/// One line of terminal-safe text.
pub fn for_terminal(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if is_unsafe(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::for_terminal;

    #[test]
    fn plain_text_is_untouched() {
        assert_eq!(
            for_terminal("fix prod db, INC-42 (ü)"),
            "fix prod db, INC-42 (ü)"
        );
    }

    #[test]
    fn golden_escapes() {
        let cases = [
            ("\x1b[2J\x1b[Hhi", "\\u{1b}[2J\\u{1b}[Hhi"),
            ("ok\rEVIL", "ok\\rEVIL"),
            ("a\nb\tc", "a\\nb\\tc"),
            ("\x1b]52;c;ZWNobw==\x07", "\\u{1b}]52;c;ZWNobw==\\u{7}"),
            ("abc\u{202E}fdp.exe", "abc\\u{202e}fdp.exe"),
            ("ad\u{200B}min", "ad\\u{200b}min"),
            ("\u{9b}31m", "\\u{9b}31m"),
            ("del\u{7f}", "del\\u{7f}"),
        ];
        for (input, want) in cases {
            assert_eq!(for_terminal(input), want, "input {input:?}");
        }
    }
}

//! What a replay may send to the reviewer's terminal: an allow-list of what
//! draws the screen (text, colours, cursor movement, erasing, scrolling
//! regions, the alternate screen). Everything else is left out, above all
//! what makes the terminal answer (reports arrive as typed input in the
//! reviewer's shell), reach outside the screen (clipboard, title, palette,
//! window, scrollback) or change how it reads what follows (8-bit controls,
//! character-set modes).

use super::parse::{ControlSequence, EscapeSequence, Piece};

/// BEL, BS, HT, LF, VT, FF, CR, and SO/SI (shift to the G1 character set and
/// back: screen and tmux draw lines that way). Not ENQ: it asks for the
/// answerback message, a report.
const CONTROLS: &[u8] = b"\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f";

/// Final bytes of control sequences (no private marker, no intermediates)
/// that move the cursor, edit, erase, scroll, set colours and attributes,
/// tab stops and margins. `J` (erase) and `T` (scroll down) have rules of
/// their own below; `h`/`l` (modes) too. Not among them: `c` (device
/// attributes), `n` (status and cursor position reports), `t` (window
/// operations and title reports), `x` (terminal parameters), `i` (media
/// copy), `q` (LEDs), `y` (self tests).
const DRAWING_FINALS: &[u8] = b"@ABCDEFGHIKLMPSXZ`abdefgmrsu";

/// ANSI modes (`CSI Pm h`): insert (IRM). Not keyboard action (KAM, locks
/// the keyboard), send/receive (SRM, local echo), line feed/new line (LNM).
const ANSI_MODES: &[u32] = &[4];

/// DEC private modes (`CSI ? Pm h`): cursor keys (1), reverse video (5),
/// origin (6), autowrap (7), cursor blink (12), cursor shown (25), the
/// alternate screen and saved cursor (47, 1047, 1048, 1049), bracketed
/// paste (2004) and synchronized output (2026). Not mouse or focus
/// reporting (9, 1000-1016: they type events into the reviewer's shell),
/// column mode (3, resizes the window), autorepeat (8), nor any other.
const DEC_MODES: &[u32] = &[1, 5, 6, 7, 12, 25, 47, 1047, 1048, 1049, 2004, 2026];

/// Whether `piece` is shown on replay.
pub fn is_harmless(piece: &Piece<'_>) -> bool {
    match piece {
        Piece::Text(_) | Piece::Invalid => true,
        Piece::Control(c) => CONTROLS.contains(c),
        Piece::Escape(e) => is_harmless_escape(e),
        Piece::Csi(s) => is_harmless_csi(s),
        Piece::String(_) | Piece::Discarded => false,
    }
}

/// Save and restore the cursor (DECSC, DECRC), keypad modes (DECKPAM,
/// DECKPNM), index, next line, reverse index, tab set; designating ASCII,
/// DEC line drawing or UK as G0-G3; double-size lines and the alignment
/// test. Not RIS (a full reset: the reviewer's scrollback, in some
/// terminals), DECID (a report), S8C1T (8-bit reports), `ESC %` (leaves
/// UTF-8: bytes 0x80-0x9F would become controls), single and locking shifts.
fn is_harmless_escape(e: &EscapeSequence<'_>) -> bool {
    matches!(
        e.body(),
        [b'7' | b'8' | b'=' | b'>' | b'D' | b'E' | b'M' | b'H']
            | [b'(' | b')' | b'*' | b'+', b'B' | b'0' | b'A']
            | [b'#', b'3' | b'4' | b'5' | b'6' | b'8']
    )
}

fn is_harmless_csi(s: &ControlSequence<'_>) -> bool {
    match (s.private_marker(), s.intermediates(), s.final_byte()) {
        // ED and DECSED 3 erase the scrollback: the reviewer's, not the replay's.
        (None | Some(b'?'), b"", b'J') => {
            params(s).all(|p| matches!(p, Param::Default | Param::Number(0..=2)))
        }
        (Some(b'?'), b"", b'K') => true,
        // With more than one parameter, `T` starts xterm's mouse highlight tracking.
        (None, b"", b'T') => params(s).count() <= 1,
        (None, b"", b'h' | b'l') => only_modes(s, ANSI_MODES),
        (Some(b'?'), b"", b'h' | b'l') => only_modes(s, DEC_MODES),
        (None, b"", f) => DRAWING_FINALS.contains(&f),
        // Cursor style (DECSCUSR) and soft reset (DECSTR).
        (None, b" ", b'q') | (None, b"!", b'p') => true,
        _ => false,
    }
}

/// One parameter of a control sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Param {
    /// Left empty.
    Default,
    Number(u32),
    /// Sub-parameters (`:`) or a number too large.
    Other,
}

fn params<'a>(s: &ControlSequence<'a>) -> impl Iterator<Item = Param> + 'a {
    let bytes = s.params();
    let list = (!bytes.is_empty()).then(|| bytes.split(|b| *b == b';'));
    list.into_iter().flatten().map(|p| match p {
        [] => Param::Default,
        _ => std::str::from_utf8(p)
            .ok()
            .filter(|t| t.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|t| t.parse().ok())
            .map_or(Param::Other, Param::Number),
    })
}

/// Every parameter names one of `allowed` (and there is at least one).
fn only_modes(s: &ControlSequence<'_>, allowed: &[u32]) -> bool {
    let mut modes = params(s).peekable();
    modes.peek().is_some() && modes.all(|p| matches!(p, Param::Number(m) if allowed.contains(&m)))
}

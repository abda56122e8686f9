//! What `jitctl recordings play` may write to the reviewer's terminal.
//!
//! A recording holds whatever the recorded session printed, and the recorded
//! user chose that: escape sequences that set the reviewer's clipboard
//! (OSC 52), make the terminal answer (a title report, CSI 21t, arrives in
//! the reviewer's shell as if typed; so do cursor position and status
//! reports, DECRQSS), plant hyperlinks (OSC 8), or pass anything through to
//! an outer terminal (tmux's DCS). The filter keeps what draws the screen, by
//! an allow-list (`allow`), and leaves out everything else, whole.
//!
//! Every OSC is left out, titles included: a title is the reviewer's
//! window's, outlives the replay, and shows nothing of the session's screen;
//! the other OSCs set colours, the clipboard, links or notifications.
//!
//! What it writes is text (well-formed UTF-8 without C1 controls; ill-formed
//! bytes become U+FFFD) and complete sequences from the allow-list in their
//! 7-bit form. So the terminal is back in its ground state after each, and
//! whatever it would make of the rest, it reads only text and those
//! sequences. A sequence a C1 control introduced is written with `ESC [`.
//!
//! Hand-written rather than `vte`: vte executes C1 controls as single
//! controls (U+009B prints as a character, a raw 0x9B is one byte), so
//! `U+009D 52;c;...` would reach its caller as text, and it hands over
//! parsed parameters, not the bytes: keeping a sequence byte for byte would
//! need a shadow parser anyway.

mod allow;
mod decode;
mod parse;

use parse::{Parser, Piece};

/// Filters a recording's output stream, chunk by chunk (a sequence may span
/// chunks).
#[derive(Debug, Default)]
pub struct ReplayFilter {
    parser: Parser,
    left_out: u64,
}

impl ReplayFilter {
    pub fn new() -> ReplayFilter {
        ReplayFilter::default()
    }

    /// Appends to `out` what of `bytes` may be shown. The end of an
    /// unfinished sequence is awaited in the next chunk.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        let left_out = &mut self.left_out;
        self.parser
            .feed(bytes, &mut |piece| show(&piece, out, left_out));
    }

    /// The end of the stream: a sequence still unfinished is left out, a
    /// character cut off becomes U+FFFD.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        let left_out = &mut self.left_out;
        self.parser.finish(&mut |piece| show(&piece, out, left_out));
    }

    /// How many controls, sequences and strings were left out so far.
    pub fn left_out(&self) -> u64 {
        self.left_out
    }
}

fn show(piece: &Piece<'_>, out: &mut Vec<u8>, left_out: &mut u64) {
    if !allow::is_harmless(piece) {
        *left_out += 1;
        return;
    }
    match piece {
        Piece::Text(c) => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        Piece::Invalid => out.extend_from_slice("\u{FFFD}".as_bytes()),
        Piece::Control(c) => out.push(*c),
        Piece::Escape(e) => {
            out.push(0x1B);
            out.extend_from_slice(e.body());
        }
        Piece::Csi(s) => {
            out.extend_from_slice(b"\x1b[");
            out.extend_from_slice(s.body());
        }
        Piece::String(_) | Piece::Discarded => {}
    }
}

#[cfg(test)]
mod tests;

//! The ECMA-48 grammar of a terminal's input, after Paul Williams' parser
//! for DEC terminals (the state machine xterm and most emulators follow):
//! text, controls, escape sequences, control sequences (CSI) and control
//! strings (OSC, DCS, SOS, PM, APC). It only says where each piece begins
//! and ends; `allow` decides what may be shown.
//!
//! The parser is fed chunk by chunk and keeps its state in between, so a
//! sequence may begin in one chunk and end in another. C1 controls (raw or
//! UTF-8 encoded) introduce the same sequences as their 7-bit forms.

use super::decode::{Symbol, Utf8Decoder};

const ESC: u8 = 0x1B;
const BEL: u8 = 0x07;
const CAN: u8 = 0x18;
const SUB: u8 = 0x1A;
const DEL: u8 = 0x7F;
/// C1 controls that introduce something, and ST, which ends a string.
const C1_CSI: u8 = 0x9B;
const C1_OSC: u8 = 0x9D;
const C1_DCS: u8 = 0x90;
const C1_SOS: u8 = 0x98;
const C1_PM: u8 = 0x9E;
const C1_APC: u8 = 0x9F;
const C1_ST: u8 = 0x9C;

/// Longer escape or control sequences are dropped, unread: a replay needs
/// none this long, and the parser's memory stays bounded.
pub const MAX_SEQUENCE: usize = 256;

/// What one piece of input is, in the order it came.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    /// A printable character.
    Text(char),
    /// Ill-formed UTF-8 in the text.
    Invalid,
    /// A C0 control or DEL in the text (ESC never: it starts a sequence), or
    /// a C1 control that introduces nothing.
    Control(u8),
    /// `ESC I... F`: intermediates and final byte.
    Escape(EscapeSequence<'a>),
    /// `CSI P... I... F`, whichever form its introducer had.
    Csi(ControlSequence<'a>),
    /// A control string that ended properly; its contents are never kept.
    String(StringKind),
    /// A sequence or string cut short (CAN, SUB, ESC, a C1 control, the end
    /// of the input) or malformed (a byte out of place, too long).
    Discarded,
}

/// Which control string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StringKind {
    /// Operating system command (titles, colours, clipboard, hyperlinks).
    Osc,
    /// Device control string (status requests, sixel, tmux pass-through).
    Dcs,
    /// Start of string, privacy message, application program command.
    Sos,
    Pm,
    Apc,
}

/// An escape sequence without its ESC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EscapeSequence<'a> {
    body: &'a [u8],
}

impl<'a> EscapeSequence<'a> {
    /// Intermediate bytes (0x20..=0x2F) followed by the final byte.
    pub fn body(&self) -> &'a [u8] {
        self.body
    }
}

/// A control sequence without its introducer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ControlSequence<'a> {
    body: &'a [u8],
}

impl<'a> ControlSequence<'a> {
    /// Private marker, parameters, intermediates and final byte, as read.
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    pub fn final_byte(&self) -> u8 {
        self.body.last().copied().unwrap_or_default()
    }

    /// `<`, `=`, `>` or `?` before the parameters (the parser allows them
    /// there only).
    pub fn private_marker(&self) -> Option<u8> {
        self.body
            .first()
            .copied()
            .filter(|b| (0x3C..=0x3F).contains(b))
    }

    pub fn intermediates(&self) -> &'a [u8] {
        let head = self.head();
        let start = head
            .iter()
            .rposition(|b| !is_intermediate(*b))
            .map_or(0, |i| i + 1);
        &head[start..]
    }

    /// The parameter bytes (digits, `;` and `:`), private marker excluded.
    pub fn params(&self) -> &'a [u8] {
        let head = self.head();
        let head = &head[..head.len() - self.intermediates().len()];
        match self.private_marker() {
            Some(_) => &head[1..],
            None => head,
        }
    }

    /// Everything before the final byte.
    fn head(&self) -> &'a [u8] {
        &self.body[..self.body.len().saturating_sub(1)]
    }
}

fn is_intermediate(b: u8) -> bool {
    (0x20..=0x2F).contains(&b)
}

fn is_c0_executed(b: u8) -> bool {
    b < 0x20 && !matches!(b, ESC | CAN | SUB)
}

/// Where in a control sequence the parser is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CsiPart {
    /// Right after the introducer: a private marker may come.
    Entry,
    Params,
    Intermediates,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Ground,
    /// After ESC (intermediates, if any, in the buffer).
    Escape,
    Csi(CsiPart),
    /// A malformed or overlong sequence: skipped up to a byte in
    /// `final_from..=0x7E` (0x30 for escape sequences, 0x40 for CSI).
    Ignore {
        final_from: u8,
    },
    String(StringKind),
    /// ESC inside a string: ST if `\` follows.
    StringEscape(StringKind),
}

/// The state machine. Feed it bytes; it reports each piece as it ends.
#[derive(Debug)]
pub struct Parser {
    decoder: Utf8Decoder,
    state: State,
    /// The current escape or control sequence (never a string's contents).
    sequence: Vec<u8>,
}

impl Default for Parser {
    fn default() -> Parser {
        Parser {
            decoder: Utf8Decoder::default(),
            state: State::Ground,
            sequence: Vec::new(),
        }
    }
}

impl Parser {
    /// Reads `bytes`, calling `piece` for every piece they complete.
    pub fn feed(&mut self, bytes: &[u8], piece: &mut impl FnMut(Piece<'_>)) {
        for &byte in bytes {
            for symbol in self.decoder.push(byte).into_iter().flatten() {
                self.step(symbol, piece);
            }
        }
    }

    /// The end of the input: what is unfinished is discarded.
    pub fn finish(&mut self, piece: &mut impl FnMut(Piece<'_>)) {
        if let Some(symbol) = self.decoder.finish() {
            self.step(symbol, piece);
        }
        self.abort(piece);
    }

    fn step(&mut self, symbol: Symbol, piece: &mut impl FnMut(Piece<'_>)) {
        // C1 controls act in every state, as their 7-bit forms would after ESC.
        if let Symbol::C1(c1) = symbol {
            return self.c1(c1, piece);
        }
        match self.state {
            State::Ground => self.ground(symbol, piece),
            State::Escape => self.escape(symbol, piece),
            State::Csi(part) => self.csi(part, symbol, piece),
            State::Ignore { final_from } => self.ignore(final_from, symbol, piece),
            State::String(kind) => self.string(kind, symbol, piece),
            State::StringEscape(kind) => match symbol {
                Symbol::Ascii(b'\\') => self.end(Piece::String(kind), piece),
                // The string ended without ST; the ESC starts what follows.
                _ => {
                    piece(Piece::Discarded);
                    self.enter(State::Escape);
                    self.escape(symbol, piece);
                }
            },
        }
    }

    fn ground(&mut self, symbol: Symbol, piece: &mut impl FnMut(Piece<'_>)) {
        match symbol {
            Symbol::Ascii(ESC) => self.enter(State::Escape),
            Symbol::Ascii(b) if b < 0x20 || b == DEL => piece(Piece::Control(b)),
            Symbol::Ascii(b) => piece(Piece::Text(char::from(b))),
            Symbol::Wide(c) => piece(Piece::Text(c)),
            Symbol::Invalid => piece(Piece::Invalid),
            Symbol::C1(c1) => self.c1(c1, piece),
        }
    }

    fn escape(&mut self, symbol: Symbol, piece: &mut impl FnMut(Piece<'_>)) {
        let Symbol::Ascii(b) = symbol else {
            // Not 7-bit: no escape sequence; the symbol is text again.
            self.abort(piece);
            return self.ground(symbol, piece);
        };
        if self.interrupted(b, piece) {
            return;
        }
        let introduces_nothing_yet = self.sequence.is_empty();
        match b {
            _ if is_intermediate(b) => self.collect(b, State::Escape, 0x30),
            b'[' if introduces_nothing_yet => self.enter(State::Csi(CsiPart::Entry)),
            b']' if introduces_nothing_yet => self.enter(State::String(StringKind::Osc)),
            b'P' if introduces_nothing_yet => self.enter(State::String(StringKind::Dcs)),
            b'X' if introduces_nothing_yet => self.enter(State::String(StringKind::Sos)),
            b'^' if introduces_nothing_yet => self.enter(State::String(StringKind::Pm)),
            b'_' if introduces_nothing_yet => self.enter(State::String(StringKind::Apc)),
            0x30..=0x7E => {
                self.sequence.push(b);
                piece(Piece::Escape(EscapeSequence {
                    body: &self.sequence,
                }));
                self.enter(State::Ground);
            }
            _ => {}
        }
    }

    fn csi(&mut self, part: CsiPart, symbol: Symbol, piece: &mut impl FnMut(Piece<'_>)) {
        let Symbol::Ascii(b) = symbol else {
            return self.skip_to_final(0x40);
        };
        if self.interrupted(b, piece) {
            return;
        }
        match (part, b) {
            (CsiPart::Entry, 0x3C..=0x3F) | (CsiPart::Entry | CsiPart::Params, 0x30..=0x3B) => {
                self.collect(b, State::Csi(CsiPart::Params), 0x40)
            }
            (_, 0x20..=0x2F) => self.collect(b, State::Csi(CsiPart::Intermediates), 0x40),
            // A private marker after the parameters, or a parameter after
            // an intermediate: malformed.
            (_, 0x30..=0x3F) => self.skip_to_final(0x40),
            (_, 0x40..=0x7E) => {
                self.sequence.push(b);
                piece(Piece::Csi(ControlSequence {
                    body: &self.sequence,
                }));
                self.enter(State::Ground);
            }
            _ => {}
        }
    }

    fn ignore(&mut self, final_from: u8, symbol: Symbol, piece: &mut impl FnMut(Piece<'_>)) {
        let Symbol::Ascii(b) = symbol else {
            return;
        };
        if self.interrupted(b, piece) {
            return;
        }
        if (final_from..=0x7E).contains(&b) {
            self.end(Piece::Discarded, piece);
        }
    }

    fn string(&mut self, kind: StringKind, symbol: Symbol, piece: &mut impl FnMut(Piece<'_>)) {
        match symbol {
            // xterm ends an OSC with BEL as well as with ST.
            Symbol::Ascii(BEL) if kind == StringKind::Osc => self.end(Piece::String(kind), piece),
            Symbol::Ascii(ESC) => self.state = State::StringEscape(kind),
            Symbol::Ascii(b @ (CAN | SUB)) => {
                self.abort(piece);
                piece(Piece::Control(b));
            }
            // Anything else is the string's, and never kept.
            _ => {}
        }
    }

    /// C1: ST ends a string; introducers start their sequence (cutting short
    /// whatever was unfinished); the others are controls of their own.
    fn c1(&mut self, c1: u8, piece: &mut impl FnMut(Piece<'_>)) {
        if c1 == C1_ST {
            if let State::String(kind) | State::StringEscape(kind) = self.state {
                return self.end(Piece::String(kind), piece);
            }
        }
        self.abort(piece);
        match c1 {
            C1_CSI => self.enter(State::Csi(CsiPart::Entry)),
            C1_OSC => self.enter(State::String(StringKind::Osc)),
            C1_DCS => self.enter(State::String(StringKind::Dcs)),
            C1_SOS => self.enter(State::String(StringKind::Sos)),
            C1_PM => self.enter(State::String(StringKind::Pm)),
            C1_APC => self.enter(State::String(StringKind::Apc)),
            _ => piece(Piece::Control(c1)),
        }
    }

    /// Inside an escape or control sequence: C0 controls act at once (the
    /// sequence goes on), CAN and SUB cut it short, ESC starts another.
    /// True if `b` was one of those.
    fn interrupted(&mut self, b: u8, piece: &mut impl FnMut(Piece<'_>)) -> bool {
        match b {
            ESC => {
                self.abort(piece);
                self.enter(State::Escape);
            }
            CAN | SUB => {
                self.abort(piece);
                piece(Piece::Control(b));
            }
            _ if is_c0_executed(b) => piece(Piece::Control(b)),
            DEL => {}
            _ => return false,
        }
        true
    }

    /// Adds `b` to the sequence and goes on in `then`, or skips the
    /// sequence once it would be too long.
    fn collect(&mut self, b: u8, then: State, final_from: u8) {
        if self.sequence.len() + 1 >= MAX_SEQUENCE {
            return self.skip_to_final(final_from);
        }
        self.sequence.push(b);
        self.state = then;
    }

    fn skip_to_final(&mut self, final_from: u8) {
        self.sequence.clear();
        self.state = State::Ignore { final_from };
    }

    /// Whatever is unfinished is discarded; back to text.
    fn abort(&mut self, piece: &mut impl FnMut(Piece<'_>)) {
        if self.state != State::Ground {
            self.end(Piece::Discarded, piece);
        }
    }

    fn end(&mut self, last: Piece<'_>, piece: &mut impl FnMut(Piece<'_>)) {
        piece(last);
        self.enter(State::Ground);
    }

    fn enter(&mut self, state: State) {
        self.sequence.clear();
        self.state = state;
    }
}

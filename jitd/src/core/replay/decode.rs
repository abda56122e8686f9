//! Bytes to symbols: the UTF-8 decoding a terminal does before it looks for
//! controls. Strict (no overlong forms, no surrogates), and a character split
//! across two chunks is held until its last byte comes.

/// One unit of what a terminal reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Symbol {
    /// A 7-bit byte: a C0 control, DEL or printable ASCII.
    Ascii(u8),
    /// A C1 control (0x80..=0x9F), in either of the forms a terminal may
    /// take as one: UTF-8 encoded (U+0080..=U+009F), or a lone byte that is
    /// no part of any UTF-8 character (a terminal outside UTF-8 mode).
    C1(u8),
    /// Any other character (U+00A0 and above).
    Wide(char),
    /// An ill-formed UTF-8 sequence (its longest invalid prefix).
    Invalid,
}

/// Decodes a byte stream one byte at a time, holding a partial character.
#[derive(Debug, Default)]
pub struct Utf8Decoder {
    pending: [u8; 4],
    len: usize,
}

impl Utf8Decoder {
    /// The symbols `byte` completes: none while a character is incomplete,
    /// two when it breaks one (the broken part, then the byte itself).
    pub fn push(&mut self, byte: u8) -> [Option<Symbol>; 2] {
        if self.len == 0 {
            return [self.start(byte), None];
        }
        self.pending[self.len] = byte;
        self.len += 1;
        match std::str::from_utf8(&self.pending[..self.len]) {
            Ok(text) => {
                self.len = 0;
                [text.chars().next().map(classify), None]
            }
            Err(e) => match e.error_len() {
                None => [None, None],
                // The new byte broke the character: the held bytes are one
                // invalid sequence, and the byte starts afresh.
                Some(_) => {
                    self.len = 0;
                    [Some(Symbol::Invalid), self.start(byte)]
                }
            },
        }
    }

    /// A character cut off at the end of the stream is invalid.
    pub fn finish(&mut self) -> Option<Symbol> {
        let cut = self.len > 0;
        self.len = 0;
        cut.then_some(Symbol::Invalid)
    }

    /// `byte` with nothing held.
    fn start(&mut self, byte: u8) -> Option<Symbol> {
        match byte {
            0x00..=0x7F => Some(Symbol::Ascii(byte)),
            0x80..=0x9F => Some(Symbol::C1(byte)),
            // A lead byte (0xC2..=0xF4) waits for the rest of its character;
            // from_utf8 decides below which leads exist.
            _ => {
                self.pending[0] = byte;
                self.len = 1;
                match std::str::from_utf8(&self.pending[..1]) {
                    Err(e) if e.error_len().is_none() => None,
                    _ => {
                        self.len = 0;
                        Some(Symbol::Invalid)
                    }
                }
            }
        }
    }
}

fn classify(c: char) -> Symbol {
    match u32::from(c) {
        b @ 0x00..=0x7F => Symbol::Ascii(b as u8),
        b @ 0x80..=0x9F => Symbol::C1(b as u8),
        _ => Symbol::Wide(c),
    }
}

#[cfg(test)]
mod tests {
    use super::{Symbol, Utf8Decoder};

    fn decode(bytes: &[u8]) -> Vec<Symbol> {
        let mut d = Utf8Decoder::default();
        let mut out: Vec<Symbol> = bytes.iter().flat_map(|&b| d.push(b)).flatten().collect();
        out.extend(d.finish());
        out
    }

    #[test]
    fn symbols_of_golden_inputs() {
        use Symbol::*;
        let cases: &[(&[u8], &[Symbol])] = &[
            (b"a\x1b", &[Ascii(b'a'), Ascii(0x1b)]),
            ("é€🎉".as_bytes(), &[Wide('é'), Wide('€'), Wide('🎉')]),
            // C1 controls, UTF-8 encoded and raw.
            (b"\xc2\x9b\xc2\x9d", &[C1(0x9b), C1(0x9d)]),
            (b"\x9b\x90", &[C1(0x9b), C1(0x90)]),
            // 0x9B inside a character is no control: U+011B is C4 9B.
            (b"\xc4\x9b", &[Wide('ě')]),
            // Overlong U+009B (E0 82 9B) and a surrogate are not characters.
            (b"\xe0\x82\x9b", &[Invalid, C1(0x82), C1(0x9b)]),
            // A lone 0x80..=0x9F is a raw C1 control, wherever it comes from.
            (b"\xed\xa0\x80", &[Invalid, Invalid, C1(0x80)]),
            (b"\xff\xfe", &[Invalid, Invalid]),
            // A lead byte broken by ASCII, and one cut off at the end.
            (b"\xe2\x82A", &[Invalid, Ascii(b'A')]),
            (b"ok\xe2\x82", &[Ascii(b'o'), Ascii(b'k'), Invalid]),
        ];
        for (input, want) in cases {
            assert_eq!(decode(input), *want, "input {input:x?}");
        }
    }
}

use super::parse::MAX_SEQUENCE;
use super::ReplayFilter;

/// The filter's output for `chunks` fed one after the other, then finished.
fn replay(chunks: &[&[u8]]) -> Vec<u8> {
    let mut filter = ReplayFilter::new();
    let mut out = Vec::new();
    for chunk in chunks {
        filter.feed(chunk, &mut out);
    }
    filter.finish(&mut out);
    out
}

fn shown(input: &[u8]) -> String {
    String::from_utf8_lossy(&replay(&[input])).into_owned()
}

/// Each of these, between "a" and "b", leaves "ab".
const LEFT_OUT: &[(&str, &[u8])] = &[
    ("OSC 52 clipboard, BEL", b"\x1b]52;c;ZXZpbA==\x07"),
    ("OSC 52 clipboard, ST", b"\x1b]52;c;ZXZpbA==\x1b\\"),
    ("OSC 52 clipboard query", b"\x1b]52;c;?\x07"),
    ("OSC 0 title and icon", b"\x1b]0;root@db1: ~\x07"),
    ("OSC 2 title", b"\x1b]2;title\x1b\\"),
    (
        "OSC 21 colour report request",
        b"\x1b]21;foreground=?\x1b\\",
    ),
    ("OSC 4 palette query", b"\x1b]4;1;?\x07"),
    ("OSC 11 background query", b"\x1b]11;?\x07"),
    (
        "OSC 8 hyperlink start",
        b"\x1b]8;;https://evil.example/\x1b\\",
    ),
    ("OSC 9 notification", b"\x1b]9;pwned\x07"),
    ("OSC 1337 iTerm2 file", b"\x1b]1337;File=inline=1:AAAA\x07"),
    ("CSI 21t title report", b"\x1b[21t"),
    ("CSI 20t icon label report", b"\x1b[20t"),
    ("CSI 14t window size report", b"\x1b[14t"),
    ("CSI 8t window resize", b"\x1b[8;100;300t"),
    ("CSI 22t title push", b"\x1b[22;0t"),
    ("CSI 6n cursor position report", b"\x1b[6n"),
    ("CSI ?6n DEC cursor position report", b"\x1b[?6n"),
    ("CSI 5n status report", b"\x1b[5n"),
    ("CSI c primary DA", b"\x1b[c"),
    ("CSI 0c primary DA", b"\x1b[0c"),
    ("CSI >c secondary DA", b"\x1b[>c"),
    ("CSI =c tertiary DA", b"\x1b[=c"),
    ("CSI x DECREQTPARM", b"\x1b[x"),
    ("DECRQM ANSI", b"\x1b[4$p"),
    ("DECRQM DEC", b"\x1b[?2004$p"),
    ("kitty keyboard query", b"\x1b[?u"),
    ("XTVERSION", b"\x1b[>0q"),
    ("XTSMGRAPHICS query", b"\x1b[?1;1;0S"),
    ("media copy", b"\x1b[5i"),
    ("mouse tracking", b"\x1b[?1000h"),
    ("any-event mouse", b"\x1b[?1003h"),
    ("SGR mouse", b"\x1b[?1006h"),
    ("focus reporting", b"\x1b[?1004h"),
    ("an allowed mode with mouse tracking", b"\x1b[?1049;1000h"),
    ("column mode", b"\x1b[?3h"),
    ("keyboard lock (KAM)", b"\x1b[2h"),
    ("local echo (SRM)", b"\x1b[12l"),
    ("mouse highlight tracking", b"\x1b[1;2;3;4;5T"),
    ("erase scrollback", b"\x1b[3J"),
    ("DEC erase scrollback", b"\x1b[?3J"),
    ("DECRQSS", b"\x1bP$qm\x1b\\"),
    ("XTGETTCAP", b"\x1bP+q544e\x1b\\"),
    ("sixel", b"\x1bPq#0;2;0;0;0#0~~\x1b\\"),
    (
        "tmux pass-through of OSC 52",
        b"\x1bPtmux;\x1b\x1b]52;c;ZXZpbA==\x07\x1b\\",
    ),
    ("APC kitty graphics", b"\x1b_Gf=100;AAAA\x1b\\"),
    ("PM", b"\x1b^private\x1b\\"),
    ("SOS", b"\x1bXstring\x1b\\"),
    ("DECID", b"\x1bZ"),
    ("RIS", b"\x1bc"),
    ("S8C1T", b"\x1b G"),
    ("leave UTF-8", b"\x1b%@"),
    ("single shift", b"\x1bN"),
    ("locking shift", b"\x1bn"),
    ("ENQ answerback", b"\x05"),
    ("NUL", b"\x00"),
    ("DEL", b"\x7f"),
    ("raw C1 CSI 6n", b"\x9b6n"),
    ("raw C1 OSC 52", b"\x9d52;c;ZXZpbA==\x07"),
    ("raw C1 DCS DECRQSS, raw ST", b"\x90$qm\x9c"),
    ("raw C1 APC", b"\x9fGf=100\x9c"),
    ("UTF-8 C1 CSI 6n", "\u{9b}6n".as_bytes()),
    (
        "UTF-8 C1 OSC 52, UTF-8 ST",
        "\u{9d}52;c;ZXZpbA==\u{9c}".as_bytes(),
    ),
    ("UTF-8 C1 DCS", "\u{90}$qm\u{9c}".as_bytes()),
    ("UTF-8 C1 PM", "\u{9e}private\u{9c}".as_bytes()),
    ("UTF-8 C1 NEL", "\u{85}".as_bytes()),
    ("raw C1 IND", b"\x84"),
    ("OSC cut short by CAN", b"\x1b]52;c;ZXZp\x18"),
    ("CSI cut short by SUB", b"\x1b[31\x1a"),
];

#[test]
fn dangerous_sequences_are_left_out() {
    for (name, seq) in LEFT_OUT {
        let input = [b"a", *seq, b"b"].concat();
        assert_eq!(shown(&input), "ab", "{name}: {seq:x?}");
        let mut filter = ReplayFilter::new();
        filter.feed(&input, &mut Vec::new());
        assert!(filter.left_out() >= 1, "{name} not counted as left out");
    }
}

/// Each of these is shown byte for byte.
const KEPT: &[(&str, &[u8])] = &[
    ("ASCII", b"root@db1:~# ls -l /etc\r\n"),
    ("UTF-8", "ü → 日本語 🎉 e\u{301}".as_bytes()),
    ("controls", b"\x07\x08\t\n\x0b\x0c\r"),
    ("SO/SI", b"\x0eqqq\x0f"),
    ("SGR", b"\x1b[0m\x1b[m\x1b[1;4;31;42m"),
    ("SGR 256 and direct colour", b"\x1b[38;5;208m\x1b[48;2;10;20;30m"),
    ("SGR sub-parameters", b"\x1b[4:3m\x1b[38:2::10:20:30m"),
    ("cursor position", b"\x1b[H\x1b[10;20H\x1b[5;5f"),
    (
        "cursor movement",
        b"\x1b[A\x1b[5B\x1b[C\x1b[2D\x1b[E\x1b[F\x1b[12G\x1b[3d\x1b[4`",
    ),
    ("erase", b"\x1b[J\x1b[0J\x1b[1J\x1b[2J\x1b[K\x1b[1K\x1b[2K\x1b[?2K"),
    (
        "editing",
        b"\x1b[5@\x1b[2P\x1b[3X\x1b[L\x1b[2M\x1b[3b",
    ),
    ("scrolling region and scrolling", b"\x1b[3;20r\x1b[r\x1b[2S\x1b[T\x1bM\x1bD\x1bE"),
    ("alternate screen", b"\x1b[?1049h\x1b[?1049l\x1b[?47h\x1b[?1047l"),
    ("cursor shown, hidden, style", b"\x1b[?25l\x1b[?25h\x1b[2 q"),
    ("application cursor keys and keypad", b"\x1b[?1h\x1b=\x1b[?1l\x1b>"),
    ("several allowed modes", b"\x1b[?1049;25h"),
    ("autowrap, origin, insert", b"\x1b[?7l\x1b[?6h\x1b[4h\x1b[4l"),
    ("bracketed paste, synchronized output", b"\x1b[?2004h\x1b[?2026h\x1b[?2026l"),
    ("save and restore cursor", b"\x1b7\x1b8\x1b[s\x1b[u"),
    ("line drawing", b"\x1b(0lqqk\x1b(B\x1b)0"),
    ("tab stops", b"\x1bH\x1b[g\x1b[3g\x1b[2I\x1b[Z"),
    ("soft reset", b"\x1b[!p"),
    ("double-height line", b"\x1b#3\x1b#8"),
    // What vim and bash print in a session, titles and queries aside.
    (
        "a redraw",
        b"\x1b[?1049h\x1b[22;0;0t\x1b[1;24r\x1b[?12h\x1b[?12l\x1b[27m\x1b[23m\x1b[29m\x1b[m\x1b[H\x1b[2J",
    ),
];

#[test]
fn harmless_sequences_are_kept_byte_for_byte() {
    for (name, seq) in KEPT {
        let want: Vec<u8> = match *name {
            // The title push (CSI 22;0;0t) is the one piece left out.
            "a redraw" => [&seq[..8], &seq[17..]].concat(),
            _ => seq.to_vec(),
        };
        assert_eq!(
            replay(&[seq]),
            want,
            "{name}: {:?}",
            String::from_utf8_lossy(seq)
        );
    }
}

/// Hostile and harmless pieces, with 7-bit, raw C1 and UTF-8 C1 introducers.
const MIXED: &[u8] =
    b"x\x1b]52;c;ZXZp\x07y\xc2\x9b31mz\x1b[1;31mw\xc3\xa9\x1bP$q\x1b\\v\x9d0;t\x9cu\x1b[6n";

#[test]
fn a_sequence_split_across_chunks_is_handled_as_a_whole() {
    let whole = replay(&[MIXED]);
    assert_eq!(String::from_utf8_lossy(&whole), "xy\x1b[31mz\x1b[1;31mwévu");
    // Cut in two at every place, and fed a byte at a time.
    for cut in 0..=MIXED.len() {
        let (head, tail) = MIXED.split_at(cut);
        assert_eq!(replay(&[head, tail]), whole, "cut at {cut}");
    }
    let bytes: Vec<&[u8]> = MIXED.chunks(1).collect();
    assert_eq!(replay(&bytes), whole, "a byte at a time");
}

#[test]
fn a_clipboard_write_split_over_three_events_is_left_out() {
    assert_eq!(
        replay(&[b"before\x1b]5", b"2;c;ZXZp", b"bA==\x07after"]),
        b"beforeafter"
    );
}

#[test]
fn what_the_end_cuts_off() {
    let cases: &[(&[u8], &str)] = &[
        (b"ok\x1b]52;c;ZXZpbA==", "ok"),
        (b"ok\x1b[31", "ok"),
        (b"ok\x1b", "ok"),
        (b"ok\x1bP$q", "ok"),
        (b"ok\x1b]2;t\x1b", "ok"),
        (b"ok\x9b", "ok"),
        // A character cut off was text: the reviewer sees that it was there.
        (b"ok\xe2\x82", "ok\u{FFFD}"),
    ];
    for (input, want) in cases {
        assert_eq!(shown(input), *want, "input {input:x?}");
    }
    let mut filter = ReplayFilter::new();
    let mut out = Vec::new();
    filter.feed(b"ok\x1b]52;c;ZXZp", &mut out);
    assert_eq!(out, b"ok", "the unfinished OSC waits for its end");
    filter.finish(&mut out);
    assert_eq!(out, b"ok");
    assert_eq!(filter.left_out(), 1);
}

#[test]
fn c1_sequences_that_are_harmless_are_written_in_7_bit_form() {
    assert_eq!(shown("\u{9b}1;31mred".as_bytes()), "\x1b[1;31mred");
    assert_eq!(shown(b"\x9b2Jclear"), "\x1b[2Jclear");
}

#[test]
fn bytes_that_are_not_utf8_become_replacement_characters() {
    assert_eq!(shown(b"a\xffb\xc0c"), "a\u{FFFD}b\u{FFFD}c");
    // 0x9B inside a character is no control (U+011B is C4 9B).
    assert_eq!(shown("ě6n".as_bytes()), "ě6n");
}

#[test]
fn controls_inside_a_sequence_act_and_the_sequence_goes_on() {
    // As a terminal does: the CR acts at once, then the SGR completes.
    assert_eq!(shown(b"\x1b[1\r;31mx"), "\r\x1b[1;31mx");
    // An ESC starts a new sequence; the first is dropped.
    assert_eq!(shown(b"\x1b[31\x1b[32mx"), "\x1b[32mx");
    // An OSC ended by an ESC that is not ST: the ESC starts what follows.
    assert_eq!(shown(b"\x1b]52;c;ZXZp\x1b[1mx"), "\x1b[1mx");
}

#[test]
fn text_inside_strings_never_leaks() {
    // An OSC's text, UTF-8 included, up to its end.
    assert_eq!(shown("\x1b]2;héllo \u{202e}\x07done".as_bytes()), "done");
    // A DCS ignores BEL (only ST ends it), as xterm does.
    assert_eq!(shown(b"\x1bPq\x07still inside\x1b\\done"), "done");
}

#[test]
fn overlong_sequences_are_left_out_whole() {
    let params = "1;".repeat(MAX_SEQUENCE);
    let input = format!("a\x1b[{params}mb");
    assert_eq!(shown(input.as_bytes()), "ab");
    let intermediates = " ".repeat(MAX_SEQUENCE);
    let input = format!("a\x1b{intermediates}Fb");
    assert_eq!(shown(input.as_bytes()), "ab");
    // A long one within the bound is kept.
    let sgr = format!("\x1b[{}m", "1;".repeat(MAX_SEQUENCE / 2 - 1));
    assert_eq!(shown(sgr.as_bytes()), sgr);
}

#[test]
fn malformed_control_sequences_are_left_out() {
    for input in [
        &b"a\x1b[1?hb"[..],       // a private marker after a parameter
        b"a\x1b[1 1qb",           // a parameter after an intermediate
        "a\x1b[1é2mb".as_bytes(), // a character that is not 7-bit
    ] {
        assert_eq!(shown(input), "ab", "input {input:x?}");
    }
}

/// Bytes a hostile stream is made of: introducers in every form,
/// terminators, parameters, finals, UTF-8 leads and continuations.
const ALPHABET: &[u8] =
    b"\x1b\x1b\x1b[[]]P_^X\\\x07\x18\x9b\x9d\x90\x9c\xc2\xe2\x82\xac0136;:?> $!mhlJtnqcAa\r\n\x0e";

/// Pseudo-random streams (xorshift, fixed seed) over [`ALPHABET`].
fn hostile_streams() -> impl Iterator<Item = Vec<u8>> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..2000).map(move |_| {
        let len = (next() % 64) as usize;
        (0..len)
            .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
            .collect()
    })
}

/// What the filter writes is text and complete allowed sequences only: read
/// again, it passes unchanged, and no C1 control is in it in any form.
#[test]
fn the_output_is_a_fixed_point_of_the_filter() {
    for input in hostile_streams() {
        let once = replay(&[&input]);
        assert_eq!(replay(&[&once]), once, "input {input:x?}");
        let text = std::str::from_utf8(&once)
            .unwrap_or_else(|e| panic!("not UTF-8 ({e}) for input {input:x?}"));
        assert!(
            !text.chars().any(|c| ('\u{80}'..='\u{9f}').contains(&c)),
            "a C1 control in {text:?} for input {input:x?}"
        );
    }
}

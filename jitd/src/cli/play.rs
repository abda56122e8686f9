//! `jitctl recordings play`: the recording's output, with its timing, on
//! this terminal, filtered (`core::replay`) unless `--raw`.

use std::io::{BufRead, BufReader, Write};
use std::time::Duration;

use super::client::{failure, Daemon1Proxy};
use super::recordings::recording_file;
use super::{CliError, Exit};
use crate::core::replay::ReplayFilter;

/// Written after a filtered play: attributes off (SGR 0), the whole screen
/// scrolls, replace mode, origin mode and reverse video off, normal cursor
/// keys and keypad, G0 shifted in as ASCII, cursor shown, main screen.
const TERMINAL_RESET: &[u8] =
    b"\x1b[0m\x1b[r\x1b[4l\x1b[?6l\x1b[?5l\x1b[?1l\x1b>\x0f\x1b(B\x1b[?25h\x1b[?1049l";

/// What play writes: the output filtered for the reviewer's terminal
/// (`core::replay`), or, with `--raw`, as recorded.
enum Screen {
    Filtered {
        filter: ReplayFilter,
        shown: Vec<u8>,
    },
    Raw,
}

impl Screen {
    fn new(raw: bool) -> Screen {
        if raw {
            Screen::Raw
        } else {
            Screen::Filtered {
                filter: ReplayFilter::new(),
                shown: Vec::new(),
            }
        }
    }

    /// The part of `bytes` (the next of the recording's output) to write.
    fn show<'a>(&'a mut self, bytes: &'a [u8]) -> &'a [u8] {
        match self {
            Screen::Filtered { filter, shown } => {
                shown.clear();
                filter.feed(bytes, shown);
                shown
            }
            Screen::Raw => bytes,
        }
    }

    /// The end of the recording: what is left to write, and how many
    /// sequences were left out.
    fn finish(&mut self) -> (&[u8], u64) {
        match self {
            Screen::Filtered { filter, shown } => {
                shown.clear();
                filter.finish(shown);
                (shown, filter.left_out())
            }
            Screen::Raw => (&[], 0),
        }
    }
}

/// Replays the "o" events with their timing (idle gaps capped at `max_idle`).
pub async fn play(
    jitd: &Daemon1Proxy<'_>,
    id: u64,
    speed: f64,
    max_idle: f64,
    raw: bool,
) -> Result<Exit, CliError> {
    if !(speed > 0.0 && max_idle >= 0.0) {
        return Err(CliError::new(
            Exit::Usage,
            "--speed must be above 0 and --max-idle at least 0",
        ));
    }
    let (fd, _) = jitd.open_recording_file(id).await.map_err(failure)?;
    let mut lines = BufReader::new(recording_file(fd)).lines();
    let bad = |what: &str| {
        CliError::new(
            Exit::Failed,
            format!("recording {id} is not valid asciicast v2: {what}"),
        )
    };
    let header = lines
        .next()
        .ok_or_else(|| bad("empty"))?
        .map_err(|e| bad(&e.to_string()))?;
    let header: serde_json::Value = serde_json::from_str(&header).map_err(|_| bad("bad header"))?;
    if header["version"] != 2 {
        return Err(bad("not version 2"));
    }
    if raw {
        eprintln!("jitctl: --raw: playing recording {id} unfiltered; its escape sequences reach your terminal as recorded (they can set your clipboard or type into your shell)");
    }
    let mut screen = Screen::new(raw);
    let mut stdout = std::io::stdout().lock();
    let mut last = 0.0f64;
    for line in lines {
        let line = line.map_err(|e| bad(&e.to_string()))?;
        let Ok(serde_json::Value::Array(event)) = serde_json::from_str::<serde_json::Value>(&line)
        else {
            return Err(bad("bad event line"));
        };
        let (Some(at), Some(kind), Some(text)) = (
            event.first().and_then(|v| v.as_f64()),
            event.get(1).and_then(|v| v.as_str()),
            event.get(2).and_then(|v| v.as_str()),
        ) else {
            return Err(bad("bad event"));
        };
        if kind != "o" {
            continue;
        }
        let gap = ((at - last).max(0.0) / speed).min(max_idle);
        last = at;
        if let Ok(gap) = Duration::try_from_secs_f64(gap) {
            tokio::time::sleep(gap).await;
        }
        let output = jit_recording::asciicast::decode_output(text);
        let _ = stdout.write_all(screen.show(&output));
        let _ = stdout.flush();
    }
    let (rest, left_out) = screen.finish();
    let _ = stdout.write_all(rest);
    if !raw {
        // Modes the recording left on must not outlast it in the reviewer's
        // terminal (hidden text or cursor, insert mode, a scroll region,
        // line drawing, the alternate screen).
        let _ = stdout.write_all(TERMINAL_RESET);
    }
    let _ = stdout.flush();
    if left_out > 0 {
        eprintln!("jitctl: left out {left_out} control sequences of recording {id} that act on the terminal rather than draw (titles, reports, clipboard, ...); --raw plays them");
    }
    Ok(Exit::Ok)
}

//! `jitctl recordings play`: the recording's output, with its timing, on
//! this terminal, filtered (`core::replay`) unless `--raw`; and `watch`:
//! the same, followed as the session is recorded.

use std::io::{BufRead, BufReader, Read, Write};
use std::time::Duration;

use super::client::{failure, Daemon1Proxy};
use super::commands::parse;
use super::recordings::recording_file;
use super::{CliError, Exit};
use crate::api::RecordingView;
use crate::core::replay::ReplayFilter;
use crate::core::sanitize::for_terminal as clean;

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
    let bad = |what: &str| invalid(id, what);
    let header = lines
        .next()
        .ok_or_else(|| bad("empty"))?
        .map_err(|e| bad(&e.to_string()))?;
    check_header(&header).map_err(bad)?;
    if raw {
        eprintln!("jitctl: --raw: playing recording {id} unfiltered; its escape sequences reach your terminal as recorded (they can set your clipboard or type into your shell)");
    }
    let mut screen = Screen::new(raw);
    let mut stdout = std::io::stdout().lock();
    let mut last = 0.0f64;
    for line in lines {
        let line = line.map_err(|e| bad(&e.to_string()))?;
        let Some((at, output)) = output_event(&line).map_err(bad)? else {
            continue;
        };
        let gap = ((at - last).max(0.0) / speed).min(max_idle);
        last = at;
        if let Ok(gap) = Duration::try_from_secs_f64(gap) {
            tokio::time::sleep(gap).await;
        }
        let _ = stdout.write_all(screen.show(&output));
        let _ = stdout.flush();
    }
    end_of_screen(&mut screen, &mut stdout, id);
    Ok(Exit::Ok)
}

/// How often a watcher looks for more of the file (the recorder writes at
/// least every 100 ms), and asks jitd again whether it may still watch and
/// whether the session ended.
const WATCH_POLL: Duration = Duration::from_millis(50);
const RECHECK: Duration = Duration::from_millis(500);
/// A line longer than jitd ever writes (1 MiB) means the file is not
/// jitd's recording.
const MAX_LINE: usize = 2 << 20;

/// Follows recording `id` as it is made, its output filtered as by play
/// and shown as it comes (no timing), until the session ends or Ctrl-C;
/// the terminal's modes are put back however it ends.
pub async fn watch(jitd: &Daemon1Proxy<'_>, id: u64) -> Result<Exit, CliError> {
    let (fd, json) = jitd.watch_recording(id).await.map_err(failure)?;
    let view: RecordingView = parse(&json)?;
    eprintln!(
        "jitctl: watching recording {id}: {} on {}, as it is made (Ctrl-C stops watching)",
        clean(&view.user),
        clean(&view.resource)
    );
    let mut screen = Screen::new(false);
    let mut stdout = std::io::stdout().lock();
    let followed = tokio::select! {
        ended = follow(jitd, id, recording_file(fd), view, &mut screen, &mut stdout) => ended.map(Some),
        _ = tokio::signal::ctrl_c() => Ok(None),
    };
    end_of_screen(&mut screen, &mut stdout, id);
    match followed? {
        Some(view) => eprintln!(
            "jitctl: recording {id} ended ({})",
            clean(view.end.as_deref().unwrap_or("no reason given"))
        ),
        None => eprintln!("jitctl: stopped watching recording {id}"),
    }
    Ok(Exit::Ok)
}

/// Shows what is appended to `file` until jitd says the recording ended
/// and all of it is read; its last listing.
async fn follow(
    jitd: &Daemon1Proxy<'_>,
    id: u64,
    mut file: std::fs::File,
    mut view: RecordingView,
    screen: &mut Screen,
    stdout: &mut impl Write,
) -> Result<RecordingView, CliError> {
    let bad = |what: &str| invalid(id, what);
    let (mut pending, mut scanned, mut header_seen) = (Vec::new(), 0, false);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut checked = std::time::Instant::now();
    loop {
        // Still allowed, and has it ended? Security and approvers may
        // watch only while it is made: refused now, it ended (or their
        // right did); what is written is shown, then the watch stops.
        if checked.elapsed() >= RECHECK && view.ended_at.is_none() {
            match jitd.watch_recording(id).await.map_err(failure) {
                Ok((_, json)) => view = parse(&json)?,
                Err(e) if e.exit == Exit::Denied => {
                    view.end = Some("it ended, or your right to watch it did".into());
                    view.ended_at = Some(String::new());
                }
                Err(e) => return Err(e),
            }
            checked = std::time::Instant::now();
        }
        let read = match file.read(&mut chunk) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            read => read.map_err(|e| bad(&e.to_string()))?,
        };
        if read == 0 {
            // At the end of what is written: done if the session has ended
            // (jitd marks it ended after its last write), else look again.
            if view.ended_at.is_some() {
                return Ok(view);
            }
            tokio::time::sleep(WATCH_POLL).await;
            continue;
        }
        pending.extend_from_slice(&chunk[..read]);
        while let Some(at) = pending[scanned..].iter().position(|b| *b == b'\n') {
            let end = scanned + at;
            let line: Vec<u8> = pending.drain(..=end).collect();
            scanned = 0;
            let line = String::from_utf8_lossy(&line[..end]);
            if !header_seen {
                check_header(&line).map_err(bad)?;
                header_seen = true;
            } else if let Some((_, output)) = output_event(&line).map_err(bad)? {
                let _ = stdout.write_all(screen.show(&output));
                let _ = stdout.flush();
            }
        }
        scanned = pending.len();
        if pending.len() > MAX_LINE {
            return Err(bad("a line longer than jitd writes"));
        }
    }
}

fn invalid(id: u64, what: &str) -> CliError {
    CliError::new(
        Exit::Failed,
        format!("recording {id} is not valid asciicast v2: {what}"),
    )
}

fn check_header(line: &str) -> Result<(), &'static str> {
    let header: serde_json::Value = serde_json::from_str(line).map_err(|_| "bad header")?;
    if header["version"] != 2 {
        return Err("not version 2");
    }
    Ok(())
}

/// An event line's time and, for an output event ("o"), its bytes.
fn output_event(line: &str) -> Result<Option<(f64, Vec<u8>)>, &'static str> {
    let Ok(serde_json::Value::Array(event)) = serde_json::from_str::<serde_json::Value>(line)
    else {
        return Err("bad event line");
    };
    let (Some(at), Some(kind), Some(text)) = (
        event.first().and_then(|v| v.as_f64()),
        event.get(1).and_then(|v| v.as_str()),
        event.get(2).and_then(|v| v.as_str()),
    ) else {
        return Err("bad event");
    };
    Ok((kind == "o").then(|| (at, jit_recording::asciicast::decode_output(text))))
}

/// What is left to show, and the terminal's modes put back (unless raw).
fn end_of_screen(screen: &mut Screen, stdout: &mut impl Write, id: u64) {
    let raw = matches!(screen, Screen::Raw);
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
}

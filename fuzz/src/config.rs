//! `/etc/jit/jitd.toml`: jitd's parser (`jitd::config::parse`) and the
//! polkit helper's (`jitd::config::polkit::load`, `[polkit]` alone, reached
//! as `jitd::fuzzing::load_polkit_config`).
//!
//! Properties, for any text (invalid UTF-8 is read lossily):
//! - neither panics;
//! - every error is `path:line:col: message` with the path given, a line
//!   and column inside the text (1-based, the column in characters, at most
//!   one past the line's end) and a one-line, non-empty message;
//! - an accepted configuration keeps the promises its users rely on:
//!   resource names valid and unique, nobody's `eligible` list empty,
//!   `auto_below < dual_from <= 100`;
//! - what jitd accepts, the polkit helper accepts with the same `[polkit]`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use jitd::config::{self, ConfigError};
use jitd::fuzzing::load_polkit_config;

pub fn check(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let path = Path::new("/etc/jit/jitd.toml");
    let parsed = config::parse(&text, path);
    match &parsed {
        Ok(config) => {
            let mut names = HashSet::new();
            for r in &config.resources {
                assert!((1..=64).contains(&r.name.len()), "resource {:?}", r.name);
                assert!(
                    r.name.bytes().all(|b| b.is_ascii_lowercase()
                        || b.is_ascii_digit()
                        || b"-_.".contains(&b)),
                    "resource {:?}",
                    r.name
                );
                assert!(names.insert(&r.name), "resource {:?} twice", r.name);
                assert!(
                    !r.eligible.is_empty(),
                    "resource {:?}: nobody eligible",
                    r.name
                );
            }
            let t = &config.risk.thresholds;
            assert!(t.auto_below < t.dual_from && t.dual_from <= 100, "{t:?}");
        }
        Err(e) => error_has_position(e, path, &text),
    }
    // The polkit helper reads the same file.
    let file = scratch_file();
    std::fs::write(file, text.as_bytes()).expect("writing the scratch config");
    let helper = load_polkit_config(file);
    match (&parsed, &helper) {
        (Ok(config), Ok(polkit)) => assert_eq!(&config.polkit, polkit),
        (Ok(_), Err(e)) => panic!("jitd accepts what the polkit helper refuses: {e}"),
        (Err(_), Ok(_)) => {}
        (Err(_), Err(e)) => error_has_position(e, file, &text),
    }
}

fn error_has_position(e: &ConfigError, path: &Path, text: &str) {
    let ConfigError::Invalid {
        path: at,
        line,
        col,
        message,
    } = e
    else {
        panic!("not a position: {e}");
    };
    assert_eq!(at, path);
    let lines: Vec<&str> = text.split('\n').collect();
    assert!(
        (1..=lines.len()).contains(line),
        "line {line} of {}: {e}",
        lines.len()
    );
    let width = lines[line - 1].chars().count();
    assert!((1..=width + 1).contains(col), "col {col} of {width}: {e}");
    assert!(!message.is_empty(), "empty message: {e}");
    assert!(!message.contains('\n'), "a message of several lines: {e:?}");
    assert_eq!(
        e.to_string(),
        format!("{}:{line}:{col}: {message}", path.display())
    );
}

/// The polkit helper reads a file: one per process, in the temp directory.
fn scratch_file() -> &'static Path {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        std::env::temp_dir().join(format!("jit-fuzz-config-{}.toml", std::process::id()))
    })
}

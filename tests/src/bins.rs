//! Where the built programs are.

use std::path::{Path, PathBuf};

/// The workspace root (parent of this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

/// Where `jitd` and `jitctl` are.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("JIT_BIN_DIR") {
        return PathBuf::from(dir);
    }
    // A test executable lives in <target>/debug/deps/.
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent().and_then(Path::parent) {
            if dir.join("jitd").is_file() {
                return dir.to_owned();
            }
        }
    }
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir).join("debug");
    }
    workspace_root().join("target").join("debug")
}

pub(crate) fn binary(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.is_file(),
        "{} not found: run `cargo build --workspace --bins` first (or set JIT_BIN_DIR)",
        path.display()
    );
    path
}

pub fn jitd_bin() -> PathBuf {
    binary("jitd")
}

pub fn jitctl_bin() -> PathBuf {
    binary("jitctl")
}

pub fn jit_deliver_bin() -> PathBuf {
    binary("jit-deliver")
}

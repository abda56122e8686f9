//! Link libgcc's unwinder (libgcc_eh.a) into the module statically.
//!
//! libpam loads and unloads the module on every transaction; linked against
//! libgcc_s.so it would drag that library in and out each time too (about
//! 0.1 ms here). With the unwinder inside, the linker's --as-needed drops
//! libgcc_s. Unwinding still works, which `catch_unwind` in every hook needs.
//! Without a C compiler to ask, the default (libgcc_s) is kept.
use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let Ok(out) = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .arg("-print-file-name=libgcc_eh.a")
        .output()
    else {
        return;
    };
    let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let Some(dir) = Path::new(&path)
        .parent()
        .filter(|_| Path::new(&path).is_absolute())
    else {
        return;
    };
    println!("cargo:rustc-link-search=native={}", dir.display());
    println!("cargo:rustc-link-lib=static=gcc_eh");
}

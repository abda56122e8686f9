//! `jit-docgen OUT`: man pages and shell completions for jitd and jitctl,
//! generated from their clap definitions so they follow every new option.
//!
//! Writes `OUT/man/` (jitd.8, jitctl.1 and one jitctl-VERB.1 per verb) and
//! `OUT/completions/{bash,zsh,fish}/`; the packaging installs them where each
//! distribution keeps them.

use clap::CommandFactory;
use clap_complete::Shell;
use std::fs;
use std::io;
use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(out), None) = (args.next(), args.next()) else {
        eprintln!("usage: jit-docgen OUTDIR");
        return ExitCode::from(2);
    };
    match generate(Path::new(&out)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jit-docgen: {e}");
            ExitCode::FAILURE
        }
    }
}

fn generate(out: &Path) -> io::Result<()> {
    let man = out.join("man");
    fs::create_dir_all(&man)?;
    // A daemon's page belongs in section 8, a user command's in section 1.
    clap_mangen::Man::new(jitd::command_line::Args::command())
        .section("8")
        .generate_to(&man)?;
    clap_mangen::generate_to(jitd::cli::args::Cli::command(), &man)?;

    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let dir = out.join("completions").join(shell.to_string());
        fs::create_dir_all(&dir)?;
        completions(shell, jitd::command_line::Args::command(), &dir)?;
        completions(shell, jitd::cli::args::Cli::command(), &dir)?;
    }
    Ok(())
}

/// Writes `NAME.bash`, `_NAME` (zsh) or `NAME.fish`.
fn completions(shell: Shell, mut cmd: clap::Command, dir: &Path) -> io::Result<()> {
    let name = cmd.get_name().to_owned();
    clap_complete::generate_to(shell, &mut cmd, name, dir).map(drop)
}

//! jitctl: request, approve and audit just-in-time privileged access.

use clap::{CommandFactory, Parser};
use std::process::ExitCode;

use jitd::cli::args::{Cli, Command};
use jitd::cli::{commands, CliError, Exit};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => return fail(&CliError::new(Exit::Usage, usage_line(&e))),
    };
    if let Command::Completions { shell } = cli.command {
        clap_complete::generate(shell, &mut Cli::command(), "jitctl", &mut std::io::stdout());
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&CliError::new(Exit::Failed, format!("cannot start: {e}"))),
    };
    match runtime.block_on(commands::run(cli.command)) {
        Ok(exit) => ExitCode::from(exit as u8),
        Err(e) => fail(&e),
    }
}

/// clap's multi-line error folded into one line, plus which help to read.
fn usage_line(e: &clap::Error) -> String {
    let rendered = e.render().to_string();
    let problem: Vec<&str> = rendered
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect();
    let problem = problem.join(" ");
    let problem = problem.strip_prefix("error: ").unwrap_or(&problem);
    // "Usage: jitctl request [OPTIONS] ..." names the subcommand whose help to read.
    let command: Vec<&str> = rendered
        .lines()
        .find_map(|l| l.trim().strip_prefix("Usage: "))
        .map(|u| {
            u.split_whitespace()
                .take_while(|w| !w.starts_with(['[', '<', '-']))
                .collect()
        })
        .unwrap_or_else(|| vec!["jitctl"]);
    format!("{problem} (see '{} --help')", command.join(" "))
}

fn fail(e: &CliError) -> ExitCode {
    eprintln!("jitctl: {}", jitd::core::sanitize::for_terminal(&e.message));
    ExitCode::from(e.exit as u8)
}

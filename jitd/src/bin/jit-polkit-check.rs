//! jit-polkit-check: what jit says about one polkit authorization check.
//! polkitd runs it, as its own account, from `20-jit.rules`.
//!
//! Prints one line and exits 0: `pass: WHY` (the later rules decide) or
//! `refuse: WHY` (the rule answers NO). Exits 1 with the reason on stderr
//! when it cannot tell, which the rule also takes as NO; 2 on bad usage.

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

use jitd::config;
use jitd::polkit::actions::{SessionKind, ACTIONS_DIR};
use jitd::polkit::{check, Check};

#[derive(Parser)]
#[command(version, about = "The polkit rule's question to jit (20-jit.rules)")]
struct Args {
    /// jitd's configuration, of which only [polkit] is read.
    #[arg(long, value_name = "FILE", default_value = config::DEFAULT_PATH)]
    config: PathBuf,
    /// The subject's user (polkit's subject.user).
    user: String,
    /// The action id (polkit's action.id).
    action: String,
    /// The subject's session: any (not local, or none), inactive or active.
    #[arg(value_enum)]
    session: SessionKind,
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(2);
        }
    };
    let request = Check {
        config: &args.config,
        actions: ACTIONS_DIR.as_ref(),
        user: &args.user,
        action: &args.action,
        session: args.session,
    };
    match check(&request) {
        Ok(verdict) => {
            println!("{verdict}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("jit-polkit-check: {e}");
            ExitCode::FAILURE
        }
    }
}

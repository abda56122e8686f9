//! jitd's command line (jitctl's is `cli::args`). In the library so that the
//! man page and completions are generated from the same definition.

use clap::Parser;
use std::path::PathBuf;

use crate::config;

#[derive(Parser, Debug)]
#[command(
    name = "jitd",
    version,
    about = "Just-in-time privileged access daemon"
)]
pub struct Args {
    /// Configuration file.
    #[arg(long, value_name = "FILE", default_value = config::DEFAULT_PATH)]
    pub config: PathBuf,
    /// Where the database and the audit key live.
    #[arg(long, value_name = "DIR", default_value = "/var/lib/jit")]
    pub state_dir: PathBuf,
    /// Where the private socket for pam_jit is made (`pam.socket`).
    #[arg(long, value_name = "DIR", default_value = "/run/jit")]
    pub runtime_dir: PathBuf,
    /// Check FILE and exit: 0 if valid, 1 with `file:line:col: message` if not.
    /// Users and groups that do not exist, and roles that routing needs with
    /// nobody in them, are warned about (`file:line:col: warning: message`).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["config", "state_dir", "runtime_dir"])]
    pub check_config: Option<PathBuf>,
    /// With --check-config: exit 1 on warnings too.
    #[arg(long, requires = "check_config")]
    pub strict: bool,
}

//! End-to-end harness for jitd and jitctl.
//!
//! Every test builds its own [`Env`]: a private mount namespace (held open by a
//! `sleep` process) in which `/etc/passwd` and `/etc/group` are bind-mounted
//! copies of the host's files plus the fixture users, a private `dbus-daemon`
//! with jit's bus policy, and a `jitd` with a per-test config and state dir.
//! Nothing outside the test's temporary directory is touched; dropping the
//! `Env` (also on panic) kills every process it started.
//!
//! The tests need root and the binaries built first:
//!
//! ```text
//! cargo build --workspace --bins && cargo test -p jit-tests
//! ```
//!
//! The binaries are looked up in `$JIT_BIN_DIR`, else next to the test
//! executable (`<target>/debug`), else `$CARGO_TARGET_DIR/debug`, else
//! `<workspace>/target/debug`.

pub use serde_json::Value;

mod accounts;

mod bins;
pub use bins::*;

mod bus;
pub use bus::*;

mod chroot;
pub use chroot::*;

mod daemon;

mod fixtures;
pub use fixtures::*;

mod jitctl;
pub use jitctl::*;

mod network;
pub use network::*;

mod pam;
pub use pam::*;

mod polkit;
pub use polkit::*;

mod process;
pub use process::*;

pub mod rsyslog;

mod sandbox;
pub use sandbox::*;

mod session;
pub use session::*;

mod sshd;
pub use sshd::*;

mod sudo;
pub use sudo::*;

pub mod sinks;

mod wait;
pub use wait::*;

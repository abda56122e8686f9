//! Notification delivery out of the root daemon (issue 17, item 6).
//!
//! jitd keeps the outbox, the retry schedule and the audit (see
//! [`crate::notifier`]); the network work (SMTP, TLS, HTTP) is done by
//! `jit-deliver`, an unprivileged service of its own (the `jit-deliver`
//! crate, which links the SMTP, TLS and HTTP code jitd does not), which
//! never opens jitd's database. They talk over jitd's root-owned socket
//! `deliver.socket` in its runtime directory with the small protocol of
//! [`wire`]: jitd hands out one delivery at a time and takes back its
//! acknowledgement.

pub mod wire;

/// The socket's file name in jitd's runtime directory.
pub const SOCKET_NAME: &str = "deliver.socket";

/// The system user `jit-deliver` runs as (sysusers.d); the only one, with
/// root, that jitd serves on the socket.
pub const USER: &str = "jit-deliver";

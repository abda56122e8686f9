//! The session-end vocabulary: the reason a recorder gives at
//! CloseRecording, and jitd's follower when the pipe fails, which jitd
//! stores with the recording and puts in the audit trail.

/// Why the recording closed (the `end` of CloseRecording).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Exit,
    Expired,
    Revoked,
    WriteFailed,
    Terminated,
}

impl End {
    pub fn as_str(self) -> &'static str {
        match self {
            End::Exit => "exit",
            End::Expired => "expired",
            End::Revoked => "revoked",
            End::WriteFailed => "write_failed",
            End::Terminated => "terminated",
        }
    }

    pub fn parse(text: &str) -> Option<End> {
        [
            End::Exit,
            End::Expired,
            End::Revoked,
            End::WriteFailed,
            End::Terminated,
        ]
        .into_iter()
        .find(|e| e.as_str() == text)
    }
}

//! Session openings acknowledged before their row is written.
//!
//! sudo waits for jitd's answer to `RegisterSession` before it runs the
//! command; writing the session's row and audit event (a SQLite commit) in
//! that wait cost every sudo about 0.17 ms here. jitd appends the opening to
//! this journal instead (one write(2), the durability of the WAL at
//! `synchronous=NORMAL`: it survives a crash of jitd), answers, and writes
//! the row later (with others, off sudo's path). At start, every journaled opening whose row is
//! missing is written, so a `kill -9` between the answer and the row loses
//! no session.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::{Result, SessionRecord, StoreError};

/// Past this size, the journal is emptied once every opening in it is written.
const CLEAR_AT: u64 = 64 * 1024;

pub struct Journal {
    file: File,
    path: PathBuf,
    len: u64,
}

impl Journal {
    /// Opens (creating, 0600) `sessions.journal` in `state_dir`; returns it
    /// with the openings it holds, for the caller to write what is missing
    /// and then [`Journal::clear`] it.
    pub fn open(state_dir: &Path) -> Result<(Journal, Vec<SessionRecord>)> {
        let path = state_dir.join("sessions.journal");
        let io = |source| StoreError::Journal {
            path: path.display().to_string(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&path)
            .map_err(io)?;
        let mut openings = Vec::new();
        for line in BufReader::new(&file).lines() {
            let line = line.map_err(io)?;
            match serde_json::from_str(&line) {
                Ok(opening) => openings.push(opening),
                // Only a power loss mid-append leaves a partial line.
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "skipped a damaged session journal line")
                }
            }
        }
        let len = file.metadata().map_err(io)?.len();
        Ok((Journal { file, path, len }, openings))
    }

    /// Appends `opening` in one write: it must be in the journal before the
    /// caller is told the session is registered.
    pub fn append(&mut self, opening: &SessionRecord) -> Result<()> {
        let mut line = serde_json::to_vec(opening).map_err(|e| self.error(e.into()))?;
        line.push(b'\n');
        self.file.write_all(&line).map_err(|e| self.error(e))?;
        self.len += line.len() as u64;
        Ok(())
    }

    /// Every appended opening's row is written: the journal is emptied if
    /// it has grown (truncating on every sudo would cost a metadata write).
    pub fn all_written(&mut self) -> Result<()> {
        if self.len > CLEAR_AT {
            self.clear()?;
        }
        Ok(())
    }

    /// Empties the journal: every opening in it has its row.
    pub fn clear(&mut self) -> Result<()> {
        self.file.set_len(0).map_err(|e| self.error(e))?;
        self.len = 0;
        Ok(())
    }

    fn error(&self, source: std::io::Error) -> StoreError {
        StoreError::Journal {
            path: self.path.display().to_string(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opening(id: u64) -> SessionRecord {
        SessionRecord {
            id,
            grant: 3,
            uid: 61001,
            service: "sudo".into(),
            tty: "/dev/pts/1".into(),
            rhost: String::new(),
            pid: 4242,
            started: Some(99),
            cgroup: Some("/sys/fs/cgroup/jit/grant-3".into()),
            opened_at: 1_700_000_000,
            closed_at: None,
        }
    }

    #[test]
    fn openings_survive_a_reopen_until_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, found) = Journal::open(dir.path()).unwrap();
        assert!(found.is_empty());
        journal.append(&opening(1)).unwrap();
        journal.append(&opening(2)).unwrap();
        drop(journal);

        let (mut journal, found) = Journal::open(dir.path()).unwrap();
        assert_eq!(found, vec![opening(1), opening(2)]);
        let mode = std::fs::metadata(dir.path().join("sessions.journal"))
            .unwrap()
            .permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        journal.clear().unwrap();
        drop(journal);
        assert!(Journal::open(dir.path()).unwrap().1.is_empty());
    }

    #[test]
    fn a_damaged_line_is_skipped_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, _) = Journal::open(dir.path()).unwrap();
        journal.append(&opening(1)).unwrap();
        journal.file.write_all(b"{\"id\":2,\"gra").unwrap();
        drop(journal);
        assert_eq!(Journal::open(dir.path()).unwrap().1, vec![opening(1)]);
    }

    #[test]
    fn emptied_once_written_only_when_grown() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, _) = Journal::open(dir.path()).unwrap();
        let mut id = 0;
        while journal.len <= CLEAR_AT / 2 {
            id += 1;
            journal.append(&opening(id)).unwrap();
        }
        journal.all_written().unwrap();
        assert!(journal.len > 0, "emptied before it grew");
        while journal.len <= CLEAR_AT {
            id += 1;
            journal.append(&opening(id)).unwrap();
        }
        journal.all_written().unwrap();
        assert_eq!(journal.len, 0);
        assert_eq!(std::fs::metadata(&journal.path).unwrap().len(), 0);
    }
}

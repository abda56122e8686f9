//! Recording files on disk: created by jitd for jit-session (which writes
//! them), readable by root and the recordings group only.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use nix::unistd::{chown, Group};

/// Creates the empty recording at `path` (0640, group `group`), and its
/// directory (0750) if needed. Refuses to reuse an existing file.
pub fn create(path: &Path, group: &str) -> io::Result<()> {
    let gid = Group::from_name(group).ok().flatten().map(|g| g.gid);
    if let Some(dir) = path.parent() {
        if !dir.exists() {
            DirBuilder::new().recursive(true).mode(0o750).create(dir)?;
            if let Some(gid) = gid {
                chown(dir, None, Some(gid)).map_err(io::Error::from)?;
            }
            fs::set_permissions(dir, fs::Permissions::from_mode(0o750))?;
        }
    }
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o640)
        .open(path)?;
    if let Some(gid) = gid {
        chown(path, None, Some(gid)).map_err(io::Error::from)?;
    }
    // The umask of jitd (077) would otherwise strip the group's read bit.
    file.set_permissions(fs::Permissions::from_mode(0o640))?;
    Ok(())
}

//! Root's recovery secret (W3, `root_custody`): between grants root's
//! password is an escrowed one nobody online knows, written once to a
//! root-only file for the admin to store offline (and delete), so that
//! `sulogin` and the console still open root when jitd is down.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::core::password::Secret;

/// The file in jitd's state directory.
pub const RECOVERY_FILE: &str = "root-recovery.txt";

/// The recovery password in the file at `path`, the file deleted: once
/// taken (by security, to store offline), it is no longer on the host.
/// `None` when there is no file.
pub fn take_recovery_file(path: &Path) -> io::Result<Option<Secret>> {
    let mut text = zeroize::Zeroizing::new(String::new());
    match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
    {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
        Ok(mut file) => io::Read::read_to_string(&mut file, &mut text)?,
    };
    let password = text
        .lines()
        .rfind(|line| !line.starts_with('#') && !line.is_empty())
        .ok_or_else(|| io::Error::other("the recovery file holds no password"))?;
    let password = Secret::new(password.to_owned());
    fs::remove_file(path)?;
    Ok(Some(password))
}

/// Writes the recovery password to `path`, replacing an older one: a new
/// file, 0400, never through a link.
pub fn write_recovery_file(path: &Path, password: &Secret) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o400)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    let text = zeroize::Zeroizing::new(format!(
        "# root's recovery password (jit, root_custody). It opens root whenever root is\n\
         # not checked out, jitd running or not (sulogin, the console). Print it, store it\n\
         # offline (a sealed envelope, a vault), then delete this file. After using it, set a\n\
         # new root password: jitd takes root back and writes a new recovery password here.\n\
         {}\n",
        password.expose()
    ));
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

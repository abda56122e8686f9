//! Managed local accounts (W3): their passwords, drawn from ring's
//! `SystemRandom`, hashed by libcrypt ([`crypt`]) and written through
//! shadow-utils ([`shadow`]).

mod crypt;
mod escrow;
mod groups;
mod keeper;
mod leftovers;
mod lock_holders;
mod purge;
pub mod segments;
pub mod shadow;
pub mod vendors;

use ring::rand::{SecureRandom, SystemRandom};

use crate::core::password::{generate, PasswordPolicy, Secret};
pub use escrow::{take_recovery_file, RECOVERY_FILE};
pub use groups::{Gpasswd, Groups};
pub use keeper::{HostTools, Keeper};
pub use lock_holders::LockHolder;
pub use shadow::AccountError;

/// A rotation's result: the new password (for its fingerprint, and for a
/// holder who may see it) and the `/etc/shadow` field written (for its
/// fingerprint: a later pass tells whether someone changed it).
pub struct Rotated {
    pub password: Secret,
    pub field: Secret,
}

/// Whether a new password can be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Usable {
    /// `!` in front: nobody logs in with it (custody, check-in).
    Locked,
    /// A checkout's.
    Unlocked,
}

/// What jitd does to a managed account's password: the engine decides
/// when, this does it.
pub trait Passwords: Send + Sync {
    /// A new random password under `policy` and its `/etc/shadow` field,
    /// locked or not; nothing written.
    fn prepare(&self, policy: &PasswordPolicy, usable: Usable) -> Result<Rotated, AccountError>;
    /// Writes `field` as `name`'s in one change of `/etc/shadow`, read
    /// back to check it.
    fn write(&self, name: &str, field: &Secret) -> Result<(), AccountError>;
    /// `name`'s `/etc/shadow` password field now.
    fn current_field(&self, name: &str) -> Result<Secret, AccountError>;
    /// Kills the users' programs holding the account files locked
    /// (`lock_holders`), and says which.
    fn end_user_lock_holders(&self) -> Vec<LockHolder>;
}

/// The host's accounts: libcrypt's hash, written by `chpasswd -e`.
pub struct ShadowUtils {
    random: SystemRandom,
}

impl ShadowUtils {
    pub fn new() -> ShadowUtils {
        ShadowUtils {
            random: SystemRandom::new(),
        }
    }
}

impl Passwords for ShadowUtils {
    fn prepare(&self, policy: &PasswordPolicy, usable: Usable) -> Result<Rotated, AccountError> {
        let password = generate(policy, |buf| self.random.fill(buf)).map_err(|_| {
            AccountError::Io(std::io::Error::other("the system random source failed"))
        })?;
        let hash = crypt::hash(&password, &self.random)?;
        let lock = match usable {
            Usable::Locked => "!",
            Usable::Unlocked => "",
        };
        let field = Secret::new(format!("{lock}{}", hash.expose()));
        Ok(Rotated { password, field })
    }

    fn write(&self, name: &str, field: &Secret) -> Result<(), AccountError> {
        shadow::set_field(name, field)
    }

    fn current_field(&self, name: &str) -> Result<Secret, AccountError> {
        shadow::field(name)
    }

    fn end_user_lock_holders(&self) -> Vec<LockHolder> {
        let holders = lock_holders::held_by_users();
        for holder in &holders {
            let pid = nix::unistd::Pid::from_raw(holder.pid as i32);
            // SIGKILL: a stopped process does not see SIGTERM until resumed.
            if let Err(e) = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL) {
                tracing::warn!(pid = holder.pid, error = %e, "cannot end a lock holder");
            }
        }
        holders
    }
}

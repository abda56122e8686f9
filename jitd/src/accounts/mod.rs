//! Managed local accounts (W3): their passwords, drawn from ring's
//! `SystemRandom`, hashed by libcrypt ([`crypt`]) and written through
//! shadow-utils ([`shadow`]).

mod crypt;
pub mod shadow;

use ring::rand::{SecureRandom, SystemRandom};

use crate::core::password::{generate, PasswordPolicy, Secret};
pub use shadow::AccountError;

/// What jitd does to a managed account's password: the engine decides
/// when, this does it.
pub trait Passwords {
    /// Gives `name` a new random password under `policy` and locks it;
    /// returns the password (for its fingerprint only: nobody needs it).
    fn rotate_and_lock(&self, name: &str, policy: &PasswordPolicy) -> Result<Secret, AccountError>;
    /// Whether `name`'s password is locked now.
    fn is_locked(&self, name: &str) -> Result<bool, AccountError>;
}

/// The host's accounts, through `chpasswd` and `usermod`.
pub struct ShadowUtils {
    random: SystemRandom,
}

impl ShadowUtils {
    pub fn new() -> ShadowUtils {
        ShadowUtils {
            random: SystemRandom::new(),
        }
    }

    fn password(&self, policy: &PasswordPolicy) -> Result<Secret, AccountError> {
        let mut failed = false;
        let secret = generate(policy, |buf| failed |= self.random.fill(buf).is_err());
        if failed {
            return Err(AccountError::Io(std::io::Error::other(
                "the system random source failed",
            )));
        }
        Ok(secret)
    }
}

impl Passwords for ShadowUtils {
    fn rotate_and_lock(&self, name: &str, policy: &PasswordPolicy) -> Result<Secret, AccountError> {
        let secret = self.password(policy)?;
        let hash = crypt::hash(&secret, &self.random)?;
        shadow::set_field(name, &format!("!{hash}"))?;
        Ok(secret)
    }

    fn is_locked(&self, name: &str) -> Result<bool, AccountError> {
        Ok(shadow::entry(name)?.locked)
    }
}

//! Managed local accounts (W3): their passwords, drawn from ring's
//! `SystemRandom`, hashed by libcrypt ([`crypt`]) and written through
//! shadow-utils ([`shadow`]).

mod crypt;
pub mod shadow;

use ring::rand::{SecureRandom, SystemRandom};

use crate::core::password::{generate, PasswordPolicy, Secret};
pub use shadow::AccountError;

/// A rotation's result: the new password (for its fingerprint: nobody
/// needs it) and the `/etc/shadow` field written (for its fingerprint: a
/// later start tells whether someone changed it).
pub struct Rotated {
    pub password: Secret,
    pub field: Secret,
}

/// What jitd does to a managed account's password: the engine decides
/// when, this does it.
pub trait Passwords {
    /// Gives `name` a new random password under `policy`, locked, in one
    /// change of `/etc/shadow`.
    fn rotate_and_lock(&self, name: &str, policy: &PasswordPolicy)
        -> Result<Rotated, AccountError>;
    /// `name`'s `/etc/shadow` password field now.
    fn current_field(&self, name: &str) -> Result<Secret, AccountError>;
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
    fn rotate_and_lock(
        &self,
        name: &str,
        policy: &PasswordPolicy,
    ) -> Result<Rotated, AccountError> {
        let password = generate(policy, |buf| self.random.fill(buf)).map_err(|_| {
            AccountError::Io(std::io::Error::other("the system random source failed"))
        })?;
        let hash = crypt::hash(&password, &self.random)?;
        let field = Secret::new(format!("!{}", hash.expose()));
        shadow::set_field(name, &field)?;
        Ok(Rotated { password, field })
    }

    fn current_field(&self, name: &str) -> Result<Secret, AccountError> {
        shadow::field(name)
    }
}

//! Password hashes, by the host's libcrypt (libxcrypt): its default method
//! (yescrypt on Debian 12 and Fedora) at its lowest cost, with a salt from
//! ring's `SystemRandom`. A slow hash protects passwords people choose;
//! jitd's are random with at least 100 bits (`core::password`), out of
//! reach of guessing at any cost, and yescrypt's default cost would add
//! 20 ms to every checkout and rotation (measured: 23 ms against 1.3 ms). jitd hashes the password itself so that the
//! text never leaves its memory: shadow-utils only ever sees the hash
//! (`chpasswd -e`), and a rotation that locks writes the locked hash in one
//! replacement of `/etc/shadow`.

use std::ffi::{c_char, c_int, c_ulong, c_void, CStr};

use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use super::AccountError;
use crate::core::password::Secret;

/// `sizeof(struct crypt_data)` in libxcrypt (<crypt.h>, `CRYPT_DATA_*`).
const CRYPT_DATA_SIZE: usize = 32768;
/// `CRYPT_GENSALT_OUTPUT_SIZE` in <crypt.h>.
const GENSALT_OUTPUT_SIZE: usize = 192;
/// `count` for `crypt_gensalt`: the method's lowest cost (see the module).
const LOWEST_COST: c_ulong = 1;
/// Random bytes for the salt (libxcrypt takes up to 64 and uses what the
/// method needs).
const SALT_BYTES: usize = 32;

#[link(name = "crypt")]
extern "C" {
    fn crypt_gensalt_rn(
        prefix: *const c_char,
        count: c_ulong,
        rbytes: *const c_char,
        nrbytes: c_int,
        output: *mut c_char,
        output_size: c_int,
    ) -> *mut c_char;
    fn crypt_rn(
        phrase: *const c_char,
        setting: *const c_char,
        data: *mut c_void,
        size: c_int,
    ) -> *mut c_char;
}

/// The hash of `secret` for `/etc/shadow`: `$id$params$salt$hash`.
pub fn hash(secret: &Secret, random: &SystemRandom) -> Result<Secret, AccountError> {
    let failed = |what: &str| AccountError::Io(std::io::Error::other(what.to_owned()));
    let mut rbytes = [0u8; SALT_BYTES];
    random
        .fill(&mut rbytes)
        .map_err(|_| failed("the system random source failed"))?;
    let mut setting = [0 as c_char; GENSALT_OUTPUT_SIZE];
    // The lowest cost (1), or the method's default (0) where it refuses 1.
    let made = [LOWEST_COST, 0].into_iter().any(|count| {
        // SAFETY: a null prefix asks for libcrypt's default method; rbytes
        // and setting are valid for the lengths given.
        let made = unsafe {
            crypt_gensalt_rn(
                std::ptr::null(),
                count,
                rbytes.as_ptr().cast(),
                SALT_BYTES as c_int,
                setting.as_mut_ptr(),
                GENSALT_OUTPUT_SIZE as c_int,
            )
        };
        !made.is_null()
    });
    if !made {
        return Err(failed("libcrypt could not make a salt"));
    }
    let text = secret.expose().as_bytes();
    if text.contains(&0) {
        return Err(failed("a password with a NUL byte"));
    }
    // NUL-terminated, zeroed when dropped.
    let mut phrase = Zeroizing::new(Vec::with_capacity(text.len() + 1));
    phrase.extend_from_slice(text);
    phrase.push(0);
    // Holds the phrase while hashing: zeroed when dropped.
    let mut data = Zeroizing::new(vec![0u8; CRYPT_DATA_SIZE]);
    // SAFETY: phrase and setting are NUL-terminated; data is a zeroed
    // buffer of the size given, as crypt_rn requires of a fresh crypt_data.
    let out = unsafe {
        crypt_rn(
            phrase.as_ptr().cast(),
            setting.as_ptr(),
            data.as_mut_ptr().cast(),
            CRYPT_DATA_SIZE as c_int,
        )
    };
    if out.is_null() {
        return Err(failed("libcrypt could not hash the password"));
    }
    // SAFETY: on success crypt_rn returns a NUL-terminated string inside
    // `data`, which lives until the end of this function.
    let hashed = Secret::new(
        unsafe { CStr::from_ptr(out) }
            .to_str()
            .map_err(|_| failed("libcrypt returned a hash that is not text"))?
            .to_owned(),
    );
    // A failure may also come back as a string starting with '*'.
    let text = hashed.expose();
    if !text.starts_with('$') || text.contains([':', '\n']) {
        return Err(failed("libcrypt returned no usable hash"));
    }
    Ok(hashed)
}

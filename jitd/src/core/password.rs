//! Passwords for managed accounts (W3): drawn uniformly from a policy's
//! alphabet, with at least one character of each class it names, from
//! whatever random source the caller hands in (jitd's is ring's
//! `SystemRandom`). The text lives in a [`Secret`]: zeroed when dropped,
//! never printed by `Debug`.

use std::fmt;

use zeroize::Zeroizing;

/// A class of characters a policy draws from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CharClass {
    Lower,
    Upper,
    Digit,
    Symbol,
}

impl CharClass {
    pub const ALL: [CharClass; 4] = [
        CharClass::Lower,
        CharClass::Upper,
        CharClass::Digit,
        CharClass::Symbol,
    ];

    pub fn name(self) -> &'static str {
        match self {
            CharClass::Lower => "lower",
            CharClass::Upper => "upper",
            CharClass::Digit => "digit",
            CharClass::Symbol => "symbol",
        }
    }

    /// No blank, quote, backslash or colon: the password is typed at
    /// consoles and goes to `chpasswd` as `name:password`.
    fn chars(self) -> &'static [u8] {
        match self {
            CharClass::Lower => b"abcdefghijklmnopqrstuvwxyz",
            CharClass::Upper => b"ABCDEFGHIJKLMNOPQRSTUVWXYZ",
            CharClass::Digit => b"0123456789",
            CharClass::Symbol => b"!#$%&()*+,-./;<=>?@[]^_{|}~",
        }
    }
}

/// What a managed account's passwords look like.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordPolicy {
    pub length: usize,
    /// Each at least once; at least one class, none twice.
    pub classes: Vec<CharClass>,
}

/// Shortest and longest password a policy may ask for.
pub const MIN_LENGTH: usize = 16;
pub const MAX_LENGTH: usize = 256;
/// The least entropy a policy may give a password: its keyed fingerprint
/// (in the database) must be out of reach of a brute force by whoever
/// holds a backup of the database and its key.
pub const MIN_BITS: f64 = 100.0;

impl Default for PasswordPolicy {
    fn default() -> Self {
        PasswordPolicy {
            length: 32,
            classes: CharClass::ALL.to_vec(),
        }
    }
}

impl PasswordPolicy {
    /// Why the policy cannot be used, if it cannot.
    pub fn problem(&self) -> Option<String> {
        if !(MIN_LENGTH..=MAX_LENGTH).contains(&self.length) {
            return Some(format!(
                "password length must be between {MIN_LENGTH} and {MAX_LENGTH}"
            ));
        }
        if self.classes.is_empty() {
            return Some("a password policy needs at least one character class".into());
        }
        let mut seen = self.classes.clone();
        seen.sort();
        seen.dedup();
        if seen.len() != self.classes.len() {
            return Some("a character class is named twice".into());
        }
        let bits = self.length as f64 * (self.alphabet().len() as f64).log2();
        if bits < MIN_BITS {
            return Some(format!(
                "{} characters of these classes give {bits:.0} bits of entropy; \
                 at least {MIN_BITS:.0} are needed (make it longer or add classes)",
                self.length
            ));
        }
        None
    }

    fn alphabet(&self) -> Vec<u8> {
        self.classes
            .iter()
            .flat_map(|c| c.chars())
            .copied()
            .collect()
    }
}

/// A password (or any secret text: an SMTP password, a webhook URL):
/// zeroed on drop, redacted in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(text: String) -> Secret {
        Secret(Zeroizing::new(text))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// A password under `policy`, each character drawn uniformly from its
/// alphabet (rejection sampling: no modulo bias), redrawn whole until
/// every class is present (uniform over the passwords that satisfy the
/// policy). `fill` fills a buffer with random bytes; its failure ends the
/// drawing. The policy must be valid ([`PasswordPolicy::problem`]).
pub fn generate<E>(
    policy: &PasswordPolicy,
    mut fill: impl FnMut(&mut [u8]) -> Result<(), E>,
) -> Result<Secret, E> {
    let alphabet = policy.alphabet();
    // The largest multiple of the alphabet's size a byte can hold.
    let limit = 256 - 256 % alphabet.len();
    let mut bytes = Zeroizing::new(vec![0u8; policy.length * 2]);
    loop {
        let mut text = Zeroizing::new(String::with_capacity(policy.length));
        while text.len() < policy.length {
            fill(&mut bytes)?;
            for &b in bytes.iter() {
                if usize::from(b) < limit && text.len() < policy.length {
                    text.push(char::from(alphabet[usize::from(b) % alphabet.len()]));
                }
            }
        }
        let complete = policy
            .classes
            .iter()
            .all(|c| text.bytes().any(|b| c.chars().contains(&b)));
        if complete {
            return Ok(Secret(text));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic stand-in for a random source (xorshift).
    fn counter(seed: u64) -> impl FnMut(&mut [u8]) -> Result<(), ()> {
        let mut state = seed;
        move |buf: &mut [u8]| {
            for b in buf.iter_mut() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *b = state as u8;
            }
            Ok(())
        }
    }

    fn draw(policy: &PasswordPolicy, seed: u64) -> Secret {
        generate(policy, counter(seed)).unwrap()
    }

    #[test]
    fn passwords_have_the_length_and_every_class() {
        for (length, classes) in [
            (16, CharClass::ALL.to_vec()),
            (256, vec![CharClass::Digit]),
            (31, vec![CharClass::Digit]),
            (20, vec![CharClass::Lower, CharClass::Symbol]),
        ] {
            let policy = PasswordPolicy { length, classes };
            assert_eq!(policy.problem(), None);
            for seed in 1..50 {
                let secret = draw(&policy, seed);
                let text = secret.expose();
                assert_eq!(text.len(), length);
                for class in CharClass::ALL {
                    let has = text.bytes().any(|b| class.chars().contains(&b));
                    assert_eq!(has, policy.classes.contains(&class), "{class:?} in {text}");
                }
            }
        }
    }

    #[test]
    fn no_character_that_chpasswd_or_a_console_would_mangle() {
        let policy = PasswordPolicy::default();
        for seed in 1..200 {
            let secret = draw(&policy, seed);
            assert!(
                secret
                    .expose()
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && !b"\"'`\\:".contains(&b)),
                "{}",
                secret.expose()
            );
        }
    }

    #[test]
    fn a_constant_source_is_rejected_until_it_varies_and_bytes_past_the_limit_are_skipped() {
        // 26 lower-case letters: bytes >= 234 are rejected, never folded.
        let policy = PasswordPolicy {
            length: 22,
            classes: vec![CharClass::Lower],
        };
        let mut calls = 0;
        let secret = generate(&policy, |buf: &mut [u8]| -> Result<(), ()> {
            calls += 1;
            let byte = if calls == 1 { 250 } else { 27 };
            buf.fill(byte);
            Ok(())
        })
        .unwrap();
        assert_eq!(secret.expose(), "b".repeat(22));
        assert_eq!(calls, 2);
    }

    #[test]
    fn a_failing_source_ends_the_drawing() {
        let mut calls = 0;
        let drawn = generate(&PasswordPolicy::default(), |_: &mut [u8]| {
            calls += 1;
            Err("no entropy")
        });
        assert_eq!(drawn.err(), Some("no entropy"));
        assert_eq!(calls, 1);
    }

    #[test]
    fn bad_policies_are_explained() {
        let short = PasswordPolicy {
            length: 8,
            ..PasswordPolicy::default()
        };
        assert!(short.problem().unwrap().contains("between 16 and 256"));
        let none = PasswordPolicy {
            length: 32,
            classes: vec![],
        };
        assert!(none.problem().unwrap().contains("at least one"));
        let twice = PasswordPolicy {
            length: 32,
            classes: vec![CharClass::Digit, CharClass::Digit],
        };
        assert!(twice.problem().unwrap().contains("twice"));
        // 30 digits: 99.7 bits.
        let weak = PasswordPolicy {
            length: 30,
            classes: vec![CharClass::Digit],
        };
        assert!(
            weak.problem().unwrap().contains("at least 100"),
            "{:?}",
            weak.problem()
        );
    }

    #[test]
    fn a_secret_is_not_printed() {
        let secret = draw(&PasswordPolicy::default(), 7);
        assert_eq!(format!("{secret:?}"), "Secret(..)");
        assert!(!format!("{secret:?}").contains(secret.expose()));
    }
}

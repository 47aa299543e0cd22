//! Stored passwords in Dovecot's `{SCHEME}value` syntax, checked against what a client
//! sent: the schemes a site moving from Dovecot has in its users table (`doveadm pw -l`),
//! each through a well-kept RustCrypto or bcrypt crate, every comparison constant-time.
//!
//! A stored hash names its own cost (bcrypt's cost, Argon2's memory and passes, the rounds
//! of SHA-crypt and PBKDF2). A row an attacker planted could ask for hours of CPU or
//! gigabytes of memory per login, so each cost is capped ([`Caps`]) and a hash above its
//! cap is refused before any work starts.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::Digest;
use subtle::ConstantTimeEq;

/// Longest stored value and password accepted: far above any real hash (an Argon2 string
/// is about 100 bytes) and POP3's longest line, and small enough that hashing it is cheap.
pub const MAX_INPUT_BYTES: usize = 4096;

/// The most a stored hash may ask for. Above it the hash is refused (`TooCostly`) and the
/// host logs it: the operator's table, not the client, must change.
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    /// bcrypt's cost (log2 of its rounds); Dovecot's default is 5, 12 takes ~0.25 s.
    pub bcrypt_cost: u32,
    /// Argon2's memory in KiB; Dovecot's ARGON2ID default is 65536 (64 MiB).
    pub argon2_memory_kib: u32,
    /// Argon2's passes; Dovecot's defaults are 3 (ARGON2ID) and 4 (ARGON2I).
    pub argon2_passes: u32,
    /// Argon2's lanes (computed one after the other here).
    pub argon2_lanes: u32,
    /// SHA-crypt's rounds; the default (no `rounds=`) is 5000.
    pub sha_crypt_rounds: u32,
    /// PBKDF2's iterations; Dovecot's default is 5000.
    pub pbkdf2_rounds: u32,
}

/// The documented caps (docs/pop.md, "Moving from Dovecot").
pub const CAPS: Caps = Caps {
    bcrypt_cost: 13,
    argon2_memory_kib: 256 * 1024,
    argon2_passes: 10,
    argon2_lanes: 8,
    sha_crypt_rounds: 200_000,
    pbkdf2_rounds: 1_000_000,
};

/// Why a stored value could not be checked (never "the password is wrong").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A scheme this host does not know (its name).
    UnknownScheme(String),
    /// The value does not parse for its scheme (what is wrong).
    Malformed(String),
    /// The hash asks for more than [`CAPS`] (what and how much).
    TooCostly(String),
    /// The stored value or the password is longer than [`MAX_INPUT_BYTES`].
    TooLong,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::UnknownScheme(s) => write!(f, "unknown password scheme `{s}`"),
            Refusal::Malformed(why) => write!(f, "malformed stored password: {why}"),
            Refusal::TooCostly(why) => write!(f, "stored hash too costly: {why}"),
            Refusal::TooLong => write!(f, "longer than {MAX_INPUT_BYTES} bytes"),
        }
    }
}

/// What a check will cost, known before it runs: the memory to charge the module for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cost {
    /// Bytes of working memory (Argon2's blocks; 0 for the others).
    pub memory_bytes: usize,
}

/// A stored value split into its scheme (upper-cased) and the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored<'a> {
    /// The scheme's name, upper-cased (`SHA512-CRYPT`).
    pub scheme: String,
    /// What follows the prefix: the hash in the scheme's own syntax.
    pub value: &'a str,
}

/// Splits `{SCHEME}value`; a value without a prefix has `default_scheme` (Dovecot's
/// `default_pass_scheme`).
pub fn split<'a>(stored: &'a str, default_scheme: &str) -> Stored<'a> {
    if let Some(rest) = stored.strip_prefix('{')
        && let Some(end) = rest.find('}')
    {
        return Stored {
            scheme: rest[..end].to_ascii_uppercase(),
            value: &rest[end + 1..],
        };
    }
    Stored {
        scheme: default_scheme.to_ascii_uppercase(),
        value: stored,
    }
}

/// Parses `stored` and checks its costs against `caps`, without hashing anything.
pub fn cost(stored: &Stored<'_>, caps: &Caps) -> Result<Cost, Refusal> {
    if stored.value.len() > MAX_INPUT_BYTES {
        return Err(Refusal::TooLong);
    }
    let light = Cost { memory_bytes: 0 };
    match scheme_of(stored)? {
        Scheme::ShaCrypt { rounds, .. } if rounds > caps.sha_crypt_rounds => Err(
            Refusal::TooCostly(format!("rounds={rounds} (cap {})", caps.sha_crypt_rounds)),
        ),
        Scheme::Bcrypt if bcrypt_cost(stored.value)? > caps.bcrypt_cost => {
            Err(Refusal::TooCostly(format!(
                "bcrypt cost {} (cap {})",
                bcrypt_cost(stored.value)?,
                caps.bcrypt_cost
            )))
        }
        Scheme::Argon2 => {
            let (m, t, p) = argon2_params(stored.value)?;
            if m > caps.argon2_memory_kib || t > caps.argon2_passes || p > caps.argon2_lanes {
                return Err(Refusal::TooCostly(format!(
                    "argon2 m={m},t={t},p={p} (caps m={},t={},p={})",
                    caps.argon2_memory_kib, caps.argon2_passes, caps.argon2_lanes
                )));
            }
            Ok(Cost {
                memory_bytes: m as usize * 1024,
            })
        }
        Scheme::Pbkdf2 { rounds, .. } if rounds > caps.pbkdf2_rounds => Err(Refusal::TooCostly(
            format!("pbkdf2 rounds {rounds} (cap {})", caps.pbkdf2_rounds),
        )),
        _ => Ok(light),
    }
}

/// Whether `password` matches `stored`. Call [`cost`] first: this does the work.
pub fn verify(stored: &Stored<'_>, password: &str, caps: &Caps) -> Result<bool, Refusal> {
    cost(stored, caps)?;
    if password.len() > MAX_INPUT_BYTES {
        return Err(Refusal::TooLong);
    }
    let pw = password.as_bytes();
    let value = stored.value;
    Ok(match scheme_of(stored)? {
        Scheme::Plain => ct_eq(pw, value.as_bytes()),
        Scheme::Digest {
            algorithm,
            salted,
            encoding,
        } => {
            let raw = decode(value, encoding)?;
            let size = algorithm.size();
            if raw.len() < size || (!salted && raw.len() != size) {
                return Err(Refusal::Malformed(format!(
                    "{} bytes where a {} digest has {size}",
                    raw.len(),
                    stored.scheme
                )));
            }
            let (digest, salt) = raw.split_at(size);
            ct_eq(&algorithm.digest(pw, salt), digest)
        }
        Scheme::ShaCrypt {
            bits,
            rounds,
            salt,
            hash,
        } => {
            let rounds = rounds.max(1000) as usize;
            let computed = if bits == 512 {
                let params = sha_crypt::Sha512Params::new(rounds)
                    .map_err(|e| Refusal::Malformed(format!("{e:?}")))?;
                sha_crypt::sha512_crypt_b64(pw, salt.as_bytes(), &params)
            } else {
                let params = sha_crypt::Sha256Params::new(rounds)
                    .map_err(|e| Refusal::Malformed(format!("{e:?}")))?;
                sha_crypt::sha256_crypt_b64(pw, salt.as_bytes(), &params)
            }
            .map_err(|e| Refusal::Malformed(format!("{e:?}")))?;
            ct_eq(computed.as_bytes(), hash.as_bytes())
        }
        // bcrypt compares in constant time itself; it reads the first 72 bytes, as
        // Dovecot's (crypt_blowfish) does.
        Scheme::Bcrypt => {
            bcrypt::verify(pw, value).map_err(|e| Refusal::Malformed(e.to_string()))?
        }
        Scheme::Argon2 => {
            use argon2::password_hash::{PasswordHash, PasswordVerifier};
            let hash = PasswordHash::new(value).map_err(|e| Refusal::Malformed(e.to_string()))?;
            match argon2::Argon2::default().verify_password(pw, &hash) {
                Ok(()) => true,
                Err(argon2::password_hash::Error::Password) => false,
                Err(e) => return Err(Refusal::Malformed(e.to_string())),
            }
        }
        Scheme::Pbkdf2 { rounds, salt, hash } => {
            let expected = hex(hash)?;
            let mut computed = vec![0u8; expected.len().clamp(1, 64)];
            pbkdf2::pbkdf2_hmac::<sha1::Sha1>(pw, salt.as_bytes(), rounds, &mut computed);
            ct_eq(&computed, &expected)
        }
    })
}

/// Constant-time equality (the length is not secret: it is the scheme's).
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

enum Scheme<'a> {
    Plain,
    Digest {
        algorithm: Algorithm,
        salted: bool,
        encoding: Encoding,
    },
    ShaCrypt {
        bits: u32,
        rounds: u32,
        salt: &'a str,
        hash: &'a str,
    },
    Bcrypt,
    Argon2,
    Pbkdf2 {
        rounds: u32,
        salt: &'a str,
        hash: &'a str,
    },
}

#[derive(Clone, Copy)]
enum Algorithm {
    Md5,
    Sha1,
    Sha256,
    Sha512,
}

impl Algorithm {
    fn size(self) -> usize {
        match self {
            Algorithm::Md5 => 16,
            Algorithm::Sha1 => 20,
            Algorithm::Sha256 => 32,
            Algorithm::Sha512 => 64,
        }
    }

    /// The digest of the password then the salt (Dovecot's SSHA family).
    fn digest(self, password: &[u8], salt: &[u8]) -> Vec<u8> {
        fn of<D: Digest>(password: &[u8], salt: &[u8]) -> Vec<u8> {
            let mut d = D::new();
            d.update(password);
            d.update(salt);
            d.finalize().to_vec()
        }
        match self {
            Algorithm::Md5 => of::<md5::Md5>(password, salt),
            Algorithm::Sha1 => of::<sha1::Sha1>(password, salt),
            Algorithm::Sha256 => of::<sha2::Sha256>(password, salt),
            Algorithm::Sha512 => of::<sha2::Sha512>(password, salt),
        }
    }
}

#[derive(Clone, Copy)]
enum Encoding {
    Base64,
    Hex,
}

fn decode(value: &str, encoding: Encoding) -> Result<Vec<u8>, Refusal> {
    match encoding {
        Encoding::Base64 => BASE64
            .decode(value.trim())
            .map_err(|e| Refusal::Malformed(format!("base64: {e}"))),
        Encoding::Hex => hex(value.trim()),
    }
}

fn hex(text: &str) -> Result<Vec<u8>, Refusal> {
    let bad = || Refusal::Malformed("not hexadecimal".into());
    if !text.len().is_multiple_of(2) {
        return Err(bad());
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2).ok_or_else(bad)?, 16).map_err(|_| bad()))
        .collect()
}

/// The scheme of `stored`, its value parsed as far as its cost.
fn scheme_of<'a>(stored: &Stored<'a>) -> Result<Scheme<'a>, Refusal> {
    // `SHA512.HEX`, `SSHA256.b64`: Dovecot's encoding suffix on a digest scheme.
    let (name, encoding) = match stored.scheme.rsplit_once('.') {
        Some((name, "HEX")) => (name, Some(Encoding::Hex)),
        Some((name, "B64" | "BASE64")) => (name, Some(Encoding::Base64)),
        _ => (stored.scheme.as_str(), None),
    };
    let digest = |algorithm, salted, default| Scheme::Digest {
        algorithm,
        salted,
        encoding: encoding.unwrap_or(default),
    };
    let value = stored.value;
    Ok(match name {
        "PLAIN" | "CLEARTEXT" | "CLEAR" => Scheme::Plain,
        "PLAIN-MD5" => digest(Algorithm::Md5, false, Encoding::Hex),
        "LDAP-MD5" => digest(Algorithm::Md5, false, Encoding::Base64),
        "SMD5" => digest(Algorithm::Md5, true, Encoding::Base64),
        "SHA" | "SHA1" => digest(Algorithm::Sha1, false, Encoding::Base64),
        "SSHA" => digest(Algorithm::Sha1, true, Encoding::Base64),
        "SHA256" => digest(Algorithm::Sha256, false, Encoding::Base64),
        "SSHA256" => digest(Algorithm::Sha256, true, Encoding::Base64),
        "SHA512" => digest(Algorithm::Sha512, false, Encoding::Base64),
        "SSHA512" => digest(Algorithm::Sha512, true, Encoding::Base64),
        "SHA512-CRYPT" => sha_crypt(value, 512)?,
        "SHA256-CRYPT" => sha_crypt(value, 256)?,
        "BLF-CRYPT" => Scheme::Bcrypt,
        "ARGON2I" | "ARGON2ID" => Scheme::Argon2,
        "PBKDF2" => pbkdf2_parts(value)?,
        // Dovecot's CRYPT is the system's crypt(3): the prefix says which.
        "CRYPT" if value.starts_with("$6$") => sha_crypt(value, 512)?,
        "CRYPT" if value.starts_with("$5$") => sha_crypt(value, 256)?,
        "CRYPT" if value.starts_with("$2") => Scheme::Bcrypt,
        "CRYPT" if value.starts_with("$argon2") => Scheme::Argon2,
        "CRYPT" => {
            return Err(Refusal::UnknownScheme(
                "CRYPT (this crypt(3) format)".into(),
            ));
        }
        other => return Err(Refusal::UnknownScheme(other.to_string())),
    })
}

/// `$6$[rounds=N$]salt$hash` (or `$5$`).
fn sha_crypt(value: &str, bits: u32) -> Result<Scheme<'_>, Refusal> {
    let id = if bits == 512 { "$6$" } else { "$5$" };
    let rest = value
        .strip_prefix(id)
        .ok_or_else(|| Refusal::Malformed(format!("SHA-crypt must start with {id}")))?;
    let (rounds, rest) = match rest.strip_prefix("rounds=") {
        Some(r) => {
            let (n, rest) = r
                .split_once('$')
                .ok_or_else(|| Refusal::Malformed("rounds= without salt".into()))?;
            let n: u64 = n
                .parse()
                .map_err(|_| Refusal::Malformed(format!("rounds `{n}`")))?;
            (u32::try_from(n).unwrap_or(u32::MAX), rest)
        }
        None => (5000, rest),
    };
    let (salt, hash) = rest
        .split_once('$')
        .ok_or_else(|| Refusal::Malformed("SHA-crypt without a hash".into()))?;
    // crypt(3) reads at most 16 salt characters.
    let salt = &salt[..salt.len().min(16)];
    Ok(Scheme::ShaCrypt {
        bits,
        rounds,
        salt,
        hash,
    })
}

/// Dovecot's PBKDF2: `$1$salt$rounds$hex`, HMAC-SHA1.
fn pbkdf2_parts(value: &str) -> Result<Scheme<'_>, Refusal> {
    let parts: Vec<&str> = value.split('$').collect();
    match parts.as_slice() {
        ["", "1", salt, rounds, hash] => Ok(Scheme::Pbkdf2 {
            rounds: rounds
                .parse()
                .map_err(|_| Refusal::Malformed(format!("pbkdf2 rounds `{rounds}`")))?,
            salt,
            hash,
        }),
        _ => Err(Refusal::Malformed(
            "PBKDF2 must be $1$salt$rounds$hex".into(),
        )),
    }
}

/// The cost field of `$2y$NN$...`.
fn bcrypt_cost(value: &str) -> Result<u32, Refusal> {
    value
        .split('$')
        .nth(2)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| Refusal::Malformed("bcrypt must be $2y$cost$...".into()))
}

/// Argon2's memory (KiB), passes and lanes from its PHC string.
fn argon2_params(value: &str) -> Result<(u32, u32, u32), Refusal> {
    let hash = argon2::password_hash::PasswordHash::new(value)
        .map_err(|e| Refusal::Malformed(e.to_string()))?;
    let params = argon2::Params::try_from(&hash).map_err(|e| Refusal::Malformed(e.to_string()))?;
    Ok((params.m_cost(), params.t_cost(), params.p_cost()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The password every vector in `doveadm_vectors.txt` was made from, by Dovecot
    /// 2.3.19's `doveadm pw -s SCHEME -p '...'` (Debian bookworm's dovecot-core).
    const PASSWORD: &str = "s3cret pässword";

    fn check(stored: &str, password: &str) -> Result<bool, Refusal> {
        verify(&split(stored, "CRYPT"), password, &CAPS)
    }

    #[test]
    fn every_doveadm_scheme_verifies_and_refuses_a_wrong_password() {
        let vectors = include_str!("doveadm_vectors.txt");
        let mut schemes = Vec::new();
        for line in vectors.lines().filter(|l| !l.is_empty()) {
            assert_eq!(check(line, PASSWORD), Ok(true), "{line}");
            assert_eq!(check(line, "s3cret passwort"), Ok(false), "{line}");
            assert_eq!(check(line, ""), Ok(false), "{line}");
            schemes.push(split(line, "").scheme);
        }
        for wanted in [
            "SHA512-CRYPT",
            "BLF-CRYPT",
            "ARGON2ID",
            "PBKDF2",
            "SSHA512",
            "PLAIN",
        ] {
            assert!(schemes.iter().any(|s| s == wanted), "{wanted} missing");
        }
    }

    #[test]
    fn a_value_without_a_prefix_has_the_default_scheme() {
        let sha512_crypt = include_str!("doveadm_vectors.txt")
            .lines()
            .find_map(|l| l.strip_prefix("{SHA512-CRYPT}"))
            .unwrap();
        assert_eq!(
            verify(&split(sha512_crypt, "crypt"), PASSWORD, &CAPS),
            Ok(true)
        );
        assert_eq!(
            verify(&split("hunter2", "PLAIN"), "hunter2", &CAPS),
            Ok(true)
        );
        assert_eq!(
            verify(&split("hunter2", "PLAIN"), "hunter3", &CAPS),
            Ok(false)
        );
        assert_eq!(
            verify(&split("hunter2", "CRYPT"), "hunter2", &CAPS),
            Err(Refusal::UnknownScheme(
                "CRYPT (this crypt(3) format)".into()
            ))
        );
    }

    #[test]
    fn costs_above_the_caps_are_refused_before_any_work() {
        // Made by `doveadm pw -s BLF-CRYPT -r 31`-like edits: the caps read only the
        // parameters, so the hash part need not be real.
        for (stored, what) in [
            (
                "{BLF-CRYPT}$2y$31$gOpMZOPi/LqwIMsiKnIqF.zZ15/jbEIRAk2pRG5chJdWGys0ZlBN2",
                "bcrypt cost 31",
            ),
            (
                "{SHA512-CRYPT}$6$rounds=999999999$salt$hash",
                "rounds=999999999",
            ),
            (
                "{ARGON2ID}$argon2id$v=19$m=4194304,t=3,p=1$TcosSp6ljxjz8sBGMJuFEg$0O0PWWC+HF72eboxF5CDPEANrjQjs1pFlVUtikBtFqY",
                "m=4194304",
            ),
            (
                "{ARGON2ID}$argon2id$v=19$m=65536,t=1000,p=1$TcosSp6ljxjz8sBGMJuFEg$0O0PWWC+HF72eboxF5CDPEANrjQjs1pFlVUtikBtFqY",
                "t=1000",
            ),
            (
                "{PBKDF2}$1$yQDRJRJ/9pK1zo4o$4000000000$f0ead808901c90d06b5c7ce6e096ab1af6c53024",
                "rounds 4000000000",
            ),
        ] {
            let started = std::time::Instant::now();
            match check(stored, "x") {
                Err(Refusal::TooCostly(why)) => assert!(why.contains(what), "{why}"),
                other => panic!("{stored}: {other:?}"),
            }
            assert!(started.elapsed() < std::time::Duration::from_millis(50));
        }
        // At the caps a hash is accepted (Argon2's memory is charged to the module).
        let at_cap = "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$TcosSp6ljxjz8sBGMJuFEg$0O0PWWC+HF72eboxF5CDPEANrjQjs1pFlVUtikBtFqY";
        assert_eq!(
            cost(&split(at_cap, ""), &CAPS),
            Ok(Cost {
                memory_bytes: 64 << 20
            })
        );
    }

    #[test]
    fn oversized_and_malformed_values_are_refused() {
        let huge = "a".repeat(MAX_INPUT_BYTES + 1);
        assert_eq!(
            check(&format!("{{PLAIN}}{huge}"), "a"),
            Err(Refusal::TooLong)
        );
        assert_eq!(check("{PLAIN}a", &huge), Err(Refusal::TooLong));
        assert!(matches!(check("{NOPE}x", "x"), Err(Refusal::UnknownScheme(s)) if s == "NOPE"));
        for bad in [
            "{SSHA512}!!!",
            "{SHA256}AAAA",
            "{PBKDF2}$1$x",
            "{SHA512-CRYPT}6$x",
            "{ARGON2ID}$argon2id$x",
        ] {
            assert!(
                matches!(check(bad, "x"), Err(Refusal::Malformed(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn plain_comparison_is_constant_time_in_the_position_of_the_difference() {
        // Not a timing measurement (too noisy for CI): the comparison goes through
        // subtle's ct_eq, which reads every byte whatever differs.
        let stored = format!("{{PLAIN}}{}", "a".repeat(64));
        assert_eq!(check(&stored, &"a".repeat(64)), Ok(true));
        assert_eq!(check(&stored, &format!("b{}", "a".repeat(63))), Ok(false));
        assert_eq!(check(&stored, &format!("{}b", "a".repeat(63))), Ok(false));
        assert_eq!(check(&stored, &"a".repeat(63)), Ok(false));
    }
}

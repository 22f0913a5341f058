//! Encryption at rest (docs/FORMAT.md §10): keys, the KEY block, and sealing
//! and opening block payloads with AES-256-GCM.

use crate::error::{ArchiveError, Region};
use crate::layout::{hex, BlockHeader};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::fmt;
use std::io::Read;
use std::path::Path;
use std::sync::Mutex;
use zeroize::Zeroizing;

/// Length of the GCM tag appended to every sealed payload.
pub const TAG_LEN: usize = 16;
/// Largest KEY block payload.
pub const MAX_KEY_BLOCK_BYTES: usize = 1 << 16;

const CIPHER: &str = "aes-256-gcm";
const KDF_RAW_KEY: &str = "raw-key";
const KDF_ARGON2ID: &str = "argon2id";
const INFO_BLOCK_KEY: &[u8] = b"pgark block key v1";
const INFO_KEY_CHECK: &[u8] = b"pgark key check v1";
const SALT_LEN: usize = 16;

type Secret32 = Zeroizing<[u8; 32]>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Argon2Cost {
    /// KiB of memory.
    m_cost: u32,
    t_cost: u32,
    p_cost: u32,
}

/// What writers use: RFC 9106's second recommended setting (64 MiB, 3 passes).
const WRITE_COST: Argon2Cost = Argon2Cost {
    m_cost: 64 * 1024,
    t_cost: 3,
    p_cost: 1,
};

/// The most a KEY block may ask of a reader (FORMAT.md §9): a crafted archive
/// must not make a reader allocate or compute without bound.
const MAX_M_COST: u32 = 1 << 20;
const MAX_T_COST: u32 = 16;
const MAX_P_COST: u32 = 16;

/// A key that encrypts or opens archives: 32 bytes from a key file (or given
/// directly), or a passphrase from which each archive's key is derived with
/// Argon2id. Secrets are wiped from memory on drop and never printed.
pub struct Key {
    secret: Secret,
}

enum Secret {
    Raw(Secret32),
    Passphrase {
        text: Zeroizing<String>,
        /// The last derivation, so opening one archive several times (list,
        /// then restore) runs the deliberately slow Argon2id only once.
        last: Mutex<Option<Derived>>,
    },
}

#[derive(Clone)]
struct Derived {
    salt: Vec<u8>,
    cost: Argon2Cost,
    master: Secret32,
}

impl Key {
    /// Reads a key file: exactly 32 bytes, or 64 hexadecimal digits with an
    /// optional final newline. (`openssl rand -hex 32 > key` makes one.) Its
    /// permissions are not checked: container and Kubernetes secrets are
    /// mounted readable by all (0444, 0644) while being private in practice.
    pub fn from_key_file(path: impl AsRef<Path>) -> Result<Key, ArchiveError> {
        let path = path.as_ref();
        let bad = |detail: String| ArchiveError::KeyFile {
            path: path.display().to_string(),
            detail,
        };
        let file = std::fs::File::open(path).map_err(|e| bad(e.to_string()))?;
        // A key file is tiny; reading a little past 66 bytes is enough to say
        // it is too long without reading a huge file (or a device) to its end.
        let mut bytes = Zeroizing::new(Vec::with_capacity(128));
        file.take(128)
            .read_to_end(&mut bytes)
            .map_err(|e| bad(e.to_string()))?;
        parse_key_file(&bytes).map(Key::from_bytes).map_err(bad)
    }

    /// A key from 32 bytes held elsewhere (a key management service, say).
    pub fn from_bytes(bytes: [u8; 32]) -> Key {
        Key {
            secret: Secret::Raw(Zeroizing::new(bytes)),
        }
    }

    /// A passphrase: its UTF-8 bytes as given (no trimming or normalization).
    /// Each archive written gets a new random salt; Argon2id (64 MiB, 3
    /// passes, about 0.3 s) runs when an archive is created or opened.
    pub fn from_passphrase(passphrase: &str) -> Result<Key, ArchiveError> {
        if passphrase.is_empty() {
            return Err(ArchiveError::EmptyPassphrase);
        }
        Ok(Key {
            secret: Secret::Passphrase {
                text: Zeroizing::new(passphrase.to_owned()),
                last: Mutex::new(None),
            },
        })
    }

    /// Derives a new archive's keys: its KEY block's JSON and its block cipher.
    pub(crate) fn seal_archive(
        &self,
        archive_id: &[u8; 16],
    ) -> Result<(Vec<u8>, BlockCipher), ArchiveError> {
        let (kdf, master) = match &self.secret {
            Secret::Raw(bytes) => (Kdf::RawKey, bytes.clone()),
            Secret::Passphrase { text, last } => {
                let salt = random_bytes::<SALT_LEN>()?.to_vec();
                let master = derive(text, last, &salt, WRITE_COST)?;
                let kdf = Kdf::Argon2id {
                    salt,
                    cost: WRITE_COST,
                };
                (kdf, master)
            }
        };
        let (cipher, key_check) = BlockCipher::new(&master, archive_id);
        let info = KeyInfo::new(&kdf, &key_check);
        let json = serde_json::to_vec(&info)
            .map_err(|e| ArchiveError::Usage(format!("cannot serialize the KEY block: {e}")))?;
        Ok((json, cipher))
    }

    /// The master key for an archive whose KEY block says `kdf`.
    fn master_for(&self, kdf: &Kdf) -> Result<Secret32, ArchiveError> {
        let wrong = |detail: &str| ArchiveError::WrongKey {
            detail: detail.into(),
        };
        match (&self.secret, kdf) {
            (Secret::Raw(bytes), Kdf::RawKey) => Ok(bytes.clone()),
            (Secret::Passphrase { text, last }, Kdf::Argon2id { salt, cost }) => {
                derive(text, last, salt, *cost)
            }
            (Secret::Raw(_), Kdf::Argon2id { .. }) => Err(wrong(
                "the archive was encrypted with a passphrase, not a key file",
            )),
            (Secret::Passphrase { .. }, Kdf::RawKey) => Err(wrong(
                "the archive was encrypted with a key file, not a passphrase",
            )),
        }
    }

    fn describe(&self) -> &'static str {
        match self.secret {
            Secret::Raw(_) => "key",
            Secret::Passphrase { .. } => "passphrase",
        }
    }
}

/// A copy for another writer or reader (options structs are cloned); the
/// copy is wiped on drop like the original.
impl Clone for Key {
    fn clone(&self) -> Key {
        let secret = match &self.secret {
            Secret::Raw(bytes) => Secret::Raw(bytes.clone()),
            Secret::Passphrase { text, last } => Secret::Passphrase {
                text: text.clone(),
                last: Mutex::new(last.lock().unwrap_or_else(|p| p.into_inner()).clone()),
            },
        };
        Key { secret }
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({}, redacted)", self.describe())
    }
}

/// Argon2id of the passphrase; the last result is reused for the same salt.
fn derive(
    passphrase: &str,
    last: &Mutex<Option<Derived>>,
    salt: &[u8],
    cost: Argon2Cost,
) -> Result<Secret32, ArchiveError> {
    let mut last = last.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(d) = last.as_ref().filter(|d| d.salt == salt && d.cost == cost) {
        return Ok(d.master.clone());
    }
    let master = argon2id(passphrase.as_bytes(), salt, cost)?;
    *last = Some(Derived {
        salt: salt.to_vec(),
        cost,
        master: master.clone(),
    });
    Ok(master)
}

/// 32 raw bytes, or 64 hex digits and an optional newline; 32 bytes that are
/// all hex digits are refused: most likely a 16-byte key written in hex.
fn parse_key_file(bytes: &[u8]) -> Result<[u8; 32], String> {
    const WHAT: &str = "a key file holds 32 raw bytes or 64 hexadecimal digits";
    if bytes.len() == 32 {
        if bytes.iter().all(u8::is_ascii_hexdigit) {
            return Err(format!(
                "holds 32 hexadecimal digits, a 16-byte key: too short ({WHAT})"
            ));
        }
        return Ok(bytes.try_into().expect("32 bytes"));
    }
    let text = bytes
        .strip_suffix(b"\n")
        .map_or(bytes, |b| b.strip_suffix(b"\r").unwrap_or(b));
    if text.len() != 64 {
        return Err(format!("holds {} bytes ({WHAT})", bytes.len()));
    }
    let decoded = Zeroizing::new(
        unhex(text)
            .ok_or_else(|| format!("holds 64 bytes that are not all hexadecimal ({WHAT})"))?,
    );
    Ok(decoded[..].try_into().expect("32 bytes"))
}

fn unhex(text: &[u8]) -> Option<Vec<u8>> {
    let pairs = text.chunks_exact(2);
    if !pairs.remainder().is_empty() {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    pairs
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], ArchiveError> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).map_err(|e| {
        ArchiveError::io(
            "reading the system's random source",
            std::io::Error::other(e.to_string()),
        )
    })?;
    Ok(out)
}

fn argon2id(passphrase: &[u8], salt: &[u8], cost: Argon2Cost) -> Result<Secret32, ArchiveError> {
    let failed = |e: argon2::Error| ArchiveError::Usage(format!("Argon2id: {e}"));
    let params =
        argon2::Params::new(cost.m_cost, cost.t_cost, cost.p_cost, Some(32)).map_err(failed)?;
    let mut memory = vec![argon2::Block::default(); params.block_count()];
    let mut out = Zeroizing::new([0u8; 32]);
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password_into_with_memory(passphrase, salt, &mut out[..], &mut memory)
        .map_err(failed)?;
    Ok(out)
}

/// How an archive's master key is obtained, as its KEY block says.
enum Kdf {
    RawKey,
    Argon2id { salt: Vec<u8>, cost: Argon2Cost },
}

/// The KEY block's JSON (FORMAT.md §10.1). Unlike the other sections it
/// refuses members it does not know: one ignored could change how the key
/// is derived, and the KEY block, in clear, is the one a forger can edit.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyInfo {
    cipher: String,
    kdf: String,
    salt: Option<String>,
    m_cost: Option<u32>,
    t_cost: Option<u32>,
    p_cost: Option<u32>,
    key_check: String,
}

impl KeyInfo {
    fn new(kdf: &Kdf, key_check: &[u8; 16]) -> KeyInfo {
        let (name, salt, cost) = match kdf {
            Kdf::RawKey => (KDF_RAW_KEY, None, None),
            Kdf::Argon2id { salt, cost } => (KDF_ARGON2ID, Some(hex(salt)), Some(*cost)),
        };
        KeyInfo {
            cipher: CIPHER.into(),
            kdf: name.into(),
            salt,
            m_cost: cost.map(|c| c.m_cost),
            t_cost: cost.map(|c| c.t_cost),
            p_cost: cost.map(|c| c.p_cost),
            key_check: hex(key_check),
        }
    }
}

/// A checked KEY block: what a reader needs to test a key against the archive.
pub(crate) struct KeyBlock {
    kdf: Kdf,
    key_check: [u8; 16],
}

impl KeyBlock {
    /// Decodes and checks the KEY block's JSON (at `offset`).
    pub fn parse(payload: &[u8], offset: u64) -> Result<KeyBlock, ArchiveError> {
        let bad = |detail: String| ArchiveError::corrupt(Region::Key, offset, detail);
        let unsupported = |feature: String| ArchiveError::UnsupportedFeature {
            region: Region::Key,
            offset,
            feature,
        };
        let info: KeyInfo =
            serde_json::from_slice(payload).map_err(|e| bad(format!("invalid JSON: {e}")))?;
        if info.cipher != CIPHER {
            return Err(unsupported(format!("cipher {:?}", info.cipher)));
        }
        let key_check = unhex(info.key_check.as_bytes())
            .and_then(|b| <[u8; 16]>::try_from(b).ok())
            .ok_or_else(|| bad("key_check is not 16 bytes of hex".into()))?;
        let kdf = match info.kdf.as_str() {
            KDF_RAW_KEY => {
                if info.salt.is_some() || info.m_cost.or(info.t_cost).or(info.p_cost).is_some() {
                    return Err(bad("a raw-key KEY block has KDF parameters".into()));
                }
                Kdf::RawKey
            }
            KDF_ARGON2ID => argon2_params(&info).map_err(bad)?,
            other => return Err(unsupported(format!("key derivation {other:?}"))),
        };
        Ok(KeyBlock { kdf, key_check })
    }

    /// The archive's block cipher if `key` is its key, else `WrongKey`.
    pub fn unlock(&self, key: &Key, archive_id: &[u8; 16]) -> Result<BlockCipher, ArchiveError> {
        let master = key.master_for(&self.kdf)?;
        let (cipher, key_check) = BlockCipher::new(&master, archive_id);
        if key_check != self.key_check {
            return Err(ArchiveError::WrongKey {
                detail: format!(
                    "this {} does not open the archive (its key check differs)",
                    key.describe()
                ),
            });
        }
        Ok(cipher)
    }
}

fn argon2_params(info: &KeyInfo) -> Result<Kdf, String> {
    let salt = info
        .salt
        .as_deref()
        .and_then(|s| unhex(s.as_bytes()))
        .filter(|s| (8..=64).contains(&s.len()))
        .ok_or("argon2id salt is not 8 to 64 bytes of hex")?;
    let (Some(m_cost), Some(t_cost), Some(p_cost)) = (info.m_cost, info.t_cost, info.p_cost) else {
        return Err("argon2id parameters m_cost, t_cost, p_cost missing".into());
    };
    let within = (1..=MAX_P_COST).contains(&p_cost)
        && (1..=MAX_T_COST).contains(&t_cost)
        && (8 * p_cost..=MAX_M_COST).contains(&m_cost);
    if !within {
        return Err(format!(
            "argon2id parameters m_cost {m_cost}, t_cost {t_cost}, p_cost {p_cost} are outside the limits"
        ));
    }
    Ok(Kdf::Argon2id {
        salt,
        cost: Argon2Cost {
            m_cost,
            t_cost,
            p_cost,
        },
    })
}

/// Seals and opens the blocks of one archive: AES-256-GCM under the
/// archive's block key, with the archive id and header as additional data.
/// ring's implementation: 7 GB/s per core here (AES-NI, VAES), where the
/// RustCrypto crate does 1 GB/s, which cost readers a third of their speed.
pub(crate) struct BlockCipher {
    aead: LessSafeKey,
    archive_id: [u8; 16],
}

impl fmt::Debug for BlockCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BlockCipher(redacted)")
    }
}

impl BlockCipher {
    /// The cipher and key check of an archive, from its master key (§10.2).
    fn new(master: &[u8; 32], archive_id: &[u8; 16]) -> (BlockCipher, [u8; 16]) {
        let hk = hkdf::Hkdf::<Sha256>::new(Some(archive_id), master);
        let mut block_key = Zeroizing::new([0u8; 32]);
        let mut key_check = [0u8; 16];
        hk.expand(INFO_BLOCK_KEY, &mut block_key[..])
            .and_then(|_| hk.expand(INFO_KEY_CHECK, &mut key_check))
            .expect("HKDF-SHA256 gives up to 8160 bytes");
        let key = UnboundKey::new(&AES_256_GCM, &block_key[..]).expect("a 32-byte AES-256 key");
        let cipher = BlockCipher {
            aead: LessSafeKey::new(key),
            archive_id: *archive_id,
        };
        (cipher, key_check)
    }

    /// archive_id ‖ header bytes 0..32.
    fn aad(&self, header: &BlockHeader) -> [u8; 48] {
        let mut aad = [0u8; 48];
        aad[..16].copy_from_slice(&self.archive_id);
        aad[16..].copy_from_slice(&header.encode()[..32]);
        aad
    }

    /// Encrypts `payload` in place and appends the tag; `header` must already
    /// carry its final flags, lengths and nonce.
    pub fn seal(&self, header: &BlockHeader, payload: &mut Vec<u8>) -> Result<(), ArchiveError> {
        let nonce = Nonce::assume_unique_for_key(header.nonce);
        self.aead
            .seal_in_place_append_tag(nonce, Aad::from(self.aad(header)), payload)
            .map_err(|_| ArchiveError::Usage(format!("cannot encrypt a {} block", header.region())))
    }

    /// Decrypts a sealed payload; a wrong tag means the block was altered.
    pub fn open(
        &self,
        header: &BlockHeader,
        sealed: &[u8],
        region: Region,
        offset: u64,
    ) -> Result<Vec<u8>, ArchiveError> {
        let nonce = Nonce::assume_unique_for_key(header.nonce);
        let mut plain = sealed.to_vec();
        let len = self
            .aead
            .open_in_place(nonce, Aad::from(self.aad(header)), &mut plain)
            .map_err(|_| {
                ArchiveError::corrupt(
                    region,
                    offset,
                    "authentication failed (AES-GCM tag mismatch): the block was altered",
                )
            })?
            .len();
        plain.truncate(len);
        Ok(plain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_in_both_forms_and_their_mistakes() {
        let raw: [u8; 32] = std::array::from_fn(|i| (i * 37 + 200) as u8);
        assert_eq!(parse_key_file(&raw).unwrap(), raw);
        let text = hex(&raw);
        for form in [
            text.clone(),
            format!("{text}\n"),
            format!("{text}\r\n"),
            text.to_uppercase(),
        ] {
            assert_eq!(parse_key_file(form.as_bytes()).unwrap(), raw, "{form:?}");
        }
        for (bad, says) in [
            (text.as_bytes()[..32].to_vec(), "16-byte key"),
            (raw[..31].to_vec(), "holds 31 bytes"),
            (format!("{text}\n\n").into_bytes(), "holds 66 bytes"),
            (
                format!("{}zz", &text[..62]).into_bytes(),
                "not all hexadecimal",
            ),
            (vec![], "holds 0 bytes"),
        ] {
            let err = parse_key_file(&bad).unwrap_err();
            assert!(err.contains(says), "{err}");
        }
    }

    #[test]
    fn block_key_depends_on_the_archive_id() {
        let master = [9u8; 32];
        let (_, check_a) = BlockCipher::new(&master, &[1; 16]);
        let (_, check_b) = BlockCipher::new(&master, &[2; 16]);
        assert_ne!(check_a, check_b);
    }
}

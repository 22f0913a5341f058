//! docs/FORMAT.md and the code must agree: this walks a written archive with
//! nothing but the rules of the document (a second, independent reader).

mod common;

use common::*;
use pgark_archive::*;
use sha2::{Digest, Sha256};

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn an_archive_follows_the_documented_layout() {
    let chunks = vec![chunk(10, 30, 1), chunk(11, 20, 2), chunk(10, 10, 3)];
    let (b, trailer) = write_archive(&toc(2), &chunks, options(2, 2));

    // §3 file header.
    assert_eq!(&b[0..8], b"PGARK\0\r\n");
    assert_eq!(
        (
            u16::from_le_bytes([b[8], b[9]]),
            u16::from_le_bytes([b[10], b[11]])
        ),
        (FORMAT_MAJOR, FORMAT_MINOR)
    );
    assert_eq!((FORMAT_MAJOR, FORMAT_MINOR), (1, 1));
    assert_eq!(u32_at(&b, 12), 0);
    assert_eq!(&b[32..64], &Sha256::digest(&b[0..32])[..]);
    let archive_id = &b[16..32];

    // §5 footer.
    let f = b.len() - FOOTER_LEN;
    assert_eq!(&b[f..f + 8], b"PGARKEND");
    assert_eq!(u64_at(&b, f + 16), b.len() as u64);
    assert_eq!(&b[f + 24..f + 56], &Sha256::digest(&b[f..f + 24])[..]);
    let trailer_offset = u64_at(&b, f + 8) as usize;

    // §4 blocks, back to back from offset 64 to the footer.
    let mut at = HEADER_LEN;
    let mut kinds = Vec::new();
    let mut hashes: std::collections::BTreeMap<(u32, u32), Vec<u8>> = Default::default();
    while at < f {
        let h = &b[at..at + BLOCK_HEADER_LEN];
        assert_eq!(&h[0..4], b"PGAB");
        let (kind, flags) = (h[4], h[5]);
        let (raw_len, stored_len) = (u32_at(h, 16) as usize, u32_at(h, 20) as usize);
        assert!(
            h[6..8].iter().chain(&h[32..48]).all(|&x| x == 0),
            "reserved and nonce"
        );
        let payload = &b[at + BLOCK_HEADER_LEN..at + BLOCK_HEADER_LEN + stored_len];
        let mut hash = Sha256::new();
        hash.update(archive_id);
        hash.update(&h[0..48]);
        hash.update(payload);
        assert_eq!(&h[48..80], &hash.finalize()[..], "block at {at}");
        let decoded = if flags & 1 == 1 {
            zstd::stream::decode_all(payload).unwrap()
        } else {
            payload.to_vec()
        };
        assert_eq!(decoded.len(), raw_len);
        if kind == 3 {
            let rows = decoded.iter().filter(|&&c| c == b'\n').count() as u64;
            assert_eq!(u64_at(h, 24), rows);
            hashes.insert((u32_at(h, 8), u32_at(h, 12)), h[48..80].to_vec());
        } else {
            // §6: JSON sections.
            serde_json::from_slice::<serde_json::Value>(&decoded).unwrap();
        }
        if kind == 4 {
            assert_eq!(at, trailer_offset);
        }
        kinds.push(kind);
        at += BLOCK_HEADER_LEN + stored_len;
    }
    assert_eq!(at, f);
    assert_eq!(kinds, vec![1, 2, 3, 3, 3, 4]);

    // §6.3 table sha256: over the chunks' block hashes in seq order.
    for t in &trailer.tables {
        let mut h = Sha256::new();
        for ((_, _), block_hash) in hashes.range((t.entry_id, 0)..=(t.entry_id, u32::MAX)) {
            h.update(block_hash);
        }
        assert_eq!(t.sha256, hex(&h.finalize()));
    }
}

#[test]
fn a_key_file_archive_follows_section_10() {
    let master = [0x5a; 32];
    let chunks = vec![
        chunk(10, 30, 1),
        rows_chunk(11, noise(300, 3)),
        chunk(10, 10, 3),
    ];
    let opts = WriterOptions {
        encryption: Some(Key::from_bytes(master)),
        ..options(2, 2)
    };
    let (b, trailer) = write_archive(&toc(2), &chunks, opts);
    let (info, key_end) = key_block(&b);
    assert_eq!(info["cipher"], "aes-256-gcm");
    assert_eq!(info["kdf"], "raw-key");
    let block_key = check_keys(&b, &master, &info);
    let kinds = walk_sealed(&b, key_end, &block_key);
    assert_eq!(kinds, vec![1, 2, 3, 3, 3, 4]);
    assert_eq!(
        trailer.index[0].offset, key_end as u64,
        "index from META on"
    );
}

#[test]
fn a_passphrase_archive_follows_section_10() {
    let opts = WriterOptions {
        encryption: Some(Key::from_passphrase("pässwörd 🔑").unwrap()),
        ..options(1, 1)
    };
    let (b, _) = write_archive(&toc(1), &[chunk(10, 5, 1)], opts);
    let (info, key_end) = key_block(&b);
    assert_eq!(info["kdf"], "argon2id");
    let salt: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&info["salt"].as_str().unwrap()[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let cost = |name: &str| info[name].as_u64().unwrap() as u32;
    assert_eq!(
        (cost("m_cost"), cost("t_cost"), cost("p_cost")),
        (65536, 3, 1)
    );
    let params = argon2::Params::new(65536, 3, 1, Some(32)).unwrap();
    let mut memory = vec![argon2::Block::default(); params.block_count()];
    let mut master = [0u8; 32];
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password_into_with_memory("pässwörd 🔑".as_bytes(), &salt, &mut master, &mut memory)
        .unwrap();
    let block_key = check_keys(&b, &master, &info);
    assert_eq!(walk_sealed(&b, key_end, &block_key), vec![1, 2, 3, 4]);
}

/// §10.1: the KEY block at offset 64, its JSON and where it ends.
fn key_block(b: &[u8]) -> (serde_json::Value, usize) {
    assert_eq!(u32_at(b, 12), 1, "header flag bit 0");
    let h = &b[HEADER_LEN..HEADER_LEN + BLOCK_HEADER_LEN];
    assert_eq!((&h[0..4], h[4], h[5]), (&b"PGAB"[..], 5, 0));
    assert!(h[6..16].iter().chain(&h[24..48]).all(|&x| x == 0));
    let len = u32_at(h, 16) as usize;
    assert_eq!(u32_at(h, 20) as usize, len);
    let payload = &b[HEADER_LEN + BLOCK_HEADER_LEN..HEADER_LEN + BLOCK_HEADER_LEN + len];
    let mut hash = Sha256::new();
    hash.update(&b[16..32]);
    hash.update(&h[0..48]);
    hash.update(payload);
    assert_eq!(&h[48..80], &hash.finalize()[..]);
    let end = HEADER_LEN + BLOCK_HEADER_LEN + len;
    (serde_json::from_slice(payload).unwrap(), end)
}

/// §10.2: the key check from HKDF; returns the block key.
fn check_keys(b: &[u8], master: &[u8; 32], info: &serde_json::Value) -> [u8; 32] {
    let hk = hkdf::Hkdf::<Sha256>::new(Some(&b[16..32]), master);
    let (mut block_key, mut key_check) = ([0u8; 32], [0u8; 16]);
    hk.expand(b"pgark block key v1", &mut block_key).unwrap();
    hk.expand(b"pgark key check v1", &mut key_check).unwrap();
    assert_eq!(info["key_check"], hex(&key_check));
    block_key
}

/// §10.3 and §4: every block after the KEY block sealed with a unique nonce,
/// opened with the header as additional data; returns the kinds seen.
fn walk_sealed(b: &[u8], mut at: usize, block_key: &[u8; 32]) -> Vec<u8> {
    use aes_gcm::aead::{AeadInPlace, KeyInit};
    let aead = aes_gcm::Aes256Gcm::new_from_slice(block_key).unwrap();
    let footer = b.len() - FOOTER_LEN;
    let (mut kinds, mut nonces) = (Vec::new(), std::collections::HashSet::new());
    while at < footer {
        let h = &b[at..at + BLOCK_HEADER_LEN];
        let (kind, flags) = (h[4], h[5]);
        assert_eq!(flags & 2, 2, "encrypted flag on block at {at}");
        assert_eq!(h[32..36], [0; 4]);
        assert!(nonces.insert(h[32..44].to_vec()), "nonce reused at {at}");
        let (raw_len, stored_len) = (u32_at(h, 16) as usize, u32_at(h, 20) as usize);
        let stored = &b[at + BLOCK_HEADER_LEN..at + BLOCK_HEADER_LEN + stored_len];
        let mut hash = Sha256::new();
        hash.update(&b[16..32]);
        hash.update(&h[0..48]);
        hash.update(stored);
        assert_eq!(&h[48..80], &hash.finalize()[..], "block at {at}");
        let mut aad = b[16..32].to_vec();
        aad.extend_from_slice(&h[0..32]);
        let (ciphertext, tag) = stored.split_at(stored_len - 16);
        let mut encoded = ciphertext.to_vec();
        aead.decrypt_in_place_detached(
            aes_gcm::Nonce::from_slice(&h[32..44]),
            &aad,
            &mut encoded,
            aes_gcm::Tag::from_slice(tag),
        )
        .unwrap();
        let decoded = if flags & 1 == 1 {
            zstd::stream::decode_all(&encoded[..]).unwrap()
        } else {
            encoded
        };
        assert_eq!(decoded.len(), raw_len);
        if kind == 3 {
            let rows = decoded.iter().filter(|&&c| c == b'\n').count() as u64;
            assert_eq!(u64_at(h, 24), rows);
        } else {
            serde_json::from_slice::<serde_json::Value>(&decoded).unwrap();
        }
        kinds.push(kind);
        at += BLOCK_HEADER_LEN + stored_len;
    }
    assert_eq!(at, footer);
    kinds
}

#[test]
fn the_document_states_this_version_and_its_limits() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/FORMAT.md"))
        .unwrap();
    assert!(doc.starts_with(&format!(
        "# The pgark archive format, version {FORMAT_MAJOR}.{FORMAT_MINOR}\n"
    )));
    assert!(doc.contains(&format!("≤ 1 GiB ({})", "1 073 741 824")));
    assert_eq!(MAX_CHUNK_BYTES, 1_073_741_824);
    for needle in [
        "`\"PGAB\"`",
        "`\"PGARKEND\"`",
        "| 48 | 32 | block_sha256 |",
        "| 32 | 32 | header_sha256 |",
    ] {
        assert!(doc.contains(needle), "FORMAT.md lacks {needle}");
    }
}

fn keys(value: &serde_json::Value, out: &mut std::collections::BTreeSet<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                out.insert(k.clone());
                keys(v, out);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| keys(v, out)),
        _ => {}
    }
}

/// A member added to the model must be added to the document too.
#[test]
fn every_json_member_is_documented() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/FORMAT.md"))
        .unwrap();
    let (_, trailer) = write_archive(&toc(1), &[chunk(10, 3, 1)], options(1, 1));
    let mut meta = meta();
    meta.database_props.locale_provider = Some("icu".into());
    // Its keys are the user's, not the format's.
    meta.options.clear();
    let mut members = std::collections::BTreeSet::new();
    let opts = WriterOptions {
        encryption: Some(Key::from_bytes([1; 32])),
        ..options(1, 1)
    };
    let (encrypted, _) = write_archive(&toc(1), &[], opts);
    for value in [
        key_block(&encrypted).0,
        serde_json::to_value(&meta).unwrap(),
        serde_json::to_value(toc(1)).unwrap(),
        serde_json::to_value(&trailer).unwrap(),
    ] {
        keys(&value, &mut members);
    }
    assert!(members.len() > 40, "{members:?}");
    let missing: Vec<_> = members
        .iter()
        .filter(|k| !doc.contains(&format!("`{k}`")) && !doc.contains(&format!("\"{k}\"")))
        .collect();
    assert!(
        missing.is_empty(),
        "FORMAT.md does not describe {missing:?}"
    );
}

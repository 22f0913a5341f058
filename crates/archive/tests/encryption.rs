//! Encrypted archives (docs/FORMAT.md §10): round trips with a key file and a
//! passphrase, wrong and missing keys found at open, and every kind of damage
//! or tampering found, including what only the AES-GCM tags can catch.

mod common;

use common::*;
use pgark_archive::*;
use std::io::{Cursor, Read};
use std::path::PathBuf;

const KEY_HEX: &str = "8f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";
const PASSPHRASE: &str = "correct horse battery staple";

fn key_bytes() -> [u8; 32] {
    std::array::from_fn(|i| u8::from_str_radix(&KEY_HEX[2 * i..2 * i + 2], 16).unwrap())
}

/// A key file with these contents, in a directory removed when dropped.
fn key_file(contents: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("archive.key");
    std::fs::write(&path, contents).unwrap();
    (dir, path)
}

fn encrypted(key: &Key, threads: usize, depth: usize) -> WriterOptions {
    WriterOptions {
        encryption: Some(key.clone()),
        ..options(threads, depth)
    }
}

/// Three data entries, one without chunks; an empty chunk and one stored
/// uncompressed (noise), so every payload form is encrypted.
fn sample() -> (Vec<TocEntry>, Vec<Chunk>) {
    let chunks = vec![
        chunk(10, 30, 1),
        chunk(11, 20, 2),
        rows_chunk(10, noise(400, 9)),
        chunk(10, 0, 3),
        chunk(11, 10, 4),
    ];
    (toc(3), chunks)
}

fn small(key: &Key) -> (Vec<u8>, Trailer) {
    let (toc, chunks) = sample();
    write_archive(&toc, &chunks, encrypted(key, 1, 1))
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// End of the KEY block, where META starts.
fn key_block_end(bytes: &[u8]) -> usize {
    HEADER_LEN + BLOCK_HEADER_LEN + u32_at(bytes, HEADER_LEN + 20) as usize
}

fn key_json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(&bytes[HEADER_LEN + BLOCK_HEADER_LEN..key_block_end(bytes)]).unwrap()
}

/// Every region of an encrypted archive as (start, end, region).
fn regions(bytes: &[u8], trailer: &Trailer) -> Vec<(usize, usize, Region)> {
    let mut out = vec![
        (0, HEADER_LEN, Region::Header),
        (HEADER_LEN, key_block_end(bytes), Region::Key),
    ];
    for b in &trailer.index {
        let region = match b.kind {
            BlockKind::Meta => Region::Meta,
            BlockKind::Toc => Region::Toc,
            BlockKind::Data => Region::Chunk {
                entry_id: b.entry_id,
                seq: b.seq,
            },
            other => panic!("{other:?} in the index"),
        };
        let at = b.offset as usize;
        out.push((at, at + BLOCK_HEADER_LEN + b.stored_len as usize, region));
    }
    let footer = bytes.len() - FOOTER_LEN;
    out.push((out.last().unwrap().1, footer, Region::Trailer));
    out.push((footer, bytes.len(), Region::Footer));
    out
}

/// The sealed blocks (META, TOC, DATA, TRAILER) as (offset, region).
fn sealed_blocks(bytes: &[u8], trailer: &Trailer) -> Vec<(usize, Region)> {
    regions(bytes, trailer)
        .into_iter()
        .filter(|(_, _, r)| !matches!(r, Region::Header | Region::Key | Region::Footer))
        .map(|(at, _, r)| (at, r))
        .collect()
}

fn is_auth_failure(err: &ArchiveError) -> bool {
    err.to_string()
        .contains("authentication failed (AES-GCM tag mismatch)")
}

#[test]
fn a_key_file_round_trips_sequentially_by_index_and_through_verify() {
    let (_dir, path) = key_file(format!("{KEY_HEX}\n").as_bytes());
    let key = Key::from_key_file(&path).unwrap();
    let (toc, chunks) = sample();
    let (bytes, written) = write_archive(&toc, &chunks, encrypted(&key, 2, 4));
    assert_eq!(u32_at(&bytes, 12), 1, "header flag");
    assert_eq!(bytes[HEADER_LEN + 4], 5, "KEY block first");

    // Opened with the same key given another way.
    let same = Key::from_bytes(key_bytes());
    assert_eq!(
        read_sequential_with(&bytes, Some(&same)).unwrap(),
        expected(&chunks)
    );
    assert_eq!(
        read_indexed_with(&bytes, Some(&key)).unwrap(),
        expected(&chunks)
    );

    let mut reader = ArchiveReader::open_with_key(&bytes[..], Some(&key)).unwrap();
    assert!(reader.encrypted());
    assert_eq!(reader.meta(), &meta());
    assert_eq!(reader.toc(), &toc[..]);
    assert_eq!(reader.format_version(), (1, 1));
    while reader.next_chunk().unwrap().is_some() {}
    assert_eq!(reader.trailer(), Some(&written));
    let indexed = IndexedArchive::open_with_key(Cursor::new(&bytes), Some(&key)).unwrap();
    assert!(indexed.encrypted());
    assert_eq!(indexed.trailer(), &written);

    let report = verify_with_key(&bytes[..], Some(&key)).unwrap();
    assert!(report.encrypted);
    assert_eq!(report.chunks, chunks.len() as u64);
    let raw: usize = chunks.iter().map(|c| c.data.len()).sum();
    assert_eq!(report.raw_bytes, raw as u64);
    let contents = report.contents.unwrap();
    assert_eq!(
        (contents.meta, contents.toc, contents.trailer),
        (meta(), toc, written)
    );

    let info = key_json(&bytes);
    assert_eq!(info["cipher"], "aes-256-gcm");
    assert_eq!(info["kdf"], "raw-key");
    for member in ["salt", "m_cost", "t_cost", "p_cost"] {
        assert!(info[member].is_null(), "{member}: {info}");
    }
    assert_eq!(info["key_check"].as_str().unwrap().len(), 32);
}

#[test]
fn nothing_of_the_contents_is_in_clear() {
    let key = Key::from_bytes(key_bytes());
    let (toc, chunks) = sample();
    let (clear, _) = write_archive(&toc, &chunks, options(1, 1));
    let (sealed, _) = write_archive(&toc, &chunks, encrypted(&key, 1, 1));
    let contains = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    // The noise chunk is stored uncompressed: in clear in the plain archive.
    let witness = &chunks[2].data[100..164];
    assert!(contains(&clear, witness));
    assert!(!contains(&sealed, witness));
    for text in [
        "before migration 42",
        "CREATE TABLE DATA",
        "digest-10",
        "shop",
    ] {
        assert!(!contains(&sealed, text.as_bytes()), "{text} in clear");
    }
}

#[test]
fn a_passphrase_round_trips_and_a_new_salt_is_drawn_per_archive() {
    let writer_key = Key::from_passphrase(PASSPHRASE).unwrap();
    let (toc, chunks) = sample();
    let (bytes, written) = write_archive(&toc, &chunks, encrypted(&writer_key, 2, 2));
    let info = key_json(&bytes);
    assert_eq!(info["kdf"], "argon2id");
    assert_eq!(
        (&info["m_cost"], &info["t_cost"], &info["p_cost"]),
        (&65536.into(), &3.into(), &1.into())
    );
    assert_eq!(info["salt"].as_str().unwrap().len(), 32);

    // A key made anew from the passphrase, as a restore would.
    let key = Key::from_passphrase(PASSPHRASE).unwrap();
    assert_eq!(
        read_sequential_with(&bytes, Some(&key)).unwrap(),
        expected(&chunks)
    );
    assert_eq!(
        read_indexed_with(&bytes, Some(&key)).unwrap(),
        expected(&chunks)
    );
    let report = verify_with_key(&bytes[..], Some(&key)).unwrap();
    assert_eq!(report.contents.unwrap().trailer, written);

    let (again, _) = write_archive(&toc, &chunks, encrypted(&writer_key, 1, 1));
    assert_ne!(key_json(&again)["salt"], info["salt"]);
    assert_ne!(again[16..32], bytes[16..32], "archive ids");
}

/// Counts what a reader consumed, to show it stopped at the KEY block.
struct Counting<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Read for Counting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (&self.data[self.pos..]).read(buf)?;
        self.pos += n;
        Ok(n)
    }
}

/// Each way of opening the archive with `key`: its error, and how many bytes
/// the sequential opener had read when it failed.
fn open_errors(bytes: &[u8], key: Option<&Key>) -> (Vec<ArchiveError>, usize) {
    let mut counting = Counting {
        data: bytes,
        pos: 0,
    };
    let sequential = ArchiveReader::open_with_key(&mut counting, key)
        .err()
        .unwrap();
    let indexed = IndexedArchive::open_with_key(Cursor::new(bytes), key)
        .err()
        .unwrap();
    let verified = match key {
        Some(_) => vec![verify_with_key(bytes, key).err().unwrap()],
        None => vec![],
    };
    let mut errors = vec![sequential, indexed];
    errors.extend(verified);
    (errors, counting.pos)
}

#[test]
fn a_wrong_key_or_passphrase_fails_at_open_before_any_block_is_read() {
    let key = Key::from_bytes(key_bytes());
    let (by_file, _) = small(&key);
    let passphrase = Key::from_passphrase(PASSPHRASE).unwrap();
    let (by_passphrase, _) = small(&passphrase);
    let mut other = key_bytes();
    other[31] ^= 1;
    let cases = [
        (
            &by_file,
            Key::from_bytes(other),
            "this key does not open the archive",
        ),
        (
            &by_file,
            Key::from_passphrase(PASSPHRASE).unwrap(),
            "encrypted with a key file, not a passphrase",
        ),
        (
            &by_passphrase,
            Key::from_passphrase("correct horse battery stapler").unwrap(),
            "this passphrase does not open the archive",
        ),
        (
            &by_passphrase,
            Key::from_bytes(key_bytes()),
            "encrypted with a passphrase, not a key file",
        ),
    ];
    for (bytes, wrong, says) in cases {
        let (errors, read) = open_errors(bytes, Some(&wrong));
        assert_eq!(read, key_block_end(bytes), "read past the KEY block");
        for err in errors {
            assert!(matches!(err, ArchiveError::WrongKey { .. }), "{err}");
            assert!(err.to_string().starts_with("wrong key: "), "{err}");
            assert!(err.to_string().contains(says), "{err}");
        }
    }
}

#[test]
fn no_key_for_an_encrypted_archive_is_key_required() {
    let (bytes, _) = small(&Key::from_bytes(key_bytes()));
    let (errors, read) = open_errors(&bytes, None);
    assert_eq!(read, key_block_end(&bytes));
    for err in errors {
        assert!(matches!(err, ArchiveError::KeyRequired), "{err}");
        assert_eq!(
            err.to_string(),
            "the archive is encrypted: give its key (--key-file or --passphrase-env)"
        );
    }
}

#[test]
fn a_key_for_an_unencrypted_archive_is_refused() {
    let (toc, chunks) = sample();
    let (clear, _) = write_archive(&toc, &chunks, options(1, 1));
    let key = Key::from_bytes(key_bytes());
    let (errors, _) = open_errors(&clear, Some(&key));
    for err in errors {
        assert!(matches!(err, ArchiveError::NotEncrypted), "{err}");
    }
    // Without a key it reads as before.
    assert_eq!(read_sequential(&clear).unwrap(), expected(&chunks));
}

#[test]
fn verify_without_the_key_checks_structure_and_every_hash() {
    let key = Key::from_bytes(key_bytes());
    let (toc, chunks) = sample();
    let (bytes, _) = write_archive(&toc, &chunks, encrypted(&key, 2, 2));
    let report = verify(&bytes[..]).unwrap();
    assert!(report.encrypted);
    assert!(report.contents.is_none(), "contents cannot be checked");
    assert_eq!(report.bytes, bytes.len() as u64);
    assert_eq!(report.chunks, chunks.len() as u64);
    let raw: usize = chunks.iter().map(|c| c.data.len()).sum();
    assert_eq!(report.raw_bytes, raw as u64);
    assert_eq!(report.format_version, (1, 1));

    for len in [
        bytes.len() - 1,
        bytes.len() / 2,
        key_block_end(&bytes) + 3,
        70,
    ] {
        let err = verify(&bytes[..len]).err().unwrap();
        assert!(
            matches!(err, ArchiveError::Truncated { .. }),
            "{len}: {err}"
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(
        verify(&longer[..]).err().unwrap().region(),
        Some(Region::Footer)
    );
}

#[test]
fn a_flipped_byte_anywhere_is_found_with_or_without_the_key() {
    let key = Key::from_bytes(key_bytes());
    let (bytes, trailer) = small(&key);
    for (start, end, region) in regions(&bytes, &trailer) {
        for pos in start..end {
            let mut damaged = bytes.clone();
            damaged[pos] ^= 0xff;
            let keyless = verify(&damaged[..])
                .err()
                .unwrap_or_else(|| panic!("flip at {pos} in {region} not found without the key"));
            assert!(keyless.region().is_some(), "flip at {pos}: {keyless}");
            let keyed = verify_with_key(&damaged[..], Some(&key))
                .err()
                .unwrap_or_else(|| panic!("flip at {pos} in {region} not found with the key"));
            assert!(keyed.region().is_some(), "flip at {pos}: {keyed}");
            let indexed = read_indexed_with(&damaged, Some(&key))
                .err()
                .unwrap_or_else(|| panic!("indexed: flip at {pos} in {region} not found"));
            assert_eq!(indexed.region(), Some(region), "flip at {pos}: {indexed}");
        }
    }
}

/// Changes with every SHA-256 recomputed, as a forger would make them: the
/// hashes no longer help, the key does.
#[test]
fn tampering_with_hashes_recomputed_is_found_by_authentication() {
    let key = Key::from_bytes(key_bytes());
    let (bytes, trailer) = small(&key);
    for (at, region) in sealed_blocks(&bytes, &trailer) {
        let stored = u32_at(&bytes, at + 20) as usize;
        let hashed = (at..at + 48).chain(at + BLOCK_HEADER_LEN..at + BLOCK_HEADER_LEN + stored);
        for pos in hashed {
            let mut forged = bytes.clone();
            forged[pos] ^= 0x01;
            reseal_block(&mut forged, at);
            let err = verify_with_key(&forged[..], Some(&key))
                .err()
                .unwrap_or_else(|| panic!("forged byte {pos} in {region} not found"));
            // A header byte may fail a structural check before the tag is
            // tried; a payload byte can only fail the tag.
            if pos >= at + BLOCK_HEADER_LEN {
                assert!(is_auth_failure(&err), "byte {pos} in {region}: {err}");
                // Without the key a forger goes unnoticed: that is what the key is for.
                assert!(verify(&forged[..]).is_ok(), "byte {pos}");
            }
        }
    }
    // The KEY block: a different key check or KDF input is a wrong key.
    for pos in HEADER_LEN + BLOCK_HEADER_LEN..key_block_end(&bytes) {
        let mut forged = bytes.clone();
        forged[pos] ^= 0x01;
        reseal_block(&mut forged, HEADER_LEN);
        assert!(
            verify_with_key(&forged[..], Some(&key)).is_err(),
            "KEY byte {pos}"
        );
    }
    // The file header, except its minor version, which no reader relies on.
    for pos in (0..32).filter(|p| !(10..12).contains(p)) {
        let mut forged = bytes.clone();
        forged[pos] ^= 0x01;
        reseal_header(&mut forged);
        assert!(
            verify_with_key(&forged[..], Some(&key)).is_err(),
            "header byte {pos}"
        );
    }
}

/// Two chunks of the same length, their payloads exchanged and hashes
/// recomputed: only the tags (through nonce and header) can tell.
#[test]
fn swapped_chunks_are_found_by_authentication() {
    let key = Key::from_bytes(key_bytes());
    let same = copy_text(40, 7);
    let chunks = vec![
        Chunk {
            entry_id: 10,
            rows: 40,
            data: same.clone(),
        },
        Chunk {
            entry_id: 11,
            rows: 40,
            data: same,
        },
    ];
    let (bytes, trailer) = write_archive(&toc(2), &chunks, encrypted(&key, 1, 1));
    let (a, b) = (trailer.index[2], trailer.index[3]);
    assert_eq!(a.stored_len, b.stored_len);
    let (a, b, len) = (a.offset as usize, b.offset as usize, a.stored_len as usize);
    let swap = |from: usize, to: usize| {
        let mut forged = bytes.clone();
        forged[a + from..a + to].copy_from_slice(&bytes[b + from..b + to]);
        forged[b + from..b + to].copy_from_slice(&bytes[a + from..a + to]);
        reseal_block(&mut forged, a);
        reseal_block(&mut forged, b);
        forged
    };
    let payloads = swap(BLOCK_HEADER_LEN, BLOCK_HEADER_LEN + len);
    let payloads_and_nonces = {
        let mut forged = swap(BLOCK_HEADER_LEN, BLOCK_HEADER_LEN + len);
        forged[a + 32..a + 44].copy_from_slice(&bytes[b + 32..b + 44]);
        forged[b + 32..b + 44].copy_from_slice(&bytes[a + 32..a + 44]);
        reseal_block(&mut forged, a);
        reseal_block(&mut forged, b);
        forged
    };
    for forged in [payloads, payloads_and_nonces] {
        assert!(verify(&forged[..]).is_ok(), "keyless verify cannot tell");
        let err = verify_with_key(&forged[..], Some(&key)).err().unwrap();
        assert!(is_auth_failure(&err), "{err}");
        assert_eq!(
            err.region(),
            Some(Region::Chunk {
                entry_id: 10,
                seq: 0
            })
        );
        assert!(is_auth_failure(
            &read_indexed_with(&forged, Some(&key)).err().unwrap()
        ));
    }
    // Whole blocks exchanged (their hashes stay valid): the sealed index knows.
    let blocks = swap(0, BLOCK_HEADER_LEN + len);
    let err = verify_with_key(&blocks[..], Some(&key)).err().unwrap();
    assert_eq!(err.region(), Some(Region::Trailer), "{err}");
    assert!(read_indexed_with(&blocks, Some(&key)).is_err());
}

#[test]
fn a_chunk_from_another_archive_with_the_same_key_is_rejected() {
    let key = Key::from_bytes(key_bytes());
    let (bytes, trailer) = small(&key);
    let (other, _) = small(&key);
    let b = trailer.index[2];
    let (start, end) = (
        b.offset as usize,
        b.offset as usize + BLOCK_HEADER_LEN + b.stored_len as usize,
    );
    // Same place, same header, same nonce: only the per-archive key differs.
    assert_eq!(bytes[start..start + 48], other[start..start + 48]);
    let mut spliced = bytes.clone();
    spliced[start..end].copy_from_slice(&other[start..end]);
    reseal_block(&mut spliced, start);
    let err = verify_with_key(&spliced[..], Some(&key)).err().unwrap();
    assert!(is_auth_failure(&err), "{err}");
}

#[test]
fn nonces_are_unique_and_a_repeated_one_is_refused() {
    let key = Key::from_bytes(key_bytes());
    let (bytes, trailer) = small(&key);
    let blocks = sealed_blocks(&bytes, &trailer);
    let mut counters = std::collections::HashSet::new();
    for &(at, region) in &blocks {
        assert_eq!(bytes[at + 32..at + 36], [0; 4], "{region}");
        let counter = u64::from_le_bytes(bytes[at + 36..at + 44].try_into().unwrap());
        assert!(counters.insert(counter), "{region} repeats nonce {counter}");
    }
    assert_eq!(bytes[blocks[0].0 + 36], 0, "META's counter");
    assert_eq!(bytes[blocks[1].0 + 36], 1, "TOC's counter");

    let ((first, _), (second, region)) = (blocks[2], blocks[3]);
    let mut forged = bytes.clone();
    forged.copy_within(first + 32..first + 44, second + 32);
    reseal_block(&mut forged, second);
    let expected = format!("nonce {} is also used", bytes[first + 36]);
    for err in [
        verify(&forged[..]).err().unwrap(),
        verify_with_key(&forged[..], Some(&key)).err().unwrap(),
        read_indexed_with(&forged, Some(&key)).err().unwrap(),
    ] {
        assert_eq!(err.region(), Some(region), "{err}");
        assert!(err.to_string().contains(&expected), "{err}");
    }
}

#[test]
fn key_sources_refuse_what_is_not_a_key() {
    let (_dir, path) = key_file(&key_bytes());
    let raw = Key::from_key_file(&path).unwrap();
    let (bytes, _) = small(&raw);
    let (_dir2, hex_path) = key_file(format!("{}\r\n", KEY_HEX.to_uppercase()).as_bytes());
    let from_hex = Key::from_key_file(&hex_path).unwrap();
    assert!(verify_with_key(&bytes[..], Some(&from_hex))
        .unwrap()
        .contents
        .is_some());

    let (_dir3, short) = key_file(&key_bytes()[..31]);
    let err = Key::from_key_file(&short).err().unwrap();
    assert!(matches!(err, ArchiveError::KeyFile { .. }));
    assert_eq!(
        err.to_string(),
        format!(
            "key file {}: holds 31 bytes (a key file holds 32 raw bytes or 64 hexadecimal digits)",
            short.display()
        )
    );
    let missing = path.with_file_name("missing.key");
    let err = Key::from_key_file(&missing).err().unwrap();
    assert!(err
        .to_string()
        .starts_with(&format!("key file {}: ", missing.display())));
    assert!(matches!(
        Key::from_passphrase(""),
        Err(ArchiveError::EmptyPassphrase)
    ));

    let shown = format!("{raw:?} {:?}", Key::from_passphrase(PASSPHRASE).unwrap());
    assert!(
        !shown.contains(&KEY_HEX[..8]) && !shown.contains("horse"),
        "{shown}"
    );
}

//! The fuzz targets' body run on the seeds and on deterministic mutations of
//! them, so every `cargo test` exercises it without libFuzzer. The valid
//! seeds are written afresh by each run (so a fresh checkout needs no files);
//! files in `fuzz/seeds` (e.g. reproducers of fuzzer finds) are read too.
//! `PGARK_WRITE_FUZZ_SEEDS=1 cargo test -p pgark-archive --test fuzz_corpus`
//! writes the valid seeds there for libFuzzer (after a format change).

mod common;

#[path = "../fuzz/src/body.rs"]
mod body;

use common::*;
use pgark_archive::*;
use std::path::PathBuf;

fn seeds_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds")
}

/// Valid archives of every shape: with and without data, stored raw, encrypted.
fn valid_seeds() -> Vec<(String, Vec<u8>)> {
    let archives = [
        (
            "valid-small.pgark",
            toc(2),
            vec![chunk(10, 12, 1), chunk(11, 5, 2), chunk(10, 3, 3)],
        ),
        ("valid-no-data.pgark", toc(0), vec![]),
        (
            "valid-encrypted.pgark",
            toc(2),
            vec![chunk(10, 12, 1), rows_chunk(11, noise(200, 5))],
        ),
        (
            "valid-stored-raw.pgark",
            toc(1),
            vec![rows_chunk(10, noise(3000, 5))],
        ),
    ];
    archives
        .into_iter()
        .map(|(name, toc, chunks)| {
            let opts = WriterOptions {
                encryption: seed_key(name),
                ..options(1, 1)
            };
            (name.to_string(), write_archive(&toc, &chunks, opts).0)
        })
        .collect()
}

fn seed_key(name: &str) -> Option<Key> {
    name.contains("encrypted")
        .then(|| Key::from_bytes(body::SEED_KEY))
}

fn seed(name: &str) -> Vec<u8> {
    valid_seeds()
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap()
        .1
}

/// The valid seeds and whatever `fuzz/seeds` holds.
fn seeds() -> Vec<(String, Vec<u8>)> {
    let on_disk = std::fs::read_dir(seeds_dir())
        .into_iter()
        .flatten()
        .map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (format!("fuzz/seeds/{name}"), std::fs::read(&path).unwrap())
        });
    let mut out: Vec<_> = valid_seeds().into_iter().chain(on_disk).collect();
    out.sort();
    out
}

#[test]
fn valid_seeds_verify() {
    let valid = valid_seeds();
    if std::env::var_os("PGARK_WRITE_FUZZ_SEEDS").is_some() {
        std::fs::create_dir_all(seeds_dir()).unwrap();
        for (name, bytes) in &valid {
            std::fs::write(seeds_dir().join(name), bytes).unwrap();
        }
    }
    for (name, bytes) in valid {
        let report = verify_with_key(&bytes[..], seed_key(&name).as_ref())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(report.encrypted, name.contains("encrypted"), "{name}");
        assert!(report.contents.is_some());
        body::read_everything(&bytes);
    }
}

#[test]
fn every_seed_is_read_without_panic() {
    for (_, bytes) in seeds() {
        body::read_everything(&bytes);
        let mut resealed = bytes.clone();
        body::reseal(&mut resealed);
        body::read_everything(&resealed);
    }
}

/// Single-byte changes with checksums recomputed reach the checks behind the
/// hashes; none may panic, and the deep checks must really be reached.
#[test]
fn resealed_mutations_never_panic_and_reach_deep_checks() {
    let bytes = seed("valid-small.pgark");
    let mut deep = 0;
    for pos in 0..bytes.len() {
        for delta in [1u8, 0x80] {
            let mut m = bytes.clone();
            m[pos] = m[pos].wrapping_add(delta);
            body::reseal(&mut m);
            body::read_everything(&m);
            if let Err(e) = verify(&m[..]) {
                let msg = e.to_string();
                if ["zstd", "JSON", "index", "statistics", "decompressed"]
                    .iter()
                    .any(|w| msg.contains(w))
                {
                    deep += 1;
                }
            }
            body::read_everything(&m[..m.len() / 2]);
        }
    }
    assert!(
        deep > 100,
        "only {deep} mutations reached the checks behind the hashes"
    );
}

/// Every single-byte change to the encrypted seed, checksums recomputed, is
/// refused by a reader with the key (only the unauthenticated minor version
/// may change), and none panics.
#[test]
fn resealed_mutations_of_the_encrypted_seed_are_all_refused() {
    let bytes = seed("valid-encrypted.pgark");
    let key = Key::from_bytes(body::SEED_KEY);
    for pos in (0..bytes.len()).filter(|p| !(10..12).contains(p)) {
        let mut m = bytes.clone();
        m[pos] ^= 0x10;
        body::reseal(&mut m);
        body::read_everything(&m);
        // Resealing rewrites hash fields, undoing a change made there.
        if m != bytes {
            assert!(
                verify_with_key(&m[..], Some(&key)).is_err(),
                "change at {pos} accepted"
            );
        }
    }
}

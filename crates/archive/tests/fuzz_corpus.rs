//! The fuzz targets' body run on the committed seeds and on deterministic
//! mutations of them, so every `cargo test` exercises it without libFuzzer.
//! `PGARK_WRITE_FUZZ_SEEDS=1 cargo test -p pgark-archive --test fuzz_corpus`
//! rewrites the seeds (after a format change).

mod common;

#[path = "../fuzz/src/body.rs"]
mod body;

use common::*;
use pgark_archive::*;
use std::path::PathBuf;

fn seeds_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds")
}

fn seeds() -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(seeds_dir())
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    out.sort();
    out
}

fn write_seeds() {
    let archives = [
        (
            "valid-small.pgark",
            toc(2),
            vec![chunk(10, 12, 1), chunk(11, 5, 2), chunk(10, 3, 3)],
        ),
        ("valid-no-data.pgark", toc(0), vec![]),
        (
            "valid-stored-raw.pgark",
            toc(1),
            vec![rows_chunk(10, noise(3000, 5))],
        ),
    ];
    for (name, toc, chunks) in archives {
        let (bytes, _) = write_archive(&toc, &chunks, options(1, 1));
        std::fs::write(seeds_dir().join(name), bytes).unwrap();
    }
}

#[test]
fn valid_seeds_still_verify() {
    if std::env::var_os("PGARK_WRITE_FUZZ_SEEDS").is_some() {
        write_seeds();
    }
    let valid: Vec<_> = seeds()
        .into_iter()
        .filter(|(n, _)| n.starts_with("valid-"))
        .collect();
    assert_eq!(valid.len(), 3);
    for (name, bytes) in valid {
        verify(&bytes[..]).unwrap_or_else(|e| panic!("{name}: {e} (regenerate the seeds?)"));
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
    let (_, bytes) = seeds()
        .into_iter()
        .find(|(n, _)| n == "valid-small.pgark")
        .unwrap();
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

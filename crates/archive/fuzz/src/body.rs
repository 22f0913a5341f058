//! The fuzz targets' body, shared with the crate's corpus smoke test
//! (tests/fuzz_corpus.rs) so it also runs without nightly and libFuzzer.

use pgark_archive::{verify_with_key, IndexedArchive, Key};
use sha2::{Digest, Sha256};
use std::io::Cursor;

/// The key of the encrypted seed (`valid-encrypted.pgark`).
pub const SEED_KEY: [u8; 32] = [0x42; 32];

/// Reads `data` sequentially, fully verified, and through the index, without
/// a key and with the encrypted seed's key.
pub fn read_everything(data: &[u8]) {
    let key = Key::from_bytes(SEED_KEY);
    for key in [None, Some(&key)] {
        read_with(data, key);
    }
}

fn read_with(data: &[u8], key: Option<&Key>) {
    let _ = verify_with_key(data, key);
    if let Ok(mut archive) = IndexedArchive::open_with_key(Cursor::new(data), key) {
        let ids: Vec<u32> = archive
            .trailer()
            .tables
            .iter()
            .map(|t| t.entry_id)
            .collect();
        for id in ids {
            for at in archive.chunks_of(id) {
                if let Ok(chunk) = archive.read_chunk(&at) {
                    let _ = chunk.decompress();
                }
            }
        }
    }
}

/// Recomputes the file header, block and footer hashes wherever the layout
/// can be followed (see docs/FORMAT.md).
#[allow(dead_code)] // the `reader` target does not reseal
pub fn reseal(data: &mut [u8]) {
    if data.len() < 64 {
        return;
    }
    let hash = Sha256::digest(&data[0..32]);
    data[32..64].copy_from_slice(&hash);
    let id: [u8; 16] = data[16..32].try_into().expect("16 bytes");
    let mut pos = 64usize;
    while pos + 80 <= data.len() && data[pos..pos + 4] == *b"PGAB" {
        let stored = u32::from_le_bytes(data[pos + 20..pos + 24].try_into().expect("4 bytes"));
        let end = pos.saturating_add(80).saturating_add(stored as usize);
        let mut h = Sha256::new();
        h.update(id);
        h.update(&data[pos..pos + 48]);
        h.update(&data[pos + 80..end.min(data.len())]);
        let hash = h.finalize();
        data[pos + 48..pos + 80].copy_from_slice(&hash);
        pos = end;
    }
    if data.len() >= 56 + 64 {
        let f = data.len() - 56;
        if data[f..f + 8] == *b"PGARKEND" {
            let hash = Sha256::digest(&data[f..f + 24]);
            data[f + 24..f + 56].copy_from_slice(&hash);
        }
    }
}

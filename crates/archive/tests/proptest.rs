//! Write → read round trips for random entries, chunk sizes, interleavings and
//! writer settings.

mod common;

use common::*;
use pgark_archive::*;
use proptest::prelude::*;

/// Chunks as (entry index, length, seed); entries are 10, 11, ...
fn chunk_specs() -> impl Strategy<Value = (u32, Vec<(u32, usize, u8)>)> {
    (1u32..5).prop_flat_map(|entries| {
        let chunk = (0..entries, 0usize..40_000, any::<u8>());
        (Just(entries), prop::collection::vec(chunk, 0..24))
    })
}

fn bytes_of(len: usize, seed: u8) -> Vec<u8> {
    // Text-like (compressible) for even seeds, noise for odd ones, so both
    // stored forms occur.
    let mut state = u64::from(seed) | 1;
    (0..len)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            if seed & 1 == 0 {
                b"0123456789\tabc\n"[i % 15]
            } else {
                state as u8
            }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn round_trip(
        (entries, specs) in chunk_specs(),
        threads in 1usize..4,
        depth in 1usize..5,
        level in prop::sample::select(vec![1, 3, -1]),
        key in prop::option::of(any::<[u8; 32]>()),
    ) {
        let chunks: Vec<Chunk> = specs
            .iter()
            .map(|&(e, len, seed)| rows_chunk(10 + e, bytes_of(len, seed)))
            .collect();
        let key = key.map(Key::from_bytes);
        let opts = WriterOptions { level, threads, queue_depth: depth, encryption: key.clone() };
        let (bytes, trailer) = write_archive(&toc(entries), &chunks, opts);
        let want = expected(&chunks);
        let key = key.as_ref();
        prop_assert_eq!(&read_sequential_with(&bytes, key).unwrap(), &want);
        prop_assert_eq!(&read_indexed_with(&bytes, key).unwrap(), &want);
        let report = verify_with_key(&bytes[..], key).unwrap();
        prop_assert_eq!(report.encrypted, key.is_some());
        prop_assert_eq!(report.chunks, chunks.len() as u64);
        prop_assert_eq!(report.contents.unwrap().trailer, trailer.clone());
        prop_assert_eq!(trailer.tables.len(), entries as usize);
        for t in &trailer.tables {
            let mine = chunks.iter().filter(|c| c.entry_id == t.entry_id);
            prop_assert_eq!(t.rows, mine.clone().map(|c| c.rows).sum::<u64>());
            prop_assert_eq!(t.raw_bytes, mine.map(|c| c.data.len() as u64).sum::<u64>());
        }
    }
}

//! Damage every region of a small archive and check each reader names it.

mod common;

use common::*;
use pgark_archive::*;
use std::io::Cursor;

fn small_archive() -> (Vec<u8>, Trailer) {
    let chunks = vec![chunk(10, 40, 1), chunk(11, 30, 2), chunk(10, 20, 3)];
    write_archive(&toc(2), &chunks, options(1, 1))
}

/// Where each byte belongs, from the trailer's index.
fn regions(bytes: &[u8], trailer: &Trailer) -> Vec<(usize, usize, Region, bool)> {
    let mut out = vec![(0, HEADER_LEN, Region::Header, false)];
    for b in &trailer.index {
        let at = b.offset as usize;
        let end = at + BLOCK_HEADER_LEN + b.stored_len as usize;
        let region = match b.kind {
            BlockKind::Meta => Region::Meta,
            BlockKind::Toc => Region::Toc,
            BlockKind::Data => Region::Chunk {
                entry_id: b.entry_id,
                seq: b.seq,
            },
            BlockKind::Trailer | BlockKind::Key => {
                unreachable!("the index lists neither the trailer nor a KEY block")
            }
        };
        if b.kind == BlockKind::Data {
            out.push((at, at + BLOCK_HEADER_LEN, region, true));
            out.push((at + BLOCK_HEADER_LEN, end, region, false));
        } else {
            out.push((at, end, region, false));
        }
    }
    let footer = bytes.len() - FOOTER_LEN;
    let trailer_at = out.last().unwrap().1;
    out.push((trailer_at, footer, Region::Trailer, false));
    out.push((footer, bytes.len(), Region::Footer, false));
    out
}

/// The region a sequential reader can name for a damaged byte at `pos`: from
/// the block magic or kind on it cannot tell which kind of block it is in, and a
/// damaged entry id or seq changes the chunk it names.
fn sequential_names(region: Region, block_header: bool, pos_in_block: usize, got: Region) -> bool {
    match region {
        Region::Chunk { .. } if block_header => {
            matches!(got, Region::Block | Region::Chunk { .. })
        }
        Region::Trailer if pos_in_block < 5 => got == Region::Block,
        _ => got == region,
    }
}

fn read_indexed_all(bytes: &[u8]) -> Result<(), ArchiveError> {
    read_indexed(bytes).map(drop)
}

#[test]
fn a_flipped_byte_anywhere_is_found_and_its_region_named() {
    let (bytes, trailer) = small_archive();
    let map = regions(&bytes, &trailer);
    assert_eq!(map.last().unwrap().1, bytes.len());
    let mut seen_regions = std::collections::HashSet::new();
    for &(start, end, region, block_header) in &map {
        for pos in start..end {
            let mut damaged = bytes.clone();
            damaged[pos] ^= 0xff;
            let err = verify(&damaged[..])
                .err()
                .unwrap_or_else(|| panic!("flip at {pos} in {region} not detected"));
            let got = err
                .region()
                .unwrap_or_else(|| panic!("flip at {pos}: no region in {err}"));
            assert!(
                sequential_names(region, block_header, pos - start, got),
                "flip at {pos} in {region}: {err}"
            );
            let message = err.to_string();
            if region != Region::Header || pos >= 8 {
                assert!(message.contains("offset"), "flip at {pos}: {message}");
            }

            let err = read_indexed_all(&damaged)
                .err()
                .unwrap_or_else(|| panic!("indexed: flip at {pos} in {region} not detected"));
            // Random access knows from the index which block it reads.
            assert_eq!(
                err.region(),
                Some(region),
                "indexed: flip at {pos} in {region}: {err}"
            );
            seen_regions.insert(format!("{region}{block_header}"));
        }
    }
    // Header, META, TOC, 3 chunk headers + bodies, trailer, footer.
    assert_eq!(seen_regions.len(), 11);
}

#[test]
fn error_messages_name_region_and_offset() {
    let (bytes, trailer) = small_archive();
    let chunk = trailer.index[3];
    let mut damaged = bytes.clone();
    damaged[chunk.offset as usize + BLOCK_HEADER_LEN + 1] ^= 1;
    let msg = verify(&damaged[..]).err().unwrap().to_string();
    assert_eq!(
        msg,
        format!(
            "corrupt archive: data chunk {} of entry {} at offset {}: sha256 mismatch",
            chunk.seq, chunk.entry_id, chunk.offset
        )
    );
    let mut damaged = bytes.clone();
    let len = damaged.len();
    damaged[len - 1] ^= 1;
    let msg = verify(&damaged[..]).err().unwrap().to_string();
    assert_eq!(
        msg,
        format!(
            "corrupt archive: footer at offset {}: sha256 mismatch",
            len - FOOTER_LEN
        )
    );
}

#[test]
fn every_truncation_fails_and_never_succeeds() {
    let (bytes, _) = small_archive();
    for len in 0..bytes.len() {
        let prefix = &bytes[..len];
        match verify(prefix) {
            Err(ArchiveError::Truncated { at, .. }) => assert_eq!(at, len as u64, "prefix {len}"),
            other => panic!("prefix of {len} bytes: {other:?}"),
        }
        assert!(
            read_indexed_all(prefix).is_err(),
            "indexed read of a {len}-byte prefix succeeded"
        );
    }
    let cut = &bytes[..bytes.len() - 1];
    let msg = IndexedArchive::open(Cursor::new(cut))
        .err()
        .unwrap()
        .to_string();
    assert!(
        msg.contains("footer") && msg.contains("may be truncated"),
        "{msg}"
    );
}

#[test]
fn bytes_after_the_footer_are_rejected() {
    let (mut bytes, _) = small_archive();
    bytes.push(0);
    let err = verify(&bytes[..]).err().unwrap();
    assert_eq!(err.region(), Some(Region::Footer), "{err}");
    assert!(read_indexed_all(&bytes).is_err());
}

#[test]
fn a_chunk_from_another_archive_is_rejected() {
    // Same inputs, so the other archive's block has the same length and place.
    let (bytes, trailer) = small_archive();
    let (other, _) = small_archive();
    let b = trailer.index[2];
    let (start, end) = (
        b.offset as usize,
        (b.offset + 80) as usize + b.stored_len as usize,
    );
    assert_eq!(bytes[start + 80..end], other[start + 80..end]);
    let mut spliced = bytes.clone();
    spliced[start..end].copy_from_slice(&other[start..end]);
    let region = Region::Chunk {
        entry_id: b.entry_id,
        seq: b.seq,
    };
    let err = verify(&spliced[..]).err().unwrap();
    assert_eq!(err.region(), Some(region), "{err}");
    assert!(err.to_string().contains("sha256 mismatch"));
    assert_eq!(
        read_indexed_all(&spliced).err().unwrap().region(),
        Some(region)
    );
}

#[test]
fn a_future_major_version_is_refused_clearly() {
    let (mut bytes, _) = small_archive();
    bytes[8..10].copy_from_slice(&2u16.to_le_bytes());
    bytes[10..12].copy_from_slice(&3u16.to_le_bytes());
    reseal_header(&mut bytes);
    for err in [
        verify(&bytes[..]).err().unwrap(),
        read_indexed_all(&bytes).err().unwrap(),
    ] {
        assert!(matches!(
            err,
            ArchiveError::UnsupportedVersion {
                major: 2,
                minor: 3,
                ..
            }
        ));
        assert_eq!(
            err.to_string(),
            "archive format 2.3 is newer than this pgark supports (max 1.x)"
        );
    }
}

/// 1.0 archives differ from unencrypted 1.1 ones only in the minor version.
#[test]
fn a_1_0_archive_is_read() {
    let (mut bytes, trailer) = small_archive();
    bytes[10..12].copy_from_slice(&0u16.to_le_bytes());
    reseal_header(&mut bytes);
    let report = verify(&bytes[..]).unwrap();
    assert_eq!(report.format_version, (1, 0));
    assert_eq!(report.contents.unwrap().trailer, trailer);
}

#[test]
fn a_higher_minor_version_is_read() {
    let (mut bytes, trailer) = small_archive();
    bytes[10..12].copy_from_slice(&9u16.to_le_bytes());
    reseal_header(&mut bytes);
    let report = verify(&bytes[..]).unwrap();
    assert_eq!(report.format_version, (1, 9));
    assert_eq!(report.contents.unwrap().trailer, trailer);
}

/// Encryption flags set on an unencrypted archive, checksums recomputed:
/// damage (or a forgery), never mistaken for encryption.
#[test]
fn encryption_flags_on_an_unencrypted_archive_are_corruption() {
    let (mut bytes, trailer) = small_archive();
    let mut header_flagged = bytes.clone();
    header_flagged[12] |= 1;
    reseal_header(&mut header_flagged);
    let err = verify(&header_flagged[..]).err().unwrap();
    assert!(
        matches!(
            err,
            ArchiveError::Corrupt {
                region: Region::Key,
                offset: 64,
                ..
            }
        ),
        "{err}"
    );

    let at = trailer.index[2].offset as usize;
    bytes[at + 5] |= 2;
    reseal_block(&mut bytes, at);
    let err = verify(&bytes[..]).err().unwrap();
    assert!(
        matches!(
            err,
            ArchiveError::Corrupt {
                region: Region::Chunk { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("encrypted block in an unencrypted archive"),
        "{err}"
    );
}

#[test]
fn not_an_archive() {
    for input in [
        &b"PGDMP\x01\x0e\x00"[..],
        b"hello world, this is not an archive at all",
    ] {
        let err = verify(input).err().unwrap();
        assert!(matches!(err, ArchiveError::NotAnArchive), "{err}");
    }
    // A prefix of the magic is an archive cut short.
    let err = verify(&b"PGA"[..]).err().unwrap();
    assert!(
        matches!(
            err,
            ArchiveError::Truncated {
                region: Region::Header,
                at: 3,
                ..
            }
        ),
        "{err}"
    );
    assert!(matches!(
        IndexedArchive::open(Cursor::new(b"PGDMP".to_vec()))
            .err()
            .unwrap(),
        ArchiveError::NotAnArchive
    ));
}

#[test]
fn absurd_lengths_fail_before_allocating() {
    let (bytes, trailer) = small_archive();
    let at = trailer.index[2].offset as usize;
    // Over the limit: refused from the header alone.
    let mut damaged = bytes.clone();
    damaged[at + 20..at + 24].copy_from_slice(&u32::MAX.to_le_bytes());
    let err = verify(&damaged[..]).err().unwrap();
    assert!(err.to_string().contains("exceeds the limit"), "{err}");
    // Under the limit but past the end of the input, even with a valid hash.
    let mut damaged = bytes.clone();
    damaged[at + 16..at + 24].copy_from_slice(&[0, 0, 0, 4, 0, 0, 0, 4]);
    reseal_block(&mut damaged[..], at);
    let err = verify(&damaged[..]).err().unwrap();
    assert!(matches!(err, ArchiveError::Truncated { .. }), "{err}");
    // A footer pointing far away, resealed so only the bounds check can catch it.
    for (field, value) in [(8, u64::MAX), (8, 3), (16, u64::MAX)] {
        let mut damaged = bytes.clone();
        let f = damaged.len() - FOOTER_LEN;
        damaged[f + field..f + field + 8].copy_from_slice(&value.to_le_bytes());
        reseal_footer(&mut damaged);
        let err = read_indexed_all(&damaged).err().unwrap();
        assert_eq!(err.region(), Some(Region::Footer), "{err}");
        assert!(verify(&damaged[..]).is_err());
    }
}

#[test]
fn a_reader_fails_for_good_after_an_error() {
    let (mut bytes, trailer) = small_archive();
    let at = trailer.index[2].offset as usize;
    bytes[at + 100] ^= 1;
    let mut reader = ArchiveReader::open(&bytes[..]).unwrap();
    assert!(matches!(
        reader.next_chunk(),
        Err(ArchiveError::Corrupt { .. })
    ));
    assert!(matches!(
        reader.next_chunk(),
        Err(ArchiveError::ReaderFailed)
    ));
}

#[test]
fn verify_counts_the_rows_of_every_chunk() {
    let (mut bytes, trailer) = small_archive();
    let b = trailer.index[3];
    let at = b.offset as usize;
    bytes[at + 24..at + 32].copy_from_slice(&(b.rows + 1).to_le_bytes());
    reseal_block(&mut bytes, at);
    let err = verify(&bytes[..]).err().unwrap();
    assert_eq!(
        err.to_string(),
        format!(
            "corrupt archive: data chunk {} of entry {} at offset {at}: holds {} rows, its header says {}",
            b.seq,
            b.entry_id,
            b.rows,
            b.rows + 1
        )
    );
}

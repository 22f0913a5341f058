#![allow(dead_code)] // each test binary uses a different part of these helpers

use chrono::{TimeZone, Utc};
use pgark_archive::*;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Cursor;

pub const HEADER_LEN: usize = 64;
pub const BLOCK_HEADER_LEN: usize = 80;
pub const FOOTER_LEN: usize = 56;

pub fn meta() -> ArchiveMeta {
    ArchiveMeta {
        tool: "pgark".into(),
        tool_version: "0.1.0".into(),
        server_version: "15.8".into(),
        server_version_num: 150008,
        database: "shop".into(),
        host: "localhost".into(),
        port: 5432,
        user: "postgres".into(),
        snapshot: Some("00000003-0000001B-1".into()),
        started_at: Utc.with_ymd_and_hms(2026, 11, 24, 7, 0, 0).unwrap(),
        label: Some("before migration 42".into()),
        options: BTreeMap::from([("jobs".into(), "2".into())]),
        unsupported: vec![Unsupported {
            kind: "FOREIGN DATA WRAPPER".into(),
            name: "fdw".into(),
            reason: "not implemented".into(),
        }],
        ..Default::default()
    }
}

fn entry(id: u32, kind: &str, name: &str, section: Section, copy: Option<CopySpec>) -> TocEntry {
    TocEntry {
        id,
        kind: kind.into(),
        schema: Some("public".into()),
        name: name.into(),
        owner: Some("postgres".into()),
        section,
        create_sql: format!("CREATE {kind} public.{name};"),
        owner_sql: None,
        drop_sql: format!("DROP {kind} public.{name};"),
        deps: vec![1],
        copy,
    }
}

/// A TOC with a schema, `data_entries` table-data entries (ids 10, 11, ...) and an index.
pub fn toc(data_entries: u32) -> Vec<TocEntry> {
    let mut toc = vec![entry(1, "SCHEMA", "public", Section::PreData, None)];
    for i in 0..data_entries {
        let name = format!("t{i}");
        let copy = CopySpec {
            qualified_table: format!("\"public\".\"{name}\""),
            columns: vec![
                CopyColumn {
                    name: "id".into(),
                    type_name: "bigint".into(),
                    base_type: None,
                },
                CopyColumn {
                    name: "note".into(),
                    type_name: "text".into(),
                    base_type: None,
                },
            ],
            format: "text".into(),
            critical: i == 0,
        };
        toc.push(entry(
            10 + i,
            "TABLE DATA",
            &name,
            Section::Data,
            Some(copy),
        ));
    }
    toc.push(entry(2, "INDEX", "t0_idx", Section::PostData, None));
    toc
}

/// Deterministic COPY-text-like rows.
pub fn copy_text(rows: u64, seed: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..rows {
        let n = (seed * 1_000_003 + i * 7919) % 100_000;
        out.extend_from_slice(
            format!(
                "{i}\t2026-11-{:02} 07:{:02}:00+00\t{n}.{:02}\tnote {n} for row {i}\n",
                1 + n % 28,
                n % 60,
                n % 100
            )
            .as_bytes(),
        );
    }
    out
}

pub struct Chunk {
    pub entry_id: u32,
    pub rows: u64,
    pub data: Vec<u8>,
}

pub fn chunk(entry_id: u32, rows: u64, seed: u64) -> Chunk {
    Chunk {
        entry_id,
        rows,
        data: copy_text(rows, seed),
    }
}

/// Incompressible bytes.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// A chunk of arbitrary bytes made into whole rows: a final newline added if
/// missing, the rows counted as the writer requires for COPY text.
pub fn rows_chunk(entry_id: u32, mut data: Vec<u8>) -> Chunk {
    if data.last().is_some_and(|&b| b != b'\n') {
        data.push(b'\n');
    }
    let rows = data.iter().filter(|&&b| b == b'\n').count() as u64;
    Chunk {
        entry_id,
        rows,
        data,
    }
}

pub fn options(threads: usize, queue_depth: usize) -> WriterOptions {
    WriterOptions {
        level: 1,
        threads,
        queue_depth,
        encryption: None,
    }
}

/// Writes an archive from one producer; row digests are "digest-<id>".
pub fn write_archive(
    toc: &[TocEntry],
    chunks: &[Chunk],
    opts: WriterOptions,
) -> (Vec<u8>, Trailer) {
    let writer = ArchiveWriter::new(Vec::new(), &meta(), toc, opts).unwrap();
    let sender = writer.chunk_sender();
    for c in chunks {
        sender.send(c.entry_id, c.rows, c.data.clone()).unwrap();
    }
    let digests = toc
        .iter()
        .filter(|e| e.copy.is_some())
        .map(|e| (e.id, format!("digest-{}", e.id)))
        .collect();
    writer.finish(finished_at(), digests).unwrap()
}

pub fn finished_at() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 7, 5, 0).unwrap()
}

/// Each entry's data: chunks in seq order, as (rows, bytes).
pub type Contents = BTreeMap<u32, Vec<(u64, Vec<u8>)>>;

/// What the writer was given, per entry in submission order.
pub fn expected(chunks: &[Chunk]) -> Contents {
    let mut out = Contents::new();
    for c in chunks {
        out.entry(c.entry_id)
            .or_default()
            .push((c.rows, c.data.clone()));
    }
    out
}

pub fn read_sequential(bytes: &[u8]) -> Result<Contents, ArchiveError> {
    read_sequential_with(bytes, None)
}

pub fn read_sequential_with(bytes: &[u8], key: Option<&Key>) -> Result<Contents, ArchiveError> {
    let mut reader = ArchiveReader::open_with_key(bytes, key)?;
    let mut by_seq: BTreeMap<(u32, u32), (u64, Vec<u8>)> = BTreeMap::new();
    while let Some(c) = reader.next_chunk()? {
        by_seq.insert((c.entry_id, c.seq), (c.rows, c.decompress()?));
    }
    assert!(reader.trailer().is_some());
    let mut out = Contents::new();
    for ((entry, _), chunk) in by_seq {
        out.entry(entry).or_default().push(chunk);
    }
    Ok(out)
}

pub fn read_indexed(bytes: &[u8]) -> Result<Contents, ArchiveError> {
    read_indexed_with(bytes, None)
}

pub fn read_indexed_with(bytes: &[u8], key: Option<&Key>) -> Result<Contents, ArchiveError> {
    let mut archive = IndexedArchive::open_with_key(Cursor::new(bytes), key)?;
    let mut out = Contents::new();
    let ids: Vec<u32> = archive
        .trailer()
        .tables
        .iter()
        .map(|t| t.entry_id)
        .collect();
    for id in ids {
        for (i, at) in archive.chunks_of(id).iter().enumerate() {
            assert_eq!(at.seq as usize, i);
            let c = archive.read_chunk(at)?;
            out.entry(id).or_default().push((c.rows, c.decompress()?));
        }
    }
    Ok(out)
}

/// Recomputes the hash of the block at `offset` (after a test edited it), over
/// as much of its payload as there is.
pub fn reseal_block(bytes: &mut [u8], offset: usize) {
    let id: [u8; 16] = bytes[16..32].try_into().unwrap();
    let stored = u32::from_le_bytes(bytes[offset + 20..offset + 24].try_into().unwrap()) as usize;
    let end = (offset + BLOCK_HEADER_LEN + stored).min(bytes.len());
    let mut h = Sha256::new();
    h.update(id);
    h.update(&bytes[offset..offset + 48]);
    h.update(&bytes[offset + BLOCK_HEADER_LEN..end]);
    let hash = h.finalize();
    bytes[offset + 48..offset + 80].copy_from_slice(&hash);
}

pub fn reseal_header(bytes: &mut [u8]) {
    let hash = Sha256::digest(&bytes[0..32]);
    bytes[32..64].copy_from_slice(&hash);
}

pub fn reseal_footer(bytes: &mut [u8]) {
    let at = bytes.len() - FOOTER_LEN;
    let hash = Sha256::digest(&bytes[at..at + 24]);
    bytes[at + 24..at + 56].copy_from_slice(&hash);
}

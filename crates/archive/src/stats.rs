//! Per-table statistics of the trailer, computed the same way by the writer and
//! by readers that check them.

use crate::error::{ArchiveError, Region};
use crate::layout::{hex, Hash};
use crate::model::{BlockKind, BlockRef, TableStats, TocEntry, Trailer};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};

/// What the trailer statistics need from one DATA block.
#[derive(Debug, Clone, Copy)]
pub struct ChunkSeen {
    pub seq: u32,
    pub rows: u64,
    pub raw_len: u32,
    pub stored_len: u32,
    pub hash: Hash,
}

/// Statistics of one entry; `row_digest` is left for the caller.
pub fn table_stats(entry_id: u32, mut chunks: Vec<ChunkSeen>) -> TableStats {
    chunks.sort_by_key(|c| c.seq);
    let mut digest = Sha256::new();
    for c in &chunks {
        digest.update(c.hash);
    }
    TableStats {
        entry_id,
        rows: chunks.iter().map(|c| c.rows).sum(),
        raw_bytes: chunks.iter().map(|c| u64::from(c.raw_len)).sum(),
        stored_bytes: chunks.iter().map(|c| u64::from(c.stored_len)).sum(),
        chunks: chunks.len() as u32,
        sha256: hex(&digest.finalize()),
        row_digest: None,
    }
}

/// A chunk of COPY text must hold whole rows, exactly `rows` of them: in the
/// text format every row is one line (newlines in values are escaped).
pub fn check_text_rows(data: &[u8], rows: u64) -> Result<(), String> {
    if data.last().is_some_and(|&b| b != b'\n') {
        return Err("does not end with a whole row".into());
    }
    let lines = count_newlines(data);
    if lines != rows {
        return Err(format!("holds {lines} rows, its header says {rows}"));
    }
    Ok(())
}

/// Counts in u8 lanes (a block of 255 bytes cannot overflow them), which the
/// compiler vectorizes: ten times faster than a plain filter-and-count, which
/// would cost the writer a sixth of its throughput.
fn count_newlines(data: &[u8]) -> u64 {
    data.chunks(255)
        .map(|block| u64::from(block.iter().fold(0u8, |n, &b| n + u8::from(b == b'\n'))))
        .sum()
}

/// The entries whose chunks are COPY text, the only format whose rows a
/// reader can count.
pub fn text_entries(toc: &[TocEntry]) -> HashSet<u32> {
    toc.iter()
        .filter(|e| e.copy.as_ref().is_some_and(|c| c.format == "text"))
        .map(|e| e.id)
        .collect()
}

/// Checks a TOC read from an archive: unique ids.
pub fn check_toc(toc: &[TocEntry], offset: u64) -> Result<(), ArchiveError> {
    let mut ids = HashSet::new();
    match toc.iter().find(|e| !ids.insert(e.id)) {
        Some(dup) => Err(ArchiveError::corrupt(
            Region::Toc,
            offset,
            format!("entry id {} is used twice", dup.id),
        )),
        None => Ok(()),
    }
}

/// Checks the trailer's structure against the TOC, without the chunks' hashes:
/// the index must tile the file from the META block up to the trailer, each
/// data entry must have one stats record whose counts match the index, and its
/// chunks must have the sequence numbers 0..n exactly once.
pub fn check_trailer(
    trailer: &Trailer,
    toc: &[TocEntry],
    first_block: u64,
    trailer_offset: u64,
) -> Result<(), ArchiveError> {
    let bad = |detail: String| ArchiveError::corrupt(Region::Trailer, trailer_offset, detail);
    check_index_layout(&trailer.index, first_block, trailer_offset).map_err(bad)?;

    let data_entries: Vec<u32> = toc
        .iter()
        .filter(|e| e.copy.is_some())
        .map(|e| e.id)
        .collect();
    let listed: Vec<u32> = trailer.tables.iter().map(|t| t.entry_id).collect();
    if listed != data_entries {
        return Err(bad(format!(
            "table statistics list entries {listed:?}, the TOC's data entries are {data_entries:?}"
        )));
    }
    let mut per_entry: HashMap<u32, Vec<&BlockRef>> = HashMap::new();
    for b in trailer.index.iter().filter(|b| b.kind == BlockKind::Data) {
        per_entry.entry(b.entry_id).or_default().push(b);
    }
    for t in &trailer.tables {
        let mut refs = per_entry.remove(&t.entry_id).unwrap_or_default();
        refs.sort_by_key(|b| b.seq);
        if let Some((i, b)) = refs.iter().enumerate().find(|(i, b)| b.seq as usize != *i) {
            return Err(bad(format!(
                "entry {} has chunk seq {} where {i} was expected",
                t.entry_id, b.seq
            )));
        }
        let counted = (
            refs.len() as u64,
            refs.iter().map(|b| b.rows).sum::<u64>(),
            refs.iter().map(|b| u64::from(b.raw_len)).sum::<u64>(),
            refs.iter().map(|b| u64::from(b.stored_len)).sum::<u64>(),
        );
        if counted != (u64::from(t.chunks), t.rows, t.raw_bytes, t.stored_bytes) {
            return Err(bad(format!(
                "statistics of entry {} disagree with its indexed chunks",
                t.entry_id
            )));
        }
    }
    if let Some(entry) = per_entry.keys().min() {
        return Err(bad(format!(
            "index has chunks of entry {entry}, which has no COPY spec"
        )));
    }
    Ok(())
}

/// The index must list META, TOC, then only DATA blocks, back to back, ending
/// where the trailer starts.
fn check_index_layout(index: &[BlockRef], first: u64, trailer_offset: u64) -> Result<(), String> {
    let mut at = first;
    for (i, b) in index.iter().enumerate() {
        let kind = match i {
            0 => BlockKind::Meta,
            1 => BlockKind::Toc,
            _ => BlockKind::Data,
        };
        if b.kind != kind || b.offset != at {
            return Err(format!(
                "index entry {i} is a {:?} block at offset {}, expected a {kind:?} block at {at}",
                b.kind, b.offset
            ));
        }
        at = at
            .checked_add(crate::layout::BLOCK_HEADER_LEN as u64 + u64::from(b.stored_len))
            .ok_or("index offsets overflow")?;
    }
    if index.len() < 2 || at != trailer_offset {
        return Err(format!(
            "index covers the file up to offset {at}, the trailer starts at {trailer_offset}"
        ));
    }
    Ok(())
}

/// Compares statistics recomputed from the blocks with the trailer's.
pub fn check_table_hashes(
    trailer: &Trailer,
    mut chunks: HashMap<u32, Vec<ChunkSeen>>,
    trailer_offset: u64,
) -> Result<(), ArchiveError> {
    for t in &trailer.tables {
        let mut computed = table_stats(t.entry_id, chunks.remove(&t.entry_id).unwrap_or_default());
        computed.row_digest.clone_from(&t.row_digest);
        if &computed != t {
            return Err(ArchiveError::corrupt(
                Region::Trailer,
                trailer_offset,
                format!("statistics of entry {} do not match its chunks", t.entry_id),
            ));
        }
    }
    Ok(())
}

//! Random access through the trailer's index, found from the fixed-size footer.

use crate::error::{ArchiveError, Region};
use crate::layout::{read_block, Expect, Footer, FOOTER_LEN, HEADER_LEN};
use crate::model::{ArchiveMeta, BlockKind, BlockRef, TocEntry, Trailer};
use crate::reader::{block_ref, parse_section, read_prologue, StoredChunk};
use crate::stats::check_trailer;
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};

pub struct IndexedArchive<R: Read + Seek> {
    r: R,
    archive_id: [u8; 16],
    meta: ArchiveMeta,
    toc: Vec<TocEntry>,
    trailer: Trailer,
    /// Each entry's chunks in sequence order.
    chunks: HashMap<u32, Vec<BlockRef>>,
}

impl<R: Read + Seek> IndexedArchive<R> {
    /// Verifies the file header, META, TOC, footer and trailer, and checks the
    /// index against them. Chunks are verified when read.
    pub fn open(mut r: R) -> Result<Self, ArchiveError> {
        seek(&mut r, SeekFrom::Start(0), Region::Header)?;
        let prologue = read_prologue(&mut r)?;
        let total = seek(&mut r, SeekFrom::End(0), Region::Footer)?;
        let footer_at = total
            .checked_sub(FOOTER_LEN as u64)
            .ok_or(ArchiveError::Truncated {
                region: Region::Footer,
                offset: prologue.end,
                at: total,
            })?;
        let footer_err = |detail: String| ArchiveError::corrupt(Region::Footer, footer_at, detail);
        seek(&mut r, SeekFrom::Start(footer_at), Region::Footer)?;
        let footer = Footer::read(&mut r, footer_at).map_err(|e| match e {
            ArchiveError::Corrupt { detail, .. } => footer_err(format!(
                "{detail} (the archive may be truncated or still being written)"
            )),
            other => other,
        })?;
        if footer.total_len != total {
            return Err(footer_err(format!(
                "footer says the archive is {} bytes, it is {total}",
                footer.total_len
            )));
        }
        if footer.trailer_offset < prologue.end || footer.trailer_offset >= footer_at {
            return Err(footer_err(format!(
                "trailer offset {} is outside the archive's blocks",
                footer.trailer_offset
            )));
        }
        let trailer_at = footer.trailer_offset;
        seek(&mut r, SeekFrom::Start(trailer_at), Region::Trailer)?;
        let id = prologue.header.archive_id;
        let block = read_block(&mut r, trailer_at, &id, Expect::Exactly(Region::Trailer))?;
        if block.end() != footer_at {
            return Err(ArchiveError::corrupt(
                Region::Trailer,
                trailer_at,
                "trailer does not end where the footer starts",
            ));
        }
        let trailer: Trailer = parse_section(&block, Region::Trailer)?;
        check_trailer(&trailer, &prologue.toc, HEADER_LEN as u64, trailer_at)?;
        if trailer.index[..2] != prologue.blocks {
            return Err(ArchiveError::corrupt(
                Region::Trailer,
                trailer_at,
                "index does not match the META and TOC blocks",
            ));
        }
        let mut chunks: HashMap<u32, Vec<BlockRef>> = HashMap::new();
        for b in trailer.index.iter().filter(|b| b.kind == BlockKind::Data) {
            chunks.entry(b.entry_id).or_default().push(*b);
        }
        for refs in chunks.values_mut() {
            refs.sort_by_key(|b| b.seq);
        }
        Ok(IndexedArchive {
            r,
            archive_id: id,
            meta: prologue.meta,
            toc: prologue.toc,
            trailer,
            chunks,
        })
    }

    pub fn meta(&self) -> &ArchiveMeta {
        &self.meta
    }

    pub fn toc(&self) -> &[TocEntry] {
        &self.toc
    }

    pub fn trailer(&self) -> &Trailer {
        &self.trailer
    }

    /// The chunks of one entry in sequence order (empty for unknown entries).
    pub fn chunks_of(&self, entry_id: u32) -> Vec<BlockRef> {
        self.chunks.get(&entry_id).cloned().unwrap_or_default()
    }

    /// Reads and verifies one chunk of the index.
    pub fn read_chunk(&mut self, at: &BlockRef) -> Result<StoredChunk, ArchiveError> {
        read_indexed_chunk(&mut self.r, &self.archive_id, at)
    }

    /// Like [`IndexedArchive::read_chunk`], from another handle on the same
    /// archive (e.g. one open file per restore worker).
    pub fn read_chunk_from<S: Read + Seek>(
        &self,
        src: &mut S,
        at: &BlockRef,
    ) -> Result<StoredChunk, ArchiveError> {
        read_indexed_chunk(src, &self.archive_id, at)
    }
}

fn read_indexed_chunk<S: Read + Seek>(
    src: &mut S,
    archive_id: &[u8; 16],
    at: &BlockRef,
) -> Result<StoredChunk, ArchiveError> {
    if at.kind != BlockKind::Data {
        return Err(ArchiveError::Usage(format!(
            "block at offset {} is a {:?} block, not a data chunk",
            at.offset, at.kind
        )));
    }
    let region = Region::Chunk {
        entry_id: at.entry_id,
        seq: at.seq,
    };
    seek(src, SeekFrom::Start(at.offset), region)?;
    let block = read_block(src, at.offset, archive_id, Expect::Exactly(region))?;
    if block_ref(&block) != *at {
        return Err(ArchiveError::corrupt(
            region,
            at.offset,
            "block header does not match the index",
        ));
    }
    Ok(StoredChunk::from_block(block))
}

fn seek<S: Seek>(s: &mut S, to: SeekFrom, region: Region) -> Result<u64, ArchiveError> {
    s.seek(to)
        .map_err(|e| ArchiveError::io(format!("seeking to the {region} ({to:?})"), e))
}

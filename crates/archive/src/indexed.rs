//! Random access through the trailer's index, found from the fixed-size footer.

use crate::crypto::{BlockCipher, Key};
use crate::error::{ArchiveError, Region};
use crate::layout::{read_block, Expect, FileHeader, Footer, FOOTER_LEN};
use crate::model::{ArchiveMeta, BlockKind, BlockRef, TocEntry, Trailer};
use crate::reader::{block_ref, parse_section, read_prologue, Nonces, StoredChunk};
use crate::stats::check_trailer;
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::sync::{Arc, Mutex};

pub struct IndexedArchive<R: Read + Seek> {
    r: R,
    header: FileHeader,
    cipher: Option<Arc<BlockCipher>>,
    /// Nonces of the blocks read so far, shared by every handle's reads.
    nonces: Mutex<Nonces>,
    meta: ArchiveMeta,
    toc: Vec<TocEntry>,
    trailer: Trailer,
    /// Each entry's chunks in sequence order.
    chunks: HashMap<u32, Vec<BlockRef>>,
}

impl<R: Read + Seek> IndexedArchive<R> {
    /// Verifies the file header, META, TOC, footer and trailer of an
    /// unencrypted archive, and checks the index against them. Chunks are
    /// verified when read. An encrypted archive fails with `KeyRequired`.
    pub fn open(r: R) -> Result<Self, ArchiveError> {
        Self::open_with_key(r, None)
    }

    /// Like [`IndexedArchive::open`]; an encrypted archive needs its key
    /// (else `KeyRequired`, or `WrongKey` before any block after the KEY
    /// block is read), and a key given for an unencrypted one fails with
    /// `NotEncrypted`. Chunks read are decrypted by `StoredChunk::decompress`.
    pub fn open_with_key(mut r: R, key: Option<&Key>) -> Result<Self, ArchiveError> {
        seek(&mut r, SeekFrom::Start(0), Region::Header)?;
        let mut prologue = read_prologue(&mut r, key)?;
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
        let header = prologue.header;
        let block = read_block(
            &mut r,
            trailer_at,
            &header,
            Expect::Exactly(Region::Trailer),
        )?;
        prologue.nonces.check(&block, Region::Trailer)?;
        if block.end() != footer_at {
            return Err(ArchiveError::corrupt(
                Region::Trailer,
                trailer_at,
                "trailer does not end where the footer starts",
            ));
        }
        let cipher = prologue.cipher;
        let trailer: Trailer = parse_section(&block, cipher.as_deref(), Region::Trailer)?;
        let first_block = prologue.blocks[0].offset;
        check_trailer(&trailer, &prologue.toc, first_block, trailer_at)?;
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
            header,
            cipher,
            nonces: Mutex::new(prologue.nonces),
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

    pub fn encrypted(&self) -> bool {
        self.header.encrypted()
    }

    /// The chunks of one entry in sequence order (empty for unknown entries).
    pub fn chunks_of(&self, entry_id: u32) -> Vec<BlockRef> {
        self.chunks.get(&entry_id).cloned().unwrap_or_default()
    }

    /// Reads and verifies one chunk of the index.
    pub fn read_chunk(&mut self, at: &BlockRef) -> Result<StoredChunk, ArchiveError> {
        let context = ChunkContext {
            header: &self.header,
            cipher: self.cipher.as_ref(),
            nonces: &self.nonces,
        };
        context.read(&mut self.r, at)
    }

    /// Like [`IndexedArchive::read_chunk`], from another handle on the same
    /// archive (e.g. one open file per restore worker).
    pub fn read_chunk_from<S: Read + Seek>(
        &self,
        src: &mut S,
        at: &BlockRef,
    ) -> Result<StoredChunk, ArchiveError> {
        let context = ChunkContext {
            header: &self.header,
            cipher: self.cipher.as_ref(),
            nonces: &self.nonces,
        };
        context.read(src, at)
    }
}

/// What reading a chunk needs of the archive, apart from the input.
struct ChunkContext<'a> {
    header: &'a FileHeader,
    cipher: Option<&'a Arc<BlockCipher>>,
    nonces: &'a Mutex<Nonces>,
}

impl ChunkContext<'_> {
    fn read<S: Read + Seek>(
        &self,
        src: &mut S,
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
        let block = read_block(src, at.offset, self.header, Expect::Exactly(region))?;
        if block_ref(&block) != *at {
            return Err(ArchiveError::corrupt(
                region,
                at.offset,
                "block header does not match the index",
            ));
        }
        self.nonces
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .check(&block, region)?;
        Ok(StoredChunk::from_block(block, self.cipher))
    }
}

fn seek<S: Seek>(s: &mut S, to: SeekFrom, region: Region) -> Result<u64, ArchiveError> {
    s.seek(to)
        .map_err(|e| ArchiveError::io(format!("seeking to the {region} ({to:?})"), e))
}

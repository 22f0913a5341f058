//! Sequential reading (works on a pipe) and the full integrity check.

use crate::error::{ArchiveError, Region};
use crate::layout::{
    decode_payload, read_block, Expect, FileHeader, Footer, RawBlock, FOOTER_LEN, HEADER_LEN,
};
use crate::model::{ArchiveMeta, BlockKind, BlockRef, TocEntry, Trailer};
use crate::stats::{
    check_table_hashes, check_text_rows, check_toc, check_trailer, text_entries, ChunkSeen,
};
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};

/// One verified DATA block, still compressed: `decompress` it on any thread.
#[derive(Debug, Clone)]
pub struct StoredChunk {
    pub entry_id: u32,
    pub seq: u32,
    pub rows: u64,
    pub raw_len: u32,
    /// Where its block starts in the archive.
    pub offset: u64,
    flags: u8,
    stored: Vec<u8>,
}

impl StoredChunk {
    pub(crate) fn from_block(block: RawBlock) -> Self {
        let h = block.header;
        StoredChunk {
            entry_id: h.entry_id,
            seq: h.seq,
            rows: h.rows,
            raw_len: h.raw_len,
            offset: block.offset,
            flags: h.flags,
            stored: block.payload,
        }
    }

    /// The chunk's COPY text; its length is checked against `raw_len`.
    pub fn decompress(&self) -> Result<Vec<u8>, ArchiveError> {
        let region = Region::Chunk {
            entry_id: self.entry_id,
            seq: self.seq,
        };
        decode_payload(&self.stored, self.flags, self.raw_len, region, self.offset)
    }

    pub fn stored_len(&self) -> usize {
        self.stored.len()
    }
}

pub(crate) fn block_ref(block: &RawBlock) -> BlockRef {
    let h = &block.header;
    BlockRef {
        offset: block.offset,
        kind: h.kind,
        entry_id: h.entry_id,
        seq: h.seq,
        rows: h.rows,
        raw_len: h.raw_len,
        stored_len: h.stored_len,
    }
}

/// Decodes a META, TOC or TRAILER block's JSON.
pub(crate) fn parse_section<T: serde::de::DeserializeOwned>(
    block: &RawBlock,
    region: Region,
) -> Result<T, ArchiveError> {
    let h = &block.header;
    let json = decode_payload(&block.payload, h.flags, h.raw_len, region, block.offset)?;
    serde_json::from_slice(&json)
        .map_err(|e| ArchiveError::corrupt(region, block.offset, format!("invalid JSON: {e}")))
}

/// Header, META and TOC: the start every reader shares.
pub(crate) struct Prologue {
    pub header: FileHeader,
    pub meta: ArchiveMeta,
    pub toc: Vec<TocEntry>,
    pub blocks: [BlockRef; 2],
    /// Offset just after the TOC block.
    pub end: u64,
}

pub(crate) fn read_prologue<R: Read>(r: &mut R) -> Result<Prologue, ArchiveError> {
    let header = FileHeader::read(r)?;
    let id = header.archive_id;
    let meta_block = read_block(r, HEADER_LEN as u64, &id, Expect::Exactly(Region::Meta))?;
    let meta = parse_section(&meta_block, Region::Meta)?;
    let toc_block = read_block(r, meta_block.end(), &id, Expect::Exactly(Region::Toc))?;
    let toc: Vec<TocEntry> = parse_section(&toc_block, Region::Toc)?;
    check_toc(&toc, toc_block.offset)?;
    Ok(Prologue {
        header,
        meta,
        toc,
        blocks: [block_ref(&meta_block), block_ref(&toc_block)],
        end: toc_block.end(),
    })
}

enum State {
    Reading,
    Done,
    Failed,
}

/// Reads an archive front to back, verifying every block as it goes.
pub struct ArchiveReader<R: Read> {
    r: R,
    pos: u64,
    header: FileHeader,
    meta: ArchiveMeta,
    toc: Vec<TocEntry>,
    data_entries: HashSet<u32>,
    seen: Vec<BlockRef>,
    chunks: HashMap<u32, Vec<ChunkSeen>>,
    seqs_seen: HashSet<(u32, u32)>,
    trailer: Option<Trailer>,
    state: State,
}

impl<R: Read> ArchiveReader<R> {
    /// Reads and verifies the file header, META and TOC.
    pub fn open(mut r: R) -> Result<Self, ArchiveError> {
        let p = read_prologue(&mut r)?;
        Ok(ArchiveReader {
            r,
            pos: p.end,
            header: p.header,
            data_entries: p
                .toc
                .iter()
                .filter(|e| e.copy.is_some())
                .map(|e| e.id)
                .collect(),
            meta: p.meta,
            toc: p.toc,
            seen: p.blocks.to_vec(),
            chunks: HashMap::new(),
            seqs_seen: HashSet::new(),
            trailer: None,
            state: State::Reading,
        })
    }

    pub fn meta(&self) -> &ArchiveMeta {
        &self.meta
    }

    pub fn toc(&self) -> &[TocEntry] {
        &self.toc
    }

    /// The archive's format version as (major, minor).
    pub fn format_version(&self) -> (u16, u16) {
        (self.header.major, self.header.minor)
    }

    /// Present once `next_chunk` has returned `Ok(None)`.
    pub fn trailer(&self) -> Option<&Trailer> {
        self.trailer.as_ref()
    }

    /// Bytes consumed so far; the archive's length once the footer is read.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// The next verified data chunk; `Ok(None)` once the trailer and footer are
    /// read and checked against every block seen. After an error, every call fails.
    pub fn next_chunk(&mut self) -> Result<Option<StoredChunk>, ArchiveError> {
        match self.state {
            State::Done => return Ok(None),
            State::Failed => return Err(ArchiveError::ReaderFailed),
            State::Reading => {}
        }
        let result = self.step();
        self.state = match &result {
            Err(_) => State::Failed,
            Ok(None) => State::Done,
            Ok(Some(_)) => State::Reading,
        };
        result
    }

    fn step(&mut self) -> Result<Option<StoredChunk>, ArchiveError> {
        let id = self.header.archive_id;
        let block = read_block(&mut self.r, self.pos, &id, Expect::DataOrTrailer)?;
        self.pos = block.end();
        if block.header.kind == BlockKind::Trailer {
            self.finish(&block)?;
            return Ok(None);
        }
        let h = block.header;
        let region = h.region();
        if !self.data_entries.contains(&h.entry_id) {
            return Err(ArchiveError::corrupt(
                region,
                block.offset,
                "its entry has no COPY spec in the TOC",
            ));
        }
        if !self.seqs_seen.insert((h.entry_id, h.seq)) {
            return Err(ArchiveError::corrupt(
                region,
                block.offset,
                "sequence number seen twice",
            ));
        }
        self.chunks.entry(h.entry_id).or_default().push(ChunkSeen {
            seq: h.seq,
            rows: h.rows,
            raw_len: h.raw_len,
            stored_len: h.stored_len,
            hash: h.hash,
        });
        self.seen.push(block_ref(&block));
        Ok(Some(StoredChunk::from_block(block)))
    }

    fn finish(&mut self, block: &RawBlock) -> Result<(), ArchiveError> {
        let trailer: Trailer = parse_section(block, Region::Trailer)?;
        check_trailer(&trailer, &self.toc, HEADER_LEN as u64, block.offset)?;
        if trailer.index != self.seen {
            return Err(ArchiveError::corrupt(
                Region::Trailer,
                block.offset,
                "index does not match the blocks read",
            ));
        }
        check_table_hashes(&trailer, std::mem::take(&mut self.chunks), block.offset)?;
        let footer = Footer::read(&mut self.r, self.pos)?;
        let total = self.pos + FOOTER_LEN as u64;
        if footer.trailer_offset != block.offset || footer.total_len != total {
            return Err(ArchiveError::corrupt(
                Region::Footer,
                self.pos,
                format!(
                    "footer says trailer at {} and length {}, found trailer at {} and length {total}",
                    footer.trailer_offset, footer.total_len, block.offset
                ),
            ));
        }
        let mut extra = [0u8; 1];
        let n = read_some(&mut self.r, &mut extra).map_err(|e| {
            ArchiveError::io(format!("reading after the footer at offset {total}"), e)
        })?;
        if n != 0 {
            return Err(ArchiveError::corrupt(
                Region::Footer,
                self.pos,
                "data after the footer",
            ));
        }
        self.pos = total;
        self.trailer = Some(trailer);
        Ok(())
    }
}

fn read_some<R: Read>(r: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match r.read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

/// What [`verify`] checked.
#[derive(Debug, Clone)]
pub struct VerifyReport {
    pub meta: ArchiveMeta,
    pub toc: Vec<TocEntry>,
    pub trailer: Trailer,
    /// Length of the archive.
    pub bytes: u64,
    pub chunks: u64,
    /// Sum of the chunks' decompressed lengths.
    pub raw_bytes: u64,
    pub format_version: (u16, u16),
}

/// Full integrity check without a server: every block hash, every zstd frame
/// decompressed and its length checked, every COPY text chunk's row count
/// checked, index and statistics consistent. Reading and hashing run on the
/// calling thread, decompression on one thread per core; the error reported
/// is the first in file order.
pub fn verify<R: Read>(r: R) -> Result<VerifyReport, ArchiveError> {
    let mut reader = ArchiveReader::open(r)?;
    let text = text_entries(&reader.toc);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (tx, rx) = flume::bounded::<StoredChunk>(2 * threads);
    let stop = AtomicBool::new(false);
    let (read, decoded) = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| scope.spawn(|| check_chunks(&rx, &text, &stop)))
            .collect();
        let mut chunks = 0u64;
        let read = loop {
            match reader.next_chunk() {
                Ok(Some(chunk)) if !stop.load(Ordering::Relaxed) => {
                    chunks += 1;
                    if tx.send(chunk).is_err() {
                        break Ok(chunks);
                    }
                }
                Ok(_) => break Ok(chunks),
                Err(e) => break Err(e),
            }
        };
        drop(tx);
        let decoded: Vec<_> = workers
            .into_iter()
            .map(|w| w.join().expect("chunk checks do not panic"))
            .collect();
        (read, decoded)
    });
    // A worker's error is about a chunk the reader had already passed, so it
    // comes first; among them, the one earliest in the file.
    let mut raw_bytes = 0;
    let mut errors = Vec::new();
    for result in decoded {
        match result {
            Ok(n) => raw_bytes += n,
            Err(e) => errors.push(e),
        }
    }
    if let Some((_, e)) = errors.into_iter().min_by_key(|(at, _)| *at) {
        return Err(e);
    }
    let chunks = read?;
    let trailer = reader
        .trailer
        .take()
        .expect("set when next_chunk returns None");
    Ok(VerifyReport {
        format_version: reader.format_version(),
        bytes: reader.pos,
        meta: reader.meta,
        toc: reader.toc,
        trailer,
        chunks,
        raw_bytes,
    })
}

/// Decompresses and checks chunks until the queue closes or one fails; returns
/// the bytes decoded, or the failing chunk's offset and error.
fn check_chunks(
    chunks: &flume::Receiver<StoredChunk>,
    text: &HashSet<u32>,
    stop: &AtomicBool,
) -> Result<u64, (u64, ArchiveError)> {
    let mut raw_bytes = 0;
    for chunk in chunks.iter() {
        let checked = chunk.decompress().and_then(|data| {
            if text.contains(&chunk.entry_id) {
                check_text_rows(&data, chunk.rows).map_err(|detail| {
                    let region = Region::Chunk {
                        entry_id: chunk.entry_id,
                        seq: chunk.seq,
                    };
                    ArchiveError::corrupt(region, chunk.offset, detail)
                })?;
            }
            Ok(data.len() as u64)
        });
        match checked {
            Ok(n) => raw_bytes += n,
            Err(e) => {
                stop.store(true, Ordering::Relaxed);
                return Err((chunk.offset, e));
            }
        }
    }
    Ok(raw_bytes)
}

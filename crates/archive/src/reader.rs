//! Sequential reading (works on a pipe) and the full integrity check.

use crate::crypto::{BlockCipher, Key, KeyBlock};
use crate::error::{ArchiveError, Region};
use crate::layout::{
    decode_payload, read_block, BlockHeader, Expect, FileHeader, Footer, RawBlock, FOOTER_LEN,
    HEADER_LEN,
};
use crate::model::{ArchiveMeta, BlockKind, BlockRef, TocEntry, Trailer};
use crate::stats::{
    check_table_hashes, check_text_rows, check_toc, check_trailer, text_entries, ChunkSeen,
};
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// One verified DATA block, still compressed (and encrypted, if the archive
/// is): `decompress` it on any thread.
#[derive(Debug, Clone)]
pub struct StoredChunk {
    pub entry_id: u32,
    pub seq: u32,
    pub rows: u64,
    pub raw_len: u32,
    /// Where its block starts in the archive.
    pub offset: u64,
    header: BlockHeader,
    cipher: Option<Arc<BlockCipher>>,
    stored: Vec<u8>,
}

impl StoredChunk {
    pub(crate) fn from_block(block: RawBlock, cipher: Option<&Arc<BlockCipher>>) -> Self {
        let h = block.header;
        StoredChunk {
            entry_id: h.entry_id,
            seq: h.seq,
            rows: h.rows,
            raw_len: h.raw_len,
            offset: block.offset,
            header: h,
            cipher: cipher.cloned(),
            stored: block.payload,
        }
    }

    /// The chunk's COPY text, authenticated and decrypted first if the
    /// archive is encrypted; its length is checked against `raw_len`.
    pub fn decompress(&self) -> Result<Vec<u8>, ArchiveError> {
        let region = Region::Chunk {
            entry_id: self.entry_id,
            seq: self.seq,
        };
        decode(
            &self.header,
            &self.stored,
            self.cipher.as_deref(),
            region,
            self.offset,
        )
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

/// A stored payload decrypted (if the archive is encrypted) and decompressed.
fn decode(
    header: &BlockHeader,
    stored: &[u8],
    cipher: Option<&BlockCipher>,
    region: Region,
    offset: u64,
) -> Result<Vec<u8>, ArchiveError> {
    match cipher {
        None => decode_payload(stored, header.flags, header.raw_len, region, offset),
        Some(cipher) => {
            let plain = cipher.open(header, stored, region, offset)?;
            decode_payload(&plain, header.flags, header.raw_len, region, offset)
        }
    }
}

/// Decodes a META, TOC or TRAILER block's JSON.
pub(crate) fn parse_section<T: serde::de::DeserializeOwned>(
    block: &RawBlock,
    cipher: Option<&BlockCipher>,
    region: Region,
) -> Result<T, ArchiveError> {
    let json = decode(&block.header, &block.payload, cipher, region, block.offset)?;
    serde_json::from_slice(&json)
        .map_err(|e| ArchiveError::corrupt(region, block.offset, format!("invalid JSON: {e}")))
}

/// The nonces of an encrypted archive's blocks, each of which must be unique
/// (FORMAT.md §10.3), with the offset of the block that used it.
#[derive(Debug, Default)]
pub(crate) struct Nonces(HashMap<u64, u64>);

impl Nonces {
    pub fn check(&mut self, block: &RawBlock, region: Region) -> Result<(), ArchiveError> {
        if !block.header.encrypted() {
            return Ok(());
        }
        let counter = block.header.nonce_counter();
        match self.0.insert(counter, block.offset) {
            Some(other) if other != block.offset => Err(ArchiveError::corrupt(
                region,
                block.offset,
                format!("nonce {counter} is also used by the block at offset {other}"),
            )),
            _ => Ok(()),
        }
    }
}

/// The file header and, in an encrypted archive, the KEY block after it.
pub(crate) struct Start {
    pub header: FileHeader,
    key_block: Option<KeyBlock>,
    /// Offset of the META block.
    end: u64,
}

pub(crate) fn read_start<R: Read>(r: &mut R) -> Result<Start, ArchiveError> {
    let header = FileHeader::read(r)?;
    let at = HEADER_LEN as u64;
    if !header.encrypted() {
        return Ok(Start {
            header,
            key_block: None,
            end: at,
        });
    }
    let block = read_block(r, at, &header, Expect::Exactly(Region::Key))?;
    Ok(Start {
        header,
        key_block: Some(KeyBlock::parse(&block.payload, at)?),
        end: block.end(),
    })
}

impl Start {
    /// The archive's block cipher: none for an unencrypted archive read
    /// without a key; an encrypted one needs its right key.
    pub fn unlock(&self, key: Option<&Key>) -> Result<Option<Arc<BlockCipher>>, ArchiveError> {
        match (&self.key_block, key) {
            (None, None) => Ok(None),
            (None, Some(_)) => Err(ArchiveError::NotEncrypted),
            (Some(_), None) => Err(ArchiveError::KeyRequired),
            (Some(kb), Some(key)) => Ok(Some(Arc::new(kb.unlock(key, &self.header.archive_id)?))),
        }
    }
}

/// Header, KEY block, META and TOC: the start every reader shares.
pub(crate) struct Prologue {
    pub header: FileHeader,
    pub cipher: Option<Arc<BlockCipher>>,
    pub meta: ArchiveMeta,
    pub toc: Vec<TocEntry>,
    pub blocks: [BlockRef; 2],
    pub nonces: Nonces,
    /// Offset just after the TOC block.
    pub end: u64,
}

pub(crate) fn read_prologue<R: Read>(
    r: &mut R,
    key: Option<&Key>,
) -> Result<Prologue, ArchiveError> {
    let start = read_start(r)?;
    let cipher = start.unlock(key)?;
    read_sections(r, start, cipher)
}

/// META and TOC, after the start.
fn read_sections<R: Read>(
    r: &mut R,
    start: Start,
    cipher: Option<Arc<BlockCipher>>,
) -> Result<Prologue, ArchiveError> {
    let header = start.header;
    let mut nonces = Nonces::default();
    let meta_block = read_block(r, start.end, &header, Expect::Exactly(Region::Meta))?;
    nonces.check(&meta_block, Region::Meta)?;
    let meta = parse_section(&meta_block, cipher.as_deref(), Region::Meta)?;
    let toc_block = read_block(r, meta_block.end(), &header, Expect::Exactly(Region::Toc))?;
    nonces.check(&toc_block, Region::Toc)?;
    let toc: Vec<TocEntry> = parse_section(&toc_block, cipher.as_deref(), Region::Toc)?;
    check_toc(&toc, toc_block.offset)?;
    Ok(Prologue {
        header,
        cipher,
        meta,
        toc,
        blocks: [block_ref(&meta_block), block_ref(&toc_block)],
        nonces,
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
    cipher: Option<Arc<BlockCipher>>,
    nonces: Nonces,
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
    /// Reads and verifies the file header, META and TOC of an unencrypted
    /// archive; an encrypted one fails with `KeyRequired`.
    pub fn open(r: R) -> Result<Self, ArchiveError> {
        Self::open_with_key(r, None)
    }

    /// Like [`ArchiveReader::open`]; an encrypted archive needs its key
    /// (else `KeyRequired`, or `WrongKey` before any block after the KEY
    /// block is read), and a key given for an unencrypted one fails with
    /// `NotEncrypted`.
    pub fn open_with_key(mut r: R, key: Option<&Key>) -> Result<Self, ArchiveError> {
        let p = read_prologue(&mut r, key)?;
        Ok(Self::from_prologue(r, p))
    }

    fn from_prologue(r: R, p: Prologue) -> Self {
        ArchiveReader {
            r,
            pos: p.end,
            header: p.header,
            cipher: p.cipher,
            nonces: p.nonces,
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
        }
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

    pub fn encrypted(&self) -> bool {
        self.header.encrypted()
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
        let block = read_block(&mut self.r, self.pos, &self.header, Expect::DataOrTrailer)?;
        self.pos = block.end();
        let h = block.header;
        let region = h.region();
        self.nonces.check(&block, region)?;
        if h.kind == BlockKind::Trailer {
            self.finish(&block)?;
            return Ok(None);
        }
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
        Ok(Some(StoredChunk::from_block(block, self.cipher.as_ref())))
    }

    fn finish(&mut self, block: &RawBlock) -> Result<(), ArchiveError> {
        let trailer: Trailer = parse_section(block, self.cipher.as_deref(), Region::Trailer)?;
        check_trailer(&trailer, &self.toc, self.seen[0].offset, block.offset)?;
        if trailer.index != self.seen {
            return Err(ArchiveError::corrupt(
                Region::Trailer,
                block.offset,
                "index does not match the blocks read",
            ));
        }
        check_table_hashes(&trailer, std::mem::take(&mut self.chunks), block.offset)?;
        self.pos = read_footer(&mut self.r, self.pos, block.offset)?;
        self.trailer = Some(trailer);
        Ok(())
    }
}

/// Reads the footer at `at`, which must point at the trailer and give the
/// archive's exact length, and checks the input ends there; returns that length.
fn read_footer<R: Read>(r: &mut R, at: u64, trailer_offset: u64) -> Result<u64, ArchiveError> {
    let footer = Footer::read(r, at)?;
    let total = at + FOOTER_LEN as u64;
    if footer.trailer_offset != trailer_offset || footer.total_len != total {
        return Err(ArchiveError::corrupt(
            Region::Footer,
            at,
            format!(
                "footer says trailer at {} and length {}, found trailer at {trailer_offset} and length {total}",
                footer.trailer_offset, footer.total_len
            ),
        ));
    }
    let mut extra = [0u8; 1];
    let n = read_some(r, &mut extra)
        .map_err(|e| ArchiveError::io(format!("reading after the footer at offset {total}"), e))?;
    if n != 0 {
        return Err(ArchiveError::corrupt(
            Region::Footer,
            at,
            "data after the footer",
        ));
    }
    Ok(total)
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
    /// Length of the archive.
    pub bytes: u64,
    pub chunks: u64,
    /// Sum of the chunks' decompressed lengths (as their headers say when
    /// the contents could not be checked).
    pub raw_bytes: u64,
    pub format_version: (u16, u16),
    pub encrypted: bool,
    /// What the contents checks read. `None` when the archive is encrypted
    /// and no key was given: then its structure and every block's checksum
    /// were verified, but none of its contents (FORMAT.md §11.3).
    pub contents: Option<VerifiedContents>,
}

/// The sections of an archive whose contents were fully verified.
#[derive(Debug, Clone)]
pub struct VerifiedContents {
    pub meta: ArchiveMeta,
    pub toc: Vec<TocEntry>,
    pub trailer: Trailer,
}

/// [`verify_with_key`] without a key: a full check of an unencrypted archive;
/// an encrypted one gets the checks possible without its key.
pub fn verify<R: Read>(r: R) -> Result<VerifyReport, ArchiveError> {
    verify_with_key(r, None)
}

/// Full integrity check without a server: every block hash, every block
/// authenticated and decrypted (if encrypted), every zstd frame decompressed
/// and its length checked, every COPY text chunk's row count checked, index
/// and statistics consistent. Reading and hashing run on the calling thread,
/// decryption and decompression on one thread per core; the error reported
/// is the first in file order. An encrypted archive without `key` gets only
/// the checks that need no key (`contents` is `None` in the report); a key
/// for an unencrypted archive fails with `NotEncrypted`.
pub fn verify_with_key<R: Read>(mut r: R, key: Option<&Key>) -> Result<VerifyReport, ArchiveError> {
    let start = read_start(&mut r)?;
    if start.key_block.is_some() && key.is_none() {
        return verify_sealed(r, start);
    }
    let cipher = start.unlock(key)?;
    let prologue = read_sections(&mut r, start, cipher)?;
    let mut reader = ArchiveReader::from_prologue(r, prologue);
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
        encrypted: reader.encrypted(),
        bytes: reader.pos,
        chunks,
        raw_bytes,
        contents: Some(VerifiedContents {
            meta: reader.meta,
            toc: reader.toc,
            trailer,
        }),
    })
}

/// What can be checked of an encrypted archive without its key: every
/// block's header and hash, their order, unique chunk numbers and nonces, and
/// the footer (FORMAT.md §11.3).
fn verify_sealed<R: Read>(mut r: R, start: Start) -> Result<VerifyReport, ArchiveError> {
    let header = start.header;
    let mut nonces = Nonces::default();
    let mut pos = start.end;
    for region in [Region::Meta, Region::Toc] {
        let block = read_block(&mut r, pos, &header, Expect::Exactly(region))?;
        nonces.check(&block, region)?;
        pos = block.end();
    }
    let mut seqs = HashSet::new();
    let (mut chunks, mut raw_bytes) = (0u64, 0u64);
    let trailer_offset = loop {
        let block = read_block(&mut r, pos, &header, Expect::DataOrTrailer)?;
        let (h, region) = (block.header, block.header.region());
        nonces.check(&block, region)?;
        pos = block.end();
        if h.kind == BlockKind::Trailer {
            break block.offset;
        }
        if !seqs.insert((h.entry_id, h.seq)) {
            return Err(ArchiveError::corrupt(
                region,
                block.offset,
                "sequence number seen twice",
            ));
        }
        chunks += 1;
        raw_bytes += u64::from(h.raw_len);
    };
    Ok(VerifyReport {
        bytes: read_footer(&mut r, pos, trailer_offset)?,
        chunks,
        raw_bytes,
        format_version: (header.major, header.minor),
        encrypted: true,
        contents: None,
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

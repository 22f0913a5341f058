//! Byte layout of the fixed-size parts: file header, block header, footer.
//! docs/FORMAT.md is the specification; keep the two in step.

use crate::crypto::{MAX_KEY_BLOCK_BYTES, TAG_LEN};
use crate::error::{ArchiveError, Region};
use crate::model::BlockKind;
use sha2::{Digest, Sha256};
use std::io::{self, Read};

pub const FORMAT_MAJOR: u16 = 1;
pub const FORMAT_MINOR: u16 = 1;

pub const FILE_MAGIC: [u8; 8] = *b"PGARK\0\r\n";
pub const BLOCK_MAGIC: [u8; 4] = *b"PGAB";
pub const FOOTER_MAGIC: [u8; 8] = *b"PGARKEND";

pub const HEADER_LEN: usize = 64;
pub const BLOCK_HEADER_LEN: usize = 80;
pub const FOOTER_LEN: usize = 56;
/// Bytes of the block header covered by its hash (everything before the hash).
const BLOCK_HASHED_LEN: usize = 48;

/// Largest raw or stored size of one DATA block.
pub const MAX_CHUNK_BYTES: usize = 1 << 30;
/// Largest raw or stored size of a META, TOC or TRAILER block.
pub const MAX_SECTION_BYTES: usize = 1 << 30;

pub const HEADER_FLAG_ENCRYPTED: u32 = 1;
pub const BLOCK_FLAG_ZSTD: u8 = 1;
pub const BLOCK_FLAG_ENCRYPTED: u8 = 2;

pub type Hash = [u8; 32];

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

pub fn kind_code(kind: BlockKind) -> u8 {
    match kind {
        BlockKind::Meta => 1,
        BlockKind::Toc => 2,
        BlockKind::Data => 3,
        BlockKind::Trailer => 4,
        BlockKind::Key => 5,
    }
}

fn kind_from_code(code: u8) -> Option<BlockKind> {
    Some(match code {
        1 => BlockKind::Meta,
        2 => BlockKind::Toc,
        3 => BlockKind::Data,
        4 => BlockKind::Trailer,
        5 => BlockKind::Key,
        _ => return None,
    })
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Reads exactly `buf.len()` bytes; a short read is a truncation of `region`.
pub fn read_exact_or_truncated<R: Read>(
    r: &mut R,
    buf: &mut [u8],
    region: Region,
    offset: u64,
) -> Result<(), ArchiveError> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => {
                return Err(ArchiveError::Truncated {
                    region,
                    offset,
                    at: offset + filled as u64,
                })
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(ArchiveError::io(
                    format!("reading {region} at offset {}", offset + filled as u64),
                    e,
                ))
            }
        }
    }
    Ok(())
}

/// Reads `len` bytes, growing the buffer only as bytes arrive, so a damaged
/// length cannot make the reader allocate more than the input holds.
pub fn read_payload<R: Read>(
    r: &mut R,
    len: usize,
    region: Region,
    block_offset: u64,
) -> Result<Vec<u8>, ArchiveError> {
    let start = block_offset + BLOCK_HEADER_LEN as u64;
    let mut buf = Vec::with_capacity(len.min(1 << 20));
    r.take(len as u64)
        .read_to_end(&mut buf)
        .map_err(|e| ArchiveError::io(format!("reading {region} at offset {start}"), e))?;
    if buf.len() < len {
        return Err(ArchiveError::Truncated {
            region,
            offset: block_offset,
            at: start + buf.len() as u64,
        });
    }
    Ok(buf)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileHeader {
    pub major: u16,
    pub minor: u16,
    pub flags: u32,
    pub archive_id: [u8; 16],
}

impl FileHeader {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(&FILE_MAGIC);
        b[8..10].copy_from_slice(&self.major.to_le_bytes());
        b[10..12].copy_from_slice(&self.minor.to_le_bytes());
        b[12..16].copy_from_slice(&self.flags.to_le_bytes());
        b[16..32].copy_from_slice(&self.archive_id);
        let hash = Sha256::digest(&b[0..32]);
        b[32..64].copy_from_slice(&hash);
        b
    }

    /// Reads and checks the file header: magic, then hash, then version and flags.
    pub fn read<R: Read>(r: &mut R) -> Result<Self, ArchiveError> {
        let mut b = [0u8; HEADER_LEN];
        let mut got = 0;
        while got < HEADER_LEN {
            match r.read(&mut b[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ArchiveError::io("reading the file header", e)),
            }
        }
        let magic_len = got.min(FILE_MAGIC.len());
        if b[..magic_len] != FILE_MAGIC[..magic_len] {
            return Err(ArchiveError::NotAnArchive);
        }
        if got < HEADER_LEN {
            return Err(ArchiveError::Truncated {
                region: Region::Header,
                offset: 0,
                at: got as u64,
            });
        }
        if Sha256::digest(&b[0..32])[..] != b[32..64] {
            return Err(ArchiveError::corrupt(Region::Header, 0, "sha256 mismatch"));
        }
        let header = FileHeader {
            major: u16_at(&b, 8),
            minor: u16_at(&b, 10),
            flags: u32_at(&b, 12),
            archive_id: b[16..32].try_into().expect("16 bytes"),
        };
        if header.major > FORMAT_MAJOR {
            return Err(ArchiveError::UnsupportedVersion {
                major: header.major,
                minor: header.minor,
                max: FORMAT_MAJOR,
            });
        }
        if header.major == 0 {
            return Err(ArchiveError::corrupt(
                Region::Header,
                8,
                "format major version 0 does not exist",
            ));
        }
        if header.flags & !HEADER_FLAG_ENCRYPTED != 0 {
            return Err(ArchiveError::corrupt(
                Region::Header,
                12,
                format!("unknown flags {:#x}", header.flags),
            ));
        }
        Ok(header)
    }

    pub fn encrypted(&self) -> bool {
        self.flags & HEADER_FLAG_ENCRYPTED != 0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockHeader {
    pub kind: BlockKind,
    pub flags: u8,
    pub entry_id: u32,
    pub seq: u32,
    pub raw_len: u32,
    pub stored_len: u32,
    pub rows: u64,
    /// AES-GCM nonce of an encrypted block: 4 zero bytes ‖ u64 LE counter.
    pub nonce: [u8; 12],
    pub hash: Hash,
}

impl BlockHeader {
    pub fn encode(&self) -> [u8; BLOCK_HEADER_LEN] {
        let mut b = [0u8; BLOCK_HEADER_LEN];
        b[0..4].copy_from_slice(&BLOCK_MAGIC);
        b[4] = kind_code(self.kind);
        b[5] = self.flags;
        b[8..12].copy_from_slice(&self.entry_id.to_le_bytes());
        b[12..16].copy_from_slice(&self.seq.to_le_bytes());
        b[16..20].copy_from_slice(&self.raw_len.to_le_bytes());
        b[20..24].copy_from_slice(&self.stored_len.to_le_bytes());
        b[24..32].copy_from_slice(&self.rows.to_le_bytes());
        b[32..44].copy_from_slice(&self.nonce);
        b[48..80].copy_from_slice(&self.hash);
        b
    }

    /// Encodes the header and fills in the hash over archive id, header and payload.
    pub fn seal(&mut self, archive_id: &[u8; 16], payload: &[u8]) -> [u8; BLOCK_HEADER_LEN] {
        let mut b = self.encode();
        self.hash = block_hash(archive_id, &b[..BLOCK_HASHED_LEN], payload);
        b[48..80].copy_from_slice(&self.hash);
        b
    }

    pub fn encrypted(&self) -> bool {
        self.flags & BLOCK_FLAG_ENCRYPTED != 0
    }

    pub fn nonce_counter(&self) -> u64 {
        u64_at(&self.nonce, 4)
    }

    pub fn region(&self) -> Region {
        match self.kind {
            BlockKind::Meta => Region::Meta,
            BlockKind::Toc => Region::Toc,
            BlockKind::Data => Region::Chunk {
                entry_id: self.entry_id,
                seq: self.seq,
            },
            BlockKind::Trailer => Region::Trailer,
            BlockKind::Key => Region::Key,
        }
    }
}

/// The nonce of the block with this counter (FORMAT.md §10.3).
pub fn nonce(counter: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&counter.to_le_bytes());
    n
}

pub fn block_hash(archive_id: &[u8; 16], header: &[u8], payload: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update(archive_id);
    h.update(header);
    h.update(payload);
    h.finalize().into()
}

/// A block read from the input with its hash verified.
pub struct RawBlock {
    pub header: BlockHeader,
    pub offset: u64,
    pub payload: Vec<u8>,
}

impl RawBlock {
    pub fn end(&self) -> u64 {
        self.offset + BLOCK_HEADER_LEN as u64 + self.payload.len() as u64
    }
}

/// What the caller knows about the block it is about to read, used to name it
/// in errors before (and even if) its own header can be trusted.
#[derive(Debug, Clone, Copy)]
pub enum Expect {
    Exactly(Region),
    /// After the TOC: a DATA or the TRAILER block.
    DataOrTrailer,
}

/// Reads one block at `offset` of the archive with this file header: header
/// checks, bounded payload read, hash check.
pub fn read_block<R: Read>(
    r: &mut R,
    offset: u64,
    file: &FileHeader,
    expect: Expect,
) -> Result<RawBlock, ArchiveError> {
    let guess = match expect {
        Expect::Exactly(region) => region,
        Expect::DataOrTrailer => Region::Block,
    };
    let mut b = [0u8; BLOCK_HEADER_LEN];
    read_exact_or_truncated(r, &mut b, guess, offset)?;
    let header = parse_block_header(&b, offset, expect, file.encrypted())?;
    let region = match expect {
        Expect::Exactly(region) => region,
        Expect::DataOrTrailer => header.region(),
    };
    let payload = read_payload(r, header.stored_len as usize, region, offset)?;
    if block_hash(&file.archive_id, &b[..BLOCK_HASHED_LEN], &payload) != header.hash {
        return Err(ArchiveError::corrupt(region, offset, "sha256 mismatch"));
    }
    Ok(RawBlock {
        header,
        offset,
        payload,
    })
}

/// Checks everything about a block header that can be checked before its
/// payload is read, lengths above all, so a damaged length fails here.
fn parse_block_header(
    b: &[u8; BLOCK_HEADER_LEN],
    offset: u64,
    expect: Expect,
    archive_encrypted: bool,
) -> Result<BlockHeader, ArchiveError> {
    let guess = match expect {
        Expect::Exactly(region) => region,
        Expect::DataOrTrailer => Region::Block,
    };
    let bad = |detail: String| ArchiveError::corrupt(guess, offset, detail);
    if b[0..4] != BLOCK_MAGIC {
        return Err(bad("no block magic".into()));
    }
    let kind = kind_from_code(b[4]).ok_or_else(|| bad(format!("unknown block kind {}", b[4])))?;
    let header = BlockHeader {
        kind,
        flags: b[5],
        entry_id: u32_at(b, 8),
        seq: u32_at(b, 12),
        raw_len: u32_at(b, 16),
        stored_len: u32_at(b, 20),
        rows: u64_at(b, 24),
        nonce: b[32..44].try_into().expect("12 bytes"),
        hash: b[48..80].try_into().expect("32 bytes"),
    };
    let region = match expect {
        Expect::Exactly(region) => region,
        Expect::DataOrTrailer if matches!(kind, BlockKind::Data | BlockKind::Trailer) => {
            header.region()
        }
        Expect::DataOrTrailer => Region::Block,
    };
    let bad = |detail: String| ArchiveError::corrupt(region, offset, detail);
    let expected_kind = match expect {
        Expect::Exactly(Region::Key) => Some(BlockKind::Key),
        Expect::Exactly(Region::Meta) => Some(BlockKind::Meta),
        Expect::Exactly(Region::Toc) => Some(BlockKind::Toc),
        Expect::Exactly(Region::Trailer) => Some(BlockKind::Trailer),
        Expect::Exactly(Region::Chunk { .. }) => Some(BlockKind::Data),
        _ => None,
    };
    match expected_kind {
        Some(k) if k != kind => return Err(bad(format!("found a {kind:?} block here"))),
        None if !matches!(kind, BlockKind::Data | BlockKind::Trailer) => {
            return Err(bad(format!("unexpected {kind:?} block after the TOC")))
        }
        _ => {}
    }
    check_flags(&header, archive_encrypted).map_err(bad)?;
    if b[6..8] != [0, 0] || b[44..48] != [0; 4] {
        return Err(bad("reserved bytes are not zero".into()));
    }
    // An encrypted block's nonce is 4 zero bytes and its counter; any other
    // block's nonce is all zero.
    let (tag, nonce_zeros) = match header.encrypted() {
        true => (TAG_LEN, &header.nonce[..4]),
        false => (0, &header.nonce[..]),
    };
    if nonce_zeros.iter().any(|&x| x != 0) {
        return Err(bad("nonce bytes are not zero where they must be".into()));
    }
    let limit = match kind {
        BlockKind::Data => MAX_CHUNK_BYTES,
        BlockKind::Key => MAX_KEY_BLOCK_BYTES,
        _ => MAX_SECTION_BYTES,
    };
    for (name, len, max) in [
        ("raw", header.raw_len, limit),
        ("stored", header.stored_len, limit + tag),
    ] {
        if len as usize > max {
            return Err(bad(format!(
                "{name} length {len} exceeds the limit of {max}"
            )));
        }
    }
    let encoded_len = (header.stored_len as usize)
        .checked_sub(tag)
        .ok_or_else(|| bad("encrypted block shorter than its tag".into()))?;
    if header.flags & BLOCK_FLAG_ZSTD == 0 && header.raw_len as usize != encoded_len {
        return Err(bad(format!(
            "uncompressed block with raw length {} and stored length {}",
            header.raw_len, header.stored_len
        )));
    }
    if kind != BlockKind::Data && (header.entry_id, header.seq, header.rows) != (0, 0, 0) {
        return Err(bad(
            "entry id, seq and rows must be 0 outside DATA blocks".into()
        ));
    }
    Ok(header)
}

/// In an encrypted archive every block but the KEY block is encrypted; in
/// another, none is; the KEY block is neither compressed nor encrypted.
fn check_flags(header: &BlockHeader, archive_encrypted: bool) -> Result<(), String> {
    if header.flags & !(BLOCK_FLAG_ZSTD | BLOCK_FLAG_ENCRYPTED) != 0 {
        return Err(format!("unknown block flags {:#x}", header.flags));
    }
    if header.kind == BlockKind::Key {
        return match header.flags {
            0 => Ok(()),
            _ => Err("KEY block marked compressed or encrypted".into()),
        };
    }
    match (header.encrypted(), archive_encrypted) {
        (true, false) => Err("encrypted block in an unencrypted archive".into()),
        (false, true) => Err("unencrypted block in an encrypted archive".into()),
        _ => Ok(()),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footer {
    pub trailer_offset: u64,
    pub total_len: u64,
}

impl Footer {
    pub fn encode(&self) -> [u8; FOOTER_LEN] {
        let mut b = [0u8; FOOTER_LEN];
        b[0..8].copy_from_slice(&FOOTER_MAGIC);
        b[8..16].copy_from_slice(&self.trailer_offset.to_le_bytes());
        b[16..24].copy_from_slice(&self.total_len.to_le_bytes());
        let hash = Sha256::digest(&b[0..24]);
        b[24..56].copy_from_slice(&hash);
        b
    }

    /// Reads the footer at `offset` and checks its magic and hash.
    pub fn read<R: Read>(r: &mut R, offset: u64) -> Result<Self, ArchiveError> {
        let mut b = [0u8; FOOTER_LEN];
        read_exact_or_truncated(r, &mut b, Region::Footer, offset)?;
        let bad = |detail: &str| ArchiveError::corrupt(Region::Footer, offset, detail);
        if b[0..8] != FOOTER_MAGIC {
            return Err(bad("no footer magic"));
        }
        if Sha256::digest(&b[0..24])[..] != b[24..56] {
            return Err(bad("sha256 mismatch"));
        }
        Ok(Footer {
            trailer_offset: u64_at(&b, 8),
            total_len: u64_at(&b, 16),
        })
    }
}

thread_local! {
    /// One decompression context per thread, reused: creating one per chunk
    /// costs more than decompressing a small chunk.
    static DCTX: std::cell::RefCell<zstd::zstd_safe::DCtx<'static>> =
        std::cell::RefCell::new(zstd::zstd_safe::DCtx::create());
}

/// Decodes a payload: zstd frame (content size must equal `raw_len`) or raw bytes.
pub fn decode_payload(
    payload: &[u8],
    flags: u8,
    raw_len: u32,
    region: Region,
    offset: u64,
) -> Result<Vec<u8>, ArchiveError> {
    if flags & BLOCK_FLAG_ZSTD == 0 {
        return Ok(payload.to_vec());
    }
    let bad = |detail: String| ArchiveError::corrupt(region, offset, detail);
    // The frame must announce its size, and it must be the header's raw length,
    // before any output buffer is allocated.
    match zstd::zstd_safe::get_frame_content_size(payload) {
        Ok(Some(n)) if n == u64::from(raw_len) => {}
        Ok(Some(n)) => {
            return Err(bad(format!(
                "zstd frame holds {n} bytes, header says {raw_len}"
            )))
        }
        _ => {
            return Err(bad(
                "zstd frame header unreadable or without content size".into()
            ))
        }
    }
    let mut out = Vec::with_capacity(raw_len as usize);
    let written = DCTX
        .with(|dctx| dctx.borrow_mut().decompress(&mut out, payload))
        .map_err(|code| bad(format!("zstd: {}", zstd::zstd_safe::get_error_name(code))))?;
    if written != raw_len as usize {
        return Err(bad(format!(
            "decompressed to {written} bytes, header says {raw_len}"
        )));
    }
    Ok(out)
}

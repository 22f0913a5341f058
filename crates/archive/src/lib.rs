//! The pgark archive format (see `docs/FORMAT.md`).
//!
//! Writing is one pass with no seeking, so an archive can go to a pipe.
//! Reading works sequentially from a pipe ([`ArchiveReader`]) or with random
//! access through the trailer's index when the input is seekable
//! ([`IndexedArchive`]). Compression, encryption (optional, with a [`Key`])
//! and hashing of data chunks run on a pool of threads owned by the
//! [`ArchiveWriter`].

mod crypto;
mod error;
mod indexed;
mod layout;
mod model;
mod reader;
mod row_digest;
mod stats;
mod writer;

#[cfg(test)]
mod compat_tests;

pub use crypto::Key;
pub use error::{ArchiveError, Region};
pub use indexed::IndexedArchive;
pub use layout::{FORMAT_MAJOR, FORMAT_MINOR, MAX_CHUNK_BYTES};
pub use model::*;
pub use reader::{
    verify, verify_with_key, ArchiveReader, StoredChunk, VerifiedContents, VerifyReport,
};
pub use row_digest::RowDigest;
pub use writer::{ArchiveWriter, ChunkSender, WriterOptions};

/// A good chunk size for producers: large enough that per-chunk costs vanish,
/// small enough to keep memory low and spread work across threads.
pub const RECOMMENDED_CHUNK_BYTES: usize = 1 << 20;

//! The pgark archive format (see `docs/FORMAT.md`).
//!
//! Writing is one pass with no seeking, so an archive can go to a pipe.
//! Reading works sequentially from a pipe ([`ArchiveReader`]) or with random
//! access through the trailer's index when the input is seekable
//! ([`IndexedArchive`]). Compression and hashing of data chunks run on a pool
//! of threads owned by the [`ArchiveWriter`].

mod model;

pub use model::*;

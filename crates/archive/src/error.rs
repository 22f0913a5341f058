use std::fmt;

/// The part of an archive an error is about, as named in error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Region {
    Header,
    /// The clear KEY block of an encrypted archive.
    Key,
    Meta,
    Toc,
    /// A DATA block; entry and sequence number as its (possibly damaged) header says.
    Chunk {
        entry_id: u32,
        seq: u32,
    },
    /// A block whose kind is not known yet (its header could not be read or trusted).
    Block,
    Trailer,
    Footer,
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Region::Header => f.write_str("file header"),
            Region::Key => f.write_str("KEY block"),
            Region::Meta => f.write_str("META"),
            Region::Toc => f.write_str("TOC"),
            Region::Chunk { entry_id, seq } => write!(f, "data chunk {seq} of entry {entry_id}"),
            Region::Block => f.write_str("block"),
            Region::Trailer => f.write_str("trailer"),
            Region::Footer => f.write_str("footer"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("not a pgark archive (no pgark magic at offset 0)")]
    NotAnArchive,
    #[error("archive format {major}.{minor} is newer than this pgark supports (max {max}.x)")]
    UnsupportedVersion { major: u16, minor: u16, max: u16 },
    #[error("{region} at offset {offset} uses {feature}, which this pgark does not support")]
    UnsupportedFeature {
        region: Region,
        offset: u64,
        feature: String,
    },
    #[error("corrupt archive: {region} at offset {offset}: {detail}")]
    Corrupt {
        region: Region,
        offset: u64,
        detail: String,
    },
    /// `offset` is where the region starts, `at` where the input ended.
    #[error(
        "truncated archive: input ends at offset {at}, inside {region} starting at offset {offset}"
    )]
    Truncated {
        region: Region,
        offset: u64,
        at: u64,
    },
    #[error("archive writer has stopped (an earlier write failed, or it was finished)")]
    WriterClosed,
    #[error("invalid use of the archive writer: {0}")]
    Usage(String),
    #[error("this archive reader already failed; reopen the archive")]
    ReaderFailed,
    #[error("key file {path}: {detail}")]
    KeyFile { path: String, detail: String },
    #[error("the passphrase is empty")]
    EmptyPassphrase,
    #[error("the archive is encrypted: give its key (--key-file or --passphrase-env)")]
    KeyRequired,
    /// Found from the KEY block's key check, before anything else is read.
    #[error("wrong key: {detail}")]
    WrongKey { detail: String },
    /// A key was given for an archive without encryption. Refused: anyone can
    /// write an unencrypted archive, so accepting one would let a substitute
    /// pass for the encrypted backup that was expected.
    #[error("the archive is not encrypted, but a key was given (refusing a possibly substituted archive)")]
    NotEncrypted,
}

impl ArchiveError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        ArchiveError::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn corrupt(region: Region, offset: u64, detail: impl Into<String>) -> Self {
        ArchiveError::Corrupt {
            region,
            offset,
            detail: detail.into(),
        }
    }

    /// The region named by a corruption, truncation or feature error.
    pub fn region(&self) -> Option<Region> {
        match self {
            ArchiveError::Corrupt { region, .. }
            | ArchiveError::Truncated { region, .. }
            | ArchiveError::UnsupportedFeature { region, .. } => Some(*region),
            ArchiveError::NotAnArchive | ArchiveError::UnsupportedVersion { .. } => {
                Some(Region::Header)
            }
            _ => None,
        }
    }
}

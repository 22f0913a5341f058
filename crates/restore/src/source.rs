//! An archive file opened for restoring: seekable, so any table's chunks can
//! be read directly and by several workers at once.

use crate::RestoreError;
use pgark_archive::{ArchiveMeta, BlockRef, IndexedArchive, StoredChunk, TocEntry, Trailer};
use pgark_catalog::quote_ident;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Cheap to clone: workers share one parsed index and open their own file handles.
#[derive(Clone)]
pub struct Source {
    path: PathBuf,
    index: Arc<IndexedArchive<File>>,
}

impl Source {
    /// Opens and checks the archive's header, metadata, TOC, trailer and footer.
    pub fn open(path: &Path) -> Result<Source, RestoreError> {
        Source::open_with_key(path, None)
    }

    /// Opens an encrypted archive (the key is checked before anything else
    /// is read); `None` works for unencrypted archives.
    pub fn open_with_key(
        path: &Path,
        key: Option<&pgark_archive::Key>,
    ) -> Result<Source, RestoreError> {
        let file = File::open(path).map_err(|e| {
            RestoreError::Io(format!("cannot open archive {}: {e}", path.display()))
        })?;
        let index =
            IndexedArchive::open_with_key(file, key).map_err(|source| RestoreError::Archive {
                path: path.display().to_string(),
                source,
            })?;
        check_names(path, index.toc())?;
        Ok(Source {
            path: path.to_path_buf(),
            index: Arc::new(index),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn meta(&self) -> &ArchiveMeta {
        self.index.meta()
    }

    pub fn toc(&self) -> &[TocEntry] {
        self.index.toc()
    }

    pub fn trailer(&self) -> &Trailer {
        self.index.trailer()
    }

    pub(crate) fn chunks_of(&self, entry_id: u32) -> Vec<BlockRef> {
        self.index.chunks_of(entry_id)
    }

    /// A handle for one worker; chunks are read through it with [`Source::read`].
    pub(crate) fn handle(&self) -> Result<File, RestoreError> {
        File::open(&self.path).map_err(|e| {
            RestoreError::Io(format!("cannot open archive {}: {e}", self.path.display()))
        })
    }

    pub(crate) fn read(&self, file: &mut File, at: &BlockRef) -> Result<StoredChunk, RestoreError> {
        self.index
            .read_chunk_from(file, at)
            .map_err(|e| self.archive_error(e))
    }

    pub(crate) fn archive_error(&self, source: pgark_archive::ArchiveError) -> RestoreError {
        RestoreError::Archive {
            path: self.path.display().to_string(),
            source,
        }
    }

    /// Checks the stored bytes of every chunk of these entries against their
    /// checksums, so a damaged archive is refused before the target changes.
    pub(crate) fn verify_chunks(&self, entries: &[u32]) -> Result<(), RestoreError> {
        let mut file = self.handle()?;
        for id in entries {
            for at in self.chunks_of(*id) {
                self.read(&mut file, &at)?;
            }
        }
        Ok(())
    }
}

/// The table name of a data entry is put into COPY statements as it stands,
/// so it must be exactly the quoted form of the entry's schema and name:
/// a crafted archive cannot smuggle SQL in through it.
fn check_names(path: &Path, toc: &[TocEntry]) -> Result<(), RestoreError> {
    for e in toc {
        let Some(copy) = &e.copy else { continue };
        let expected = match &e.schema {
            Some(s) => format!("{}.{}", quote_ident(s), quote_ident(&e.name)),
            None => String::new(),
        };
        if copy.qualified_table != expected {
            return Err(RestoreError::Refused(format!(
                "archive {}: TOC entry {} names table {} but is for {}; refusing a damaged or crafted archive",
                path.display(),
                e.id,
                copy.qualified_table,
                expected
            )));
        }
    }
    Ok(())
}

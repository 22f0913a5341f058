//! Looking at an archive: list its contents, verify it without a server, and
//! prove it restores.

use crate::{ConnParams, Error};
use pgark_archive::{
    ArchiveMeta, ArchiveReader, IndexedArchive, Key, TocEntry, Trailer, VerifyReport,
};
use pgark_restore::{RestoreOptions, Source, TableCheck};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

/// The metadata and table of contents of an archive.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Listing {
    pub archive_bytes: u64,
    pub meta: ArchiveMeta,
    pub toc: Vec<TocEntry>,
    pub trailer: Trailer,
}

fn archive_error(path: &Path, source: pgark_archive::ArchiveError) -> Error {
    Error::Archive {
        path: path.display().to_string(),
        source,
    }
}

fn open_file(path: &Path) -> Result<File, Error> {
    File::open(path).map_err(|e| Error::Output {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

/// Reads an archive's metadata and TOC: through the index when the file is
/// seekable, else by reading it through (a pipe, `-` for stdin).
pub fn list(path: &Path) -> Result<Listing, Error> {
    list_with_key(path, None)
}

/// [`list`] for an encrypted archive (its metadata is encrypted too).
pub fn list_with_key(path: &Path, key: Option<&Key>) -> Result<Listing, Error> {
    if path == Path::new("-") {
        return list_stream(std::io::stdin().lock(), path, key);
    }
    let file = open_file(path)?;
    let archive_bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    if !file.metadata().map(|m| m.is_file()).unwrap_or(false) {
        return list_stream(file, path, key);
    }
    let a = IndexedArchive::open_with_key(file, key).map_err(|e| archive_error(path, e))?;
    Ok(Listing {
        archive_bytes,
        meta: a.meta().clone(),
        toc: a.toc().to_vec(),
        trailer: a.trailer().clone(),
    })
}

fn list_stream(r: impl Read, path: &Path, key: Option<&Key>) -> Result<Listing, Error> {
    let mut reader = ArchiveReader::open_with_key(BufReader::with_capacity(1 << 20, r), key)
        .map_err(|e| archive_error(path, e))?;
    while reader
        .next_chunk()
        .map_err(|e| archive_error(path, e))?
        .is_some()
    {}
    Ok(Listing {
        archive_bytes: reader.position(),
        meta: reader.meta().clone(),
        toc: reader.toc().to_vec(),
        trailer: reader.trailer().cloned().unwrap_or_default(),
    })
}

/// Checks every checksum and the structure of an archive, without a server.
/// `-` reads standard input.
pub fn verify(path: impl AsRef<Path>) -> Result<VerifyReport, Error> {
    verify_with_key(path, None)
}

/// [`verify`] with the key of an encrypted archive: every block is also
/// decrypted and decompressed. Without it, an encrypted archive's structure
/// and checksums are still verified.
pub fn verify_with_key(path: impl AsRef<Path>, key: Option<&Key>) -> Result<VerifyReport, Error> {
    let path = path.as_ref();
    let result = if path == Path::new("-") {
        pgark_archive::verify_with_key(
            BufReader::with_capacity(1 << 20, std::io::stdin().lock()),
            key,
        )
    } else {
        pgark_archive::verify_with_key(BufReader::with_capacity(1 << 20, open_file(path)?), key)
    };
    result.map_err(|e| archive_error(path, e))
}

/// Restores the archive into a temporary database on `server`, compares every
/// table's row count and row digest with the archive, and drops the database.
pub async fn restore_test(
    server: &ConnParams,
    archive: impl AsRef<Path>,
    jobs: usize,
) -> Result<Vec<TableCheck>, Error> {
    restore_test_with_key(server, archive, jobs, None).await
}

/// [`restore_test`] of an encrypted archive.
pub async fn restore_test_with_key(
    server: &ConnParams,
    archive: impl AsRef<Path>,
    jobs: usize,
    key: Option<&Key>,
) -> Result<Vec<TableCheck>, Error> {
    let source = Source::open_with_key(archive.as_ref(), key)?;
    // Unique within the process too: several tests may run at once.
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let name = format!(
        "pgark_verify_{}_{}_{}",
        std::process::id(),
        chrono::Utc::now().timestamp_micros(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    pgark_restore::create_database(server, &source, Some(&name)).await?;
    let target = server.with_dbname(&name);
    let opts = RestoreOptions {
        jobs,
        no_owner: true,
        ..RestoreOptions::default()
    };
    let result = async {
        pgark_restore::restore(&target, &source, &opts).await?;
        Ok::<_, Error>(pgark_restore::compare(&target, &source).await?)
    }
    .await;
    let admin = pgark_conn::connect_session(server, pgark_conn::Purpose::Restore).await?;
    let drop = format!(
        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
        pgark_catalog::quote_ident(&name)
    );
    admin
        .batch_execute(&drop)
        .await
        .map_err(|e| Error::server(format!("dropping {name}"), &e))?;
    result
}

/// Compares the live database `params` names with the archive: per table,
/// row count and row digest. All `ok()` means the data is what was backed up.
pub async fn compare(
    params: &ConnParams,
    archive: impl AsRef<Path>,
) -> Result<Vec<TableCheck>, Error> {
    compare_with_key(params, archive, None).await
}

/// [`compare`] against an encrypted archive.
pub async fn compare_with_key(
    params: &ConnParams,
    archive: impl AsRef<Path>,
    key: Option<&Key>,
) -> Result<Vec<TableCheck>, Error> {
    let source = Source::open_with_key(archive.as_ref(), key)?;
    Ok(pgark_restore::compare(params, &source).await?)
}

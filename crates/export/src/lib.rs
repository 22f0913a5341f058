//! Consistent, parallel export of one database into a pgark archive.
//!
//! A leader transaction (REPEATABLE READ, READ ONLY) exports its snapshot,
//! reads the catalog and takes ACCESS SHARE locks on every dumped table; `jobs`
//! workers import the snapshot and stream `COPY ... TO STDOUT` (text format:
//! exact and portable) into the archive writer. Big tables are split into page
//! ranges so one table can use several workers.

mod plan;
mod snapshot;
mod toc;
mod worker;

use pgark_archive::{ArchiveMeta, ArchiveWriter, Trailer, WriterOptions};
use pgark_catalog::CatalogOptions;
use pgark_conn::ConnParams;
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

/// What to dump and how.
#[derive(Clone)]
pub struct DumpOptions {
    /// Parallel COPY connections (besides the leader).
    pub jobs: usize,
    pub catalog: CatalogOptions,
    pub schema_only: bool,
    pub data_only: bool,
    /// `[schema.]table` patterns whose rows are left out (their DDL stays).
    pub exclude_table_data: Vec<String>,
    /// `[schema.]table` patterns dumped first and contiguously (the fast path).
    pub critical: Vec<String>,
    pub label: Option<String>,
    /// Tables larger than this on disk are split into page ranges.
    pub split_bytes: u64,
    /// Raw bytes of COPY text per archive chunk.
    pub chunk_bytes: usize,
    pub compression_level: i32,
    /// How long to wait for the ACCESS SHARE locks.
    pub lock_timeout: Duration,
    /// Encrypt every block (AES-256-GCM) with this key.
    pub encryption: Option<pgark_archive::Key>,
    /// Recorded in the archive as given (never a password).
    pub recorded_options: BTreeMap<String, String>,
    pub progress: Option<ProgressFn>,
}

impl Default for DumpOptions {
    fn default() -> Self {
        DumpOptions {
            jobs: 2,
            catalog: CatalogOptions::default(),
            schema_only: false,
            data_only: false,
            exclude_table_data: Vec::new(),
            critical: Vec::new(),
            label: None,
            split_bytes: 64 << 20,
            chunk_bytes: 1 << 20,
            compression_level: 1,
            lock_timeout: Duration::from_secs(30),
            encryption: None,
            recorded_options: BTreeMap::new(),
            progress: None,
        }
    }
}

pub type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// A snapshot of the dump's progress, reported after every chunk.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub tables_total: usize,
    pub tables_done: usize,
    pub rows: u64,
    pub raw_bytes: u64,
    /// The tables' size on disk: a rough guide for an ETA.
    pub estimated_bytes: u64,
}

/// What a finished dump wrote.
#[derive(Debug, Clone)]
pub struct DumpSummary {
    pub meta: ArchiveMeta,
    pub trailer: Trailer,
    /// Qualified table name of each TABLE DATA entry id.
    pub table_names: BTreeMap<u32, String>,
    pub warnings: Vec<pgark_catalog::Warning>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Conn(#[from] pgark_conn::ConnError),
    #[error(transparent)]
    Catalog(#[from] pgark_catalog::CatalogError),
    #[error(transparent)]
    Archive(#[from] pgark_archive::ArchiveError),
    #[error("{0}")]
    Options(String),
    #[error("permission denied: role \"{role}\" cannot read {tables}")]
    NoSelect { role: String, tables: String },
    #[error("could not lock the tables to dump within {seconds} s ({reason}); another session holds a conflicting lock")]
    LockTimeout { seconds: u64, reason: String },
    #[error("{what}: {reason}")]
    Server { what: String, reason: String },
}

impl ExportError {
    fn server(what: impl Into<String>, e: &tokio_postgres::Error) -> Self {
        let mut reason = pgark_conn::describe(e);
        if e.is_closed() || reason.contains("terminating connection") {
            reason = format!("connection to the server was lost ({reason})");
        }
        ExportError::Server {
            what: what.into(),
            reason,
        }
    }
}

/// Dumps the database `params` points at into `out`.
pub async fn dump<W: Write + Send + 'static>(
    params: &ConnParams,
    out: W,
    opts: &DumpOptions,
) -> Result<(W, DumpSummary), ExportError> {
    if opts.schema_only && opts.data_only {
        return Err(ExportError::Options(
            "--schema-only and --data-only cannot be used together".into(),
        ));
    }
    let leader = snapshot::Leader::begin(params, opts).await?;
    let plan = plan::Plan::new(&leader.catalog, opts)?;
    let toc = toc::build(&leader.catalog, &plan, opts);
    let meta = leader.meta(params, opts, &plan);
    let writer_opts = WriterOptions {
        level: opts.compression_level,
        encryption: opts.encryption.clone(),
        ..WriterOptions::default()
    };
    let (m, t) = (meta.clone(), toc);
    let writer = blocking(move || ArchiveWriter::new(out, &m, &t, writer_opts)).await?;
    match worker::run_all(params, &leader, &plan, &writer.chunk_sender(), opts).await {
        Ok(()) => {}
        // The writer stopped on its own error (disk full, ...): that error,
        // with the file offset, is the one worth reporting.
        Err(ExportError::Archive(pgark_archive::ArchiveError::WriterClosed)) => {
            let cause =
                blocking(move || writer.finish(chrono::Utc::now(), Default::default())).await;
            return Err(cause.err().unwrap_or(ExportError::Archive(
                pgark_archive::ArchiveError::WriterClosed,
            )));
        }
        Err(e) => return Err(e),
    };
    let finished_at = chrono::Utc::now();
    let (out, trailer) = blocking(move || writer.finish(finished_at, BTreeMap::new())).await?;
    let warnings = leader.catalog.warnings.clone();
    leader.commit().await?;
    let table_names = plan
        .entries
        .iter()
        .map(|e| (e.entry_id, e.table.qualified.clone()))
        .collect();
    Ok((
        out,
        DumpSummary {
            meta,
            trailer,
            table_names,
            warnings,
        },
    ))
}

/// Runs file work off the async threads (works on any tokio runtime flavour).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, pgark_archive::ArchiveError> + Send + 'static,
) -> Result<T, ExportError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => Ok(r?),
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

//! Taking a backup: the [`Dump`] builder, and [`estimate`] of its size.

use crate::output::{free_space, output_error, PendingFile};
use crate::{strings, ConnParams, Error};
use pgark_archive::{ArchiveMeta, Trailer};
use pgark_export::{DumpOptions, Progress};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Archive bytes per byte of table on disk, a deliberately high guess (COPY
/// text is somewhat smaller than the heap, zstd divides it by 3 to 5).
const PREDICTED_RATIO: f64 = 0.35;

/// A backup to take. Options follow pg_dump's flags.
#[derive(Clone)]
pub struct Dump {
    params: ConnParams,
    opts: DumpOptions,
    force: bool,
}

/// What a finished backup holds.
#[derive(Debug, Clone)]
pub struct DumpReport {
    /// None when written to a stream.
    pub path: Option<PathBuf>,
    pub archive_bytes: u64,
    pub meta: ArchiveMeta,
    pub trailer: Trailer,
    /// Qualified table name of each TABLE DATA entry id.
    pub table_names: std::collections::BTreeMap<u32, String>,
    /// Objects that could not be dumped (also recorded in the archive).
    pub warnings: Vec<String>,
    pub elapsed: Duration,
}

impl DumpReport {
    pub fn rows(&self) -> u64 {
        self.trailer.tables.iter().map(|t| t.rows).sum()
    }
}

impl Dump {
    pub fn new(params: ConnParams) -> Self {
        Dump {
            params,
            opts: DumpOptions::default(),
            force: false,
        }
    }

    /// Parallel COPY connections (`-j`).
    pub fn jobs(mut self, jobs: usize) -> Self {
        self.opts.jobs = jobs.max(1);
        self
    }

    /// Tables dumped first, on their own, for a fast partial rollback (`--critical`).
    pub fn critical<I: IntoIterator<Item = S>, S: Into<String>>(mut self, tables: I) -> Self {
        self.opts.critical = strings(tables);
        self
    }

    /// Only these tables (`-t`, patterns).
    pub fn tables<I: IntoIterator<Item = S>, S: Into<String>>(mut self, tables: I) -> Self {
        self.opts.catalog.tables = strings(tables);
        self
    }

    /// Not these tables (`-T`).
    pub fn exclude_tables<I: IntoIterator<Item = S>, S: Into<String>>(mut self, tables: I) -> Self {
        self.opts.catalog.exclude_tables = strings(tables);
        self
    }

    /// Only these schemas (`-n`).
    pub fn schemas<I: IntoIterator<Item = S>, S: Into<String>>(mut self, schemas: I) -> Self {
        self.opts.catalog.schemas = strings(schemas);
        self
    }

    /// Not these schemas (`-N`).
    pub fn exclude_schemas<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        schemas: I,
    ) -> Self {
        self.opts.catalog.exclude_schemas = strings(schemas);
        self
    }

    /// These tables' definitions but not their rows.
    pub fn exclude_table_data<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        tables: I,
    ) -> Self {
        self.opts.exclude_table_data = strings(tables);
        self
    }

    pub fn schema_only(mut self, yes: bool) -> Self {
        self.opts.schema_only = yes;
        self
    }

    pub fn data_only(mut self, yes: bool) -> Self {
        self.opts.data_only = yes;
        self
    }

    pub fn no_owner(mut self, yes: bool) -> Self {
        self.opts.catalog.no_owner = yes;
        self
    }

    pub fn no_privileges(mut self, yes: bool) -> Self {
        self.opts.catalog.no_privileges = yes;
        self
    }

    /// The purpose of the backup, kept in its metadata.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.opts.label = Some(label.into());
        self
    }

    /// zstd level (default 1: level 3 gains about 1 % here and costs far more CPU).
    pub fn compression_level(mut self, level: i32) -> Self {
        self.opts.compression_level = level;
        self
    }

    /// Tables bigger than this on disk are dumped by several jobs at once.
    pub fn split_bytes(mut self, bytes: u64) -> Self {
        self.opts.split_bytes = bytes;
        self
    }

    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.opts.lock_timeout = timeout;
        self
    }

    /// Called after every chunk of data with the progress so far.
    pub fn progress(mut self, f: impl Fn(&Progress) + Send + Sync + 'static) -> Self {
        self.opts.progress = Some(Arc::new(f));
        self
    }

    /// Encrypt the archive (AES-256-GCM on every block, metadata included)
    /// with a key file's key or a passphrase (Argon2id).
    pub fn encrypt(mut self, key: Option<pgark_archive::Key>) -> Self {
        self.opts.encryption = key;
        self
    }

    /// Start even when the free space looks too small.
    pub fn force(mut self, yes: bool) -> Self {
        self.force = yes;
        self
    }

    /// Writes the archive to `path` (atomically: a temporary name, then rename).
    pub async fn to_file(self, path: impl AsRef<Path>) -> Result<DumpReport, Error> {
        let path = path.as_ref();
        if !self.force {
            self.check_space(path).await?;
        }
        let (pending, out) = PendingFile::create(path)?;
        let (out, mut report) = self.to_writer(out).await.map_err(|e| match e {
            // Name the file whose writing failed.
            Error::Export(pgark_export::ExportError::Archive(a)) => {
                output_error(path, a.to_string())
            }
            other => other,
        })?;
        report.archive_bytes = pending.commit(out)?;
        report.path = Some(path.to_path_buf());
        Ok(report)
    }

    /// Streams the archive into `out` (a pipe, stdout, a socket).
    pub async fn to_writer<W: Write + Send + 'static>(
        mut self,
        out: W,
    ) -> Result<(W, DumpReport), Error> {
        let started = Instant::now();
        self.opts.recorded_options = self.recorded_options();
        let counted = CountingWriter {
            inner: out,
            bytes: 0,
        };
        let (counted, summary) = pgark_export::dump(&self.params, counted, &self.opts).await?;
        let report = DumpReport {
            path: None,
            archive_bytes: counted.bytes,
            meta: summary.meta,
            trailer: summary.trailer,
            table_names: summary.table_names,
            warnings: summary
                .warnings
                .iter()
                .map(|w| format!("{} {}: {}", w.kind, w.name, w.reason))
                .collect(),
            elapsed: started.elapsed(),
        };
        Ok((counted.inner, report))
    }

    fn recorded_options(&self) -> std::collections::BTreeMap<String, String> {
        let o = &self.opts;
        let mut m = std::collections::BTreeMap::new();
        let mut put = |k: &str, v: String| {
            if !v.is_empty() && v != "false" {
                m.insert(k.to_string(), v);
            }
        };
        put("jobs", o.jobs.to_string());
        put("compression", format!("zstd:{}", o.compression_level));
        put("encrypted", o.encryption.is_some().to_string());
        put("critical", o.critical.join(","));
        put("tables", o.catalog.tables.join(","));
        put("exclude_tables", o.catalog.exclude_tables.join(","));
        put("schemas", o.catalog.schemas.join(","));
        put("exclude_schemas", o.catalog.exclude_schemas.join(","));
        put("exclude_table_data", o.exclude_table_data.join(","));
        put("schema_only", o.schema_only.to_string());
        put("data_only", o.data_only.to_string());
        put("no_owner", o.catalog.no_owner.to_string());
        put("no_privileges", o.catalog.no_privileges.to_string());
        m
    }

    async fn check_space(&self, path: &Path) -> Result<(), Error> {
        let Some(free) = free_space(path) else {
            return Ok(());
        };
        let client = pgark_conn::connect_session(&self.params, pgark_conn::Purpose::Dump).await?;
        let predicted = predicted_bytes(&table_sizes(&client).await?);
        if predicted > free {
            return Err(output_error(
                path,
                format!(
                    "only {} free, the archive is expected to need about {} (use --force to try anyway)",
                    human_bytes(free),
                    human_bytes(predicted)
                ),
            ));
        }
        Ok(())
    }
}

/// Counts what passes through, so a streamed archive's size is known.
struct CountingWriter<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Sizes of a database before a backup.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Estimate {
    pub database: String,
    pub database_bytes: u64,
    pub tables: Vec<TableEstimate>,
    /// Free space where the archive would be written (None: unknown).
    pub free_bytes: Option<u64>,
    pub predicted_archive_bytes: u64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct TableEstimate {
    pub table: String,
    pub bytes: u64,
    pub estimated_rows: i64,
}

/// Tables by size, largest first, from pg_class statistics rather than
/// pg_table_size(), which takes a lock and would wait behind any session
/// holding an exclusive one.
async fn table_sizes(client: &tokio_postgres::Client) -> Result<Vec<TableEstimate>, Error> {
    let rows = client
        .query(
            "SELECT pg_catalog.format('%I.%I', n.nspname, c.relname), \
                    (c.relpages::int8 + coalesce(t.relpages, 0)) * pg_catalog.current_setting('block_size')::int8, \
                    c.reltuples::int8 \
             FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             LEFT JOIN pg_catalog.pg_class t ON t.oid = c.reltoastrelid \
             WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
               AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%' \
             ORDER BY 2 DESC",
            &[],
        )
        .await
        .map_err(|e| Error::server("reading table sizes", &e))?;
    Ok(rows
        .iter()
        .map(|r| TableEstimate {
            table: r.get(0),
            bytes: r.get::<_, i64>(1).max(0) as u64,
            estimated_rows: r.get(2),
        })
        .collect())
}

fn predicted_bytes(tables: &[TableEstimate]) -> u64 {
    let table_bytes: u64 = tables.iter().map(|t| t.bytes).sum();
    (table_bytes as f64 * PREDICTED_RATIO) as u64 + (1 << 20)
}

/// Database and table sizes, free space at `output`, and a predicted archive size.
pub async fn estimate(params: &ConnParams, output: &Path) -> Result<Estimate, Error> {
    let client = pgark_conn::connect_session(params, pgark_conn::Purpose::Dump).await?;
    let db = client
        .query_one(
            "SELECT current_database()::text, pg_catalog.pg_database_size(current_database())",
            &[],
        )
        .await
        .map_err(|e| Error::server("reading the database size", &e))?;
    let tables = table_sizes(&client).await?;
    Ok(Estimate {
        database: db.get(0),
        database_bytes: db.get::<_, i64>(1).max(0) as u64,
        free_bytes: free_space(output),
        predicted_archive_bytes: predicted_bytes(&tables),
        tables,
    })
}

pub(crate) fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

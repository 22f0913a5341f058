//! Restoring and rolling back: the [`Restore`] and [`Rollback`] builders.

use crate::{strings, ConnParams, Error};
use pgark_archive::Key;
use pgark_restore::{Progress, RestoreOptions, RestoreReport, Source, TableReport, TableRollback};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// An opened archive; `-` (a pipe) is first copied to a temporary file, so
/// that every checksum is verified before the target changes and tables can
/// be read in parallel. The copy is removed when this is dropped.
struct Opened {
    source: Source,
    _spool: Option<tempfile::TempPath>,
}

fn open(path: &Path, key: Option<&Key>) -> Result<Opened, Error> {
    if path != Path::new("-") {
        return Ok(Opened {
            source: Source::open_with_key(path, key)?,
            _spool: None,
        });
    }
    let fail = |e: std::io::Error| Error::Output {
        path: "standard input".into(),
        reason: format!("spooling the archive to a temporary file: {e}"),
    };
    let mut spool = tempfile::NamedTempFile::new().map_err(fail)?;
    std::io::copy(&mut std::io::stdin().lock(), spool.as_file_mut()).map_err(fail)?;
    let spool = spool.into_temp_path();
    // Errors name what the user gave, not the temporary copy.
    let source = Source::open_with_key(&spool, key).map_err(|e| match e {
        pgark_restore::RestoreError::Archive { source, .. } => {
            pgark_restore::RestoreError::Archive {
                path: "standard input".into(),
                source,
            }
        }
        other => other,
    })?;
    Ok(Opened {
        source,
        _spool: Some(spool),
    })
}

/// A restore of an archive, like `pg_restore`.
#[derive(Clone)]
pub struct Restore {
    params: ConnParams,
    archive: PathBuf,
    opts: RestoreOptions,
    create: bool,
    key: Option<Key>,
}

impl Restore {
    pub fn new(params: ConnParams, archive: impl AsRef<Path>) -> Self {
        Restore {
            params,
            archive: archive.as_ref().to_path_buf(),
            opts: RestoreOptions::default(),
            create: false,
            key: None,
        }
    }

    /// The key of an encrypted archive.
    pub fn key(mut self, key: Option<Key>) -> Self {
        self.key = key;
        self
    }

    pub fn jobs(mut self, jobs: usize) -> Self {
        self.opts.jobs = jobs.max(1);
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

    /// Only these tables (`-t`, patterns): definition, data, indexes.
    pub fn tables<I: IntoIterator<Item = S>, S: Into<String>>(mut self, tables: I) -> Self {
        self.opts.tables = strings(tables);
        self
    }

    /// Only objects in these schemas (`-n`).
    pub fn schemas<I: IntoIterator<Item = S>, S: Into<String>>(mut self, schemas: I) -> Self {
        self.opts.schemas = strings(schemas);
        self
    }

    /// Drop the archive's objects first (`--clean`; drops always use IF EXISTS).
    pub fn clean(mut self, yes: bool) -> Self {
        self.opts.clean = yes;
        self
    }

    pub fn if_exists(mut self, yes: bool) -> Self {
        self.opts.if_exists = yes;
        self
    }

    /// All or nothing (`-1`); needs one job.
    pub fn single_transaction(mut self, yes: bool) -> Self {
        self.opts.single_transaction = yes;
        self
    }

    /// Stop at the first error instead of reporting them all at the end.
    pub fn exit_on_error(mut self, yes: bool) -> Self {
        self.opts.exit_on_error = yes;
        self
    }

    pub fn no_owner(mut self, yes: bool) -> Self {
        self.opts.no_owner = yes;
        self
    }

    pub fn no_privileges(mut self, yes: bool) -> Self {
        self.opts.no_privileges = yes;
        self
    }

    /// `SET ROLE` before restoring.
    pub fn role(mut self, role: Option<String>) -> Self {
        self.opts.role = role;
        self
    }

    /// Create the archive's database first, connecting through the given one
    /// (`--create`), and restore into it.
    pub fn create(mut self, yes: bool) -> Self {
        self.create = yes;
        self
    }

    pub fn progress(mut self, f: impl Fn(&Progress) + Send + Sync + 'static) -> Self {
        self.opts.progress = Some(Arc::new(f));
        self
    }

    pub async fn run(self) -> Result<RestoreReport, Error> {
        let opened = open(&self.archive, self.key.as_ref())?;
        let source = &opened.source;
        let mut params = self.params.clone();
        if self.create {
            let name = pgark_restore::create_database(&self.params, source, None).await?;
            params = params.with_dbname(&name);
        }
        Ok(pgark_restore::restore(&params, source, &self.opts).await?)
    }

    /// Writes a psql script instead of restoring (`-f FILE`); no server needed.
    pub fn write_script(self, out: &mut impl Write) -> Result<(), Error> {
        let opened = open(&self.archive, self.key.as_ref())?;
        Ok(pgark_restore::write_script(
            &opened.source,
            out,
            &self.opts,
        )?)
    }
}

/// Undoing a change with a backup: the whole database, or a few tables' rows.
#[derive(Clone)]
pub struct Rollback {
    params: ConnParams,
    archive: PathBuf,
    opts: RestoreOptions,
    tables: TableRollback,
    key: Option<Key>,
}

impl Rollback {
    pub fn new(params: ConnParams, archive: impl AsRef<Path>) -> Self {
        Rollback {
            params,
            archive: archive.as_ref().to_path_buf(),
            opts: RestoreOptions::default(),
            tables: TableRollback::default(),
            key: None,
        }
    }

    /// The key of an encrypted archive.
    pub fn key(mut self, key: Option<Key>) -> Self {
        self.key = key;
        self
    }

    pub fn jobs(mut self, jobs: usize) -> Self {
        self.opts.jobs = jobs.max(1);
        self
    }

    /// Full rollback: go ahead although the database holds objects the
    /// archive lists as not dumped (large objects, ...); the swap destroys them.
    pub fn accept_loss(mut self, yes: bool) -> Self {
        self.opts.accept_loss = yes;
        self
    }

    /// The zone of `timestamp` values when a column is now `timestamptz` (default UTC).
    pub fn time_zone(mut self, zone: impl Into<String>) -> Self {
        self.tables.time_zone = zone.into();
        self
    }

    pub fn progress(mut self, f: impl Fn(&Progress) + Send + Sync + 'static) -> Self {
        self.opts.progress = Some(Arc::new(f));
        self
    }

    /// Rebuilds the database from the archive beside the old one, then swaps
    /// them; refuses a database other than the one the archive was taken from.
    pub async fn full(self) -> Result<RestoreReport, Error> {
        let opened = open(&self.archive, self.key.as_ref())?;
        Ok(pgark_restore::rollback_database(&self.params, &opened.source, &self.opts).await?)
    }

    /// Replaces the rows of these tables (patterns) with the archive's.
    pub async fn tables<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        tables: I,
    ) -> Result<Vec<TableReport>, Error> {
        self.tables.tables = strings(tables);
        self.partial().await
    }

    /// Replaces the rows of the archive's critical tables.
    pub async fn critical(mut self) -> Result<Vec<TableReport>, Error> {
        self.tables.critical = true;
        self.partial().await
    }

    /// Both: the critical tables and these.
    pub async fn critical_and_tables(
        mut self,
        tables: Vec<String>,
    ) -> Result<Vec<TableReport>, Error> {
        self.tables.critical = true;
        self.tables.tables = tables;
        self.partial().await
    }

    async fn partial(self) -> Result<Vec<TableReport>, Error> {
        let opened = open(&self.archive, self.key.as_ref())?;
        Ok(pgark_restore::rollback_tables(&self.params, &opened.source, &self.tables).await?)
    }
}

//! Restoring a pgark archive.
//!
//! - [`restore`]: pre-data, then data (`COPY ... FROM STDIN`, binary where
//!   the types allow) and post-data (indexes, constraints, triggers) in one
//!   parallel pool by dependencies, like `pg_restore -j`.
//! - [`rollback_tables`]: the fast path: replace the rows of a few tables with
//!   the archive's in one transaction, keeping the rows that reference them.
//! - [`rollback_database`]: rebuild the whole database beside the old one, then
//!   swap them.
//! - [`write_script`]: a psql-compatible SQL script instead of a restore.
//! - [`compare`]: per-table row counts and digests of a restored database
//!   against the archive.
//!
//! Before anything touches the target, every block a restore or partial
//! rollback will read is verified against its checksum; a full rollback
//! touches only the copy it builds until the swap, and checks blocks as it
//! loads them.

mod binary;
mod compare;
mod ddl;
mod load;
mod partial;
mod rollback;
mod schedule;
mod script;
mod select;
mod set_aside;
mod source;
mod triggers;

use std::sync::Arc;

pub use compare::{compare, TableCheck};
pub use partial::{rollback_tables, TableReport, TableRollback};
pub use rollback::{create_database, rollback_database};
pub use script::write_script;
pub use source::Source;

/// What to restore and how; the defaults restore everything with two jobs.
#[derive(Clone)]
pub struct RestoreOptions {
    pub jobs: usize,
    pub schema_only: bool,
    pub data_only: bool,
    /// `[schema.]table` patterns (`-t`): only these tables' definition and data.
    pub tables: Vec<String>,
    /// Schemas (`-n`): only objects in these.
    pub schemas: Vec<String>,
    /// Drop the archive's objects before creating them.
    pub clean: bool,
    pub if_exists: bool,
    pub single_transaction: bool,
    pub exit_on_error: bool,
    pub no_owner: bool,
    pub no_privileges: bool,
    /// `SET ROLE` after connecting.
    pub role: Option<String>,
    /// Full rollback only: go ahead even though the database holds objects
    /// the archive could not (large objects, ...), which the swap destroys.
    pub accept_loss: bool,
    pub progress: Option<ProgressFn>,
}

impl Default for RestoreOptions {
    fn default() -> Self {
        RestoreOptions {
            jobs: 2,
            schema_only: false,
            data_only: false,
            tables: Vec::new(),
            schemas: Vec::new(),
            clean: false,
            if_exists: false,
            single_transaction: false,
            exit_on_error: false,
            no_owner: false,
            no_privileges: false,
            role: None,
            accept_loss: false,
            progress: None,
        }
    }
}

pub type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub phase: &'static str,
    pub done: usize,
    pub total: usize,
    pub rows: u64,
    pub raw_bytes: u64,
}

/// What a restore did.
#[derive(Debug, Clone, Default)]
pub struct RestoreReport {
    pub entries_restored: usize,
    pub rows: u64,
    /// Entries that failed, with the server's error; empty on success.
    pub failed: Vec<Failure>,
    /// Entries not attempted because the restore stopped early.
    pub not_attempted: usize,
    /// A single-transaction restore failed: everything was rolled back.
    pub rolled_back: bool,
}

#[derive(Debug, Clone)]
pub struct Failure {
    pub entry: String,
    pub error: String,
}

impl RestoreReport {
    pub fn ok(&self) -> bool {
        self.failed.is_empty() && self.not_attempted == 0
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(transparent)]
    Conn(#[from] pgark_conn::ConnError),
    #[error("archive {path}: {source}")]
    Archive {
        path: String,
        source: pgark_archive::ArchiveError,
    },
    #[error("{0}")]
    Options(String),
    #[error("{0}")]
    Refused(String),
    #[error("{what}: {reason}")]
    Server { what: String, reason: String },
    #[error("restore failed: {} of {} entries failed{}, first: {}: {}", .0.failed.len(), .0.entries_restored + .0.failed.len() + .0.not_attempted, if .0.rolled_back { " (rolled back: nothing was restored)" } else { "" }, .0.failed[0].entry, .0.failed[0].error)]
    Incomplete(Box<RestoreReport>),
    #[error("{0}")]
    Io(String),
}

impl RestoreError {
    pub(crate) fn server(what: impl Into<String>, e: &tokio_postgres::Error) -> Self {
        RestoreError::Server {
            what: what.into(),
            reason: pgark_conn::describe(e),
        }
    }
}

/// Restores (a subset of) the archive into the database `params` names.
pub async fn restore(
    params: &pgark_conn::ConnParams,
    source: &Source,
    opts: &RestoreOptions,
) -> Result<RestoreReport, RestoreError> {
    if opts.schema_only && opts.data_only {
        return Err(RestoreError::Options(
            "--schema-only and --data-only cannot be used together".into(),
        ));
    }
    if opts.single_transaction && opts.jobs > 1 {
        return Err(RestoreError::Options(
            "--single-transaction cannot be combined with more than one job (-j)".into(),
        ));
    }
    let selection = select::Selection::new(source, opts)?;
    source.verify_chunks(&selection.data_entries())?;
    ddl::run(params, source, &selection, opts).await
}

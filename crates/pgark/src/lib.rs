//! pgark: native logical backup, verification and rollback for PostgreSQL.
//!
//! The library behind the `pgark` command, for migration tooling that wants a
//! snapshot before it migrates and a rollback when it fails:
//!
//! ```no_run
//! # async fn migrate() -> Result<(), pgark::Error> {
//! let db = pgark::ConnParams::resolve(Some("postgres://app@localhost/learn"), &Default::default())?;
//! let backup = pgark::Dump::new(db.clone())
//!     .jobs(2)
//!     .critical(["public.users", "public.question_attempts"])
//!     .label("before timestamptz migration")
//!     .to_file("before.pgark")
//!     .await?;
//! println!("{} rows backed up", backup.rows());
//! pgark::verify("before.pgark")?;
//! // ... run the migration; if it fails:
//! pgark::Rollback::new(db, "before.pgark").full().await?;
//! # Ok(()) }
//! ```
//!
//! Every call returns a typed [`Error`]; nothing prints unless a progress
//! callback is given.

mod demo;
mod dump;
mod inspect;
mod output;
mod report;
mod restore;

pub use demo::{demo, DemoOptions, DemoReport};
pub use dump::{estimate, Dump, DumpReport, Estimate, TableEstimate};
pub use inspect::{
    compare, compare_with_key, list, list_with_key, restore_test, restore_test_with_key, verify,
    verify_with_key, Listing,
};
pub use report::runbook;
pub use restore::{Restore, Rollback};

pub use pgark_archive::{
    ArchiveError, ArchiveMeta, BlockKind, Key, Section, TableStats, TocEntry, Trailer, VerifyReport,
};
pub use pgark_conn::{ConnParams, Overrides, SslMode};
pub use pgark_export::{Progress as DumpProgress, ProgressFn as DumpProgressFn};
pub use pgark_restore::{
    Failure, Progress as RestoreProgress, RestoreReport, TableCheck, TableReport,
};

/// Everything that can go wrong, one line each when displayed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Conn(#[from] pgark_conn::ConnError),
    #[error(transparent)]
    Export(#[from] pgark_export::ExportError),
    #[error(transparent)]
    Restore(#[from] pgark_restore::RestoreError),
    #[error("archive {path}: {source}")]
    Archive {
        path: String,
        source: pgark_archive::ArchiveError,
    },
    #[error("{path}: {reason}")]
    Output { path: String, reason: String },
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Sandbox(#[from] pgark_sandbox::SandboxError),
    #[error("{what}: {reason}")]
    Server { what: String, reason: String },
}

/// Builder arguments: any list of names.
fn strings<I: IntoIterator<Item = S>, S: Into<String>>(items: I) -> Vec<String> {
    items.into_iter().map(Into::into).collect()
}

impl Error {
    /// What a restore that failed part-way did and did not do.
    pub fn restore_report(&self) -> Option<&RestoreReport> {
        match self {
            Error::Restore(pgark_restore::RestoreError::Incomplete(r)) => Some(r),
            _ => None,
        }
    }

    fn server(what: impl Into<String>, e: &tokio_postgres::Error) -> Self {
        Error::Server {
            what: what.into(),
            reason: pgark_conn::describe(e),
        }
    }
}

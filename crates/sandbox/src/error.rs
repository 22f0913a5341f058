use std::path::PathBuf;

/// Everything that can go wrong while running a throwaway cluster.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// No usable PostgreSQL server installation was found.
    #[error("{0}")]
    NotInstalled(String),
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("{program} failed ({status}): {output}")]
    Command {
        program: String,
        status: String,
        output: String,
    },
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot set up OS user {user} to run PostgreSQL: {detail}")]
    User { user: String, detail: String },
    #[error("PostgreSQL server in {data_dir} did not start: {detail}")]
    Start { data_dir: PathBuf, detail: String },
    /// A query or connection failed; `detail` holds the whole error chain,
    /// since tokio-postgres' own message is only "db error".
    #[error("{context}: {detail}")]
    Postgres { context: String, detail: String },
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl SandboxError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        SandboxError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// Renders an error with all its sources, e.g.
/// "db error: ERROR: relation \"x\" does not exist".
pub(crate) fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

pub(crate) fn pg_error(context: impl Into<String>, err: &tokio_postgres::Error) -> SandboxError {
    SandboxError::Postgres {
        context: context.into(),
        detail: chain(err),
    }
}

//! One error type for the harness: a message saying what failed and where.

use std::fmt;

#[derive(Debug)]
pub struct BenchError(pub String);

pub type Result<T> = std::result::Result<T, BenchError>;

impl BenchError {
    pub fn new(msg: impl Into<String>) -> BenchError {
        BenchError(msg.into())
    }

    /// A server error with its detail (tokio-postgres' own Display is only "db error").
    pub fn pg(context: impl fmt::Display, e: &tokio_postgres::Error) -> BenchError {
        let detail = match e.as_db_error() {
            Some(db) => db.message().to_string(),
            None => e.to_string(),
        };
        BenchError(format!("{context}: {detail}"))
    }

    pub fn io(context: impl fmt::Display, e: &std::io::Error) -> BenchError {
        BenchError(format!("{context}: {e}"))
    }
}

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BenchError {}

impl From<pgark_sandbox::SandboxError> for BenchError {
    fn from(e: pgark_sandbox::SandboxError) -> BenchError {
        BenchError(e.to_string())
    }
}

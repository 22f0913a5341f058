#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("reading {what} from the catalog failed: {}", message(source))]
    Query {
        what: &'static str,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("unsupported server version {0}: PostgreSQL 14 to 18 are supported")]
    Version(u32),
    #[error("invalid pattern {pattern:?}: {reason}")]
    Pattern { pattern: String, reason: String },
    #[error("unexpected catalog content in {what}: {detail}")]
    Unexpected { what: &'static str, detail: String },
    #[error("dependency loop between objects that cannot be broken: {0}")]
    DependencyLoop(String),
}

/// Attaches what was being read to a driver error.
pub(crate) trait QueryContext<T> {
    fn what(self, what: &'static str) -> Result<T, CatalogError>;
}

impl<T> QueryContext<T> for Result<T, tokio_postgres::Error> {
    fn what(self, what: &'static str) -> Result<T, CatalogError> {
        self.map_err(|source| CatalogError::Query { what, source })
    }
}

/// The server's message when there is one: the driver's Display says only "db error".
fn message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => e.to_string(),
    }
}

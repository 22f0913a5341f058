//! The reading session: an empty `search_path` makes the server's deparsers
//! qualify every name; the caller's value is put back afterwards.

use crate::error::QueryContext;
use crate::CatalogError;
use tokio_postgres::Client;

pub(crate) async fn enter(client: &Client) -> Result<String, CatalogError> {
    let row = client
        .query_one(
            "SELECT pg_catalog.current_setting('search_path'), \
             pg_catalog.set_config('search_path', '', false)",
            &[],
        )
        .await
        .what("session settings")?;
    Ok(row.get(0))
}

pub(crate) async fn leave(client: &Client, saved: &str) -> Result<(), CatalogError> {
    client
        .execute(
            "SELECT pg_catalog.set_config('search_path', $1, false)",
            &[&saved],
        )
        .await
        .what("session settings")?;
    Ok(())
}

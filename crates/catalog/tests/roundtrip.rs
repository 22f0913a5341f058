//! Restoring the emitted DDL into an empty database gives the same schema as
//! the source, by pg_dump's own account.

mod common;

use common::*;
use pgark_catalog::CatalogOptions;

#[tokio::test]
async fn learnapp_roundtrip() {
    let db = pgark_testkit::fresh_learnapp_db(1).await;
    let catalog = assert_roundtrip(&db, &CatalogOptions::default()).await;
    assert!(catalog.tables.len() >= 20);
    assert!(catalog.warnings.is_empty(), "{:?}", catalog.warnings);
}

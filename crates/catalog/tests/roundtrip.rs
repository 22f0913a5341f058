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

const EVERY_KIND: &str = include_str!("../../../fixtures/catalog/every_kind.sql");

#[tokio::test]
async fn every_kind_roundtrip() {
    let db = pgark_testkit::fresh_db().await;
    db.exec(EVERY_KIND).await;
    let catalog = assert_roundtrip(&db, &CatalogOptions::default()).await;
    let kinds: std::collections::BTreeSet<&str> =
        catalog.objects.iter().map(|o| o.kind.as_str()).collect();
    for kind in [
        "SCHEMA",
        "EXTENSION",
        "COLLATION",
        "TYPE",
        "DOMAIN",
        "FUNCTION",
        "PROCEDURE",
        "AGGREGATE",
        "OPERATOR",
        "CAST",
        "TEXT SEARCH DICTIONARY",
        "TEXT SEARCH CONFIGURATION",
        "SEQUENCE",
        "SEQUENCE OWNED BY",
        "SEQUENCE SET",
        "TABLE",
        "TABLE ATTACH",
        "DEFAULT",
        "VIEW",
        "MATERIALIZED VIEW",
        "MATERIALIZED VIEW DATA",
        "CONSTRAINT",
        "CHECK CONSTRAINT",
        "FK CONSTRAINT",
        "INDEX",
        "INDEX ATTACH",
        "TRIGGER",
        "EVENT TRIGGER",
        "RULE",
        "POLICY",
        "ROW SECURITY",
        "STATISTICS",
        "PUBLICATION",
        "PUBLICATION TABLE",
        "DEFAULT ACL",
        "COMMENT",
        "ACL",
    ] {
        assert!(kinds.contains(kind), "no {kind} object in {kinds:?}");
    }
    assert!(catalog.warnings.is_empty(), "{:?}", catalog.warnings);
    assert!(catalog.roles.contains(&"pgark Owner".to_string()));
    let order = catalog.tables.iter().find(|t| t.name == "order").unwrap();
    let columns: Vec<&str> = order.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        columns,
        ["id", "ref", "note", "user"],
        "virtual columns (18) are not copied"
    );
    let has = |kind: &str, name: &str| {
        catalog
            .objects
            .iter()
            .any(|o| o.kind == kind && o.name == name)
    };
    if catalog.server_version_num >= 180000 {
        assert!(has("TABLE", "nn") && has("CONSTRAINT", "periods periods_pk"));
    }
    if catalog.server_version_num >= 170000 {
        assert!(has("TABLE ATTACH", "ident_child"));
    }
    if catalog.server_version_num >= 150000 {
        assert!(catalog
            .objects
            .iter()
            .any(|o| o.create_sql.starts_with("CREATE UNLOGGED SEQUENCE")));
    }
}

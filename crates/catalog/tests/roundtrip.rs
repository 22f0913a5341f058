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

/// Shapes the other fixtures lack: expression partition keys, sub-partitions
/// with defaults, multiple inheritance and grandchildren, a sequence shared
/// across schemas, transition tables, opclass parameters, nested check options.
#[tokio::test]
async fn assorted_shapes_roundtrip() {
    let db = pgark_testkit::fresh_db().await;
    db.exec(r#"
CREATE SCHEMA "S ""q""";
CREATE TYPE "S ""q""".color AS ENUM ('red', 'green');
CREATE TABLE "S ""q""".pt ("Weird ""col""" int, c "S ""q""".color CHECK (c <> 'red'), g int GENERATED ALWAYS AS ("Weird ""col""" * 2) STORED) PARTITION BY RANGE (("Weird ""col""" + 1));
CREATE TABLE "S ""q""".pt1 PARTITION OF "S ""q""".pt FOR VALUES FROM (0) TO (100) PARTITION BY LIST (c);
CREATE TABLE "S ""q""".pt1a PARTITION OF "S ""q""".pt1 FOR VALUES IN ('green');
CREATE TABLE "S ""q""".pt1d PARTITION OF "S ""q""".pt1 DEFAULT;
COMMENT ON COLUMN "S ""q""".pt."Weird ""col""" IS 'weird';
CREATE FUNCTION "S ""q""".fn(c "S ""q""".color DEFAULT 'green') RETURNS int LANGUAGE sql AS 'SELECT 1';
CREATE TABLE a (x int); CREATE TABLE b (y int);
CREATE TABLE ab (z int) INHERITS (a, b);
CREATE TABLE ab2 (w int) INHERITS (ab);
ALTER TABLE ab2 ALTER COLUMN x SET NOT NULL;
CREATE SEQUENCE "S ""q""".shared;
CREATE TABLE "S ""q""".usesq (id int DEFAULT nextval('"S ""q"""."shared"'));
ALTER SEQUENCE "S ""q""".shared OWNED BY "S ""q""".usesq.id; CREATE TABLE other_uses (id int DEFAULT nextval('"S ""q"""."shared"'));
CREATE FUNCTION trg() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$;
CREATE TRIGGER tt AFTER INSERT ON a REFERENCING NEW TABLE AS newrows FOR EACH STATEMENT EXECUTE FUNCTION trg();
CREATE EXTENSION pg_trgm;
CREATE INDEX ON b USING gist ((y::text) gist_trgm_ops(siglen=32));
CREATE VIEW v1 AS SELECT x FROM a WHERE x > 0 WITH CHECK OPTION;
CREATE VIEW v2 AS SELECT x FROM v1 WHERE x < 10 WITH CASCADED CHECK OPTION;
ALTER TABLE a ENABLE ROW LEVEL SECURITY;
CREATE POLICY p ON a USING (x IN (SELECT y FROM b));
CREATE AGGREGATE msum(int) (SFUNC = int4pl, STYPE = int, MSFUNC = int4pl, MINVFUNC = int4mi, MSTYPE = int);
CREATE TABLE gen_part (id int, v int GENERATED ALWAYS AS (id + 1) STORED) PARTITION BY HASH (id);
CREATE TABLE gen_part_0 PARTITION OF gen_part FOR VALUES WITH (MODULUS 1, REMAINDER 0);
"#).await;
    let c = assert_roundtrip(&db, &CatalogOptions::default()).await;
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

/// `drop_sql` in reverse order takes a restored database back to empty, as
/// `restore --clean` needs.
#[tokio::test]
async fn drop_sql_empties_a_restored_database() {
    let db = pgark_testkit::fresh_db().await;
    db.exec(EVERY_KIND).await;
    let catalog = catalog_of(&db, &CatalogOptions::default()).await;
    let target = pgark_testkit::fresh_db().await;
    let empty = target.pg_dump_schema();
    replay(&catalog, &target).await;
    let client = target.client().await;
    client.batch_execute(RESTORE_SESSION).await.unwrap();
    for o in catalog
        .objects
        .iter()
        .rev()
        .filter(|o| !o.drop_sql.is_empty())
    {
        if let Err(e) = client.batch_execute(&o.drop_sql).await {
            panic!(
                "{}: {:?}\n{}",
                label(o),
                e.as_db_error().map(|d| d.message()),
                o.drop_sql
            );
        }
    }
    // What is left are changes to objects every database has (public's
    // comment and privileges, built-in functions' privileges), and default
    // privileges (like pg_dump, nothing drops them).
    let left: Vec<String> = target
        .pg_dump_schema()
        .lines()
        .filter(|l| !empty.contains(l))
        .map(str::to_string)
        .collect();
    assert!(
        left.iter().all(|l| l.contains("SCHEMA public")
            || l.contains("pg_catalog.pg_ls_dir")
            || l.starts_with("ALTER DEFAULT PRIVILEGES")),
        "{left:#?}"
    );
}

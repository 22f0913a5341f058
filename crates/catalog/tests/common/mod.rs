//! Shared by the catalog tests: read a database's catalog and replay it into
//! another one the way a restore would.
#![allow(dead_code)]

use pgark_catalog::{read_catalog, Catalog, CatalogOptions, DdlObject, Section};
use pgark_testkit::TestDb;

/// The session state of pg_dump's scripts: everything must work under it.
pub const RESTORE_SESSION: &str = "SET statement_timeout = 0; SET lock_timeout = 0; \
    SET idle_in_transaction_session_timeout = 0; SET client_encoding = 'UTF8'; \
    SET standard_conforming_strings = on; SELECT pg_catalog.set_config('search_path', '', false); \
    SET check_function_bodies = false; SET xmloption = content; SET client_min_messages = warning; \
    SET row_security = off;";

/// Reads the catalog the way the exporter does: in a REPEATABLE READ, READ ONLY transaction.
pub async fn catalog_of(db: &TestDb, opts: &CatalogOptions) -> Catalog {
    let client = db.client().await;
    client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .await
        .unwrap();
    let catalog = read_catalog(&client, opts)
        .await
        .unwrap_or_else(|e| panic!("read_catalog on {}: {e}", db.name));
    client.batch_execute("COMMIT").await.unwrap();
    check_order(&catalog);
    catalog
}

/// Ids are positions, sections are contiguous and every dependency comes first.
pub fn check_order(c: &Catalog) {
    let mut last = Section::PreData;
    for (i, o) in c.objects.iter().enumerate() {
        assert_eq!(o.id as usize, i);
        assert!(o.section >= last, "section order broken at {}", label(o));
        last = o.section;
        for &d in &o.deps {
            assert!(
                d < o.id,
                "{} depends on later {}",
                label(o),
                label(&c.objects[d as usize])
            );
        }
        assert!(
            o.create_sql.trim_end().ends_with(';'),
            "{} SQL does not end with ';': {}",
            label(o),
            o.create_sql
        );
    }
}

pub fn label(o: &DdlObject) -> String {
    format!("{} {:?}.{}", o.kind, o.schema, o.name)
}

/// Executes every object in order (data section included: sequence values).
pub async fn replay(c: &Catalog, target: &TestDb) {
    let client = target.client().await;
    client.batch_execute(RESTORE_SESSION).await.unwrap();
    for o in &c.objects {
        let mut sql = o.create_sql.clone();
        if let Some(owner) = &o.owner_sql {
            sql += "\n";
            sql += owner;
        }
        if let Err(e) = client.batch_execute(&sql).await {
            let detail = e
                .as_db_error()
                .map(|d| d.message().to_string())
                .unwrap_or_else(|| e.to_string());
            panic!(
                "restoring {} failed: {detail}\n--- SQL ---\n{sql}",
                label(o)
            );
        }
    }
}

/// Restores the schema of `source` into a fresh database and compares pg_dump's view of both.
pub async fn assert_roundtrip(source: &TestDb, opts: &CatalogOptions) -> Catalog {
    let catalog = catalog_of(source, opts).await;
    let target = pgark_testkit::fresh_db().await;
    replay(&catalog, &target).await;
    let (a, b) = (source.pg_dump_schema(), target.pg_dump_schema());
    if a != b {
        let path = std::env::temp_dir().join(format!("{}.diff", source.name));
        std::fs::write(&path, format!("=== source\n{a}\n=== restored\n{b}")).unwrap();
        panic!(
            "pg_dump --schema-only differs after the round trip ({})\n{}",
            path.display(),
            first_difference(&a, &b)
        );
    }
    catalog
}

fn first_difference(a: &str, b: &str) -> String {
    let (la, lb): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    let i = la
        .iter()
        .zip(&lb)
        .position(|(x, y)| x != y)
        .unwrap_or(la.len().min(lb.len()));
    let from = i.saturating_sub(5);
    format!(
        "--- source from line {from}:\n{}\n--- restored:\n{}",
        la[from..(i + 10).min(la.len())].join("\n"),
        lb[from..(i + 10).min(lb.len())].join("\n")
    )
}

/// Creates roles that fixtures use; cluster-wide, so tolerant of other tests doing the same.
pub async fn ensure_roles(db: &TestDb, roles: &[&str]) {
    let client = db.client().await;
    for r in roles {
        let sql = format!(
            "DO $$ BEGIN CREATE ROLE {}; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$",
            pgark_catalog::quote_ident(r)
        );
        client.batch_execute(&sql).await.unwrap();
    }
}

pub fn objects_of<'a>(c: &'a Catalog, kind: &str) -> Vec<&'a DdlObject> {
    c.objects.iter().filter(|o| o.kind == kind).collect()
}

pub fn sql_of(c: &Catalog, kind: &str) -> String {
    objects_of(c, kind)
        .iter()
        .map(|o| o.create_sql.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

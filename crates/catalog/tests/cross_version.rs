//! A catalog read from PostgreSQL 14 restores into 18, and gives the same
//! schema as pg_dump's own 14 -> 18 path (pg_dump 18 on the 14 server,
//! loaded with psql 18). Needs `scripts/get-postgres.sh 14` and `18`.

mod common;

use common::{check_order, RESTORE_SESSION};
use pgark_catalog::{read_catalog, CatalogOptions};
use pgark_sandbox::{Cluster, ClusterOptions};
use std::path::PathBuf;
use std::process::Command;

const EVERY_KIND: &str = include_str!("../../../fixtures/catalog/every_kind.sql");

fn bin_dir(major: u32) -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../../.pg/{major}/bin"));
    dir.join("postgres").exists().then_some(dir)
}

fn start(bin: PathBuf) -> Cluster {
    Cluster::start(ClusterOptions {
        bin_dir: Some(bin),
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("cannot start cluster: {e}"))
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn conn_args<'a>(cmd: &'a mut Command, c: &Cluster, db: &str) -> &'a mut Command {
    cmd.args([
        "-h",
        c.host(),
        "-p",
        &c.port().to_string(),
        "-U",
        c.superuser(),
        "-d",
        db,
    ])
}

/// pg_dump 18 --schema-only of `db`, without comments and random restrict keys.
fn schema_dump(bin: &std::path::Path, c: &Cluster, db: &str) -> String {
    let text = run(conn_args(&mut Command::new(bin.join("pg_dump")), c, db).arg("--schema-only"));
    text.lines()
        .filter(|l| {
            !l.starts_with("--") && !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict")
        })
        .filter(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn cross_version_14_to_18_roundtrip() {
    let (Some(b14), Some(b18)) = (bin_dir(14), bin_dir(18)) else {
        eprintln!("skipped: needs scripts/get-postgres.sh 14 and 18");
        return;
    };
    let old = start(b14);
    let new = start(b18.clone());
    old.create_database("src").await.unwrap();
    let src = old.connect("src").await.unwrap();
    src.batch_execute(EVERY_KIND).await.unwrap();
    src.batch_execute(pgark_sandbox::fixture::LEARNAPP_SCHEMA)
        .await
        .unwrap();
    src.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .await
        .unwrap();
    let catalog = read_catalog(&src, &CatalogOptions::default())
        .await
        .unwrap();
    src.batch_execute("COMMIT").await.unwrap();
    check_order(&catalog);
    assert_eq!(catalog.server_version_num / 10000, 14);

    new.create_database("ours").await.unwrap();
    new.create_database("referee").await.unwrap();
    let target = new.connect("ours").await.unwrap();
    for role in &catalog.roles {
        let sql = format!("CREATE ROLE {}", pgark_catalog::quote_ident(role));
        if role != "postgres" {
            target.batch_execute(&sql).await.unwrap();
        }
    }
    target.batch_execute(RESTORE_SESSION).await.unwrap();
    for o in &catalog.objects {
        let sql = format!(
            "{}\n{}",
            o.create_sql,
            o.owner_sql.clone().unwrap_or_default()
        );
        if let Err(e) = target.batch_execute(&sql).await {
            panic!(
                "restoring {} into 18 failed: {:?}\n{sql}",
                common::label(o),
                e.as_db_error().map(|d| d.message())
            );
        }
    }

    // pg_dump's own path puts the columns of children whose parent gained
    // columns later in another order: check those here, then leave them out.
    let kids = "SELECT string_agg(attrelid::regclass || '.' || attname || ':' || attislocal, ',' \
                ORDER BY attrelid::regclass::text, attnum) FROM pg_attribute \
                WHERE attrelid IN ('\"ünï\"\"cødé\".\"Kid 1\"'::regclass, '\"ünï\"\"cødé\".\"Kid 2\"'::regclass) \
                AND attnum > 0 AND NOT attisdropped";
    let order = |c: tokio_postgres::Client| async move {
        let v: String = c.query_one(kids, &[]).await.unwrap().get(0);
        c.batch_execute("DROP TABLE \"ünï\"\"cødé\".\"Kid 1\", \"ünï\"\"cødé\".\"Kid 2\"")
            .await
            .unwrap();
        v
    };
    let (src_order, our_order) = (order(src).await, order(target).await);
    assert_eq!(src_order, our_order);

    let dump =
        run(conn_args(&mut Command::new(b18.join("pg_dump")), &old, "src").arg("--schema-only"));
    let script = std::env::temp_dir().join(format!("pgark-cross-{}.sql", std::process::id()));
    std::fs::write(&script, dump).unwrap();
    run(
        conn_args(&mut Command::new(b18.join("psql")), &new, "referee")
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-f"])
            .arg(&script),
    );
    let _ = std::fs::remove_file(&script);

    let (ours, referee) = (
        schema_dump(&b18, &new, "ours"),
        schema_dump(&b18, &new, "referee"),
    );
    if ours != referee {
        let path = std::env::temp_dir().join("pgark-cross-version.diff");
        std::fs::write(&path, format!("=== referee\n{referee}\n=== ours\n{ours}")).unwrap();
        panic!(
            "14 -> 18 differs from pg_dump's own result; see {}",
            path.display()
        );
    }
}

//! Snapshot before migrating, run the migration, roll back on failure, verify.
//!
//! ```sh
//! cargo run -p pgark --example pre_migration_snapshot -- postgres://app@localhost/learn
//! ```
//!
//! The migration here fails on purpose half-way (after changing column types),
//! to show the rollback: the database comes back exactly as it was.

use pgark::{ConnParams, Dump, Rollback};
use std::path::Path;

/// The migration under test: every `timestamp` column of `users` becomes
/// `timestamptz`, then a statement fails.
const MIGRATION: &str = "
    ALTER TABLE public.users ALTER COLUMN created_at TYPE timestamptz USING created_at AT TIME ZONE 'UTC';
    SELECT 1 / 0;
";

pub async fn run(conninfo: &str, archive: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let db = ConnParams::resolve(Some(conninfo), &Default::default())?;

    // 1. Snapshot, critical tables first so they can be restored on their own.
    let backup = Dump::new(db.clone())
        .jobs(2)
        .critical(["public.users"])
        .label("before timestamptz migration")
        .to_file(archive)
        .await?;
    println!(
        "backed up {} rows into {} bytes",
        backup.rows(),
        backup.archive_bytes
    );

    // 2. Prove the snapshot is intact before relying on it.
    pgark::verify(archive)?;

    // 3. Migrate (autocommit: the first statement sticks when the second fails).
    let (client, connection) = tokio_postgres::connect(conninfo, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    if let Err(e) = client.batch_execute(MIGRATION).await {
        println!("migration failed ({e}); rolling back");
        drop(client);
        // 4. Roll back everything: rebuilt beside, then swapped in.
        let report = Rollback::new(db.clone(), archive).full().await?;
        println!("rolled back {} rows", report.rows);
    }

    // 5. Verify the database holds exactly the snapshot's rows, table by table.
    let checks = pgark::compare(&db, archive).await?;
    let differ: Vec<&str> = checks
        .iter()
        .filter(|t| !t.ok())
        .map(|t| t.table.as_str())
        .collect();
    if !differ.is_empty() {
        return Err(format!("tables differ from the snapshot: {}", differ.join(", ")).into());
    }
    println!("all {} tables match the snapshot", checks.len());
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let conninfo = std::env::args()
        .nth(1)
        .ok_or("usage: pre_migration_snapshot CONNINFO")?;
    let dir = std::env::temp_dir().join("pgark-example.pgark");
    run(&conninfo, &dir).await
}

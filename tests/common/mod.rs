//! Helpers shared by the end-to-end tests.

use pgark::ConnParams;
use pgark_testkit::TestDb;
use std::path::PathBuf;

pub fn params(db: &TestDb) -> ConnParams {
    ConnParams::resolve(Some(&db.conninfo()), &Default::default()).expect("test conninfo parses")
}

/// A temporary directory and an archive path inside it.
pub fn archive_path() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("backup.pgark");
    (dir, path)
}

/// Every table's rows (sorted text), keyed by table: equal maps, equal data.
pub async fn all_rows(db: &TestDb) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for t in db.all_tables().await {
        let rows = db.table_rows(&t).await;
        out.push((t, rows));
    }
    out
}

/// Asserts that two databases have the same schema (pg_dump as referee) and data.
pub async fn assert_same_database(a: &TestDb, b: &TestDb) {
    let (sa, sb) = (a.pg_dump_schema(), b.pg_dump_schema());
    if sa != sb {
        let diff: Vec<String> = sa
            .lines()
            .zip(sb.lines())
            .filter(|(x, y)| x != y)
            .take(10)
            .map(|(x, y)| format!("- {x}\n+ {y}"))
            .collect();
        panic!(
            "schemas differ ({} vs {} lines):\n{}",
            sa.lines().count(),
            sb.lines().count(),
            diff.join("\n")
        );
    }
    let (ra, rb) = (all_rows(a).await, all_rows(b).await);
    assert_eq!(ra.len(), rb.len(), "table count");
    for ((ta, rows_a), (tb, rows_b)) in ra.iter().zip(&rb) {
        assert_eq!(ta, tb);
        assert!(
            rows_a == rows_b,
            "rows of {ta} differ ({} vs {})",
            rows_a.len(),
            rows_b.len()
        );
    }
}

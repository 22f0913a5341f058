//! The upgrade path: an archive dumped from PostgreSQL 14 restores into 18
//! and gives the same database as pg_dump's own upgrade path (pg_dump 18 on
//! the 14 server, replayed by psql 18). Needs `scripts/get-postgres.sh 14` and `18` (scripts/test.sh
//! fetches them); elsewhere the test says so and passes only outside CI.

use pgark::{Dump, Restore};
use pgark_e2e::{archive_path, assert_same_database, params};
use pgark_testkit::{fixture, fresh_db_for_major};
use std::io::Write;
use std::process::{Command, Stdio};

fn available(major: u32) -> bool {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../.pg/{major}/bin/postgres"));
    if dir.exists() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "PostgreSQL {major} is missing in CI: run scripts/get-postgres.sh {major}"
    );
    eprintln!("NOTE: PostgreSQL {major} not installed (scripts/get-postgres.sh {major}); upgrade test not run");
    false
}

#[tokio::test]
async fn upgrade_roundtrip_archive_from_14_restores_into_18() {
    if !available(14) || !available(18) {
        return;
    }
    let old = fresh_db_for_major(14).await;
    fixture::load_learnapp(&old.client().await, 1)
        .await
        .unwrap();
    let (_dir, path) = archive_path();
    Dump::new(params(&old))
        .jobs(2)
        .to_file(&path)
        .await
        .unwrap();

    let upgraded = fresh_db_for_major(18).await;
    Restore::new(params(&upgraded), &path)
        .jobs(2)
        .run()
        .await
        .unwrap();
    let referee = fresh_db_for_major(18).await;
    let new = referee.cluster();
    let script = run(Command::new(new.bin("pg_dump")).args(conn(old.cluster(), &old.name)));
    let mut psql = Command::new(new.bin("psql"));
    psql.args(["-X", "-q", "-v", "ON_ERROR_STOP=1"])
        .args(conn(new, &referee.name))
        .stdin(Stdio::piped())
        .stdout(Stdio::null());
    let mut child = psql.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    assert!(
        child.wait().unwrap().success(),
        "psql could not replay pg_dump's script"
    );
    assert_same_database(&referee, &upgraded).await;
}

fn conn(c: &pgark_testkit::Cluster, db: &str) -> Vec<String> {
    [
        "-h",
        c.host(),
        "-p",
        &c.port().to_string(),
        "-U",
        c.superuser(),
        "-d",
        db,
    ]
    .map(String::from)
    .to_vec()
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

//! Least privilege, as the guide promises: a database owner with CREATEDB
//! and no superuser can dump, restore and roll back; without CREATEDB a full
//! rollback fails up front, naming the privilege, and changes nothing.

mod common;

use common::*;
use pgark_testkit::{fresh_db, TestDb};

/// A non-superuser login role owning `db` and every object in it.
async fn make_owner(db: &TestDb, role: &str, createdb: bool) {
    let createdb = if createdb { "CREATEDB" } else { "NOCREATEDB" };
    db.exec(&format!(
        "DO $$ BEGIN CREATE ROLE {role} LOGIN {createdb};
         EXCEPTION WHEN duplicate_object THEN NULL; END $$;
         ALTER DATABASE {db} OWNER TO {role};
         ALTER SCHEMA public OWNER TO {role};",
        db = db.name
    ))
    .await;
}

/// The small schema created by `role` itself, so it owns everything.
async fn owned_db(role: &str, createdb: bool) -> TestDb {
    let db = fresh_db().await;
    make_owner(&db, role, createdb).await;
    db.exec(&format!("SET ROLE {role}; {SMALL_SCHEMA}")).await;
    db
}

fn url_as(db: &TestDb, role: &str) -> String {
    format!(
        "postgres://{role}@127.0.0.1:{}/{}",
        db.cluster().port(),
        db.name
    )
}

async fn databases_like(db: &TestDb, prefix: &str) -> Vec<String> {
    db.query_strings(&format!(
        "SELECT datname FROM pg_database WHERE datname LIKE '{prefix}%' ORDER BY 1"
    ))
    .await
    .into_iter()
    .flatten()
    .collect()
}

/// Every session pgark opens, the maintenance ones that create, rename and
/// drop databases too, overrides a role's statement_timeout and lock_timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_with_a_tiny_statement_timeout_still_rolls_back() {
    let role = role_name("hasty");
    let db = owned_db(&role, true).await;
    db.exec(&format!(
        "ALTER ROLE {role} SET statement_timeout = '1ms'; ALTER ROLE {role} SET lock_timeout = '1ms'"
    ))
    .await;
    let original = db_state(&db).await;
    let (_dir, file) = archive_path();
    let url = url_as(&db, &role);
    run(pgark(["dump", "-q", "-d", &url, "-f", s(&file)]))
        .await
        .expect_ok();
    db.exec("DROP TABLE public.orders").await;
    run(pgark(["rollback", "--yes", "-q", "-d", &url, s(&file)]))
        .await
        .expect_ok();
    assert_eq!(db_state(&db).await, original);
    run(pgark(["verify", "--restore-test", &url, s(&file)]))
        .await
        .expect_ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_with_createdb_dumps_restores_and_rolls_back() {
    let role = role_name("owner");
    let db = owned_db(&role, true).await;
    let original = db_state(&db).await;
    let (_dir, file) = archive_path();
    run(pgark([
        "dump",
        "-q",
        "--critical",
        "public.users",
        "-d",
        &url_as(&db, &role),
        "-f",
        s(&file),
    ]))
    .await
    .expect_ok();

    let target = fresh_db().await;
    make_owner(&target, &role, true).await;
    run(pgark([
        "restore",
        "-q",
        "-d",
        &url_as(&target, &role),
        s(&file),
    ]))
    .await
    .expect_ok();
    assert_eq!(db_state(&target).await, original, "restored copy");

    db.exec("UPDATE public.users SET name = 'broken'").await;
    run(pgark([
        "rollback",
        "--yes",
        "--critical",
        "-d",
        &url_as(&db, &role),
        s(&file),
    ]))
    .await
    .expect_ok();
    assert_eq!(db_state(&db).await, original, "after partial rollback");

    db.exec("DROP TABLE public.orders; ALTER TABLE public.users ADD COLUMN extra int")
        .await;
    run(pgark([
        "rollback",
        "--yes",
        "-d",
        &url_as(&db, &role),
        s(&file),
    ]))
    .await
    .expect_ok();
    assert_eq!(db_state(&db).await, original, "after full rollback");
    assert_eq!(
        databases_like(&db, &db.name).await,
        vec![db.name.clone()],
        "no database left beside the original"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_rollback_without_createdb_fails_up_front_and_changes_nothing() {
    let role = role_name("owner_nocreatedb");
    let db = owned_db(&role, false).await;
    let (_dir, file) = archive_path();
    run(pgark([
        "dump",
        "-q",
        "-d",
        &url_as(&db, &role),
        "-f",
        s(&file),
    ]))
    .await
    .expect_ok();
    db.exec("UPDATE public.users SET name = 'changed after the backup'")
        .await;
    let before = db_state(&db).await;
    let out = run(pgark([
        "rollback",
        "--yes",
        "-d",
        &url_as(&db, &role),
        s(&file),
    ]))
    .await;
    out.expect_error(&["CREATEDB"]);
    assert_unchanged(&db, &before).await;
    assert_eq!(
        databases_like(&db, &db.name).await,
        vec![db.name.clone()],
        "no database left beside the original"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_rollback_by_a_role_that_does_not_own_the_database_changes_nothing() {
    let owner = role_name("owner_real");
    let db = owned_db(&owner, true).await;
    let (_dir, file) = archive_path();
    run(pgark([
        "dump",
        "-q",
        "-d",
        &url_as(&db, &owner),
        "-f",
        s(&file),
    ]))
    .await
    .expect_ok();
    let stranger = role_name("stranger");
    db.exec(&format!("CREATE ROLE {stranger} LOGIN CREATEDB"))
        .await;
    db.exec("UPDATE public.users SET name = 'changed'").await;
    let before = db_state(&db).await;
    let out = run(pgark([
        "rollback",
        "--yes",
        "-d",
        &url_as(&db, &stranger),
        s(&file),
    ]))
    .await;
    out.expect_code(1);
    out.error_line();
    assert_unchanged(&db, &before).await;
    assert_eq!(databases_like(&db, &db.name).await, vec![db.name.clone()]);
}

//! The library example runs against a real database and rolls it back.

#[path = "../crates/pgark/examples/pre_migration_snapshot.rs"]
#[allow(dead_code)]
mod example;

#[tokio::test]
async fn pre_migration_snapshot_example_rolls_back_a_failed_migration() {
    let db = pgark_testkit::fresh_learnapp_db(1).await;
    let schema_before = db.pg_dump_schema();
    let (_dir, archive) = pgark_e2e::archive_path();
    example::run(&db.conninfo(), &archive).await.unwrap();
    assert_eq!(
        db.pg_dump_schema(),
        schema_before,
        "the failed migration was not rolled back"
    );
}

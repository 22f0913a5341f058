//! The migration safety net: back up, migrate TIMESTAMP → TIMESTAMPTZ, roll
//! back everything or only the critical tables, and prove the result.

use pgark::{Dump, Rollback};
use pgark_e2e::{all_rows, archive_path, assert_same_database, params};
use pgark_testkit::{fixture, fresh_db, fresh_learnapp_db, TestDb};

const CRITICAL: [&str; 3] = fixture::LEARNAPP_CRITICAL_TABLES;

/// The migration of the issue: every timestamp column of the public tables
/// becomes timestamptz, old values read as UTC. Views are dropped and
/// recreated around it, as a hand-written migration does.
async fn migrate(db: &TestDb) -> usize {
    let cols = db
        .query_strings(
            "SELECT format('ALTER TABLE %I.%I ALTER COLUMN %I TYPE timestamptz USING %I AT TIME ZONE ''UTC''', \
                    n.nspname, c.relname, a.attname, a.attname) \
             FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind = 'r' AND n.nspname = 'public' AND a.attnum > 0 AND NOT a.attisdropped \
               AND a.atttypid = 'timestamp'::regtype",
        )
        .await;
    let views = db
        .query_strings(
            "SELECT format('CREATE VIEW %I.%I AS %s', n.nspname, c.relname, pg_get_viewdef(c.oid)) \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'v' AND n.nspname = 'public'",
        )
        .await;
    let drops = db
        .query_strings(
            "SELECT format('DROP VIEW %I.%I;', n.nspname, c.relname) \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'v' AND n.nspname = 'public'",
        )
        .await;
    let mut sql = String::from("BEGIN;");
    for s in drops.iter().flatten() {
        sql.push_str(s);
    }
    for s in cols.iter().flatten() {
        sql.push_str(s);
        sql.push(';');
    }
    for s in views.iter().flatten() {
        sql.push_str(s);
    }
    sql.push_str("COMMIT;");
    db.exec(&sql).await;
    cols.len()
}

#[tokio::test]
async fn full_rollback_undoes_the_timestamptz_migration_exactly() {
    let db = fresh_learnapp_db(5).await;
    let reference = fresh_db().await;
    let (_dir, path) = archive_path();
    Dump::new(params(&db))
        .critical(CRITICAL)
        .to_file(&path)
        .await
        .unwrap();
    pgark::Restore::new(params(&reference), &path)
        .run()
        .await
        .unwrap();
    let before = db.pg_dump_schema();
    assert!(migrate(&db).await >= 60);
    db.exec("DELETE FROM public.review_logs WHERE id % 2 = 0")
        .await;
    assert_ne!(db.pg_dump_schema(), before);
    // Another session stays connected: the rollback must end it.
    let idle = db.client().await;
    Rollback::new(params(&db), &path).full().await.unwrap();
    assert!(
        idle.simple_query("SELECT 1").await.is_err(),
        "the old session survived"
    );
    assert_eq!(db.pg_dump_schema(), before);
    assert_same_database(&db, &reference).await;
}

#[tokio::test]
async fn full_rollback_refuses_another_database() {
    let db = fresh_learnapp_db(1).await;
    let other = fresh_db().await;
    let (_dir, path) = archive_path();
    Dump::new(params(&db)).to_file(&path).await.unwrap();
    let err = Rollback::new(params(&other), &path)
        .full()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not \""), "{err}");
}

#[tokio::test]
async fn critical_rollback_converts_into_the_migrated_schema_at_the_stated_zone() {
    let db = fresh_learnapp_db(5).await;
    let (_dir, path) = archive_path();
    Dump::new(params(&db))
        .critical(CRITICAL)
        .to_file(&path)
        .await
        .unwrap();
    // The instants the migration means: each timestamp read as UTC.
    let expected = db
        .query_strings("SELECT string_agg(id || ' ' || (created_at AT TIME ZONE 'UTC')::text, ',' ORDER BY id) FROM public.users")
        .await;
    migrate(&db).await;
    // A session time zone far from UTC must not change the restored instants.
    db.exec(&format!(
        "ALTER DATABASE {} SET TimeZone = 'Pacific/Kiritimati'",
        db.name
    ))
    .await;
    let migrated_schema = db.pg_dump_schema();
    db.exec("UPDATE public.users SET created_at = now(); DELETE FROM public.spaced_repetition_cards WHERE id % 4 = 0").await;
    // After the damage (the DELETE cascades into review_logs): the rollback must not touch it.
    let untouched_before = db.table_rows("public.review_logs").await;
    let reports = Rollback::new(params(&db), &path).critical().await.unwrap();
    assert_eq!(reports.len(), 3);
    let users = reports.iter().find(|r| r.table.contains("users")).unwrap();
    assert!(
        users
            .conversions
            .iter()
            .any(|c| c.contains("timestamp without time zone -> timestamp with time zone")),
        "{:?}",
        users.conversions
    );
    assert_eq!(
        db.pg_dump_schema(),
        migrated_schema,
        "the schema must stay migrated"
    );
    let got = db
        .query_strings("SET TimeZone = 'UTC'; SELECT string_agg(id || ' ' || created_at::text, ',' ORDER BY id) FROM public.users")
        .await;
    assert_eq!(got, expected);
    assert!(
        db.table_rows("public.review_logs").await == untouched_before,
        "a non-critical table changed"
    );
}

#[tokio::test]
async fn partial_rollback_keeps_rows_that_reference_the_table() {
    let db = fresh_db().await;
    db.exec(
        "CREATE TABLE parent (id int PRIMARY KEY, name text);
         CREATE TABLE child (id int PRIMARY KEY, parent_id int REFERENCES parent ON DELETE CASCADE);
         CREATE TABLE audit (n int);
         CREATE FUNCTION stamp() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN NEW.name := 'trigger fired'; RETURN NEW; END$$;
         CREATE TRIGGER parent_stamp BEFORE INSERT ON parent FOR EACH ROW EXECUTE FUNCTION stamp();
         ALTER TABLE parent DISABLE TRIGGER parent_stamp;
         INSERT INTO parent VALUES (1, 'one'), (2, 'two'), (3, 'three');
         ALTER TABLE parent ENABLE TRIGGER parent_stamp;
         INSERT INTO child VALUES (10, 1), (20, 2);
         INSERT INTO audit VALUES (1);",
    )
    .await;
    let (_dir, path) = archive_path();
    Dump::new(params(&db)).to_file(&path).await.unwrap();
    let parent_before = db.table_rows("public.parent").await;
    let schema_before = db.pg_dump_schema();
    db.exec("UPDATE parent SET name = 'changed'; INSERT INTO child VALUES (30, 3); INSERT INTO audit VALUES (2)").await;
    let reports = Rollback::new(params(&db), &path)
        .tables(["parent"])
        .await
        .unwrap();
    assert_eq!(reports[0].rows, 3);
    assert_eq!(
        db.table_rows("public.parent").await,
        parent_before,
        "the trigger must not fire on restored rows"
    );
    assert_eq!(
        db.table_rows("public.child").await.len(),
        3,
        "referencing rows must survive"
    );
    assert_eq!(
        db.table_rows("public.audit").await.len(),
        2,
        "other tables are untouched"
    );
    assert_eq!(
        db.pg_dump_schema(),
        schema_before,
        "constraints and triggers are back as they were"
    );

    // A referencing row whose parent is not in the backup: the keys are
    // checked at the end and nothing changes.
    db.exec("INSERT INTO parent VALUES (4, 'four'); INSERT INTO child VALUES (40, 4); UPDATE parent SET name = 'x' WHERE id = 1").await;
    let before = all_rows(&db).await;
    let err = Rollback::new(params(&db), &path)
        .tables(["parent"])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("nothing was changed"), "{err}");
    assert_eq!(all_rows(&db).await, before);
    assert_eq!(db.pg_dump_schema(), schema_before);
}

#[tokio::test]
async fn timestamps_survive_any_client_time_zone_and_datestyle() {
    let db = fresh_db().await;
    db.exec(&format!(
        "ALTER DATABASE {} SET TimeZone = 'America/St_Johns'; ALTER DATABASE {} SET DateStyle = 'SQL, DMY';",
        db.name, db.name
    ))
    .await;
    db.exec(
        "CREATE TABLE t (a timestamp, b timestamptz, c date, d interval);
         INSERT INTO t VALUES ('2024-03-10 02:30:00.123456', '2024-03-10 02:30:00.5+00', '0044-03-15 BC', '1 year 2 mons -3 days 04:05:06.7'),
                              ('infinity', '-infinity', 'epoch', '-1 day'), (NULL, NULL, NULL, NULL);",
    )
    .await;
    let (_dir, path) = archive_path();
    Dump::new(params(&db)).to_file(&path).await.unwrap();
    let dst = fresh_db().await;
    dst.exec(&format!("ALTER DATABASE {} SET TimeZone = 'Asia/Kathmandu'; ALTER DATABASE {} SET DateStyle = 'German';", dst.name, dst.name)).await;
    pgark::Restore::new(params(&dst), &path)
        .run()
        .await
        .unwrap();
    let q = "SET TimeZone = 'UTC'; SET DateStyle = ISO; SET IntervalStyle = postgres; SELECT string_agg(t::text, '|' ORDER BY t::text) FROM t";
    assert_eq!(db.query_strings(q).await, dst.query_strings(q).await);
}

#[tokio::test]
async fn full_rollback_keeps_database_settings_comment_and_privileges() {
    let db = fresh_learnapp_db(1).await;
    db.exec(&format!(
        "DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'e2e_app') THEN CREATE ROLE e2e_app; END IF; END$$;
         ALTER DATABASE {0} SET work_mem = '7MB'; COMMENT ON DATABASE {0} IS 'the app';
         REVOKE CONNECT, TEMP ON DATABASE {0} FROM PUBLIC; GRANT CONNECT ON DATABASE {0} TO e2e_app;
         ALTER DATABASE {0} CONNECTION LIMIT 50;",
        db.name
    ))
    .await;
    let props = format!(
        "SELECT concat_ws(' | ', datconnlimit, shobj_description(d.oid, 'pg_database'), datacl::text, \
                (SELECT setconfig::text FROM pg_db_role_setting WHERE setdatabase = d.oid AND setrole = 0)) \
         FROM pg_database d WHERE datname = '{}'",
        db.name
    );
    let before = db.query_strings(&props).await;
    let (_dir, path) = archive_path();
    Dump::new(params(&db)).to_file(&path).await.unwrap();
    Rollback::new(params(&db), &path).full().await.unwrap();
    assert_eq!(db.query_strings(&props).await, before);
}

#[tokio::test]
async fn partial_rollback_of_a_big_table_rebuilds_its_indexes_exactly() {
    let db = fresh_db().await;
    db.exec(
        "CREATE TABLE kinds (id int PRIMARY KEY);
         INSERT INTO kinds SELECT generate_series(0, 9);
         CREATE TABLE big (id bigint PRIMARY KEY, kind int NOT NULL REFERENCES kinds, code text, note text,
                           CONSTRAINT big_code_key UNIQUE (code));
         CREATE INDEX big_lower_note ON big (lower(note)) WHERE kind > 2;
         CREATE INDEX big_kind ON big (kind);
         CREATE UNIQUE INDEX big_repl ON big (id, kind);
         ALTER TABLE big REPLICA IDENTITY USING INDEX big_repl;
         COMMENT ON INDEX big_kind IS 'kept as it is';
         CREATE TABLE refs (big_id bigint REFERENCES big);
         INSERT INTO big SELECT g, g % 10, 'c' || g, repeat(md5(g::text), 2) FROM generate_series(1, 120000) g;
         INSERT INTO refs SELECT g FROM generate_series(1, 1000) g;",
    )
    .await;
    let (_dir, path) = archive_path();
    Dump::new(params(&db)).to_file(&path).await.unwrap();
    let chunks = pgark::list(&path)
        .unwrap()
        .trailer
        .tables
        .iter()
        .map(|t| t.chunks)
        .max()
        .unwrap();
    assert!(
        chunks >= 4,
        "the table must be big enough to set its indexes aside ({chunks} chunks)"
    );
    let schema = db.pg_dump_schema();
    let rows = db.table_rows("public.big").await;
    db.exec("UPDATE big SET note = 'changed' WHERE id % 7 = 0; DELETE FROM big WHERE id > 110000")
        .await;
    Rollback::new(params(&db), &path)
        .tables(["public.big"])
        .await
        .unwrap();
    assert_eq!(
        db.pg_dump_schema(),
        schema,
        "indexes, constraints, comments and replica identity come back as they were"
    );
    assert!(db.table_rows("public.big").await == rows);
    assert_eq!(db.table_rows("public.refs").await.len(), 1000);
}

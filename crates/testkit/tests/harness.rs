//! The harness proven against a real throwaway cluster.

use std::path::Path;
use std::process::Command;

use pgark_testkit::{
    cluster, cluster_for_major, fixture, fresh_db, fresh_db_for_major, fresh_learnapp_db, Cluster,
    ClusterOptions,
};

#[tokio::test]
async fn objects_created_in_a_fresh_db_read_back() {
    let db = fresh_db().await;
    db.exec(
        "CREATE TABLE public.notes (id int PRIMARY KEY, body text, at timestamp);
         INSERT INTO public.notes VALUES (1, E'tab\\there', '2024-03-31 02:30:00.123456'), (2, NULL, NULL);",
    )
    .await;
    assert_eq!(db.all_tables().await, ["public.notes"]);
    assert_eq!(
        db.table_rows("public.notes").await,
        [r#"(1,"tab	here","2024-03-31 02:30:00.123456")"#, "(2,,)"]
    );
    let client = db.client().await;
    let row = client
        .query_one("SELECT current_database(), current_user", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), db.name);
    assert_eq!(row.get::<_, String>(1), "postgres");
}

#[tokio::test]
async fn fresh_dbs_are_isolated() {
    let a = fresh_db().await;
    let b = fresh_db().await;
    assert_ne!(a.name, b.name);
    a.exec("CREATE SCHEMA only_in_a; CREATE TABLE only_in_a.t (x int)")
        .await;
    assert_eq!(a.all_tables().await, ["only_in_a.t"]);
    assert!(b.all_tables().await.is_empty());
}

#[tokio::test]
async fn url_and_conninfo_reach_the_same_database() {
    let db = fresh_db().await;
    for conn in [db.url(), db.conninfo()] {
        let (client, connection) = tokio_postgres::connect(&conn, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        let name: String = client
            .query_one("SELECT current_database()", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(name, db.name, "via {conn}");
    }
}

#[tokio::test]
async fn pg_dump_referee_tells_equal_from_different_schemas() {
    let ddl = "CREATE TYPE mood AS ENUM ('ok', 'meh');
               CREATE TABLE people (id serial PRIMARY KEY, mood mood, seen timestamp);
               CREATE INDEX people_seen ON people (seen) WHERE seen IS NOT NULL;";
    let a = fresh_db().await;
    let b = fresh_db().await;
    let c = fresh_db().await;
    a.exec(ddl).await;
    b.exec(ddl).await;
    c.exec(ddl).await;
    c.exec("ALTER TABLE people ADD COLUMN extra text").await;
    let dump_a = a.pg_dump_schema();
    assert!(dump_a.contains("CREATE TABLE public.people"), "{dump_a}");
    assert!(
        !dump_a.contains(&a.name),
        "database name leaks into the dump"
    );
    assert_eq!(dump_a, b.pg_dump_schema());
    assert_ne!(dump_a, c.pg_dump_schema());
}

#[tokio::test]
async fn learnapp_fixture_has_its_tables_and_timestamp_columns() {
    let db = fresh_learnapp_db(1).await;
    let count = |sql: &'static str| {
        let db = &db;
        async move {
            db.query_strings(sql).await[0]
                .clone()
                .unwrap()
                .parse::<i64>()
                .unwrap()
        }
    };
    assert_eq!(db.all_tables().await.len(), 24);
    let ts_columns = count(
        "SELECT count(*) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
         WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'
           AND a.atttypid = 'timestamp'::regtype AND NOT a.attisdropped",
    )
    .await;
    assert_eq!(ts_columns, 75);
    assert_eq!(
        count("SELECT count(*) FROM pg_views WHERE schemaname = 'public'").await,
        1
    );
    assert_eq!(
        count("SELECT count(*) FROM pg_type WHERE typtype = 'e' AND typname = 'question_kind'")
            .await,
        1
    );
    assert_eq!(
        count("SELECT count(*) FROM pg_trigger WHERE tgname = 'set_updated_at'").await,
        12
    );
    assert_eq!(
        count("SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND condeferrable").await,
        1
    );
    assert_eq!(
        count("SELECT count(*) FROM pg_attribute WHERE attrelid = 'public.question_attempts'::regclass AND attidentity = 'a'").await,
        1
    );
    assert_eq!(
        count("SELECT count(*) FROM pg_index WHERE indpred IS NOT NULL").await,
        2
    );
    // Every table holds data, and the generator left nothing behind.
    for table in db.all_tables().await {
        assert!(!db.table_rows(&table).await.is_empty(), "{table} is empty");
    }
    assert_eq!(
        count("SELECT count(*) FROM pg_proc WHERE proname LIKE 'learnapp%'").await,
        0
    );
    let users = count("SELECT count(*) FROM public.users").await;
    let attempts = count("SELECT count(*) FROM public.question_attempts").await;
    assert_eq!((users, attempts), (100, 3000));
    for table in fixture::LEARNAPP_CRITICAL_TABLES {
        assert!(db.all_tables().await.iter().any(|t| t == table), "{table}");
    }
}

#[tokio::test]
async fn learnapp_data_is_deterministic() {
    let a = fresh_learnapp_db(1).await;
    let b = fresh_learnapp_db(1).await;
    for table in a.all_tables().await {
        assert_eq!(
            a.table_rows(&table).await,
            b.table_rows(&table).await,
            "{table}"
        );
    }
    assert_eq!(a.pg_dump_schema(), b.pg_dump_schema());
}

#[tokio::test]
async fn learnapp_data_has_its_edge_cases() {
    let db = fresh_learnapp_db(1).await;
    let edge_cases = [
        "SELECT count(*) FROM public.comments WHERE body = E'\\\\.'",
        "SELECT count(*) FROM public.comments WHERE strpos(body, E'\\n\\\\.\\n') > 0",
        "SELECT count(*) FROM public.comments WHERE body LIKE E'%\\t%'",
        "SELECT count(*) FROM public.users WHERE display_name = ''",
        "SELECT count(*) FROM public.users WHERE display_name = 'NULL'",
        "SELECT count(*) FROM public.users WHERE display_name IS NULL",
        "SELECT count(*) FROM public.users WHERE last_login_at >= '2024-03-31 02:00' AND last_login_at < '2024-03-31 03:00'",
        "SELECT count(*) FROM public.question_attempts WHERE started_at >= '2024-11-03 01:00' AND started_at < '2024-11-03 02:00'",
        "SELECT count(*) FROM public.question_attempts WHERE extract(microseconds FROM started_at)::bigint % 1000000 <> 0",
        "SELECT count(*) FROM public.spaced_repetition_cards WHERE due_at = '9999-12-31 23:59:59.999999'",
        "SELECT count(*) FROM public.feature_flags WHERE enabled_from = '-infinity'",
        "SELECT count(*) FROM public.feature_flags WHERE enabled_from < '0001-01-01'",
        "SELECT count(*) FROM public.feature_flags WHERE enabled_from::text = '294276-12-31 23:59:59.999999'",
        "SELECT count(*) FROM public.users WHERE position('\\x00'::bytea IN password_hash) > 0",
    ];
    for sql in edge_cases {
        let n: i64 = db.query_strings(sql).await[0]
            .as_deref()
            .unwrap()
            .parse()
            .unwrap();
        assert!(n > 0, "no row for: {sql}");
    }
}

#[tokio::test]
async fn password_roles_need_their_password() {
    let db = fresh_db().await;
    let role = format!("pw_{}", db.name);
    cluster()
        .create_password_role(&role, "s3cr'et")
        .await
        .unwrap();
    let base = format!(
        "host=127.0.0.1 port={} dbname={} user={role}",
        cluster().port(),
        db.name
    );
    let without = tokio_postgres::connect(&base, tokio_postgres::NoTls).await;
    assert!(without.is_err(), "connected without a password");
    let with = format!("{base} password='s3cr\\'et'");
    let (client, connection) = tokio_postgres::connect(&with, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let who: String = client
        .query_one("SELECT current_user", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(who, role);
}

#[tokio::test]
async fn own_cluster_survives_restart_and_is_gone_after_drop() {
    let own = Cluster::start(ClusterOptions {
        extra_conf: vec![("work_mem".into(), "7MB".into())],
        ..ClusterOptions::default()
    })
    .unwrap();
    assert_ne!(own.port(), cluster().port());
    own.create_database("keep").await.unwrap();
    let client = own.connect("keep").await.unwrap();
    client
        .batch_execute("CREATE TABLE t (x int); INSERT INTO t VALUES (42)")
        .await
        .unwrap();
    let work_mem: String = client.query_one("SHOW work_mem", &[]).await.unwrap().get(0);
    assert_eq!(work_mem, "7MB");

    own.stop_immediate().unwrap();
    assert!(client.query_one("SELECT 1", &[]).await.is_err());
    own.stop_immediate().unwrap(); // already stopped: fine
    own.restart().unwrap();
    let client = own.connect("keep").await.unwrap();
    let x: i32 = client
        .query_one("SELECT x FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(x, 42);

    own.append_conf(&[("work_mem", "9MB")]).unwrap();
    own.reload().unwrap();
    let mut seen = String::new();
    for _ in 0..100 {
        let fresh = own.connect("keep").await.unwrap();
        seen = fresh.query_one("SHOW work_mem", &[]).await.unwrap().get(0);
        if seen == "9MB" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(seen, "9MB");

    let data_dir = own.data_dir().to_path_buf();
    let pid = postmaster_pid(&data_dir);
    drop(own);
    assert!(!data_dir.exists(), "{} still exists", data_dir.display());
    assert!(gone(pid), "postmaster {pid} still running");
}

#[test]
fn server_binaries_belong_to_the_cluster() {
    let c = cluster();
    assert!(c.bin("pg_dump").is_file());
    assert!(c.version_num() >= 140000, "{}", c.version_num());
    let data_version = std::fs::read_to_string(c.data_dir().join("PG_VERSION")).unwrap();
    assert_eq!(
        data_version.trim().parse::<u32>().unwrap(),
        c.version_num() / 10000
    );
    if let Ok(major) = std::env::var("PGARK_PG_VERSION") {
        assert_eq!(c.version_num() / 10000, major.parse::<u32>().unwrap());
    }
}

/// Run by `panicking_test_leaves_no_server_behind` in a child process: it
/// starts the shared cluster, records where, then panics.
#[test]
fn child_starts_cluster_then_panics() {
    let Ok(report) = std::env::var("PGARK_TESTKIT_PANIC_REPORT") else {
        return;
    };
    let c = cluster();
    let pid = postmaster_pid(c.data_dir());
    std::fs::write(&report, format!("{}\n{pid}\n", c.data_dir().display())).unwrap();
    panic!("deliberate panic with a running cluster");
}

#[test]
fn panicking_test_leaves_no_server_behind() {
    let report = std::env::temp_dir().join(format!("pgark-testkit-panic-{}", std::process::id()));
    let status = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_starts_cluster_then_panics",
            "--test-threads=1",
        ])
        .env("PGARK_TESTKIT_PANIC_REPORT", &report)
        .output()
        .unwrap();
    assert!(
        !status.status.success(),
        "the child test should have failed"
    );
    let text = std::fs::read_to_string(&report).unwrap();
    std::fs::remove_file(&report).unwrap();
    let mut lines = text.lines();
    let data_dir = lines.next().unwrap();
    let pid = lines.next().unwrap();
    assert!(!Path::new(data_dir).exists(), "{data_dir} left behind");
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "postmaster {pid} left running"
    );
}

fn postmaster_pid(data_dir: &Path) -> u32 {
    let pidfile = std::fs::read_to_string(data_dir.join("postmaster.pid")).unwrap();
    pidfile.lines().next().unwrap().trim().parse().unwrap()
}

/// The postmaster deletes its pid file a moment before it exits, so give it
/// a few seconds.
fn gone(pid: u32) -> bool {
    for _ in 0..250 {
        if !running(pid) {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    false
}

/// A zombie (state Z, after the process name) no longer runs.
fn running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

#[tokio::test]
async fn pw_prefixed_roles_need_a_password_from_16_on() {
    let db = fresh_db().await;
    let role = format!("pw_plain_{}", db.name);
    db.exec(&format!("CREATE ROLE \"{role}\" LOGIN PASSWORD 'x'"))
        .await;
    let conn = format!(
        "host=127.0.0.1 port={} dbname={} user={role}",
        cluster().port(),
        db.name
    );
    let without = tokio_postgres::connect(&conn, tokio_postgres::NoTls).await;
    assert_eq!(without.is_err(), cluster().version_num() >= 160000);
}

/// Run by `abandoned_cluster_is_removed_by_the_next_start` in a child
/// process: it starts the shared cluster, records where, then dies by
/// SIGKILL, so no cleanup code runs.
#[test]
fn child_starts_cluster_then_is_killed() {
    let Ok(report) = std::env::var("PGARK_TESTKIT_KILL_REPORT") else {
        return;
    };
    let c = cluster();
    let pid = postmaster_pid(c.data_dir());
    std::fs::write(&report, format!("{}\n{pid}\n", c.data_dir().display())).unwrap();
    // SAFETY: kills this very process, as a test runner timeout would.
    unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
}

#[test]
fn abandoned_cluster_is_removed_by_the_next_start() {
    let report = std::env::temp_dir().join(format!("pgark-testkit-kill-{}", std::process::id()));
    let status = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_starts_cluster_then_is_killed",
            "--test-threads=1",
        ])
        .env("PGARK_TESTKIT_KILL_REPORT", &report)
        .output()
        .unwrap();
    assert!(
        !status.status.success(),
        "the child should have been killed"
    );
    let text = std::fs::read_to_string(&report).unwrap();
    std::fs::remove_file(&report).unwrap();
    let mut lines = text.lines();
    let data_dir = Path::new(lines.next().unwrap());
    let pid: u32 = lines.next().unwrap().parse().unwrap();
    assert!(data_dir.exists(), "the killed child cleaned up after all");
    assert!(running(pid), "the abandoned postmaster should still run");

    let _next = Cluster::start(ClusterOptions::default()).unwrap();
    assert!(!data_dir.exists(), "{} left behind", data_dir.display());
    assert!(gone(pid), "abandoned postmaster {pid} still running");
}

/// The psql recipe in fixtures/README.md yields the same data as the loader.
#[tokio::test]
async fn psql_loads_the_same_learnapp() {
    let by_loader = fresh_learnapp_db(1).await;
    let by_psql = fresh_db().await;
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/learnapp");
    let out = by_psql
        .cluster()
        .client_command("psql", &by_psql.name)
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1"])
        .arg("-f")
        .arg(fixtures.join("schema.sql"))
        .arg("-f")
        .arg(fixtures.join("generate.sql"))
        .args(["-c", "SELECT pg_temp.learnapp_generate(1)"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for table in fixture::LEARNAPP_CRITICAL_TABLES {
        assert_eq!(
            by_loader.table_rows(table).await,
            by_psql.table_rows(table).await,
            "{table}"
        );
    }
}

#[tokio::test]
async fn server_settings_are_fixed_for_tests() {
    let db = fresh_db().await;
    let show = |name: &'static str| {
        let db = &db;
        async move {
            db.query_strings(&format!("SHOW {name}")).await[0]
                .clone()
                .unwrap()
        }
    };
    assert_eq!(show("timezone").await, "UTC");
    assert_eq!(show("fsync").await, "off");
    assert_eq!(show("server_encoding").await, "UTF8");
    assert_eq!(show("max_connections").await, "200");
    let socket_dir = cluster().socket_dir().display().to_string();
    assert_eq!(show("unix_socket_directories").await, socket_dir);
    // The Unix socket works too.
    let conn = format!(
        "host={socket_dir} port={} user=postgres dbname={}",
        cluster().port(),
        db.name
    );
    let (client, connection) = tokio_postgres::connect(&conn, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client.simple_query("SELECT 1").await.unwrap();
}

/// Clusters after the first are copies of a cached initdb result; they must
/// still be independent of each other.
#[tokio::test]
async fn clusters_from_the_initdb_cache_are_independent() {
    let one = Cluster::start(ClusterOptions::default()).unwrap();
    let two = Cluster::start(ClusterOptions::default()).unwrap();
    one.create_database("only_in_one").await.unwrap();
    assert_eq!(
        databases(&one).await,
        ["only_in_one", "postgres", "template0", "template1"]
    );
    assert_eq!(
        databases(&two).await,
        ["postgres", "template0", "template1"]
    );
}

async fn databases(cluster: &Cluster) -> Vec<String> {
    let client = cluster.connect("postgres").await.unwrap();
    let rows = client
        .query("SELECT datname::text FROM pg_database ORDER BY 1", &[])
        .await
        .unwrap();
    rows.iter().map(|r| r.get(0)).collect()
}

/// TLS set up the way the conn tests need it: key and certificate written
/// as server files, ssl switched on by a reload.
#[tokio::test]
async fn ssl_can_be_switched_on_with_server_files() {
    let own = Cluster::start(ClusterOptions::default()).unwrap();
    let scratch = std::env::temp_dir().join(format!("pgark-testkit-tls-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let openssl = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
        ])
        .arg("-keyout")
        .arg(scratch.join("key.pem"))
        .arg("-out")
        .arg(scratch.join("cert.pem"))
        .output()
        .expect("the openssl command is needed (Debian: apt-get install openssl)");
    assert!(
        openssl.status.success(),
        "{}",
        String::from_utf8_lossy(&openssl.stderr)
    );
    let key = own
        .write_server_file(
            "server.key",
            &std::fs::read(scratch.join("key.pem")).unwrap(),
        )
        .unwrap();
    let cert = own
        .write_server_file(
            "server.crt",
            &std::fs::read(scratch.join("cert.pem")).unwrap(),
        )
        .unwrap();
    std::fs::remove_dir_all(&scratch).unwrap();
    own.append_conf(&[
        ("ssl", "on"),
        ("ssl_key_file", key.to_str().unwrap()),
        ("ssl_cert_file", cert.to_str().unwrap()),
    ])
    .unwrap();
    own.reload().unwrap();

    let mut used_ssl = String::new();
    for _ in 0..100 {
        let out = own
            .client_command("psql", "postgres")
            .env("PGSSLMODE", "require")
            .args([
                "-X",
                "-At",
                "-c",
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            ])
            .output()
            .unwrap();
        used_ssl = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if used_ssl == "t" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(
        used_ssl,
        "t",
        "server log: {}",
        std::fs::read_to_string(own.log_path()).unwrap()
    );
}

#[tokio::test]
async fn clusters_by_major_version() {
    let major = cluster().version_num() / 10000;
    assert!(std::ptr::eq(cluster_for_major(major), cluster()));
    let db = fresh_db_for_major(major).await;
    assert_eq!(db.cluster().port(), cluster().port());
    let missing = std::panic::catch_unwind(|| cluster_for_major(9)).unwrap_err();
    let message = missing.downcast_ref::<String>().unwrap();
    assert!(message.contains("scripts/get-postgres.sh 9"), "{message}");
}

/// Cross-version use. Needs a second major installed, which a fresh CI
/// machine lacks, hence ignored; run it with
/// `scripts/get-postgres.sh 18 && cargo test -p pgark-testkit -- --ignored`.
#[tokio::test]
#[ignore = "needs a second PostgreSQL major: scripts/get-postgres.sh 18"]
async fn another_major_runs_beside_the_default() {
    let default_major = cluster().version_num() / 10000;
    let other = (14..=18)
        .rev()
        .find(|m| *m != default_major && pgark_sandbox::find_bin_dir_for_major(*m).is_ok())
        .expect("no second PostgreSQL major installed; run scripts/get-postgres.sh 18");
    let db = fresh_db_for_major(other).await;
    assert_eq!(db.cluster().version_num() / 10000, other);
    let version = db.query_strings("SHOW server_version_num").await[0]
        .clone()
        .unwrap();
    assert_eq!(version.parse::<u32>().unwrap() / 10000, other);
    assert!(std::ptr::eq(cluster_for_major(other), db.cluster()));
    assert_ne!(db.cluster().port(), cluster().port());
}

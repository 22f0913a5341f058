//! pgark-conn against a real server: TCP and Unix sockets, `.pgpass`, and
//! session settings that hold whatever the role or database defaults are.

use pgark_conn::{connect, connect_for_copy_out, prepare_session, ConnParams, Overrides, Purpose};
use pgark_testkit::{cluster, fresh_db, TestDb};
use std::os::unix::fs::PermissionsExt;

fn params(conninfo: &str) -> ConnParams {
    ConnParams::resolve(Some(conninfo), &Overrides::default()).expect("conninfo parses")
}

fn socket_conninfo(db: &TestDb, user: &str) -> String {
    format!(
        "host={} port={} user={user} dbname={}",
        cluster().socket_dir().display(),
        cluster().port(),
        db.name
    )
}

async fn one(client: &tokio_postgres::Client, sql: &str) -> String {
    let rows = client.simple_query(sql).await.expect(sql);
    rows.iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .expect("one row")
}

#[tokio::test]
async fn tcp_connection_names_itself_pgark() {
    let db = fresh_db().await;
    let client = connect(&params(&db.conninfo())).await.expect("connect");
    assert_eq!(one(&client, "SELECT current_database()").await, db.name);
    assert_eq!(
        one(
            &client,
            "SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()"
        )
        .await,
        "pgark"
    );
}

#[tokio::test]
async fn unix_socket_connection_works_with_the_default_sslmode() {
    let db = fresh_db().await;
    for extra in ["", " sslmode=prefer", " sslmode=require"] {
        let info = format!("{}{extra}", socket_conninfo(&db, "postgres"));
        let client = connect(&params(&info))
            .await
            .unwrap_or_else(|e| panic!("{info}: {e}"));
        assert_eq!(one(&client, "SELECT current_database()").await, db.name);
        // A socket connection has no client address.
        assert_eq!(
            one(
                &client,
                "SELECT coalesce(inet_client_addr()::text, 'socket')"
            )
            .await,
            "socket"
        );
    }
}

#[tokio::test]
async fn pgpass_matches_localhost_for_a_socket_and_the_host_for_tcp() {
    let db = fresh_db().await;
    let role = format!("pw_conn_lib_{}", std::process::id());
    let password = "lib-pass:with\\colon";
    cluster()
        .create_password_role(&role, password)
        .await
        .expect("password role");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pgpass");
    // Escaped ':' and '\' in the password field, as libpq writes them.
    let escaped = password.replace('\\', "\\\\").replace(':', "\\:");
    std::fs::write(
        &file,
        format!(
            "localhost:{port}:{db}:{role}:{escaped}\n127.0.0.1:{port}:*:{role}:{escaped}\n",
            port = cluster().port(),
            db = db.name
        ),
    )
    .unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let passfile = format!(" passfile={}", file.display());
    // TCP first: the socket case also depends on socket connections working at all.
    for info in [
        format!(
            "host=127.0.0.1 port={} user={role} dbname={}",
            cluster().port(),
            db.name
        ),
        socket_conninfo(&db, &role),
    ] {
        let with_file = format!("{info}{passfile}");
        let client = connect(&params(&with_file))
            .await
            .unwrap_or_else(|e| panic!("{with_file}: {e}"));
        assert_eq!(one(&client, "SELECT current_user").await, role);
        let err = connect(&params(&info)).await.expect_err("no password");
        let text = err.to_string();
        assert!(text.contains("password"), "{text}");
        assert!(!text.contains("lib-pass"), "{text}");
    }
}

#[tokio::test]
async fn session_settings_win_over_role_and_database_defaults() {
    let db = fresh_db().await;
    let role = format!("odd_defaults_{}", std::process::id());
    db.exec(&format!(
        "CREATE ROLE {role} LOGIN;
         ALTER ROLE {role} SET DateStyle = 'SQL, DMY';
         ALTER ROLE {role} SET extra_float_digits = -3;
         ALTER ROLE {role} SET statement_timeout = '1ms';
         ALTER ROLE {role} SET row_security = on;
         ALTER DATABASE {db} SET IntervalStyle = 'sql_standard';
         ALTER DATABASE {db} SET search_path = 'elsewhere';
         ALTER DATABASE {db} SET client_min_messages = 'debug1';",
        db = db.name
    ))
    .await;
    let info = format!(
        "host=127.0.0.1 port={} user={role} dbname={}",
        cluster().port(),
        db.name
    );
    let dump = connect(&params(&info)).await.expect("connect");
    assert_eq!(
        one(&dump, "SHOW DateStyle").await,
        "SQL, DMY",
        "role default applies first"
    );
    prepare_session(&dump, Purpose::Dump)
        .await
        .expect("dump session");
    for (setting, want) in [
        ("DateStyle", "ISO, DMY"),
        ("IntervalStyle", "postgres"),
        ("extra_float_digits", "3"),
        ("statement_timeout", "0"),
        ("lock_timeout", "0"),
        ("idle_in_transaction_session_timeout", "0"),
        ("row_security", "off"),
        ("synchronize_seqscans", "off"),
        ("client_encoding", "UTF8"),
    ] {
        assert_eq!(
            one(&dump, &format!("SHOW {setting}")).await,
            want,
            "{setting}"
        );
    }
    assert_eq!(
        one(&dump, "SELECT '2024-02-03 04:05:06'::timestamp::text").await,
        "2024-02-03 04:05:06"
    );
    assert_eq!(one(&dump, "SELECT 0.1::float8::text").await, "0.1");

    let restore = connect(&params(&info)).await.expect("connect");
    prepare_session(&restore, Purpose::Restore)
        .await
        .expect("restore session");
    for (setting, want) in [
        ("standard_conforming_strings", "on"),
        ("check_function_bodies", "off"),
        ("client_min_messages", "warning"),
        ("row_security", "off"),
        ("statement_timeout", "0"),
        ("xmloption", "content"),
    ] {
        assert_eq!(
            one(&restore, &format!("SHOW {setting}")).await,
            want,
            "{setting}"
        );
    }
}

#[tokio::test]
async fn connection_errors_name_the_target_without_the_password() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let info = format!("postgres://someone:hunter2-secret@127.0.0.1:{port}/somedb");
    let err = connect(&params(&info)).await.expect_err("nobody listens");
    let text = err.to_string();
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(
        text.contains("somedb") && text.contains("someone"),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "{text}");

    let missing = format!(
        "host=127.0.0.1 port={} user=postgres dbname=no_such_db_{}",
        cluster().port(),
        std::process::id()
    );
    let text = connect(&params(&missing))
        .await
        .expect_err("no such db")
        .to_string();
    assert!(
        text.contains("does not exist") && text.contains("no_such_db_"),
        "{text}"
    );
}

/// Rows of varied width (empty, escapes, a few 100 kB wide) and a NULL.
const COPY_SQL: &str = "COPY (SELECT g, CASE WHEN g % 997 = 0 THEN repeat(md5(g::text), 4000) \
     WHEN g % 13 = 0 THEN '' WHEN g % 17 = 0 THEN NULL ELSE E'tab\\there ' || g END \
     FROM generate_series(1, 60000) g) TO STDOUT";

#[tokio::test]
async fn copy_out_read_in_bulk_gives_the_rows_tokio_postgres_gives() {
    let db = fresh_db().await;
    for info in [db.conninfo(), socket_conninfo(&db, "postgres")] {
        let (client, reader) = connect_for_copy_out(&params(&info), Purpose::Dump)
            .await
            .expect("connect");
        let expected = pgark_testkit::copy_out_plain(&client, COPY_SQL).await;
        for piece in [1, 4096, 1 << 20] {
            let mut copy = reader.copy_out(&client, COPY_SQL, piece).await.unwrap();
            let mut got = Vec::new();
            let mut short = 0;
            while let Some(rows) = copy.next().await.unwrap() {
                short += usize::from(rows.len() < piece);
                assert_eq!(rows.last(), Some(&b'\n'), "{info}: pieces are whole rows");
                got.extend_from_slice(&rows);
            }
            assert!(copy.tapped(), "{info}: rows went through the tap");
            assert!(short <= 1, "{info}: only the last piece may be short");
            assert_eq!(got.len(), expected.len(), "{info}, piece {piece}");
            assert!(got == expected, "{info}, piece {piece}: same bytes");
        }
        assert_eq!(one(&client, "SELECT 'after'").await, "after");
        let err = match reader
            .copy_out(&client, "COPY no_such_table TO STDOUT", 1)
            .await
        {
            Err(e) => e,
            Ok(mut copy) => copy.next().await.expect_err("an error"),
        };
        assert_eq!(
            err.code(),
            Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE)
        );
        assert_eq!(one(&client, "SELECT 'still'").await, "still");
    }
}

#[tokio::test]
async fn an_error_in_the_middle_of_a_bulk_copy_is_reported() {
    let db = fresh_db().await;
    let (client, reader) = connect_for_copy_out(&params(&db.conninfo()), Purpose::Dump)
        .await
        .unwrap();
    let sql = "COPY (SELECT CASE WHEN g < 50000 THEN g ELSE 1 / (g - g) END \
               FROM generate_series(1, 60000) g) TO STDOUT";
    let mut copy = reader.copy_out(&client, sql, 4096).await.unwrap();
    let mut rows = 0;
    let err = loop {
        match copy.next().await {
            Ok(Some(piece)) => rows += memchr_count(&piece),
            Ok(None) => panic!("the COPY ended without its error"),
            Err(e) => break e,
        }
    };
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::DIVISION_BY_ZERO)
    );
    assert!(rows > 0 && rows < 50000, "{rows} rows before the error");
    assert_eq!(one(&client, "SELECT 'after'").await, "after");
}

fn memchr_count(b: &[u8]) -> usize {
    b.iter().filter(|&&c| c == b'\n').count()
}

async fn read_all(
    reader: &pgark_conn::CopyReader,
    client: &tokio_postgres::Client,
    sql: &str,
) -> Vec<u8> {
    let mut copy = reader.copy_out(client, sql, 4096).await.unwrap();
    let mut got = Vec::new();
    while let Some(rows) = copy.next().await.unwrap() {
        got.extend_from_slice(&rows);
    }
    got
}

/// A reader that gives up on a COPY (before its first row arrives, after
/// some rows, in the middle of a 3 MB row) leaves none of its rows behind
/// for the next COPY on the connection.
#[tokio::test]
async fn an_abandoned_copy_leaves_nothing_for_the_next() {
    use futures::FutureExt;
    let db = fresh_db().await;
    let (client, reader) = connect_for_copy_out(&params(&db.conninfo()), Purpose::Dump)
        .await
        .unwrap();
    let many = "COPY (SELECT 'A' || g FROM generate_series(1, 200000) g) TO STDOUT";
    let wide = "COPY (SELECT repeat('x', 3000000) || g FROM generate_series(1, 20) g) TO STDOUT";
    let small = "COPY (SELECT 'B' || g FROM generate_series(1, 3) g) TO STDOUT";
    for round in 0..12 {
        {
            let sql = if round % 2 == 0 { many } else { wide };
            let mut copy = reader
                .copy_out(&client, sql, 1 + round * 1000)
                .await
                .unwrap();
            match round % 3 {
                // Sent, then dropped before anything came back.
                0 => assert!(copy.next().now_or_never().is_none()),
                1 => assert!(copy.next().await.unwrap().is_some()),
                _ => {
                    assert!(copy.next().await.unwrap().is_some());
                    tokio::time::sleep(std::time::Duration::from_millis(3)).await;
                }
            }
        }
        assert_eq!(
            read_all(&reader, &client, small).await,
            b"B1\nB2\nB3\n",
            "round {round}"
        );
    }
    assert_eq!(one(&client, "SELECT 'after'").await, "after");
}

/// A `;` in the statement (here in a quoted table name) sends the COPY
/// through the extended protocol, which runs one statement only.
#[tokio::test]
async fn a_semicolon_never_reaches_the_simple_protocol() {
    let db = fresh_db().await;
    db.exec(
        r#"CREATE TABLE public."a;b" (v text); INSERT INTO public."a;b" VALUES ('x;y'), ('z');"#,
    )
    .await;
    let (client, reader) = connect_for_copy_out(&params(&db.conninfo()), Purpose::Dump)
        .await
        .unwrap();
    assert_eq!(
        read_all(&reader, &client, r#"COPY public."a;b" TO STDOUT"#).await,
        b"x;y\nz\n"
    );
    let two = reader
        .copy_out(
            &client,
            "COPY (SELECT 1) TO STDOUT; DROP TABLE public.\"a;b\"",
            1,
        )
        .await;
    assert!(two.is_err(), "two statements are refused");
    assert_eq!(
        one(&client, "SELECT count(*) FROM public.\"a;b\"").await,
        "2"
    );
}

//! Every way of saying where to connect, as libpq users expect (issue 5):
//! URL, keyword string, bare name, `-h -p -U`, PG* variables, DATABASE_URL,
//! PGPASSWORD, `~/.pgpass`.

mod common;

use common::*;
use pgark_testkit::TestDb;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

/// Connects with `estimate --json` (cheap, names the database it reached)
/// and returns the database name.
async fn reached(cmd: Command) -> String {
    let out = run(cmd).await;
    out.expect_ok().json()["database"]
        .as_str()
        .expect("database in estimate JSON")
        .to_string()
}

fn estimate() -> Command {
    pgark(["estimate", "--json", "-f", "/tmp"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_form_of_connection_string_reaches_the_database() {
    let db = small_db().await;
    let c = db.cluster();
    let port = c.port().to_string();

    let mut url = estimate();
    url.args(["-d", &db.url()]);
    assert_eq!(reached(url).await, db.name, "URL");

    let mut url2 = estimate();
    let postgresql_url = format!("postgresql://postgres@127.0.0.1:{port}/{}", db.name);
    url2.args(["-d", &postgresql_url]);
    assert_eq!(reached(url2).await, db.name, "postgresql:// URL");

    let mut keywords = estimate();
    keywords.args(["-d", &db.conninfo()]);
    assert_eq!(reached(keywords).await, db.name, "keyword string");

    let mut bare = estimate();
    bare.args(["-d", &db.name])
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", &port)
        .env("PGUSER", "postgres");
    assert_eq!(reached(bare).await, db.name, "bare name with PGHOST/PGPORT");

    let mut flags = estimate();
    flags.args(["-h", "127.0.0.1", "-p", &port, "-U", "postgres", &db.name]);
    assert_eq!(
        reached(flags).await,
        db.name,
        "-h -p -U and a positional name"
    );

    let mut socket = estimate();
    socket.args(["-h", s(c.socket_dir()), "-p", &port, "-U", "postgres", "-d"]);
    socket.arg(&db.name);
    assert_eq!(reached(socket).await, db.name, "Unix socket directory");

    // libpq's ways of naming a socket directory in a URL.
    let socket = c.socket_dir().to_str().unwrap();
    for socket_url in [
        format!(
            "postgresql:///{}?host={socket}&port={port}&user=postgres",
            db.name
        ),
        format!(
            "postgresql://postgres@{}:{port}/{}",
            socket.replace('/', "%2F"),
            db.name
        ),
    ] {
        let mut cmd = estimate();
        cmd.args(["-d", &socket_url]);
        assert_eq!(reached(cmd).await, db.name, "{socket_url}");
    }

    let mut env = estimate();
    env.env("PGHOST", "127.0.0.1")
        .env("PGPORT", &port)
        .env("PGUSER", "postgres")
        .env("PGDATABASE", &db.name);
    assert_eq!(
        reached(env).await,
        db.name,
        "PGHOST/PGPORT/PGUSER/PGDATABASE"
    );

    let mut database_url = estimate();
    database_url.env("DATABASE_URL", db.url());
    assert_eq!(reached(database_url).await, db.name, "DATABASE_URL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_beat_the_string_and_the_string_beats_the_environment() {
    let db = small_db().await;
    let port = db.cluster().port().to_string();

    // A wrong port in the string, the right one as a flag.
    let mut flags_win = estimate();
    let wrong_port = format!("host=127.0.0.1 port=1 user=postgres dbname={}", db.name);
    flags_win.args(["-d", &wrong_port, "-p", &port]);
    assert_eq!(reached(flags_win).await, db.name);

    // A wrong database in the environment and in DATABASE_URL, the right one in -d.
    let mut string_wins = estimate();
    string_wins
        .args(["-d", &db.url()])
        .env("PGDATABASE", "no_such_db")
        .env("DATABASE_URL", db.cluster().url("no_such_db"));
    assert_eq!(reached(string_wins).await, db.name);

    // -d with only a name keeps host and port from the environment.
    let mut mixed = estimate();
    mixed
        .args(["-d", &db.name])
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", &port)
        .env("PGUSER", "postgres")
        .env("PGDATABASE", "no_such_db");
    assert_eq!(reached(mixed).await, db.name);
}

#[tokio::test]
async fn a_bad_connection_string_is_a_clear_error() {
    for (conninfo, needle) in [
        ("host=127.0.0.1 port=notaport", "invalid port"),
        ("host=127.0.0.1 sslmode=sometimes", "invalid sslmode"),
        ("host=127.0.0.1 bogus=1", "bogus"),
        ("postgres://u@h:5432/d?%zz=1", "percent"),
    ] {
        let mut cmd = estimate();
        cmd.args(["-d", conninfo]);
        run(cmd).await.expect_error(&[needle]);
    }
}

/// A role that must log in with a password (scram), owning a copy of the small schema.
async fn password_db(password: &str) -> (TestDb, String) {
    let db = small_db().await;
    let role = role_name("pw_conn");
    db.cluster()
        .create_password_role(&role, password)
        .await
        .expect("create password role");
    db.exec(&format!(
        "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}"
    ))
    .await;
    (db, role)
}

fn keyword_string(db: &TestDb, user: &str) -> String {
    format!(
        "host=127.0.0.1 port={} user={user} dbname={}",
        db.cluster().port(),
        db.name
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_come_from_pgpassword_the_url_and_pgpass() {
    let password = "s3cret-Conn-42";
    let (db, role) = password_db(password).await;
    let port = db.cluster().port();
    let conninfo = keyword_string(&db, &role);

    let mut none = estimate();
    none.args(["-d", &conninfo]);
    let line = run(none).await.expect_error(&["password"]).to_string();
    assert!(line.contains(&role), "names the user: {line}");
    assert!(
        line.contains("PGPASSWORD") || line.contains(".pgpass"),
        "says where a password can come from: {line}"
    );

    let mut wrong = estimate();
    wrong.args(["-d", &conninfo]).env("PGPASSWORD", "wrong");
    run(wrong)
        .await
        .expect_error(&["password authentication failed", &role]);

    let mut env = estimate();
    env.args(["-d", &conninfo]).env("PGPASSWORD", password);
    assert_eq!(reached(env).await, db.name, "PGPASSWORD");

    let mut url = estimate();
    let with_password = format!("postgres://{role}:{password}@127.0.0.1:{port}/{}", db.name);
    url.args(["-d", &with_password]);
    assert_eq!(reached(url).await, db.name, "password in the URL");

    let mut keyword = estimate();
    let with_password = format!("{conninfo} password='{password}'");
    keyword.args(["-d", &with_password]);
    assert_eq!(reached(keyword).await, db.name, "password= keyword");

    // ~/.pgpass: used when 0600, ignored (with a warning) when group/world readable.
    let home = tempfile::tempdir().unwrap();
    let pgpass = home.path().join(".pgpass");
    std::fs::write(
        &pgpass,
        format!(
            "# other servers first\n127.0.0.1:1:*:*:nope\n127.0.0.1:{port}:{}:{role}:{password}\n",
            db.name
        ),
    )
    .unwrap();
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut from_file = estimate();
    from_file.args(["-d", &conninfo]).env("HOME", home.path());
    assert_eq!(
        reached(from_file).await,
        db.name,
        "~/.pgpass with mode 0600"
    );

    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut too_open = estimate();
    too_open.args(["-d", &conninfo]).env("HOME", home.path());
    let out = run(too_open).await;
    out.expect_error(&["password"]);
    assert!(
        out.stderr.contains(".pgpass") && out.stderr.contains("0600"),
        "warns about the file's mode: {}",
        out.stderr
    );
    assert!(!out.stderr.contains(password), "{}", out.stderr);

    // PGPASSFILE names another file; PGPASSWORD wins over it.
    let elsewhere = home.path().join("passwords");
    std::fs::write(&elsewhere, format!("*:*:*:{role}:{password}\n")).unwrap();
    std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut passfile = estimate();
    passfile
        .args(["-d", &conninfo])
        .env("PGPASSFILE", &elsewhere);
    assert_eq!(reached(passfile).await, db.name, "PGPASSFILE");
    let mut both = estimate();
    both.args(["-d", &conninfo])
        .env("PGPASSFILE", &elsewhere)
        .env("PGPASSWORD", "wrong");
    run(both)
        .await
        .expect_error(&["password authentication failed"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_role_dumps_and_restores_through_the_binary() {
    let password = "s3cret-Dump-77";
    let (db, role) = password_db(password).await;
    let (_dir, file) = archive_path();
    let mut dump = pgark(["dump", "-q", "-O", "-x", "-f", s(&file)]);
    dump.args(["-d", &keyword_string(&db, &role)])
        .env("PGPASSWORD", password);
    run(dump).await.expect_ok();

    let target = pgark_testkit::fresh_db().await;
    target
        .exec(&format!("ALTER DATABASE {} OWNER TO {role}", target.name))
        .await;
    target
        .exec(&format!("ALTER SCHEMA public OWNER TO {role}"))
        .await;
    let mut restore = pgark(["restore", "-q", "-O", "-x", s(&file)]);
    restore
        .args(["-d", &keyword_string(&target, &role)])
        .env("PGPASSWORD", password);
    run(restore).await.expect_ok();
    let (src, dst) = (db_state(&db).await, db_state(&target).await);
    assert_eq!(src.1, dst.1, "rows restored by the password role");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslmode_require_fails_against_a_server_without_tls() {
    let db = small_db().await;
    let (dir, file) = archive_path();
    let info = format!("{} sslmode=require", db.conninfo());
    let out = run(pgark(["dump", "-q", "-d", &info, "-f", s(&file)])).await;
    let line = out.expect_error(&["127.0.0.1"]);
    assert!(
        line.to_lowercase().contains("ssl") || line.contains("TLS"),
        "{line}"
    );
    assert!(dir_entries(dir.path()).is_empty());

    let mut env = pgark(["dump", "-q", "-d", &db.conninfo(), "-f", s(&file)]);
    env.env("PGSSLMODE", "require");
    run(env).await.expect_code(1);
    // prefer falls back to plain TCP, as in libpq.
    let prefer = format!("{} sslmode=prefer", db.conninfo());
    run(pgark(["dump", "-q", "-d", &prefer, "-f", s(&file)]))
        .await
        .expect_ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostaddr_is_used_instead_of_looking_the_host_name_up() {
    let db = small_db().await;
    // libpq connects to hostaddr and keeps host for TLS and .pgpass only.
    let info = format!(
        "host=pgark-no-such-host.invalid hostaddr=127.0.0.1 port={} user=postgres dbname={}",
        db.cluster().port(),
        db.name
    );
    let mut cmd = estimate();
    cmd.args(["-d", &info]);
    assert_eq!(reached(cmd).await, db.name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_with_special_characters_work_in_every_form() {
    let password = r#"p@ss:w/rd%2F 'q' "d" \b#?&="#;
    let (db, role) = password_db(password).await;
    let port = db.cluster().port();
    let conninfo = keyword_string(&db, &role);

    let mut env = estimate();
    env.args(["-d", &conninfo]).env("PGPASSWORD", password);
    assert_eq!(reached(env).await, db.name, "PGPASSWORD");

    let encoded: String = password
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let mut url = estimate();
    let with_password = format!("postgres://{role}:{encoded}@127.0.0.1:{port}/{}", db.name);
    url.args(["-d", &with_password]);
    assert_eq!(reached(url).await, db.name, "percent-encoded URL password");

    let quoted = password.replace('\\', "\\\\").replace('\'', "\\'");
    let mut keyword = estimate();
    let with_password = format!("{conninfo} password='{quoted}'");
    keyword.args(["-d", &with_password]);
    assert_eq!(reached(keyword).await, db.name, "quoted keyword password");

    let home = tempfile::tempdir().unwrap();
    let pgpass = home.path().join(".pgpass");
    let escaped = password.replace('\\', "\\\\").replace(':', "\\:");
    std::fs::write(&pgpass, format!("*:{port}:*:{role}:{escaped}\n")).unwrap();
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut from_file = estimate();
    from_file.args(["-d", &conninfo]).env("HOME", home.path());
    assert_eq!(
        reached(from_file).await,
        db.name,
        "escaped ~/.pgpass password"
    );
}

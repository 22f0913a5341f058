//! A password given to pgark never comes back out: not on stdout or stderr,
//! not in JSON, not in the archive or its listing, not in error lines.

mod common;

use common::*;
use pgark_testkit::{fresh_db, TestDb};
use std::process::Command;

const PASSWORD: &str = "Zx9-pgark-SECRET-pw-3141";

/// A password role that owns `db`, its schema and tables, and may create databases.
async fn owned_by_password_role(db: &TestDb) -> String {
    let role = role_name("pw_secret");
    db.cluster()
        .create_password_role(&role, PASSWORD)
        .await
        .unwrap();
    db.exec(&format!(
        "ALTER ROLE {role} CREATEDB;
         ALTER DATABASE {db} OWNER TO {role};
         ALTER SCHEMA public OWNER TO {role};
         DO $$ DECLARE t record; BEGIN
           FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = 'public' LOOP
             EXECUTE format('ALTER TABLE public.%I OWNER TO {role}', t.tablename);
           END LOOP; END $$;",
        db = db.name
    ))
    .await;
    role
}

fn url(db: &TestDb, role: &str, password: &str) -> String {
    format!(
        "postgres://{role}:{password}@127.0.0.1:{}/{}",
        db.cluster().port(),
        db.name
    )
}

fn keywords(db: &TestDb, role: &str) -> String {
    format!(
        "host=127.0.0.1 port={} user={role} dbname={}",
        db.cluster().port(),
        db.name
    )
}

/// Runs `cmd` and asserts the password is on neither output channel.
async fn run_clean(what: &str, cmd: Command) -> Out {
    let out = run(cmd).await;
    for secret in [PASSWORD, "SECRET-pw"] {
        assert!(
            !out.stdout_text().contains(secret),
            "{what}: password on stdout:\n{}",
            out.stdout_text()
        );
        assert!(
            !out.stderr.contains(secret),
            "{what}: password on stderr:\n{}",
            out.stderr
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_password_never_leaves_pgark() {
    let db = small_db().await;
    let role = owned_by_password_role(&db).await;
    let (dir, file) = archive_path();

    // Dump with the password in PGPASSWORD, JSON summary.
    let mut dump = pgark([
        "dump",
        "--json",
        "-d",
        &keywords(&db, &role),
        "-f",
        s(&file),
    ]);
    dump.args(["--label", "Zx9-label-canary"])
        .env("PGPASSWORD", PASSWORD);
    let out = run_clean("dump --json, PGPASSWORD", dump).await;
    assert_eq!(out.expect_ok().json()["rows"], SMALL_ROWS);
    assert_eq!(mode(&file), 0o600, "archive mode");
    assert!(!file_contains(&file, PASSWORD), "password in the archive");
    // The search can fail: it finds what the archive does hold, compressed.
    assert!(file_contains(&file, "Zx9-label-canary"), "label not found");

    // Dump with the password in the URL, default output (the runbook).
    let by_url = dir.path().join("by-url.pgark");
    let dump = pgark(["dump", "-d", &url(&db, &role, PASSWORD), "-f", s(&by_url)]);
    run_clean("dump, URL password, runbook", dump)
        .await
        .expect_ok();
    assert_eq!(mode(&by_url), 0o600, "archive mode");
    assert!(!file_contains(&by_url, PASSWORD), "password in the archive");

    // The same streamed to stdout, with the JSON summary on stderr.
    let streamed = dir.path().join("streamed.pgark");
    let mut dump = pgark([
        "dump",
        "--json",
        "-d",
        &url(&db, &role, PASSWORD),
        "-f",
        "-",
    ]);
    dump.stdout(std::fs::File::create(&streamed).unwrap());
    run_clean("dump -f - --json, URL password", dump)
        .await
        .expect_ok();
    assert!(
        !file_contains(&streamed, PASSWORD),
        "password in the archive"
    );

    for archive in [&file, &by_url, &streamed] {
        for args in [
            vec!["list"],
            vec!["list", "--json"],
            vec!["verify"],
            vec!["verify", "--json"],
        ] {
            let mut cmd = pgark(&args);
            cmd.arg(archive);
            run_clean(&format!("{args:?}"), cmd).await.expect_ok();
        }
        let script = pgark(["restore", "-f", "-", s(archive)]);
        run_clean("restore -f -", script).await.expect_ok();
    }

    // Restore, test-restore and rollback with the password in the URL.
    let target = fresh_db().await;
    let target_role = owned_by_password_role(&target).await;
    let restore = pgark([
        "restore",
        "--json",
        "-O",
        "-x",
        "-d",
        &url(&target, &target_role, PASSWORD),
        s(&file),
    ]);
    run_clean("restore --json", restore).await.expect_ok();
    let server = url(&db, &role, PASSWORD).replace(&db.name, "postgres");
    let test = pgark(["verify", "--json", s(&file), "--restore-test", &server]);
    run_clean("verify --restore-test", test).await.expect_ok();
    let rollback = pgark([
        "rollback",
        "--yes",
        "--json",
        "-t",
        "public.orders",
        "-d",
        &url(&db, &role, PASSWORD),
        s(&file),
    ]);
    run_clean("rollback -t", rollback).await.expect_ok();
    let estimate = pgark(["estimate", "--json", "-d", &url(&db, &role, PASSWORD)]);
    run_clean("estimate", estimate).await.expect_ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_connections_do_not_echo_the_password() {
    let db = small_db().await;
    let role = owned_by_password_role(&db).await;
    let port = db.cluster().port();
    let (dir, file) = archive_path();
    let cases = [
        // A wrong password (the one given must not be echoed either).
        url(&db, &role, &format!("{PASSWORD}-wrong")),
        // An unknown database.
        format!("postgres://{role}:{PASSWORD}@127.0.0.1:{port}/no_such_db"),
        // Nobody listening.
        format!("postgres://{role}:{PASSWORD}@127.0.0.1:1/{}", db.name),
        // Unparsable port and option.
        format!("postgres://{role}:{PASSWORD}@127.0.0.1:port/{}", db.name),
        format!("postgres://{role}:{PASSWORD}@127.0.0.1:{port}/x?bogus=1"),
        format!("host=127.0.0.1 port={port} user={role} password={PASSWORD} sslmode=nope"),
        format!("host=127.0.0.1 port={port} user={role} password='{PASSWORD}"),
        format!("postgres://{role}:{PASSWORD}%zz@127.0.0.1:{port}/x"),
    ];
    for conninfo in &cases {
        let dump = pgark(["dump", "--json", "-d", conninfo, "-f", s(&file)]);
        let out = run_clean(conninfo, dump).await;
        out.expect_code(1);
        out.error_line();
        assert!(dir_entries(dir.path()).is_empty());
    }
    let mut env = pgark(["dump", "-d", &keywords(&db, &role), "-f", s(&file)]);
    env.env("PGPASSWORD", format!("{PASSWORD}-wrong"));
    run_clean("PGPASSWORD wrong", env).await.expect_code(1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_archive_is_0600_whatever_the_umask_or_the_file_it_replaces() {
    use std::os::unix::fs::PermissionsExt;
    let db = small_db().await;
    let (_dir, file) = archive_path();
    std::fs::write(&file, b"an older, world-readable archive").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut bash = Command::new("bash");
    clean_env(&mut bash).args([
        "-c",
        "umask 000; exec \"$0\" \"$@\"",
        PGARK,
        "dump",
        "-q",
        "-d",
        &db.url(),
        "-f",
        s(&file),
    ]);
    run(bash).await.expect_ok();
    assert_eq!(mode(&file), 0o600);
    run(pgark(["verify", s(&file)])).await.expect_ok();
}

//! Encrypted archives through the command: no plaintext or key material in
//! the file or on any output, and every command refuses, before touching a
//! database, without the right key.

mod common;

use common::*;
use pgark_testkit::{fresh_db, TestDb};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

const PASSPHRASE: &str = "correct horse battery staple 8812";
const MARKER: &str = "plaintext-marker-7Qw3";

async fn marked_db() -> TestDb {
    let db = small_db().await;
    db.exec(&format!(
        "INSERT INTO public.users VALUES (1000, '{MARKER}', now())"
    ))
    .await;
    db
}

fn with_passphrase(mut cmd: Command) -> Command {
    cmd.args(["--passphrase-env", "PGARK_TEST_PASSPHRASE"])
        .env("PGARK_TEST_PASSPHRASE", PASSPHRASE);
    cmd
}

/// Runs `cmd`; neither output channel may hold the passphrase or `also`.
async fn run_secret(cmd: Command, also: &str) -> Out {
    let out = run(cmd).await;
    for secret in [PASSPHRASE, also].into_iter().filter(|s| !s.is_empty()) {
        assert!(
            !out.stdout_text().contains(secret),
            "stdout: {}",
            out.stdout_text()
        );
        assert!(!out.stderr.contains(secret), "stderr: {}", out.stderr);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passphrase_archive_hides_its_data_and_needs_the_passphrase() {
    let db = marked_db().await;
    let (dir, file) = archive_path();
    let dump = with_passphrase(pgark([
        "dump",
        "--json",
        "--encrypt",
        "-d",
        &db.url(),
        "-f",
        s(&file),
    ]));
    let out = run_secret(dump, MARKER).await;
    assert_eq!(out.expect_ok().json()["rows"], SMALL_ROWS + 1);
    assert_eq!(mode(&file), 0o600);
    assert!(
        !file_contains(&file, MARKER),
        "plaintext row in the archive"
    );
    assert!(
        !file_contains(&file, PASSPHRASE),
        "passphrase in the archive"
    );
    assert!(
        !file_contains(&file, "CREATE TABLE"),
        "plaintext DDL in the archive"
    );
    // These checks can fail: without --encrypt the row and the DDL are found.
    let plain = dir.path().join("plain.pgark");
    run(pgark(["dump", "-q", "-d", &db.url(), "-f", s(&plain)]))
        .await
        .expect_ok();
    assert!(file_contains(&plain, MARKER) && file_contains(&plain, "CREATE TABLE"));

    // Without the key: list and restore refuse; verify checks structure only, and says so.
    run(pgark(["list", s(&file)]))
        .await
        .expect_error(&["encrypted"]);
    let verify = run(pgark(["verify", s(&file)])).await;
    assert!(verify.expect_ok().stdout_text().contains("not checked"));
    let target = fresh_db().await;
    let empty = db_state(&target).await;
    run(pgark(["restore", "-d", &target.url(), s(&file)]))
        .await
        .expect_error(&["encrypted"]);
    assert_unchanged(&target, &empty).await;

    // A wrong passphrase: refused, nothing changed.
    let mut wrong = pgark(["restore", "-d", &target.url(), s(&file)]);
    wrong
        .args(["--passphrase-env", "PGARK_TEST_PASSPHRASE"])
        .env("PGARK_TEST_PASSPHRASE", "not the passphrase");
    run(wrong).await.expect_error(&["wrong key"]);
    assert_unchanged(&target, &empty).await;

    // The right one: every command works, and still prints no secret.
    let list = run_secret(with_passphrase(pgark(["list", "--json", s(&file)])), "").await;
    assert_eq!(
        list.expect_ok().json()["meta"]["database"],
        db.name.as_str()
    );
    let verify = run_secret(with_passphrase(pgark(["verify", s(&file)])), "").await;
    assert!(!verify.expect_ok().stdout_text().contains("not checked"));
    let mut stdin = with_passphrase(pgark(["list", "-"]));
    stdin.stdin(std::fs::File::open(&file).unwrap());
    run_secret(stdin, "").await.expect_ok();
    let restore = with_passphrase(pgark(["restore", "-q", "-d", &target.url(), s(&file)]));
    run_secret(restore, "").await.expect_ok();
    assert_eq!(db_state(&target).await, db_state(&db).await);

    // A flipped byte is still found with the key.
    let mut bytes = std::fs::read(&file).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x10;
    let damaged = dir.path().join("damaged.pgark");
    std::fs::write(&damaged, bytes).unwrap();
    run(with_passphrase(pgark(["verify", s(&damaged)])))
        .await
        .expect_code(1)
        .error_line();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_file_archive_rolls_back_and_test_restores() {
    let db = marked_db().await;
    let original = db_state(&db).await;
    let (dir, file) = archive_path();
    let key_hex: String = (0..32u8)
        .map(|i| format!("{:02x}", i.wrapping_mul(37).wrapping_add(11)))
        .collect();
    let key = dir.path().join("archive.key");
    std::fs::write(&key, format!("{key_hex}\n")).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let key_args = ["--key-file", s(&key)];

    let mut dump = pgark(["dump", "-q", "--encrypt", "-d", &db.url(), "-f", s(&file)]);
    dump.args(key_args);
    run_secret(dump, &key_hex).await.expect_ok();
    assert!(!file_contains(&file, MARKER));
    assert!(!file_contains(&file, &key_hex));

    let mut test = pgark([
        "verify",
        s(&file),
        "--restore-test",
        &db.cluster().url("postgres"),
    ]);
    test.args(key_args);
    run_secret(test, &key_hex).await.expect_ok();

    db.exec("UPDATE public.users SET name = 'changed'").await;
    let mut partial = pgark([
        "rollback",
        "--yes",
        "-q",
        "-t",
        "public.users",
        "-d",
        &db.url(),
        s(&file),
    ]);
    partial.args(key_args);
    run_secret(partial, &key_hex).await.expect_ok();
    assert_eq!(db_state(&db).await, original);

    db.exec("DROP TABLE public.orders").await;
    let mut full = pgark(["rollback", "--yes", "-q", "-d", &db.url(), s(&file)]);
    full.args(key_args);
    run_secret(full, &key_hex).await.expect_ok();
    assert_eq!(db_state(&db).await, original);

    // Without the key a rollback refuses before changing anything.
    db.exec("UPDATE public.users SET name = 'changed again'")
        .await;
    let changed = db_state(&db).await;
    run(pgark(["rollback", "--yes", "-d", &db.url(), s(&file)]))
        .await
        .expect_error(&["encrypted"]);
    assert_unchanged(&db, &changed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_options_are_checked_before_anything_is_written() {
    let db = small_db().await;
    let (dir, file) = archive_path();
    run(pgark([
        "dump",
        "--encrypt",
        "-d",
        &db.url(),
        "-f",
        s(&file),
    ]))
    .await
    .expect_error(&["--key-file", "--passphrase-env"]);
    let mut unset = pgark(["dump", "--encrypt", "--passphrase-env", "PGARK_NO_SUCH_VAR"]);
    unset.args(["-d", &db.url(), "-f", s(&file)]);
    run(unset).await.expect_error(&["PGARK_NO_SUCH_VAR"]);
    let mut missing = pgark(["dump", "--encrypt", "--key-file", "/nonexistent/key"]);
    missing.args(["-d", &db.url(), "-f", s(&file)]);
    run(missing).await.expect_error(&["/nonexistent/key"]);
    assert!(dir_entries(dir.path()).is_empty());
}

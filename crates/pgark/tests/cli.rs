//! The `pgark` command as a user sees it: output channels, exit codes, pipes.

mod common;

use common::*;
use pgark_testkit::fresh_db;
use serde_json::Value;
use std::process::{Command, Stdio};

/// What two archives of the same database must share: the TOC and each
/// table's row count, ignoring timings and sizes.
fn toc_and_rows(listing: &Value) -> (Value, Vec<(u64, u64)>) {
    let rows = listing["trailer"]["tables"]
        .as_array()
        .expect("trailer.tables")
        .iter()
        .map(|t| {
            (
                t["entry_id"].as_u64().expect("entry_id"),
                t["rows"].as_u64().expect("rows"),
            )
        })
        .collect();
    (listing["toc"].clone(), rows)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dump_to_stdout_gives_the_same_archive_as_dump_to_a_file() {
    let db = small_db().await;
    let (dir, file) = archive_path();
    run(pgark(["dump", "-q", "-d", &db.url(), "-f", s(&file)]))
        .await
        .expect_ok();

    let piped = dir.path().join("piped.pgark");
    let mut cmd = pgark(["dump", "-q", "--json", "-d", &db.url(), "-f", "-"]);
    cmd.stdout(std::fs::File::create(&piped).unwrap());
    let out = run(cmd).await;
    out.expect_ok();
    // stdout carries the archive, so the JSON summary goes to stderr.
    let summary: Value = serde_json::from_str(&out.stderr).expect("JSON summary on stderr");
    assert_eq!(summary["rows"], SMALL_ROWS);
    assert_eq!(
        summary["archive_bytes"].as_u64(),
        Some(std::fs::metadata(&piped).unwrap().len())
    );

    let a = run(pgark(["list", "--json", s(&file)])).await;
    let b = run(pgark(["list", "--json", s(&piped)])).await;
    let (a, b) = (a.expect_ok().json(), b.expect_ok().json());
    assert_eq!(toc_and_rows(&a), toc_and_rows(&b));
    let total: u64 = toc_and_rows(&a).1.iter().map(|(_, r)| r).sum();
    assert_eq!(total, SMALL_ROWS);
    run(pgark(["verify", s(&piped)])).await.expect_ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_output_of_every_command_parses() {
    let db = small_db().await;
    let (_dir, file) = archive_path();
    let dump = run(pgark(["dump", "--json", "-d", &db.url(), "-f", s(&file)])).await;
    let dump = dump.expect_ok().json();
    assert_eq!(dump["rows"], SMALL_ROWS);
    assert_eq!(
        dump["archive_bytes"].as_u64(),
        Some(std::fs::metadata(&file).unwrap().len())
    );
    assert_eq!(dump["meta"]["database"], db.name.as_str());

    let list = run(pgark(["list", "--json", s(&file)])).await;
    let list = list.expect_ok().json();
    let names: Vec<&str> = list["toc"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert!(
        names.contains(&"users") && names.contains(&"orders"),
        "{names:?}"
    );

    let verify = run(pgark(["verify", "--json", s(&file)])).await;
    let verify = verify.expect_ok().json();
    assert_eq!(verify["checksums"], "ok");
    assert_eq!(
        verify["bytes"].as_u64(),
        Some(std::fs::metadata(&file).unwrap().len())
    );

    let target = fresh_db().await;
    let restore = run(pgark(["restore", "--json", "-d", &target.url(), s(&file)])).await;
    assert_eq!(restore.expect_ok().json()["rows"], SMALL_ROWS);
    assert_eq!(db_state(&target).await, db_state(&db).await);

    let estimate = run(pgark([
        "estimate",
        "--json",
        "-d",
        &db.url(),
        "-f",
        s(file.parent().unwrap()),
    ]))
    .await;
    let estimate = estimate.expect_ok().json();
    assert_eq!(estimate["database"], db.name.as_str());
    let tables: Vec<&str> = estimate["tables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["table"].as_str())
        .collect();
    assert!(
        tables.contains(&"public.users") && tables.contains(&"public.orders"),
        "{tables:?}"
    );
    assert!(estimate["predicted_archive_bytes"].as_u64().unwrap() > 0);
    assert!(estimate["free_bytes"].as_u64().unwrap() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_prints_nothing_on_success() {
    let db = small_db().await;
    let (_dir, file) = archive_path();
    let dump = run(pgark(["dump", "--quiet", "-d", &db.url(), "-f", s(&file)])).await;
    dump.expect_ok();
    assert_eq!(
        (dump.stdout_text().as_str(), dump.stderr.as_str()),
        ("", "")
    );
    assert!(file.is_file());

    let target = fresh_db().await;
    let restore = run(pgark(["restore", "-q", "-d", &target.url(), s(&file)])).await;
    restore.expect_ok();
    assert_eq!(
        (restore.stdout_text().as_str(), restore.stderr.as_str()),
        ("", "")
    );
    assert_eq!(db_state(&target).await, db_state(&db).await);
}

#[tokio::test]
async fn bad_usage_exits_2_naming_the_problem() {
    for (args, needle) in [
        (
            vec!["dump", "--no-such-option", "-f", "x"],
            "--no-such-option",
        ),
        (vec!["frobnicate"], "frobnicate"),
        (vec!["dump", "-d", "db"], "--file"),
        (vec!["dump", "-f", "x", "-j", "many"], "many"),
        (vec!["restore"], "ARCHIVE"),
    ] {
        let out = run(pgark(&args)).await;
        out.expect_code(2);
        assert!(out.stderr.contains(needle), "{args:?}: {}", out.stderr);
    }
}

#[tokio::test]
async fn help_and_version_exit_0() {
    for args in [
        vec!["--help"],
        vec!["--version"],
        vec!["dump", "--help"],
        vec!["list", "--help"],
        vec!["verify", "--help"],
    ] {
        let out = run(pgark(&args)).await;
        out.expect_ok();
        assert!(!out.stdout.is_empty(), "{args:?}");
    }
}

/// The offset of byte `at` flipped, as a path to a damaged copy.
fn flip_byte(src: &std::path::Path, at: usize) -> std::path::PathBuf {
    let mut bytes = std::fs::read(src).unwrap();
    bytes[at] ^= 0x40;
    let path = src.with_file_name("flipped.pgark");
    std::fs::write(&path, bytes).unwrap();
    path
}

fn truncate_file(src: &std::path::Path, keep: usize) -> std::path::PathBuf {
    let bytes = std::fs::read(src).unwrap();
    let path = src.with_file_name("truncated.pgark");
    std::fs::write(&path, &bytes[..keep]).unwrap();
    path
}

/// A database whose archive is mostly one table's data chunks.
async fn data_heavy_archive() -> (pgark_testkit::TestDb, tempfile::TempDir, std::path::PathBuf) {
    let db = fresh_db().await;
    db.exec(
        "CREATE TABLE public.t (id int PRIMARY KEY, v text);
         INSERT INTO public.t SELECT g, md5(g::text) FROM generate_series(1, 50000) g;",
    )
    .await;
    let (dir, file) = archive_path();
    run(pgark(["dump", "-q", "-d", &db.url(), "-f", s(&file)]))
        .await
        .expect_ok();
    (db, dir, file)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_passes_a_good_archive_and_names_the_damaged_region() {
    let (_db, _dir, file) = data_heavy_archive().await;
    let good = run(pgark(["verify", s(&file)])).await;
    good.expect_ok();
    assert!(good.stdout_text().contains("OK"), "{}", good.stdout_text());

    let len = std::fs::metadata(&file).unwrap().len() as usize;
    let flipped = flip_byte(&file, len / 2);
    let out = run(pgark(["verify", s(&flipped)])).await;
    let line = out.expect_error(&["corrupt archive", "data chunk", "offset"]);
    assert!(line.contains("flipped.pgark"), "{line}");

    let truncated = truncate_file(&file, len / 2);
    let out = run(pgark(["verify", s(&truncated)])).await;
    out.expect_error(&["truncated archive", "offset"]);

    let header = flip_byte(&file, 2);
    let out = run(pgark(["verify", s(&header)])).await;
    out.expect_error(&["not a pgark archive"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_and_list_read_standard_input() {
    let (db, _dir, file) = data_heavy_archive().await;
    let from_file = run(pgark(["list", "--json", s(&file)])).await;
    let mut cmd = pgark(["list", "--json", "-"]);
    cmd.stdin(std::fs::File::open(&file).unwrap());
    let from_stdin = run(cmd).await;
    let (a, b) = (from_file.expect_ok().json(), from_stdin.expect_ok().json());
    assert_eq!(toc_and_rows(&a), toc_and_rows(&b));
    assert_eq!(a["meta"], b["meta"]);
    assert_eq!(a["archive_bytes"], b["archive_bytes"]);

    let mut cmd = pgark(["list", "-"]);
    cmd.stdin(std::fs::File::open(&file).unwrap());
    let text = run(cmd).await;
    assert!(text
        .expect_ok()
        .stdout_text()
        .contains("public.t: 50000 rows"));

    let mut cmd = pgark(["verify", "-"]);
    cmd.stdin(std::fs::File::open(&file).unwrap());
    run(cmd).await.expect_ok();

    let len = std::fs::metadata(&file).unwrap().len() as usize;
    let mut cmd = pgark(["verify", "-"]);
    cmd.stdin(std::fs::File::open(flip_byte(&file, len / 2)).unwrap());
    run(cmd)
        .await
        .expect_error(&["corrupt archive", "data chunk"]);

    // A test restore reads the archive a second time: a pipe cannot serve it.
    let mut cmd = pgark(["verify", "--restore-test", &db.url(), "-"]);
    cmd.stdin(std::fs::File::open(&file).unwrap());
    run(cmd)
        .await
        .expect_error(&["--restore-test", "standard input"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_without_yes_off_a_terminal_refuses_and_changes_nothing() {
    let db = small_db().await;
    let (_dir, file) = archive_path();
    run(pgark([
        "dump",
        "-q",
        "--critical",
        "public.users",
        "-d",
        &db.url(),
        "-f",
        s(&file),
    ]))
    .await
    .expect_ok();
    db.exec("DELETE FROM public.orders WHERE id > 300; UPDATE public.users SET name = 'changed'")
        .await;
    let before = db_state(&db).await;
    for extra in [vec![], vec!["--critical"], vec!["-t", "public.orders"]] {
        let mut cmd = pgark(["rollback", "-d", &db.url()]);
        cmd.args(&extra).arg(&file).stdin(Stdio::null());
        let out = run(cmd).await;
        out.expect_error(&["--yes"]);
        assert_unchanged(&db, &before).await;
    }
    // The same with a pipe that says the database name: still not a terminal.
    let mut cmd = pgark(["rollback", "-d", &db.url()]);
    cmd.arg(&file).stdin(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    use std::io::Write;
    let _ = writeln!(child.stdin.take().unwrap(), "{}", db.name);
    finish(child).await.expect_error(&["--yes"]);
    assert_unchanged(&db, &before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn estimate_lists_tables_and_free_space() {
    let db = small_db().await;
    let dir = tempfile::tempdir().unwrap();
    let out = run(pgark(["estimate", "-d", &db.url(), "-f", s(dir.path())])).await;
    let text = out.expect_ok().stdout_text();
    assert!(text.contains(&format!("database {}", db.name)), "{text}");
    assert!(
        text.contains("public.users") && text.contains("public.orders"),
        "{text}"
    );
    assert!(text.contains("predicted archive size"), "{text}");
    assert!(text.contains("free space at the output"), "{text}");
    // Nothing was written.
    assert!(dir_entries(dir.path()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_script_to_stdout_needs_no_server() {
    let db = small_db().await;
    let (_dir, file) = archive_path();
    run(pgark(["dump", "-q", "-d", &db.url(), "-f", s(&file)]))
        .await
        .expect_ok();
    let out = run(pgark(["restore", "--schema-only", "-f", "-", s(&file)])).await;
    let script = out.expect_ok().stdout_text();
    assert!(
        script.contains("CREATE TABLE \"public\".\"users\""),
        "{script}"
    );
    assert!(!script.contains("user 17"), "schema-only script holds data");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_reads_the_archive_from_a_pipe() {
    let db = small_db().await;
    let (_dir, file) = archive_path();
    run(pgark(["dump", "-q", "-d", &db.url(), "-f", s(&file)]))
        .await
        .expect_ok();
    let target = fresh_db().await;
    let mut cmd = pgark(["restore", "-q", "-d", &target.url(), "-"]);
    cmd.stdin(std::fs::File::open(&file).unwrap());
    run(cmd).await.expect_ok();
    assert_eq!(db_state(&target).await, db_state(&db).await);

    // A damaged stream is refused before the target changes.
    let bytes = std::fs::read(&file).unwrap();
    let damaged = file.with_file_name("damaged.pgark");
    std::fs::write(&damaged, &bytes[..bytes.len() - 100]).unwrap();
    let empty = fresh_db().await;
    let before = db_state(&empty).await;
    let mut cmd = pgark(["restore", "-q", "-d", &empty.url(), "-"]);
    cmd.stdin(std::fs::File::open(&damaged).unwrap());
    let out = run(cmd).await;
    // The user gave standard input, not the spool file pgark copied it to.
    let line = out.expect_error(&["standard input"]);
    assert!(!line.contains("/tmp"), "{line}");
    assert_unchanged(&empty, &before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_restore_test_compares_every_table_and_cleans_up() {
    let db = small_db().await;
    let (_dir, file) = archive_path();
    run(pgark(["dump", "-q", "-d", &db.url(), "-f", s(&file)]))
        .await
        .expect_ok();
    let databases = || async {
        db.query_strings("SELECT datname FROM pg_database ORDER BY 1")
            .await
    };
    let before = databases().await;
    let server = db.cluster().url("postgres");
    let out = run(pgark(["verify", s(&file), "--restore-test", &server])).await;
    let text = out.expect_ok().stdout_text();
    assert!(text.contains("public") && text.contains("PASS"), "{text}");
    assert!(text.contains("all 2 tables match"), "{text}");
    let json = run(pgark([
        "verify",
        "--json",
        s(&file),
        "--restore-test",
        &server,
    ]))
    .await;
    let json = json.expect_ok().json();
    let checks = json["restore_test"].as_array().expect("restore_test");
    assert_eq!(checks.len(), 2);
    assert!(checks.iter().all(|c| c["ok"] == true), "{checks:?}");
    assert_eq!(databases().await, before, "temporary database left behind");
}

#[tokio::test]
async fn a_file_that_is_not_an_archive_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(
        &text,
        "just some text, long enough to have a header's worth of bytes in it ......",
    )
    .unwrap();
    let empty = dir.path().join("empty.pgark");
    std::fs::write(&empty, b"").unwrap();
    for path in [&text, &empty] {
        for cmd in ["list", "verify"] {
            let out = run(pgark([cmd, s(path)])).await;
            out.expect_error(&[s(path)]);
        }
    }
    let missing = dir.path().join("missing.pgark");
    run(pgark(["list", s(&missing)]))
        .await
        .expect_error(&["missing.pgark"]);
    run(pgark(["verify", s(dir.path())]))
        .await
        .expect_error(&[s(dir.path())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_and_list_name_damage_in_the_metadata() {
    let db = small_db().await;
    let (_dir, file) = archive_path();
    run(pgark(["dump", "-q", "-d", &db.url(), "-f", s(&file)]))
        .await
        .expect_ok();
    // The META block follows the 64-byte file header and its own 80-byte header.
    let meta = flip_byte(&file, 64 + 80 + 8);
    run(pgark(["verify", s(&meta)]))
        .await
        .expect_error(&["META"]);
    let list = run(pgark(["list", s(&meta)])).await;
    list.expect_error(&["META"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dumping_onto_a_directory_fails_and_leaves_it_alone() {
    let db = small_db().await;
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("a-directory");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("keep"), b"x").unwrap();
    let out = run(pgark(["dump", "-q", "-d", &db.url(), "-f", s(&target)])).await;
    out.expect_error(&["a-directory"]);
    assert_eq!(dir_entries(dir.path()), ["a-directory"]);
    assert_eq!(dir_entries(&target), ["keep"]);
}

/// Runs a pgark command line on a pseudo-terminal (util-linux `script`),
/// typing `input`.
async fn on_a_terminal(command_line: &str, input: &str) -> Out {
    let mut cmd = Command::new("script");
    clean_env(&mut cmd).args(["-qec", command_line, "/dev/null"]);
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().expect("script(1) from util-linux");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input.as_bytes()).unwrap();
    }
    finish(child).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_on_a_terminal_asks_for_the_database_name() {
    let db = small_db().await;
    let original = db_state(&db).await;
    let (_dir, file) = archive_path();
    run(pgark(["dump", "-q", "-d", &db.url(), "-f", s(&file)]))
        .await
        .expect_ok();
    db.exec("UPDATE public.users SET name = 'changed'").await;
    let changed = db_state(&db).await;
    let line = format!(
        "{PGARK} rollback -t public.users -d '{}' '{}'",
        db.url(),
        s(&file)
    );

    let out = on_a_terminal(&line, "not-the-name\n").await;
    out.expect_code(1);
    assert!(
        out.stdout_text().contains("Type the database name"),
        "{}",
        out.stdout_text()
    );
    assert!(
        out.stdout_text().contains("nothing was changed"),
        "{}",
        out.stdout_text()
    );
    assert_unchanged(&db, &changed).await;

    let out = on_a_terminal(&line, &format!("{}\n", db.name)).await;
    out.expect_ok();
    assert_eq!(db_state(&db).await, original);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_or_schema_pattern_that_matches_nothing_fails_like_pg_dump() {
    let db = small_db().await;
    let (dir, file) = archive_path();
    for (flag, pattern) in [("-t", "public.nope"), ("-n", "nope")] {
        let out = run(pgark([
            "dump",
            "-q",
            "-d",
            &db.url(),
            "-f",
            s(&file),
            flag,
            pattern,
        ]))
        .await;
        out.expect_error(&[pattern]);
        assert!(dir_entries(dir.path()).is_empty());
    }
    // One pattern matching is enough, as in pg_dump without --strict-names.
    let out = run(pgark([
        "dump",
        "-q",
        "--json",
        "-d",
        &db.url(),
        "-f",
        s(&file),
        "-t",
        "public.users",
        "-t",
        "public.nope",
    ]))
    .await;
    assert_eq!(out.expect_ok().json()["rows"], 200);
}

/// `(restored, failed, not attempted)` from the summary a failed restore prints.
fn restore_counts(stderr: &str) -> (u64, u64, u64) {
    let line = stderr
        .lines()
        .find(|l| l.contains("entries restored"))
        .unwrap_or_else(|| panic!("no restore summary:\n{stderr}"));
    let numbers: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(numbers.len(), 3, "{line}");
    (numbers[0], numbers[1], numbers[2])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_restore_accounts_for_every_entry() {
    let db = small_db().await;
    let (_dir, file) = archive_path();
    run(pgark(["dump", "-q", "-d", &db.url(), "-f", s(&file)]))
        .await
        .expect_ok();
    let clean = fresh_db().await;
    let out = run(pgark(["restore", "--json", "-d", &clean.url(), s(&file)])).await;
    let total = out.expect_ok().json()["entries"].as_u64().unwrap();

    for extra in [vec!["-1", "-j", "1"], vec![], vec!["--exit-on-error"]] {
        // The tables exist already: their CREATE TABLE entries fail.
        let target = fresh_db().await;
        target.exec(SMALL_SCHEMA).await;
        let mut cmd = pgark(["restore", "-d", &target.url()]);
        cmd.args(&extra).arg(&file);
        let out = run(cmd).await;
        out.expect_code(1);
        out.error_line();
        let (restored, failed, skipped) = restore_counts(&out.stderr);
        assert!(failed >= 1, "{extra:?}: {}", out.stderr);
        if extra.contains(&"-1") {
            assert_eq!(
                restored, 0,
                "the transaction was rolled back:\n{}",
                out.stderr
            );
        }
        assert_eq!(
            restored + failed + skipped,
            total,
            "{extra:?}: every entry is restored, failed or not attempted:\n{}",
            out.stderr
        );
    }
}

//! What goes wrong in real life (issue 9): bad credentials and names, a dead
//! server, missing privileges, connections killed mid-COPY, a crashed
//! server, an unwritable or full disk, signals, damaged archives. Each must
//! end with exit 1 (or 130/143), one clear line, no file left behind, and
//! the target database unchanged.

mod common;

use common::*;
use pgark_testkit::{cluster, fresh_db, Cluster, ClusterOptions};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

/// A database holding [`BIG_TABLE`], copied from a template built once per process.
async fn big_db() -> String {
    static TEMPLATE: OnceCell<String> = OnceCell::const_new();
    let template = TEMPLATE
        .get_or_init(|| async {
            let db = fresh_db().await;
            db.exec(BIG_TABLE).await;
            db.name
        })
        .await;
    let name = role_name("big");
    let admin = cluster().connect("postgres").await.unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {template}"))
        .await
        .unwrap();
    name
}

/// An archive of [`BIG_TABLE`], made once per process.
async fn big_archive() -> &'static Path {
    static ARCHIVE: OnceCell<(tempfile::TempDir, PathBuf)> = OnceCell::const_new();
    let (_, path) = ARCHIVE
        .get_or_init(|| async {
            let name = big_db().await;
            let (dir, path) = archive_path();
            let url = cluster().url(&name);
            run(pgark(["dump", "-q", "-d", &url, "-f", s(&path)]))
                .await
                .expect_ok();
            (dir, path)
        })
        .await;
    path
}

fn dump_cmd(url: &str, file: &Path) -> Command {
    pgark(["dump", "-q", "-j", "1", "-d", url, "-f", s(file)])
}

/// Sessions still connected to `dbname` other than ours, after a grace period.
async fn sessions_left(client: &tokio_postgres::Client, dbname: &str) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                &[&dbname],
            )
            .await
            .unwrap()
            .get(0);
        if n == 0 || Instant::now() > deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_database_is_named_and_nothing_is_written() {
    let (dir, file) = archive_path();
    let url = cluster().url("no_such_database_here");
    let out = run(dump_cmd(&url, &file)).await;
    out.expect_error(&["no_such_database_here", "does not exist"]);
    assert!(dir_entries(dir.path()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_not_running_is_named_with_host_and_port() {
    // A port nobody listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (dir, file) = archive_path();
    let url = format!("postgres://postgres@127.0.0.1:{port}/db");
    let out = run(dump_cmd(&url, &file)).await;
    out.expect_error(&[&format!("127.0.0.1:{port}"), "refused"]);
    assert!(dir_entries(dir.path()).is_empty());

    let mut restore = pgark(["restore", "-d", &url, s(big_archive().await)]);
    restore.env("PGCONNECT_TIMEOUT", "5");
    run(restore)
        .await
        .expect_error(&[&format!("127.0.0.1:{port}"), "refused"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_names_the_user_and_nothing_is_written() {
    let db = small_db().await;
    let role = role_name("pw_fault");
    db.cluster()
        .create_password_role(&role, "right-password")
        .await
        .unwrap();
    let (dir, file) = archive_path();
    let url = format!(
        "postgres://{role}:wrong-password@127.0.0.1:{}/{}",
        db.cluster().port(),
        db.name
    );
    let out = run(dump_cmd(&url, &file)).await;
    let line = out.expect_error(&["password authentication failed", &role]);
    assert!(!line.contains("wrong-password"), "{line}");
    assert!(dir_entries(dir.path()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_the_role_cannot_read_is_named() {
    let db = small_db().await;
    let owner = role_name("dbowner");
    let other = role_name("other");
    db.exec(&format!(
        "CREATE ROLE {owner} LOGIN; CREATE ROLE {other};
         ALTER DATABASE {db} OWNER TO {owner};
         ALTER TABLE public.users OWNER TO {owner}; ALTER TABLE public.orders OWNER TO {owner};
         CREATE TABLE public.payroll (id int PRIMARY KEY, salary numeric);
         INSERT INTO public.payroll VALUES (1, 100);
         ALTER TABLE public.payroll OWNER TO {other};",
        db = db.name
    ))
    .await;
    let (dir, file) = archive_path();
    let url = format!(
        "postgres://{owner}@127.0.0.1:{}/{}",
        db.cluster().port(),
        db.name
    );
    let out = run(dump_cmd(&url, &file)).await;
    out.expect_error(&["permission denied", "payroll"]);
    assert!(dir_entries(dir.path()).is_empty());
}

/// Starts a dump of `dbname` with one job, waits for its COPY, pauses pgark
/// so the COPY cannot finish, runs `fault`, resumes pgark and returns its end.
async fn dump_with_fault<F, Fut>(
    client: &tokio_postgres::Client,
    url: &str,
    dbname: &str,
    file: &Path,
    fault: F,
) -> Out
where
    F: FnOnce(i32) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut child = dump_cmd(url, file).spawn().unwrap();
    let pid = wait_for_statement(client, dbname, "COPY", &mut child).await;
    signal(&child, libc::SIGSTOP);
    wait_until_blocked_on_client(client, pid).await;
    fault(pid).await;
    signal(&child, libc::SIGCONT);
    finish(child).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_killed_mid_dump_fails_cleanly_without_leftovers() {
    let name = big_db().await;
    let admin = cluster().connect("postgres").await.unwrap();
    let (dir, file) = archive_path();
    let out = dump_with_fault(&admin, &cluster().url(&name), &name, &file, |pid| {
        let admin = &admin;
        async move { terminate(admin, pid).await }
    })
    .await;
    let line = out.expect_error(&[]);
    assert!(
        line.contains("terminat") || line.contains("connection"),
        "says the connection was lost: {line}"
    );
    assert!(
        dir_entries(dir.path()).is_empty(),
        "{:?}",
        dir_entries(dir.path())
    );
    assert_eq!(
        sessions_left(&admin, &name).await,
        0,
        "sessions left behind"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_crash_mid_dump_fails_cleanly_without_leftovers() {
    let private = Cluster::start(ClusterOptions::default()).unwrap();
    private.create_database("crashdb").await.unwrap();
    let client = private.connect("crashdb").await.unwrap();
    client.batch_execute(BIG_TABLE).await.unwrap();
    let (dir, file) = archive_path();
    let out = dump_with_fault(&client, &private.url("crashdb"), "crashdb", &file, |_| {
        let private = &private;
        async move { private.stop_immediate().unwrap() }
    })
    .await;
    let line = out.expect_error(&[]);
    assert!(
        line.contains("terminat") || line.contains("connection") || line.contains("closed"),
        "says the connection was lost: {line}"
    );
    assert!(
        dir_entries(dir.path()).is_empty(),
        "{:?}",
        dir_entries(dir.path())
    );
}

/// SIGINT or SIGTERM during the COPY: the documented exit code, no file, no session left.
async fn interrupt_mid_dump(sig: libc::c_int, code: i32) {
    let name = big_db().await;
    let admin = cluster().connect("postgres").await.unwrap();
    let (dir, file) = archive_path();
    let mut child = dump_cmd(&cluster().url(&name), &file).spawn().unwrap();
    wait_for_statement(&admin, &name, "COPY", &mut child).await;
    signal(&child, sig);
    let out = finish(child).await;
    out.expect_code(code);
    assert!(
        dir_entries(dir.path()).is_empty(),
        "{:?}",
        dir_entries(dir.path())
    );
    assert_eq!(
        sessions_left(&admin, &name).await,
        0,
        "sessions left behind"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_mid_dump_exits_130_without_leftovers() {
    interrupt_mid_dump(libc::SIGINT, 130).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_dump_exits_143_without_leftovers() {
    interrupt_mid_dump(libc::SIGTERM, 143).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_output_directory_is_named() {
    let db = small_db().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("no/such/dir/backup.pgark");
    let out = run(dump_cmd(&db.url(), &file)).await;
    out.expect_error(&["no/such/dir"]);
    assert!(dir_entries(dir.path()).is_empty());
}

/// uid and gid of the sandbox's unprivileged OS user, when we are root
/// (root ignores file permissions).
fn unprivileged_ids() -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let id = |flag: &str| -> u32 {
        let out = Command::new("id").args([flag, "pgark"]).output().unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    cluster(); // creates the user if needed
    Some((id("-u"), id("-g")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_output_directory_is_named() {
    use std::os::unix::fs::PermissionsExt;
    let db = small_db().await;
    let dir = tempfile::tempdir().unwrap();
    let ro = dir.path().join("read-only");
    std::fs::create_dir(&ro).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
    let file = ro.join("backup.pgark");
    let mut cmd = dump_cmd(&db.url(), &file);
    if let Some((uid, gid)) = unprivileged_ids() {
        cmd.uid(uid).gid(gid).env("HOME", "/nonexistent");
    }
    let out = run(cmd).await;
    out.expect_error(&["read-only", "ermission denied"]);
    assert!(dir_entries(&ro).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_cleanly_without_leftovers() {
    let name = big_db().await;
    let (dir, file) = archive_path();
    // A 1 MiB file size limit stands in for a full disk (EFBIG instead of ENOSPC).
    let mut bash = Command::new("bash");
    clean_env(&mut bash).args([
        "-c",
        "ulimit -f 1024; exec \"$0\" \"$@\"",
        PGARK,
        "dump",
        "-q",
        "-d",
        &cluster().url(&name),
        "-f",
        s(&file),
    ]);
    let out = run(bash).await;
    out.expect_code(1);
    assert!(
        dir_entries(dir.path()).is_empty(),
        "{:?}",
        dir_entries(dir.path())
    );
    // The cause and the file, not just "the writer stopped".
    out.expect_error(&["backup.pgark", "too large"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_transaction_restore_killed_halfway_leaves_the_target_unchanged() {
    let archive = big_archive().await;
    let target = small_db().await;
    let before = db_state(&target).await;
    let admin = cluster().connect("postgres").await.unwrap();
    let mut child = pgark([
        "restore",
        "-q",
        "--single-transaction",
        "-j",
        "1",
        "-d",
        &target.url(),
        s(archive),
    ])
    .spawn()
    .unwrap();
    let pid = wait_for_statement(&admin, &target.name, "COPY", &mut child).await;
    signal(&child, libc::SIGSTOP);
    wait_until_blocked_on_client(&admin, pid).await;
    terminate(&admin, pid).await;
    signal(&child, libc::SIGCONT);
    let out = finish(child).await;
    out.expect_code(1);
    out.error_line();
    assert_unchanged(&target, &before).await;
}

fn damaged_copies(archive: &Path, dir: &Path) -> Vec<PathBuf> {
    let bytes = std::fs::read(archive).unwrap();
    let mut flipped = bytes.clone();
    flipped[bytes.len() / 2] ^= 0x01;
    let mut late = bytes.clone();
    let at = bytes.len() * 9 / 10;
    late[at] ^= 0x80;
    let copies = [
        ("flipped.pgark", flipped),
        ("flipped-late.pgark", late),
        ("truncated.pgark", bytes[..bytes.len() / 2].to_vec()),
        ("no-index.pgark", bytes[..bytes.len() - 40].to_vec()),
    ];
    copies
        .into_iter()
        .map(|(name, data)| {
            let path = dir.join(name);
            std::fs::write(&path, data).unwrap();
            path
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_archive_fails_before_the_target_changes() {
    let db = small_db().await;
    db.exec(
        "CREATE TABLE public.t (id int PRIMARY KEY, v text);
         INSERT INTO public.t SELECT g, md5(g::text) FROM generate_series(1, 50000) g;",
    )
    .await;
    let (dir, file) = archive_path();
    run(dump_cmd(&db.url(), &file)).await.expect_ok();
    let before = db_state(&db).await;
    let empty = fresh_db().await;
    let empty_before = db_state(&empty).await;
    for damaged in damaged_copies(&file, dir.path()) {
        // Into the database itself, dropping its objects first: the worst case.
        let out = run(pgark([
            "restore",
            "-q",
            "--clean",
            "-d",
            &db.url(),
            s(&damaged),
        ]))
        .await;
        out.expect_error(&[s(&damaged)]);
        assert_unchanged(&db, &before).await;
        // A full rollback checks chunks as it loads them, beside the database.
        let mut cmd = pgark(["rollback", "-q", "--yes", "-d", &db.url()]);
        cmd.arg(&damaged);
        run(cmd).await.expect_error(&[s(&damaged)]);
        assert_unchanged(&db, &before).await;
        let leftovers = db
            .query_strings(
                "SELECT datname FROM pg_catalog.pg_database WHERE datname LIKE '%pgark%'",
            )
            .await;
        assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
        for extra in [vec![], vec!["--single-transaction", "-j", "1"]] {
            let mut cmd = pgark(["restore", "-q", "-d", &empty.url()]);
            cmd.args(&extra).arg(&damaged);
            run(cmd).await.expect_error(&[s(&damaged)]);
            assert_unchanged(&empty, &empty_before).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_held_elsewhere_times_out_naming_the_table() {
    let db = small_db().await;
    let blocker = db.client().await;
    blocker
        .batch_execute("BEGIN; LOCK TABLE public.orders IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let (dir, file) = archive_path();
    let started = Instant::now();
    let mut cmd = dump_cmd(&db.url(), &file);
    cmd.args(["--lock-wait-timeout", "1"]);
    let child = cmd.spawn().unwrap();
    let out = finish_within(child, Duration::from_secs(30), "dump behind a lock").await;
    out.expect_error(&["orders"]);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "waited {:?} despite --lock-wait-timeout 1",
        started.elapsed()
    );
    assert!(dir_entries(dir.path()).is_empty());
    blocker.batch_execute("ROLLBACK").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_dump_keeps_an_older_archive_of_the_same_name() {
    let name = big_db().await;
    let admin = cluster().connect("postgres").await.unwrap();
    let (dir, file) = archive_path();
    std::fs::write(&file, b"an older archive").unwrap();
    let out = dump_with_fault(&admin, &cluster().url(&name), &name, &file, |pid| {
        let admin = &admin;
        async move { terminate(admin, pid).await }
    })
    .await;
    out.expect_code(1);
    assert_eq!(std::fs::read(&file).unwrap(), b"an older archive");
    assert_eq!(dir_entries(dir.path()), ["backup.pgark"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_goes_away_ends_a_streamed_dump_cleanly() {
    let name = big_db().await;
    let admin = cluster().connect("postgres").await.unwrap();
    let mut child = pgark([
        "dump",
        "-q",
        "-j",
        "1",
        "-d",
        &cluster().url(&name),
        "-f",
        "-",
    ])
    .spawn()
    .unwrap();
    wait_for_statement(&admin, &name, "COPY", &mut child).await;
    // The reader reads a little, then closes the pipe.
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 4096];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    drop(stdout);
    let out = finish(child).await;
    let line = out.expect_error(&[]);
    assert!(
        line.contains("stdout") || line.to_lowercase().contains("broken pipe"),
        "{line}"
    );
    assert_eq!(
        sessions_left(&admin, &name).await,
        0,
        "sessions left behind"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_with_json_prints_no_json_and_one_line() {
    let (dir, file) = archive_path();
    let url = cluster().url("no_such_database_json");
    let mut cmd = dump_cmd(&url, &file);
    cmd.arg("--json");
    let out = run(cmd).await;
    out.expect_error(&["no_such_database_json"]);
    assert!(out.stdout.is_empty(), "{}", out.stdout_text());
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(dir_entries(dir.path()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_crash_mid_restore_is_reported_and_the_restart_finds_no_half_table() {
    let private = Cluster::start(ClusterOptions::default()).unwrap();
    private.create_database("target").await.unwrap();
    let archive = big_archive().await;
    let client = private.connect("postgres").await.unwrap();
    let mut child = pgark([
        "restore",
        "-q",
        "--single-transaction",
        "-j",
        "1",
        "-d",
        &private.url("target"),
        s(archive),
    ])
    .spawn()
    .unwrap();
    let pid = wait_for_statement(&client, "target", "COPY", &mut child).await;
    signal(&child, libc::SIGSTOP);
    wait_until_blocked_on_client(&client, pid).await;
    private.stop_immediate().unwrap();
    signal(&child, libc::SIGCONT);
    let out = finish(child).await;
    out.expect_code(1);
    out.error_line();
    private.restart().unwrap();
    let after = private.connect("target").await.unwrap();
    let tables: i64 = after
        .query_one(
            "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        tables, 0,
        "objects of a rolled back restore survived the crash"
    );
}

/// Row count and a digest of the ids of `big` in `dbname`.
async fn fingerprint(dbname: &str) -> (i64, String) {
    let client = cluster().connect(dbname).await.unwrap();
    client
        .batch_execute("SET statement_timeout = 0")
        .await
        .unwrap();
    let row = client
        .query_one(
            "SELECT count(*), md5(string_agg(id::text || payload, ',' ORDER BY id)) FROM public.big",
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

async fn databases_named(prefix: &str) -> Vec<String> {
    let admin = cluster().connect("postgres").await.unwrap();
    admin
        .query(
            "SELECT datname::text FROM pg_database WHERE datname LIKE $1 ORDER BY 1",
            &[&format!("{prefix}%")],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// A big database, its archive, and a change made after the backup.
async fn changed_after_backup() -> (String, tempfile::TempDir, PathBuf, (i64, String)) {
    let name = big_db().await;
    let (dir, file) = archive_path();
    run(pgark([
        "dump",
        "-q",
        "-d",
        &cluster().url(&name),
        "-f",
        s(&file),
    ]))
    .await
    .expect_ok();
    let backed_up = fingerprint(&name).await;
    let client = cluster().connect(&name).await.unwrap();
    client
        .batch_execute("DELETE FROM public.big WHERE id % 3 = 0")
        .await
        .unwrap();
    (name, dir, file, backed_up)
}

fn full_rollback(name: &str, file: &Path) -> Command {
    pgark([
        "rollback",
        "--yes",
        "-q",
        "-j",
        "1",
        "-d",
        &cluster().url(name),
        s(file),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_rollback_whose_rebuild_is_killed_leaves_the_original_untouched() {
    let (name, _dir, file, _) = changed_after_backup().await;
    let changed = fingerprint(&name).await;
    let admin = cluster().connect("postgres").await.unwrap();
    let mut child = full_rollback(&name, &file).spawn().unwrap();
    let side = format!("{name}_pgark_new");
    let pid = wait_for_statement(&admin, &side, "COPY", &mut child).await;
    signal(&child, libc::SIGSTOP);
    wait_until_blocked_on_client(&admin, pid).await;
    terminate(&admin, pid).await;
    signal(&child, libc::SIGCONT);
    let out = finish(child).await;
    out.expect_code(1);
    out.error_line();
    assert_eq!(fingerprint(&name).await, changed, "the original changed");
    assert_eq!(databases_named(&name).await, [name.as_str()], "leftovers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_rollback_interrupted_by_sigterm_leaves_the_original_and_a_rerun_succeeds() {
    let (name, _dir, file, backed_up) = changed_after_backup().await;
    let changed = fingerprint(&name).await;
    let admin = cluster().connect("postgres").await.unwrap();
    let mut child = full_rollback(&name, &file).spawn().unwrap();
    let side = format!("{name}_pgark_new");
    wait_for_statement(&admin, &side, "COPY", &mut child).await;
    signal(&child, libc::SIGTERM);
    finish(child).await.expect_code(143);
    assert_eq!(fingerprint(&name).await, changed, "the original changed");

    // The next rollback clears what the interrupted one left and completes.
    run(full_rollback(&name, &file)).await.expect_ok();
    assert_eq!(fingerprint(&name).await, backed_up, "rolled back");
    assert_eq!(databases_named(&name).await, [name.as_str()], "leftovers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_rollback_killed_halfway_changes_nothing() {
    let (name, _dir, file, _) = changed_after_backup().await;
    let changed = fingerprint(&name).await;
    let admin = cluster().connect("postgres").await.unwrap();
    let mut child = pgark([
        "rollback",
        "--yes",
        "-q",
        "-t",
        "public.big",
        "-d",
        &cluster().url(&name),
        s(&file),
    ])
    .spawn()
    .unwrap();
    let pid = wait_for_statement(&admin, &name, "COPY", &mut child).await;
    signal(&child, libc::SIGSTOP);
    wait_until_blocked_on_client(&admin, pid).await;
    terminate(&admin, pid).await;
    signal(&child, libc::SIGCONT);
    let out = finish(child).await;
    out.expect_code(1);
    out.error_line();
    assert_eq!(fingerprint(&name).await, changed, "rows changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_timeout_covers_a_server_that_accepts_but_never_answers() {
    // The kernel completes the TCP handshake into the backlog; nobody answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let (dir, file) = archive_path();
    let info = format!("host=127.0.0.1 port={port} user=postgres dbname=x connect_timeout=2");
    let started = Instant::now();
    let child = pgark(["dump", "-q", "-d", &info, "-f", s(&file)])
        .spawn()
        .unwrap();
    let out = finish_within(child, Duration::from_secs(30), "dump of a silent server").await;
    out.expect_error(&[&format!("127.0.0.1:{port}")]);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?} with connect_timeout=2",
        started.elapsed()
    );
    assert!(dir_entries(dir.path()).is_empty());

    let mut env = pgark(["estimate", "-d", &info.replace(" connect_timeout=2", "")]);
    env.env("PGCONNECT_TIMEOUT", "2");
    let out = finish_within(
        env.spawn().unwrap(),
        Duration::from_secs(30),
        "PGCONNECT_TIMEOUT",
    )
    .await;
    out.expect_code(1);
    drop(silent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_session_defaults_do_not_break_a_dump_or_a_restore() {
    let name = big_db().await;
    let target = fresh_db().await;
    let admin = cluster().connect("postgres").await.unwrap();
    for db in [name.as_str(), target.name.as_str()] {
        admin
            .batch_execute(&format!(
                "ALTER DATABASE {db} SET statement_timeout = '100ms';
                 ALTER DATABASE {db} SET idle_in_transaction_session_timeout = '200ms';
                 ALTER DATABASE {db} SET lock_timeout = '10ms';
                 ALTER DATABASE {db} SET DateStyle = 'SQL, DMY';
                 ALTER DATABASE {db} SET extra_float_digits = -3;
                 ALTER DATABASE {db} SET search_path = 'nowhere';
                 ALTER DATABASE {db} SET default_transaction_isolation = 'serializable';"
            ))
            .await
            .unwrap();
    }
    let (_dir, file) = archive_path();
    run(pgark([
        "dump",
        "-q",
        "-j",
        "2",
        "-d",
        &cluster().url(&name),
        "-f",
        s(&file),
    ]))
    .await
    .expect_ok();
    run(pgark([
        "restore",
        "-q",
        "-j",
        "2",
        "-d",
        &target.url(),
        s(&file),
    ]))
    .await
    .expect_ok();
    assert_eq!(fingerprint(&target.name).await, fingerprint(&name).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_out_of_server_connections_fails_cleanly() {
    let private = Cluster::start(ClusterOptions {
        extra_conf: vec![
            ("max_connections".into(), "4".into()),
            ("superuser_reserved_connections".into(), "0".into()),
        ],
        ..ClusterOptions::default()
    })
    .unwrap();
    private.create_database("full").await.unwrap();
    let setup = private.connect("full").await.unwrap();
    setup.batch_execute(SMALL_SCHEMA).await.unwrap();
    drop(setup);
    // Two of the four slots taken by others; a dump with -j 4 cannot get its workers.
    let _a = private.connect("postgres").await.unwrap();
    let _b = private.connect("postgres").await.unwrap();
    let (dir, file) = archive_path();
    let child = pgark([
        "dump",
        "-q",
        "-j",
        "4",
        "-d",
        &private.url("full"),
        "-f",
        s(&file),
    ])
    .spawn()
    .unwrap();
    let out = finish_within(
        child,
        Duration::from_secs(60),
        "dump without free connections",
    )
    .await;
    out.expect_error(&["too many clients"]);
    assert!(dir_entries(dir.path()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_mid_single_transaction_restore_or_partial_rollback_changes_nothing() {
    let archive = big_archive().await;
    let target = small_db().await;
    let before = db_state(&target).await;
    let admin = cluster().connect("postgres").await.unwrap();
    let mut child = pgark([
        "restore",
        "-q",
        "-1",
        "-j",
        "1",
        "-d",
        &target.url(),
        s(archive),
    ])
    .spawn()
    .unwrap();
    wait_for_statement(&admin, &target.name, "COPY", &mut child).await;
    signal(&child, libc::SIGINT);
    finish(child).await.expect_code(130);
    assert_eq!(sessions_left(&admin, &target.name).await, 0);
    assert_unchanged(&target, &before).await;

    let (name, _dir, file, _) = changed_after_backup().await;
    let changed = fingerprint(&name).await;
    let mut child = pgark([
        "rollback",
        "--yes",
        "-q",
        "-t",
        "public.big",
        "-d",
        &cluster().url(&name),
        s(&file),
    ])
    .spawn()
    .unwrap();
    wait_for_statement(&admin, &name, "COPY", &mut child).await;
    signal(&child, libc::SIGINT);
    finish(child).await.expect_code(130);
    assert_eq!(sessions_left(&admin, &name).await, 0);
    assert_eq!(fingerprint(&name).await, changed, "rows changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_rollback_ends_other_sessions_only_once_the_rebuild_succeeded() {
    let (name, _dir, file, backed_up) = changed_after_backup().await;
    let admin = cluster().connect("postgres").await.unwrap();
    let app = cluster().connect(&name).await.unwrap();
    app.batch_execute("BEGIN; SELECT count(*) FROM public.big")
        .await
        .unwrap();
    let mut child = full_rollback(&name, &file).spawn().unwrap();
    let side = format!("{name}_pgark_new");
    let pid = wait_for_statement(&admin, &side, "COPY", &mut child).await;
    signal(&child, libc::SIGSTOP);
    wait_until_blocked_on_client(&admin, pid).await;
    // Mid-rebuild, the application's session and transaction are untouched.
    app.query_one("SELECT count(*) FROM public.big", &[])
        .await
        .expect("the application's session survives the rebuild");
    signal(&child, libc::SIGCONT);
    finish_within(child, Duration::from_secs(120), "full rollback")
        .await
        .expect_ok();
    assert!(
        app.query_one("SELECT 1", &[]).await.is_err(),
        "the old database's sessions are ended at the swap"
    );
    assert_eq!(fingerprint(&name).await, backed_up);
    assert_eq!(databases_named(&name).await, [name.as_str()], "leftovers");
}

//! Running the `pgark` binary the way a user would, and watching the server
//! while it runs. Each test binary includes this module; not all use all of it.
#![allow(dead_code)]

use pgark_testkit::TestDb;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const PGARK: &str = env!("CARGO_BIN_EXE_pgark");

/// What a finished `pgark` run left on its output channels.
#[derive(Debug)]
pub struct Out {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Out {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Panics with both output channels unless the exit status is `code`.
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code(),
            Some(code),
            "pgark exited with {} (wanted {code})\n--- stderr ---\n{}\n--- stdout ---\n{}",
            self.status,
            self.stderr,
            truncate(&self.stdout_text(), 2000)
        );
        self
    }

    pub fn expect_ok(&self) -> &Self {
        self.expect_code(0)
    }

    /// The one `pgark: error: ...` line a failure must print.
    pub fn error_line(&self) -> &str {
        let errors: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| l.starts_with("pgark: error: "))
            .collect();
        assert_eq!(
            errors.len(),
            1,
            "expected exactly one error line on stderr:\n{}",
            self.stderr
        );
        errors[0]
    }

    /// Exit status 1 and an error line containing every one of `needles`.
    pub fn expect_error(&self, needles: &[&str]) -> &str {
        self.expect_code(1);
        let line = self.error_line();
        for n in needles {
            assert!(line.contains(n), "error line lacks {n:?}: {line}");
        }
        line
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\n--- stderr ---\n{}",
                truncate(&self.stdout_text(), 2000),
                self.stderr
            )
        })
    }
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// An empty directory used as HOME, so that no `~/.pgpass` or
/// `~/.postgresql/root.crt` of the machine leaks into a test.
fn empty_home() -> &'static Path {
    static HOME: OnceLock<tempfile::TempDir> = OnceLock::new();
    HOME.get_or_init(|| tempfile::tempdir().expect("temp dir"))
        .path()
}

/// A `pgark` command with a clean environment: no `PG*` variables, no
/// `DATABASE_URL`, an empty HOME, stdin closed (not a terminal).
pub fn pgark<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut cmd = Command::new(PGARK);
    clean_env(&mut cmd).args(args);
    cmd
}

/// The environment and channels [`pgark`] gives, for a command that runs
/// pgark through another program.
pub fn clean_env(cmd: &mut Command) -> &mut Command {
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if k.starts_with("PG") || k == "DATABASE_URL" {
            cmd.env_remove(&key);
        }
    }
    cmd.env("HOME", empty_home())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
}

/// Runs to completion off the async runtime (the test's own connections
/// keep being driven meanwhile).
pub async fn run(mut cmd: Command) -> Out {
    let output = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("pgark starts");
    Out {
        status: output.status,
        stdout: output.stdout,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Collects a spawned child's output once it ends.
pub async fn finish(child: Child) -> Out {
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("wait for pgark");
    Out {
        status: output.status,
        stdout: output.stdout,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

pub fn signal(child: &Child, sig: libc::c_int) {
    let pid = libc::pid_t::try_from(child.id()).expect("pid fits");
    // SAFETY: kill(2) on our own child, not yet reaped.
    let rc = unsafe { libc::kill(pid, sig) };
    assert_eq!(rc, 0, "kill({pid}, {sig}) failed");
}

/// Names in `dir` (sorted), to prove nothing was left behind.
pub fn dir_entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

pub fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o7777
}

/// A temporary directory and an archive path inside it.
pub fn archive_path() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("backup.pgark");
    (dir, path)
}

/// Two related tables with a few hundred rows: fast to dump and compare.
pub const SMALL_SCHEMA: &str = "
    CREATE TABLE public.users (id int PRIMARY KEY, name text NOT NULL, born timestamp);
    CREATE TABLE public.orders (id int PRIMARY KEY, user_id int NOT NULL REFERENCES public.users,
                                amount numeric(10,2));
    INSERT INTO public.users SELECT g, 'user ' || g, '2000-01-01'::timestamp + g * interval '1 day'
        FROM generate_series(1, 200) g;
    INSERT INTO public.orders SELECT g, 1 + g % 200, g / 7.0 FROM generate_series(1, 600) g;
";

pub const SMALL_ROWS: u64 = 800;

pub async fn small_db() -> TestDb {
    let db = pgark_testkit::fresh_db().await;
    db.exec(SMALL_SCHEMA).await;
    db
}

/// A table big enough that its COPY cannot finish inside socket and
/// pipeline buffers while pgark is paused (about 40 MB of COPY text).
pub const BIG_TABLE: &str = "
    CREATE TABLE public.big (id bigint PRIMARY KEY, payload text NOT NULL);
    INSERT INTO public.big SELECT g, md5(g::text) || md5((g * 7)::text) || md5((g * 13)::text)
        FROM generate_series(1, 400000) g;
    ANALYZE public.big;
";

/// Schema (pg_dump as referee) and every table's rows: equal states, equal databases.
pub async fn db_state(db: &TestDb) -> (String, Vec<(String, Vec<String>)>) {
    let mut rows = Vec::new();
    for t in db.all_tables().await {
        let r = db.table_rows(&t).await;
        rows.push((t, r));
    }
    (db.pg_dump_schema(), rows)
}

pub async fn assert_unchanged(db: &TestDb, before: &(String, Vec<(String, Vec<String>)>)) {
    let after = db_state(db).await;
    assert!(
        after.0 == before.0,
        "schema of {} changed:\n--- before ---\n{}\n--- after ---\n{}",
        db.name,
        before.0,
        after.0
    );
    let tables = |s: &(String, Vec<(String, Vec<String>)>)| -> Vec<String> {
        s.1.iter().map(|(t, _)| t.clone()).collect()
    };
    assert_eq!(tables(&after), tables(before), "tables of {}", db.name);
    for ((t, a), (_, b)) in after.1.iter().zip(&before.1) {
        assert!(a == b, "rows of {t} in {} changed", db.name);
    }
}

/// Waits until a backend of `client`'s server runs a statement starting with
/// `prefix` in database `dbname`, and returns its pid.
pub async fn wait_for_statement(
    client: &tokio_postgres::Client,
    dbname: &str,
    prefix: &str,
    child: &mut Child,
) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(60);
    let pattern = format!("{prefix}%");
    loop {
        let rows = client
            .query(
                "SELECT pid FROM pg_stat_activity \
                 WHERE datname = $1 AND state = 'active' AND query LIKE $2 AND pid <> pg_backend_pid()",
                &[&dbname, &pattern],
            )
            .await
            .expect("query pg_stat_activity");
        if let Some(row) = rows.first() {
            return row.get(0);
        }
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("pgark ended ({status}) before running {prefix}… in {dbname}");
        }
        assert!(
            Instant::now() < deadline,
            "no {prefix}… in {dbname} after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until backend `pid` is blocked on its paused client (sending COPY
/// TO data, or waiting for COPY FROM data): the statement is then certainly
/// unfinished.
pub async fn wait_until_blocked_on_client(client: &tokio_postgres::Client, pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let row = client
            .query_opt(
                "SELECT coalesce(wait_event, '') FROM pg_stat_activity WHERE pid = $1 AND state = 'active'",
                &[&pid],
            )
            .await
            .expect("query pg_stat_activity");
        let event: Option<String> = row.map(|r| r.get(0));
        match event.as_deref() {
            Some("ClientWrite") | Some("ClientRead") => return,
            None => panic!("backend {pid} finished its statement before the fault was injected"),
            _ => {}
        }
        assert!(
            Instant::now() < deadline,
            "backend {pid} never blocked on its client"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Terminates backend `pid` from another session.
pub async fn terminate(client: &tokio_postgres::Client, pid: i32) {
    let killed: bool = client
        .query_one("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .expect("pg_terminate_backend")
        .get(0);
    assert!(killed, "backend {pid} was already gone");
}

/// A name unique in the cluster for this process (roles are cluster-wide).
pub fn role_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Whether a file holds `needle`, as raw bytes or inside any zstd frame in
/// it (archive blocks are compressed, so a raw search alone proves little).
pub fn file_contains(path: &Path, needle: &str) -> bool {
    let bytes = std::fs::read(path).expect("read file");
    let holds = |hay: &[u8]| hay.windows(needle.len()).any(|w| w == needle.as_bytes());
    if holds(&bytes) {
        return true;
    }
    const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
    (0..bytes.len().saturating_sub(4))
        .filter(|&i| bytes[i..i + 4] == ZSTD_MAGIC)
        .any(|i| {
            let mut out = Vec::new();
            let mut decoder = match zstd::stream::read::Decoder::new(&bytes[i..]) {
                Ok(d) => d.single_frame(),
                Err(_) => return false,
            };
            // A damaged or truncated frame still yields what it decoded so far.
            let _ = std::io::Read::read_to_end(&mut decoder, &mut out);
            holds(&out)
        })
}

/// A path as a command-line argument (temp paths are UTF-8).
pub fn s(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// Like [`finish`], but a pgark that hangs is killed and the test fails,
/// instead of the whole suite hanging.
pub async fn finish_within(mut child: Child, limit: Duration, what: &str) -> Out {
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = finish(child).await;
            panic!(
                "{what}: still running after {limit:?}; stderr:\n{}",
                out.stderr
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    finish(child).await
}

//! Test harness: one throwaway PostgreSQL cluster per test binary, shared by
//! all its tests, and a fresh database per test so tests run in parallel.
//!
//! ```no_run
//! # async fn demo() {
//! let db = pgark_testkit::fresh_db().await;
//! db.exec("CREATE TABLE t (id int PRIMARY KEY)").await;
//! assert_eq!(db.all_tables().await, ["public.t"]);
//! assert!(db.pg_dump_schema().contains("CREATE TABLE public.t"));
//! # }
//! ```
//!
//! - [`fresh_db`], [`fresh_learnapp_db`]: a new database on the shared
//!   [`cluster`]; [`TestDb`] gives connection strings, clients and the
//!   referee helpers (`pg_dump_schema`, `table_rows`, `all_tables`).
//! - [`cluster_for_major`], [`fresh_db_for_major`]: the same for another
//!   PostgreSQL major, for cross-version tests.
//! - Tests that stop, crash or reconfigure a server start their own
//!   [`Cluster`] (`Cluster::start(ClusterOptions::default())`), which is
//!   deleted on drop.
//!
//! The shared clusters start on first use and are stopped and deleted when
//! the test process exits, whether tests passed or panicked; clusters of
//! processes killed outright are removed by the next start. Set
//! `PGARK_PG_VERSION=18` (after `scripts/get-postgres.sh 18`) or
//! `PGARK_PG_BIN=/path/to/bin` to test against another PostgreSQL. Run the
//! suite with plain `cargo test` (or `scripts/test.sh`), not nextest, which
//! would start a cluster per test.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, Once, OnceLock};

pub use pgark_sandbox::{fixture, Cluster, ClusterOptions, SandboxError};

/// The shared cluster, or why it could not start (remembered, so that not
/// every test waits for a failing initdb again).
static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();

/// Clusters of other major versions, started on request, by major.
static OTHER_MAJORS: Mutex<Vec<(u32, &'static Cluster)>> = Mutex::new(Vec::new());

/// The cluster shared by every test in this process, started on first call.
///
/// Panics with the sandbox's explanation (for example how to install
/// PostgreSQL) if no cluster can be started.
pub fn cluster() -> &'static Cluster {
    let started = CLUSTER.get_or_init(|| {
        register_exit_cleanup();
        Cluster::start(ClusterOptions::default()).map_err(|e| e.to_string())
    });
    match started {
        Ok(cluster) => cluster,
        Err(e) => panic!("cannot start the test PostgreSQL cluster: {e}"),
    }
}

/// A shared cluster of PostgreSQL `major` (14 to 18), for cross-version
/// tests such as dumping on 14 and restoring on 18: [`cluster()`] itself if
/// it has that major, otherwise one started on first request from
/// `.pg/<major>` (`scripts/get-postgres.sh <major>`) or
/// `/usr/lib/postgresql/<major>`. Panics, saying how to fetch it, if that
/// version is not installed.
pub fn cluster_for_major(major: u32) -> &'static Cluster {
    let default = cluster();
    if default.version_num() / 10000 == major {
        return default;
    }
    let mut others = OTHER_MAJORS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, cluster)) = others.iter().find(|(m, _)| *m == major) {
        return cluster;
    }
    let started = pgark_sandbox::find_bin_dir_for_major(major).and_then(|bin_dir| {
        Cluster::start(ClusterOptions {
            bin_dir: Some(bin_dir),
            ..ClusterOptions::default()
        })
    });
    let cluster: &'static Cluster = match started {
        // Leaked so tests can hold it for the whole process; the exit
        // handler stops it and deletes its directory.
        Ok(cluster) => Box::leak(Box::new(cluster)),
        Err(e) => panic!("cannot start a PostgreSQL {major} test cluster: {e}"),
    };
    others.push((major, cluster));
    cluster
}

/// Statics are never dropped, so the shared clusters are destroyed from an
/// `atexit` handler; libtest ends with `exit()` on success and failure alike.
fn register_exit_cleanup() {
    extern "C" fn destroy_shared_clusters() {
        if let Some(Ok(cluster)) = CLUSTER.get() {
            cluster.destroy();
        }
        let others = OTHER_MAJORS.lock().unwrap_or_else(|p| p.into_inner());
        for (_, cluster) in others.iter() {
            cluster.destroy();
        }
    }
    static REGISTER: Once = Once::new();
    // SAFETY: registers a plain function with no preconditions. If
    // registration fails the next run removes the abandoned clusters.
    REGISTER.call_once(|| unsafe {
        libc::atexit(destroy_shared_clusters);
    });
}

/// Creates a new, empty database on the shared cluster.
pub async fn fresh_db() -> TestDb {
    fresh_db_in(cluster()).await
}

/// Creates a new, empty database on the shared cluster of PostgreSQL `major`
/// (see [`cluster_for_major`]).
pub async fn fresh_db_for_major(major: u32) -> TestDb {
    fresh_db_in(cluster_for_major(major)).await
}

async fn fresh_db_in(cluster: &'static Cluster) -> TestDb {
    let name = unique_db_name();
    cluster
        .create_database(&name)
        .await
        .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
    TestDb { name, cluster }
}

/// Creates a new database holding the learnapp fixture at `scale`.
pub async fn fresh_learnapp_db(scale: u32) -> TestDb {
    let db = fresh_db().await;
    let client = db.client().await;
    fixture::load_learnapp(&client, scale)
        .await
        .unwrap_or_else(|e| panic!("cannot load learnapp into {}: {e}", db.name));
    db
}

/// `t<counter>_<pid>_<test name>`: unique in the cluster, and the test name
/// (libtest names each test's thread after it) tells whose database it is.
fn unique_db_name() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let thread = std::thread::current();
    let test: String = thread
        .name()
        .unwrap_or("main")
        .rsplit("::")
        .next()
        .unwrap_or("main")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    let mut name = format!("t{n}_{}_{test}", std::process::id());
    // PostgreSQL truncates identifiers to 63 bytes; all ASCII here.
    name.truncate(63);
    name
}

/// A database of its own for one test. It is not dropped when the test
/// ends: the whole cluster goes away at process exit.
#[derive(Debug)]
pub struct TestDb {
    pub name: String,
    cluster: &'static Cluster,
}

impl TestDb {
    pub fn cluster(&self) -> &'static Cluster {
        self.cluster
    }

    /// libpq keyword/value connection string (superuser, TCP).
    pub fn conninfo(&self) -> String {
        self.cluster.conninfo(&self.name)
    }

    /// `postgres://postgres@127.0.0.1:<port>/<name>`.
    pub fn url(&self) -> String {
        self.cluster.url(&self.name)
    }

    /// A new superuser connection; its connection task runs on the current runtime.
    pub async fn client(&self) -> tokio_postgres::Client {
        self.cluster
            .connect(&self.name)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Runs one or more SQL statements, panicking with the server's error.
    pub async fn exec(&self, sql: &str) {
        if let Err(e) = self.client().await.batch_execute(sql).await {
            panic!(
                "SQL failed in {}: {}\n--- SQL ---\n{sql}",
                self.name,
                error_chain(&e)
            );
        }
    }

    /// Every value of a one-column query, as text (NULL as `None`).
    pub async fn query_strings(&self, sql: &str) -> Vec<Option<String>> {
        let rows = self
            .client()
            .await
            .simple_query(sql)
            .await
            .unwrap_or_else(|e| {
                panic!("query failed in {}: {}\n{sql}", self.name, error_chain(&e))
            });
        rows.iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(row) => {
                    Some(row.get(0).map(str::to_string))
                }
                _ => None,
            })
            .collect()
    }

    /// Every row of a table as its `row::text` form, sorted bytewise, for
    /// comparing data between two databases. `qualified_table` is SQL
    /// (quote it as needed, as [`TestDb::all_tables`] does).
    pub async fn table_rows(&self, qualified_table: &str) -> Vec<String> {
        // `t.*` is always the row, even in a table with a column named t.
        let sql = format!("SELECT (t.*)::text FROM {qualified_table} AS t");
        let mut rows: Vec<String> = self
            .query_strings(&sql)
            .await
            .into_iter()
            .map(|r| r.unwrap_or_default())
            .collect();
        rows.sort_unstable();
        rows
    }

    /// Quoted `schema.table` names of ordinary and partitioned tables outside
    /// the system schemas, sorted.
    pub async fn all_tables(&self) -> Vec<String> {
        let sql = "SELECT format('%I.%I', n.nspname, c.relname) \
                   FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                   WHERE c.relkind IN ('r', 'p') \
                     AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
                     AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%' \
                   ORDER BY 1";
        self.query_strings(sql)
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    /// The referee: this cluster's own `pg_dump --schema-only`, normalised
    /// so that dumps of two databases with the same schema are equal.
    pub fn pg_dump_schema(&self) -> String {
        normalize_dump(&self.pg_dump(&["--schema-only"]))
    }

    /// Raw output of the cluster's `pg_dump` with `args` (plus connection
    /// options) on this database; panics with pg_dump's stderr on failure.
    pub fn pg_dump(&self, args: &[&str]) -> String {
        let out = self
            .cluster
            .client_command("pg_dump", &self.name)
            .args(args)
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run pg_dump of {}: {e}",
                    self.cluster.bin_dir().display()
                )
            });
        if !out.status.success() {
            panic!(
                "pg_dump {args:?} on {} failed ({}): {}",
                self.name,
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        String::from_utf8(out.stdout).expect("pg_dump output is UTF-8 in a UTF-8 database")
    }
}

/// Drops comments (they carry versions and OIDs), the per-run random
/// `\restrict`/`\unrestrict` keys (17.6+) and runs of blank lines.
fn normalize_dump(dump: &str) -> String {
    let mut out = String::with_capacity(dump.len());
    let mut blank = true;
    for line in dump.lines() {
        if line.starts_with("--")
            || line.starts_with("\\restrict")
            || line.starts_with("\\unrestrict")
        {
            continue;
        }
        if line.trim().is_empty() {
            if !blank {
                out.push('\n');
            }
            blank = true;
            continue;
        }
        out.push_str(line);
        out.push('\n');
        blank = false;
    }
    out.trim_end().to_string() + "\n"
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The output of `COPY ... TO STDOUT` as tokio-postgres's own COPY stream
/// gives it: the reference for pgark's bulk reader.
pub async fn copy_out_plain(client: &tokio_postgres::Client, sql: &str) -> Vec<u8> {
    use futures::StreamExt;
    let stream = client.copy_out(sql).await.expect(sql);
    let pieces: Vec<_> = stream.map(|r| r.expect(sql)).collect().await;
    pieces.concat()
}

#[cfg(test)]
mod tests {
    use super::normalize_dump;

    #[test]
    fn normalize_drops_comments_restrict_and_blank_runs() {
        let dump = "--\n-- PostgreSQL database dump\n--\n\\restrict abc\n\nSET x = 1;\n\n\n\nCREATE TABLE t ();\n\n\\unrestrict abc\n";
        assert_eq!(normalize_dump(dump), "SET x = 1;\n\nCREATE TABLE t ();\n");
    }
}

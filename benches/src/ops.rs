//! The operations compared, how each is prepared (untimed), run (timed) and
//! cleaned up, and the interleaved loop that runs a group of them.

use crate::datasets::Kind;
use crate::error::{BenchError, Result};
use crate::measure::{self, Sample};
use pgark_sandbox::Cluster;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use tokio_postgres::Client;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    PgarkDump,
    PgDumpCustom,
    PgDumpDirZstd,
    RawCopy,
    PgarkRestore,
    PgRestoreDir,
    PgarkRollback,
    PgarkRollbackTable,
    PgRestoreTable,
}

impl Op {
    pub fn label(self, jobs: usize, table: Option<&str>) -> String {
        let t = table.unwrap_or("T");
        match self {
            Op::PgarkDump => format!("pgark dump -j{jobs}"),
            Op::PgDumpCustom => "pg_dump -Fc".into(),
            Op::PgDumpDirZstd => format!("pg_dump -Fd -j{jobs} --compress=zstd"),
            Op::RawCopy => format!("COPY TO STDOUT → /dev/null ({jobs} streams)"),
            Op::PgarkRestore => format!("pgark restore -j{jobs}"),
            Op::PgRestoreDir => format!("pg_restore -j{jobs} (from -Fd zstd)"),
            Op::PgarkRollback => format!("pgark rollback (full) -j{jobs}"),
            Op::PgarkRollbackTable => format!("pgark rollback -t {t}"),
            Op::PgRestoreTable => format!("TRUNCATE + pg_restore -a -1 -t {t} (from -Fc)"),
        }
    }

    pub fn is_pgark(self) -> bool {
        matches!(
            self,
            Op::PgarkDump | Op::PgarkRestore | Op::PgarkRollback | Op::PgarkRollbackTable
        )
    }
}

/// Everything measured for one operation on one dataset.
#[derive(Debug, Clone)]
pub struct Measured {
    pub op: Op,
    pub samples: Vec<Sample>,
    /// Archive size in bytes, for dumps.
    pub size: Option<u64>,
    /// COPY text bytes, for the raw COPY.
    pub copy_bytes: Option<u64>,
}

/// Settings and handles shared by every operation.
pub struct Bench<'a> {
    pub cluster: &'a Cluster,
    pub admin: Client,
    pub pgark: PathBuf,
    pub me: PathBuf,
    pub work: PathBuf,
    pub jobs: usize,
    pub runs: usize,
    pub drop_caches: bool,
    pub postmaster: u32,
}

/// Paths of one dataset's archives.
struct Files {
    pgark: PathBuf,
    custom: PathBuf,
    dir: PathBuf,
    /// pgark archive of the copy the full rollback replaces.
    rollback: PathBuf,
}

impl Bench<'_> {
    fn files(&self, kind: Kind) -> Files {
        let d = self.work.join(kind.to_string());
        Files {
            pgark: d.join("dump.pgark"),
            custom: d.join("dump.custom"),
            dir: d.join("dump.dir"),
            rollback: d.join("rollback.pgark"),
        }
    }

    fn scratch(&self) -> PathBuf {
        self.work.join("scratch")
    }

    /// Runs every operation of `ops` `runs` times, interleaved: A B C, A B C, …
    pub async fn run_group(&self, kind: Kind, ops: &[Op]) -> Result<Vec<Measured>> {
        std::fs::create_dir_all(self.work.join(kind.to_string()))
            .and_then(|_| std::fs::create_dir_all(self.scratch()))
            .map_err(|e| BenchError::io(format!("creating {}", self.work.display()), &e))?;
        if ops.contains(&Op::PgarkRollback) {
            self.prepare_full_rollback(kind).await?;
        }
        let mut out: Vec<Measured> = ops
            .iter()
            .map(|&op| Measured {
                op,
                samples: Vec::new(),
                size: None,
                copy_bytes: None,
            })
            .collect();
        let table = kind.rollback_table().map(|(_, t)| t);
        for run in 1..=self.runs {
            for m in out.iter_mut() {
                let (sample, size, bytes) = self.run_op(kind, m.op).await?;
                println!(
                    "  {kind:<8} run {run}/{}  {:<52} {:>8.2} s  cpu {:>7.2} s  rss {:>6.1} MiB  server {:>6.2} s",
                    self.runs,
                    m.op.label(self.jobs, table),
                    sample.wall,
                    sample.cpu,
                    sample.max_rss_kib as f64 / 1024.0,
                    sample.server_cpu
                );
                m.samples.push(sample);
                m.size = size.or(m.size);
                m.copy_bytes = bytes.or(m.copy_bytes);
            }
        }
        if ops.contains(&Op::PgarkRollback) {
            self.drop_db(&rollback_db(kind)).await?;
        }
        Ok(out)
    }

    async fn run_op(&self, kind: Kind, op: Op) -> Result<(Sample, Option<u64>, Option<u64>)> {
        let db = kind.database();
        let f = self.files(kind);
        let j = self.jobs.to_string();
        match op {
            Op::PgarkDump => {
                remove(&f.pgark)?;
                let mut cmd = Command::new(&self.pgark);
                cmd.args(["dump", "-q", "-j", &j, "-d", &self.cluster.url(&db), "-f"])
                    .arg(&f.pgark);
                if kind == Kind::Learnapp {
                    cmd.arg("--critical")
                        .arg(pgark_sandbox::fixture::LEARNAPP_CRITICAL_TABLES.join(","));
                }
                let s = self.measure(&mut cmd, Duration::ZERO).await?;
                Ok((s, Some(size_of(&f.pgark)?), None))
            }
            Op::PgDumpCustom => {
                remove(&f.custom)?;
                let mut cmd = self.cluster.client_command("pg_dump", &db);
                cmd.args(["-Fc", "-f"]).arg(&f.custom);
                let s = self.measure(&mut cmd, Duration::ZERO).await?;
                Ok((s, Some(size_of(&f.custom)?), None))
            }
            Op::PgDumpDirZstd => {
                remove(&f.dir)?;
                let mut cmd = self.cluster.client_command("pg_dump", &db);
                cmd.args(["-Fd", "-j", &j, "--compress=zstd", "-f"])
                    .arg(&f.dir);
                let s = self.measure(&mut cmd, Duration::ZERO).await?;
                Ok((s, Some(size_of(&f.dir)?), None))
            }
            Op::RawCopy => {
                let mut cmd = Command::new(&self.me);
                cmd.args([
                    "raw-copy",
                    "--streams",
                    &j,
                    "--conninfo",
                    &self.cluster.conninfo(&db),
                ]);
                let (s, stdout) = self.measure_with_output(&mut cmd, Duration::ZERO).await?;
                let bytes = stdout.trim().parse::<u64>().map_err(|_| {
                    BenchError::new(format!("raw-copy printed {stdout:?}, not a byte count"))
                })?;
                Ok((s, None, Some(bytes)))
            }
            Op::PgarkRestore => {
                let target = format!("{db}_restored");
                self.fresh_db(&target, None).await?;
                let mut cmd = Command::new(&self.pgark);
                cmd.args(["restore", "-q", "-j", &j, "-d", &self.cluster.url(&target)])
                    .arg(&f.pgark);
                let s = self.measure(&mut cmd, Duration::ZERO).await?;
                self.drop_db(&target).await?;
                Ok((s, None, None))
            }
            Op::PgRestoreDir => {
                let target = format!("{db}_restored");
                self.fresh_db(&target, None).await?;
                let mut cmd = self.cluster.client_command("pg_restore", &target);
                // -e: an error must fail the run, not be counted and skipped.
                cmd.args(["-e", "-j", &j, "-d", &target]).arg(&f.dir);
                let s = self.measure(&mut cmd, Duration::ZERO).await?;
                self.drop_db(&target).await?;
                Ok((s, None, None))
            }
            Op::PgarkRollback => {
                let mut cmd = Command::new(&self.pgark);
                cmd.args(["rollback", "-q", "--yes", "-j", &j, "-d"])
                    .arg(self.cluster.url(&rollback_db(kind)))
                    .arg(&f.rollback);
                let s = self.measure(&mut cmd, Duration::ZERO).await?;
                Ok((s, None, None))
            }
            Op::PgarkRollbackTable => {
                let (schema, table) = partial_table(kind)?;
                let target = format!("{db}_partial");
                self.fresh_db(&target, Some(&db)).await?;
                let mut cmd = Command::new(&self.pgark);
                cmd.args([
                    "rollback",
                    "-q",
                    "--yes",
                    "-t",
                    &format!("{schema}.{table}"),
                    "-d",
                ])
                .arg(self.cluster.url(&target))
                .arg(&f.pgark);
                let s = self.measure(&mut cmd, Duration::ZERO).await?;
                self.drop_db(&target).await?;
                Ok((s, None, None))
            }
            Op::PgRestoreTable => {
                let (schema, table) = partial_table(kind)?;
                let target = format!("{db}_partial");
                self.fresh_db(&target, Some(&db)).await?;
                let truncate = self.truncate(&target, schema, table).await?;
                let mut cmd = self.cluster.client_command("pg_restore", &target);
                cmd.args(["-e", "-a", "-1", "-n", schema, "-t", table, "-d", &target])
                    .arg(&f.custom);
                let s = self.measure(&mut cmd, truncate).await?;
                self.drop_db(&target).await?;
                Ok((s, None, None))
            }
        }
    }

    async fn measure(&self, cmd: &mut Command, extra_wall: Duration) -> Result<Sample> {
        Ok(self.measure_with_output(cmd, extra_wall).await?.0)
    }

    /// Checkpoint and settle, then run; `extra_wall` is time spent on the
    /// operation before the command (a TRUNCATE) and counts in its wall time.
    async fn measure_with_output(
        &self,
        cmd: &mut Command,
        extra_wall: Duration,
    ) -> Result<(Sample, String)> {
        self.sql("CHECKPOINT").await?;
        measure::settle(self.drop_caches);
        let before = measure::server_cpu(self.postmaster)?;
        let resident = measure::server_children(self.postmaster);
        let scratch = self.scratch();
        let (mut sample, stdout) = tokio::task::block_in_place(|| measure::run(cmd, &scratch))?;
        self.wait_for_backends(&resident).await?;
        sample.server_cpu = measure::server_cpu(self.postmaster)? - before;
        sample.wall += extra_wall.as_secs_f64();
        Ok((sample, stdout))
    }

    /// Backends count in the postmaster's CPU only once it has reaped them:
    /// waits until it has no children but those it had before the run
    /// (its own background processes, and this harness's connection).
    async fn wait_for_backends(&self, resident: &[u32]) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let children = measure::server_children(self.postmaster);
            if children.iter().all(|c| resident.contains(c)) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(BenchError::new(
                    "server backends still running 30 s after the client exited",
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The full rollback replaces a copy of the dataset, dumped once by pgark
    /// (untimed), so the original stays as it was.
    async fn prepare_full_rollback(&self, kind: Kind) -> Result<()> {
        let copy = rollback_db(kind);
        self.fresh_db(&copy, Some(&kind.database())).await?;
        let f = self.files(kind);
        remove(&f.rollback)?;
        let mut cmd = Command::new(&self.pgark);
        cmd.args([
            "dump",
            "-q",
            "-j",
            &self.jobs.to_string(),
            "-d",
            &self.cluster.url(&copy),
            "-f",
        ])
        .arg(&f.rollback);
        let scratch = self.scratch();
        tokio::task::block_in_place(|| measure::run(&mut cmd, &scratch))?;
        Ok(())
    }

    /// An empty database, or a file copy of `template`.
    async fn fresh_db(&self, name: &str, template: Option<&str>) -> Result<()> {
        self.drop_db(name).await?;
        let from = match template {
            Some(t) => format!("TEMPLATE {t} STRATEGY FILE_COPY"),
            None => "TEMPLATE template0".into(),
        };
        self.sql(&format!("CREATE DATABASE {name} {from}")).await
    }

    async fn drop_db(&self, name: &str) -> Result<()> {
        self.sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await
    }

    async fn truncate(&self, db: &str, schema: &str, table: &str) -> Result<Duration> {
        let client = self.cluster.connect(db).await?;
        let start = Instant::now();
        client
            .batch_execute(&format!("TRUNCATE {schema}.{table}"))
            .await
            .map_err(|e| BenchError::pg(format!("truncating {schema}.{table} in {db}"), &e))?;
        Ok(start.elapsed())
    }

    async fn sql(&self, sql: &str) -> Result<()> {
        self.admin
            .batch_execute(sql)
            .await
            .map_err(|e| BenchError::pg(sql, &e))
    }
}

fn rollback_db(kind: Kind) -> String {
    format!("{}_rollback", kind.database())
}

fn partial_table(kind: Kind) -> Result<(&'static str, &'static str)> {
    kind.rollback_table().ok_or_else(|| {
        BenchError::new(format!(
            "dataset {kind} has no table for a partial rollback"
        ))
    })
}

fn remove(path: &Path) -> Result<()> {
    let r = if path.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    match r {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(BenchError::io(format!("removing {}", path.display()), &e))
        }
        _ => Ok(()),
    }
}

/// Bytes of a file, or of every file in a directory (pg_dump -Fd).
fn size_of(path: &Path) -> Result<u64> {
    let meta = std::fs::metadata(path).map_err(|e| BenchError::io(path.display(), &e))?;
    if !meta.is_dir() {
        return Ok(meta.len());
    }
    let mut total = 0;
    let entries = std::fs::read_dir(path).map_err(|e| BenchError::io(path.display(), &e))?;
    for entry in entries {
        let entry = entry.map_err(|e| BenchError::io(path.display(), &e))?;
        total += size_of(&entry.path())?;
    }
    Ok(total)
}

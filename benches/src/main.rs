//! pgark against pg_dump and pg_restore on throwaway clusters.
//!
//! One command (`scripts/bench.sh`) builds the datasets in a fresh cluster,
//! runs pgark and the anchors interleaved, prints medians, ratios, sizes
//! and peak RSS, and writes them into BENCHMARKS.md.

mod datasets;
mod error;
mod measure;
mod ops;
mod rawcopy;
mod report;

use clap::{Parser, Subcommand};
use datasets::{Kind, Sizes};
use error::{BenchError, Result};
use ops::{Bench, Op};
use pgark_sandbox::{Cluster, ClusterOptions};
use report::{DatasetResult, RunInfo};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

#[derive(Parser)]
#[command(name = "pgark-bench", args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    sub: Option<Sub>,
    #[command(flatten)]
    opts: Options,
}

#[derive(Subcommand)]
enum Sub {
    /// COPY every table of a database to nowhere and print the byte count
    /// (run by the harness as a child, so it is measured like the others).
    #[command(hide = true)]
    RawCopy {
        #[arg(long)]
        conninfo: String,
        #[arg(long, default_value_t = 2)]
        streams: usize,
    },
}

#[derive(clap::Args)]
struct Options {
    /// Data scale: pgbench scale factor, learn-app scale, 20k wide rows and
    /// 150k huge-table rows per unit, 100 small tables per unit (100 to 5000).
    #[arg(long, default_value_t = 40)]
    scale: u32,
    /// Runs of every operation.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Parallel jobs for pgark, pg_dump -Fd, pg_restore and the raw COPY.
    #[arg(short = 'j', long, default_value_t = 2)]
    jobs: usize,
    /// Markdown file the results go into (between markers).
    #[arg(long, default_value = "BENCHMARKS.md")]
    out: PathBuf,
    /// PostgreSQL bin directory (server, pg_dump, pg_restore, pgbench);
    /// default: PostgreSQL 17 fetched by `scripts/get-postgres.sh 17`.
    #[arg(long)]
    pg_bin: Option<PathBuf>,
    /// The pgark binary; default: next to this one.
    #[arg(long)]
    pgark: Option<PathBuf>,
    /// Archives and scratch files (on disk, not tmpfs, like real backups).
    #[arg(long, default_value = "target/bench-work")]
    work_dir: PathBuf,
    /// Datasets to run (comma-separated); default all.
    #[arg(long, value_delimiter = ',')]
    datasets: Vec<Kind>,
    /// Number of small tables (overrides the scale's).
    #[arg(long)]
    small_tables: Option<u32>,
    /// Do not drop the page cache before each measured command.
    #[arg(long)]
    keep_caches: bool,
    /// Build the datasets, print their URLs and keep the cluster up until
    /// Ctrl-C, measuring nothing (for profiling by hand).
    #[arg(long)]
    serve: bool,
    /// How the harness was invoked, for the report's header.
    #[arg(long, default_value = "scripts/bench.sh")]
    command_line: String,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let cli = Cli::parse();
    let result = match cli.sub {
        Some(Sub::RawCopy { conninfo, streams }) => rawcopy::copy_all(&conninfo, streams)
            .await
            .map(|bytes| println!("{bytes}")),
        None => bench(cli.opts).await,
    };
    if let Err(e) = result {
        eprintln!("pgark-bench: {e}");
        std::process::exit(1);
    }
}

async fn bench(opts: Options) -> Result<()> {
    if opts.runs == 0 || opts.jobs == 0 || opts.scale == 0 {
        return Err(BenchError::new(
            "--runs, --jobs and --scale must be at least 1",
        ));
    }
    let bin_dir = match &opts.pg_bin {
        Some(dir) => std::path::absolute(dir).map_err(|e| BenchError::io(dir.display(), &e))?,
        None => pgark_sandbox::find_bin_dir_for_major(17)?,
    };
    for tool in ["pg_dump", "pg_restore", "pgbench"] {
        if !bin_dir.join(tool).is_file() {
            return Err(BenchError::new(format!(
                "{} has no {tool}",
                bin_dir.display()
            )));
        }
    }
    let me = std::env::current_exe().map_err(|e| BenchError::io("locating pgark-bench", &e))?;
    let pgark = opts
        .pgark
        .clone()
        .unwrap_or_else(|| me.with_file_name("pgark"));
    if !pgark.is_file() {
        return Err(BenchError::new(format!(
            "pgark binary {} not found (cargo build --release -p pgark)",
            pgark.display()
        )));
    }
    let kinds = if opts.datasets.is_empty() {
        Kind::ALL.to_vec()
    } else {
        opts.datasets.clone()
    };
    let sizes = Sizes::new(opts.scale, opts.small_tables);
    let work = std::path::absolute(&opts.work_dir)
        .map_err(|e| BenchError::io(opts.work_dir.display(), &e))?;

    let cluster = Cluster::start(ClusterOptions {
        bin_dir: Some(bin_dir.clone()),
        extra_conf: server_settings(),
        ..ClusterOptions::default()
    })?;
    println!(
        "pgark-bench: PostgreSQL {} on port {}, data in {}",
        version_of(&bin_dir),
        cluster.port(),
        cluster.data_dir().display()
    );
    let drop_caches = !opts.keep_caches && measure::can_drop_caches();
    let bench = Bench {
        cluster: &cluster,
        admin: cluster.connect("postgres").await?,
        pgark: pgark.clone(),
        me,
        work: work.clone(),
        jobs: opts.jobs,
        runs: opts.runs,
        drop_caches,
        postmaster: postmaster_pid(cluster.data_dir())?,
    };
    let info = RunInfo {
        command: opts.command_line.clone(),
        date: command_text("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        machine: machine(),
        postgres: version_of(&bin_dir),
        pgark: pgark_version(&pgark),
        runs: opts.runs,
        jobs: opts.jobs,
        caches: caches_note(drop_caches),
        load_before: load_average(),
        load_after: String::new(),
    };
    if opts.serve {
        for &kind in &kinds {
            datasets::build(&cluster, &bench.admin, kind, &sizes).await?;
            println!("{kind}: {}", cluster.url(&kind.database()));
        }
        println!("pgark-bench: serving until Ctrl-C");
        let _ = tokio::signal::ctrl_c().await;
        return Ok(());
    }
    let mut info = info;
    let mut results = Vec::new();
    for kind in kinds {
        let started = Instant::now();
        datasets::build(&cluster, &bench.admin, kind, &sizes).await?;
        println!(
            "pgark-bench: built {kind} in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let mut measured = bench
            .run_group(
                kind,
                &[
                    Op::PgarkDump,
                    Op::PgDumpDirZstd,
                    Op::PgDumpCustom,
                    Op::RawCopy,
                ],
            )
            .await?;
        let mut restore = vec![Op::PgarkRestore, Op::PgRestoreDir];
        if kind == Kind::Learnapp {
            restore.push(Op::PgarkRollback);
        }
        measured.extend(bench.run_group(kind, &restore).await?);
        if kind.rollback_table().is_some() {
            measured.extend(
                bench
                    .run_group(kind, &[Op::PgarkRollbackTable, Op::PgRestoreTable])
                    .await?,
            );
        }
        let (db_bytes, tables) = database_size(&cluster, &kind.database()).await?;
        results.push(DatasetResult {
            kind,
            description: sizes.describe(kind),
            db_bytes,
            tables,
            measured,
        });
        bench
            .admin
            .batch_execute(&format!("DROP DATABASE {} WITH (FORCE)", kind.database()))
            .await
            .map_err(|e| BenchError::pg("dropping a dataset", &e))?;
        let _ = std::fs::remove_dir_all(work.join(kind.to_string()));
        info.load_after = load_average();
        // Written after every dataset, so a long run that fails late keeps the rest.
        report::write_into(&opts.out, &report::markdown(&info, &results))?;
    }
    let md = report::markdown(&info, &results);
    println!("\n{md}");
    println!("pgark-bench: results written to {}", opts.out.display());
    Ok(())
}

/// Settings for both sides alike. Autovacuum off and checkpoints only when
/// the harness asks: neither may land inside one tool's measurement.
fn server_settings() -> Vec<(String, String)> {
    [
        ("shared_buffers", "256MB"),
        ("max_wal_size", "16GB"),
        ("checkpoint_timeout", "1h"),
        ("autovacuum", "off"),
        // pg_dump and pgark lock every table in one transaction.
        ("max_locks_per_transaction", "256"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn postmaster_pid(data_dir: &Path) -> Result<u32> {
    let path = data_dir.join("postmaster.pid");
    let text = std::fs::read_to_string(&path).map_err(|e| BenchError::io(path.display(), &e))?;
    text.lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| BenchError::new(format!("{} holds no pid", path.display())))
}

async fn database_size(cluster: &Cluster, db: &str) -> Result<(u64, i64)> {
    let client = cluster.connect(db).await?;
    let row = client
        .query_one(
            "SELECT pg_catalog.pg_database_size(current_database()), \
                    (SELECT count(*) FROM pg_catalog.pg_class c \
                     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                     WHERE c.relkind = 'r' AND n.nspname = 'public')",
            &[],
        )
        .await
        .map_err(|e| BenchError::pg(format!("sizing {db}"), &e))?;
    Ok((row.get::<_, i64>(0).max(0) as u64, row.get(1)))
}

fn command_text(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn version_of(bin_dir: &Path) -> String {
    let text = command_text(&bin_dir.join("postgres").to_string_lossy(), &["--version"]);
    text.rsplit(' ').next().unwrap_or("unknown").to_string()
}

/// pgark's version and the commit it was built from, when in a checkout.
fn pgark_version(pgark: &Path) -> String {
    let version = command_text(&pgark.to_string_lossy(), &["--version"]);
    let mut commit = command_text("git", &["rev-parse", "--short", "HEAD"]);
    // Other work in the checkout is built into the binary too.
    let status = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output();
    if status.is_ok_and(|o| o.status.success() && !o.stdout.is_empty()) {
        commit.push_str(" plus uncommitted changes");
    }
    let version = version.strip_prefix("pgark ").unwrap_or(&version);
    format!("{version} (commit {commit})")
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    format!("{cores} cores ({model}), {mem_gib:.0} GiB RAM, client and server on the same machine")
}

/// The 1, 5 and 15 minute load averages: other work on the machine shows here.
fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn caches_note(dropped: bool) -> String {
    let base =
        "The cluster's files live in tmpfs (/dev/shm), so table data is always in memory for \
                every tool alike; archives go to disk. Before every measured command the harness \
                runs CHECKPOINT and sync(2)";
    if dropped {
        format!("{base} and drops the page cache, so archives are read back from disk.")
    } else {
        format!("{base}; the page cache is not dropped (not permitted here or --keep-caches), so archives are read from memory.")
    }
}

//! Flags in pg_dump's and pg_restore's habits.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "pgark",
    version,
    about = "Native logical backup, verification and rollback for PostgreSQL"
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

/// Where to connect, as libpq users expect: `-d` takes a URL, a keyword
/// string or a database name; PG* variables, DATABASE_URL and ~/.pgpass apply.
#[derive(clap::Args, Debug, Clone)]
pub struct Conn {
    /// Connection string, URL or database name.
    #[arg(short = 'd', long = "dbname", value_name = "CONNINFO")]
    pub dbname: Option<String>,
    /// Server host or socket directory.
    #[arg(short = 'h', long = "host")]
    pub host: Option<String>,
    #[arg(short = 'p', long = "port")]
    pub port: Option<u16>,
    #[arg(short = 'U', long = "username")]
    pub user: Option<String>,
}

#[derive(clap::Args, Debug, Clone)]
pub struct Output {
    /// No progress bar.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// A JSON summary at the end (on stdout, or stderr when stdout is the archive).
    #[arg(long)]
    pub json: bool,
}

/// The key of an encrypted archive: a key file (32 bytes, or 64 hex digits;
/// `openssl rand -hex 32 > key`) or a passphrase read from an environment
/// variable (never from the command line, where `ps` would show it).
#[derive(clap::Args, Debug, Clone)]
pub struct KeyArgs {
    #[arg(long, value_name = "PATH", conflicts_with = "passphrase_env")]
    pub key_file: Option<PathBuf>,
    #[arg(long, value_name = "VAR")]
    pub passphrase_env: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Back up a database into one archive file.
    #[command(disable_help_flag = true)]
    Dump(DumpArgs),
    /// Restore an archive, like pg_restore.
    #[command(disable_help_flag = true)]
    Restore(RestoreArgs),
    /// Undo a change: the whole database, or the rows of a few tables.
    #[command(disable_help_flag = true)]
    Rollback(RollbackArgs),
    /// Show an archive's metadata and table of contents.
    List(ListArgs),
    /// Check every checksum of an archive; optionally test-restore it.
    Verify(VerifyArgs),
    /// Database and table sizes, free space, and the predicted archive size.
    #[command(disable_help_flag = true)]
    Estimate(EstimateArgs),
    /// The whole safety net on a throwaway local cluster with sample data.
    Demo(DemoArgs),
}

#[derive(clap::Args, Debug)]
pub struct DumpArgs {
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    #[command(flatten)]
    pub conn: Conn,
    /// Database name (like pg_dump's last argument).
    pub database: Option<String>,
    /// Output file; `-` streams the archive to stdout.
    #[arg(short = 'f', long = "file")]
    pub file: PathBuf,
    #[arg(short = 'j', long = "jobs", default_value_t = 2)]
    pub jobs: usize,
    #[arg(short = 's', long)]
    pub schema_only: bool,
    #[arg(short = 'a', long)]
    pub data_only: bool,
    /// Only tables matching PATTERN (repeatable).
    #[arg(short = 't', long = "table", value_name = "PATTERN")]
    pub tables: Vec<String>,
    #[arg(short = 'T', long = "exclude-table", value_name = "PATTERN")]
    pub exclude_tables: Vec<String>,
    #[arg(short = 'n', long = "schema", value_name = "PATTERN")]
    pub schemas: Vec<String>,
    #[arg(short = 'N', long = "exclude-schema", value_name = "PATTERN")]
    pub exclude_schemas: Vec<String>,
    #[arg(long = "exclude-table-data", value_name = "PATTERN")]
    pub exclude_table_data: Vec<String>,
    /// Tables dumped first, on their own, for a fast partial rollback (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "TABLE,...")]
    pub critical: Vec<String>,
    /// The backup's purpose, kept in its metadata.
    #[arg(long)]
    pub label: Option<String>,
    /// zstd level.
    #[arg(short = 'Z', long = "compress", default_value_t = 1)]
    pub compress: i32,
    /// Seconds to wait for table locks.
    #[arg(long = "lock-wait-timeout", default_value_t = 30)]
    pub lock_wait_timeout: u64,
    #[arg(short = 'O', long)]
    pub no_owner: bool,
    #[arg(short = 'x', long = "no-privileges", alias = "no-acl")]
    pub no_privileges: bool,
    /// Start even if the free space looks too small.
    #[arg(long)]
    pub force: bool,
    /// Encrypt the archive (AES-256-GCM) with --key-file or --passphrase-env.
    #[arg(long)]
    pub encrypt: bool,
    #[command(flatten)]
    pub key: KeyArgs,
    #[command(flatten)]
    pub out: Output,
}

#[derive(clap::Args, Debug)]
pub struct RestoreArgs {
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    #[command(flatten)]
    pub conn: Conn,
    pub archive: PathBuf,
    /// Write a SQL script here instead of restoring (`-` for stdout).
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
    #[arg(short = 'j', long = "jobs", default_value_t = 2)]
    pub jobs: usize,
    /// Create the archive's database first (connect with -d to another one).
    #[arg(short = 'C', long)]
    pub create: bool,
    #[arg(short = 'c', long)]
    pub clean: bool,
    #[arg(long)]
    pub if_exists: bool,
    #[arg(short = 's', long)]
    pub schema_only: bool,
    #[arg(short = 'a', long)]
    pub data_only: bool,
    #[arg(short = 't', long = "table", value_name = "PATTERN")]
    pub tables: Vec<String>,
    #[arg(short = 'n', long = "schema", value_name = "NAME")]
    pub schemas: Vec<String>,
    /// All or nothing (cannot be combined with -j above 1).
    #[arg(short = '1', long)]
    pub single_transaction: bool,
    #[arg(short = 'e', long)]
    pub exit_on_error: bool,
    #[arg(short = 'O', long)]
    pub no_owner: bool,
    #[arg(short = 'x', long = "no-privileges", alias = "no-acl")]
    pub no_privileges: bool,
    #[arg(long)]
    pub role: Option<String>,
    #[command(flatten)]
    pub key: KeyArgs,
    #[command(flatten)]
    pub out: Output,
}

#[derive(clap::Args, Debug)]
pub struct RollbackArgs {
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    #[command(flatten)]
    pub conn: Conn,
    pub archive: PathBuf,
    /// Only replace the rows of these tables (repeatable).
    #[arg(short = 't', long = "table", value_name = "PATTERN")]
    pub tables: Vec<String>,
    /// Only replace the rows of the archive's critical tables.
    #[arg(long)]
    pub critical: bool,
    /// Do not ask for confirmation.
    #[arg(short = 'y', long)]
    pub yes: bool,
    #[arg(short = 'j', long = "jobs", default_value_t = 2)]
    pub jobs: usize,
    /// Zone of `timestamp` values when a column is now `timestamptz`.
    #[arg(long, default_value = "UTC")]
    pub time_zone: String,
    /// Full rollback even though the archive lists objects it could not
    /// hold (large objects, ...): the old database and they are dropped.
    #[arg(long)]
    pub accept_loss: bool,
    #[command(flatten)]
    pub key: KeyArgs,
    #[command(flatten)]
    pub out: Output,
}

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// Archive file, or `-` for stdin.
    pub archive: PathBuf,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub key: KeyArgs,
}

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// Archive file, or `-` for stdin.
    pub archive: PathBuf,
    /// Also restore into a temporary database on this server and compare.
    #[arg(long, value_name = "CONNINFO")]
    pub restore_test: Option<String>,
    #[arg(short = 'j', long = "jobs", default_value_t = 2)]
    pub jobs: usize,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub key: KeyArgs,
}

#[derive(clap::Args, Debug)]
pub struct EstimateArgs {
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    #[command(flatten)]
    pub conn: Conn,
    pub database: Option<String>,
    /// Where the archive would go (for the free space).
    #[arg(short = 'f', long = "file", default_value = ".")]
    pub file: PathBuf,
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Size of the sample data (1 ≈ 10 thousand rows, 11 MB).
    #[arg(long, default_value_t = 20)]
    pub scale: u32,
    #[arg(short = 'j', long = "jobs", default_value_t = 2)]
    pub jobs: usize,
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

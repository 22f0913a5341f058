//! One throwaway PostgreSQL cluster: initdb, configure, start, stop, delete.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::bins::{self, find_bin_dir};
use crate::conf::{self, PASSWORD_GROUP};
use crate::error::pg_error;
use crate::initdb_cache::InitdbCache;
use crate::location;
use crate::os_user::{self, RunAs, SERVER_USER};
use crate::quote::{conninfo_value, percent_encode, quote_ident};
use crate::stale::{self, DIR_PREFIX};
use crate::SandboxError;

const HOST: &str = "127.0.0.1";
/// Retries when another process grabs the port between our probe and the bind.
const START_ATTEMPTS: u32 = 8;
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How to start a [`Cluster`].
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Directory with `initdb` and `postgres` (and client tools such as
    /// `pg_dump`); found automatically when `None` (see [`crate::find_bin_dir`]).
    pub bin_dir: Option<PathBuf>,
    /// Extra `postgresql.conf` settings, applied after the built-in ones.
    pub extra_conf: Vec<(String, String)>,
    /// Name of the bootstrap superuser.
    pub superuser: String,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            bin_dir: None,
            extra_conf: Vec::new(),
            superuser: "postgres".to_string(),
        }
    }
}

/// A running throwaway cluster. Dropping it stops the server (immediate
/// mode) and deletes its directory.
#[derive(Debug)]
pub struct Cluster {
    base_dir: PathBuf,
    data_dir: PathBuf,
    bin_dir: PathBuf,
    port: u16,
    version_num: u32,
    superuser: String,
    run_as: Option<RunAs>,
    extra_conf: Mutex<Vec<(String, String)>>,
    server: Mutex<Option<Child>>,
    destroyed: AtomicBool,
}

impl Cluster {
    /// Creates, configures and starts a new cluster in a fresh directory under
    /// `$PGARK_SANDBOX_DIR`, else /dev/shm if it has 2 GiB free, else the
    /// temp directory.
    pub fn start(opts: ClusterOptions) -> Result<Cluster, SandboxError> {
        if opts.superuser.is_empty() {
            return Err(SandboxError::InvalidArgument(
                "superuser name is empty".into(),
            ));
        }
        let bin_dir = find_bin_dir(opts.bin_dir.as_deref())?;
        let version_num = bins::version_num(&bin_dir)?;
        let run_as = os_user::server_identity()?;
        for root in location::all_roots() {
            stale::remove_abandoned_clusters(&root);
        }
        let base_dir = make_base_dir(&location::cluster_root(), run_as)?;
        // From here on a failure drops `cluster`, which deletes the directory.
        let mut cluster = Cluster {
            data_dir: base_dir.join("data"),
            base_dir,
            bin_dir,
            port: 0,
            version_num,
            superuser: opts.superuser,
            run_as,
            extra_conf: Mutex::new(opts.extra_conf),
            server: Mutex::new(None),
            destroyed: AtomicBool::new(false),
        };
        cluster.init_db()?;
        cluster.write_hba()?;
        cluster.port = cluster.launch_on_free_port()?;
        Ok(cluster)
    }

    pub fn host(&self) -> &str {
        HOST
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Directory of the server's Unix socket (usable as `host=`).
    pub fn socket_dir(&self) -> &Path {
        &self.base_dir
    }

    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// Path of a program (`pg_dump`, `psql`, …) of this cluster's installation.
    pub fn bin(&self, name: &str) -> PathBuf {
        self.bin_dir.join(name)
    }

    /// A command running a client program of this installation (`psql`,
    /// `pg_dump`, `pg_restore`, …) that connects to `dbname` as the superuser
    /// by default: PGHOST, PGPORT, PGUSER and PGDATABASE are set, the
    /// caller's other PG* variables (PGSSLMODE, PGOPTIONS, …) removed.
    pub fn client_command(&self, program: &str, dbname: &str) -> Command {
        let mut cmd = Command::new(self.bin(program));
        remove_pg_env(&mut cmd);
        cmd.env("PGHOST", HOST)
            .env("PGPORT", self.port.to_string())
            .env("PGUSER", &self.superuser)
            .env("PGDATABASE", dbname);
        cmd
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn hba_path(&self) -> PathBuf {
        self.data_dir.join("pg_hba.conf")
    }

    /// The server log, useful when a test needs to see why something failed.
    pub fn log_path(&self) -> PathBuf {
        self.base_dir.join("server.log")
    }

    pub fn superuser(&self) -> &str {
        &self.superuser
    }

    /// `server_version_num` of the binaries, e.g. 150014.
    pub fn version_num(&self) -> u32 {
        self.version_num
    }

    /// libpq keyword/value connection string for the superuser over TCP.
    pub fn conninfo(&self, dbname: &str) -> String {
        format!(
            "host={HOST} port={} user={} dbname={}",
            self.port,
            conninfo_value(&self.superuser),
            conninfo_value(dbname)
        )
    }

    /// `postgres://` URL for the superuser over TCP.
    pub fn url(&self, dbname: &str) -> String {
        format!(
            "postgres://{}@{HOST}:{}/{}",
            percent_encode(&self.superuser),
            self.port,
            percent_encode(dbname)
        )
    }

    /// Connects as the superuser; the connection task runs on the current
    /// tokio runtime.
    pub async fn connect(&self, dbname: &str) -> Result<tokio_postgres::Client, SandboxError> {
        let conninfo = self.conninfo(dbname);
        let (client, connection) = tokio_postgres::connect(&conninfo, tokio_postgres::NoTls)
            .await
            .map_err(|e| pg_error(format!("connecting to {conninfo}"), &e))?;
        tokio::spawn(async move {
            // The error, if any, surfaces on the client's next call.
            let _ = connection.await;
        });
        Ok(client)
    }

    pub async fn create_database(&self, name: &str) -> Result<(), SandboxError> {
        let client = self.connect("postgres").await?;
        let sql = format!("CREATE DATABASE {}", quote_ident(name));
        client
            .batch_execute(&sql)
            .await
            .map_err(|e| pg_error(format!("{sql} on port {}", self.port), &e))
    }

    /// Creates a login role that must authenticate with `password`
    /// (scram-sha-256) over TCP and the socket, on every server version, by
    /// making it a member of [`PASSWORD_GROUP`].
    pub async fn create_password_role(
        &self,
        name: &str,
        password: &str,
    ) -> Result<(), SandboxError> {
        let client = self.connect("postgres").await?;
        // Concurrent callers race to create the group; losing that race is fine.
        let group = format!(
            "DO $$ BEGIN CREATE ROLE {PASSWORD_GROUP} NOLOGIN; \
             EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
        );
        client
            .batch_execute(&group)
            .await
            .map_err(|e| pg_error(format!("creating role {PASSWORD_GROUP}"), &e))?;
        let sql = format!(
            "CREATE ROLE {} LOGIN PASSWORD '{}' IN ROLE {PASSWORD_GROUP}",
            quote_ident(name),
            password.replace('\'', "''")
        );
        client
            .batch_execute(&sql)
            .await
            .map_err(|e| pg_error(format!("creating password role {name}"), &e))
    }

    /// Adds settings to the cluster's configuration file. They take effect
    /// after [`Cluster::reload`] or [`Cluster::restart`], as PostgreSQL decides.
    pub fn append_conf(&self, settings: &[(&str, &str)]) -> Result<(), SandboxError> {
        let mut extra = self.extra_conf.lock().unwrap_or_else(|p| p.into_inner());
        extra.extend(settings.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self.write_conf(self.port, &extra)
    }

    /// Writes a file into the data directory owned by the server's OS user
    /// with mode 0600 (as PostgreSQL demands of e.g. `ssl_key_file`), and
    /// returns its path.
    pub fn write_server_file(&self, name: &str, contents: &[u8]) -> Result<PathBuf, SandboxError> {
        if name.contains('/') || name.starts_with('.') || name.is_empty() {
            return Err(SandboxError::InvalidArgument(format!(
                "server file name {name:?} must be a plain file name"
            )));
        }
        let path = self.data_dir.join(name);
        self.write_owned(&path, contents, 0o600)?;
        Ok(path)
    }

    /// Stops the server the way a crash would (SIGQUIT, what
    /// `pg_ctl stop -m immediate` sends) and waits for it to exit. Doing so
    /// when it is already stopped is not an error.
    pub fn stop_immediate(&self) -> Result<(), SandboxError> {
        let Some(mut child) = self.server.lock().unwrap_or_else(|p| p.into_inner()).take() else {
            return Ok(());
        };
        signal(&child, libc::SIGQUIT);
        child
            .wait()
            .map(drop)
            .map_err(|e| SandboxError::io("wait for the server of", &self.data_dir, e))
    }

    /// Stops the server (immediate mode, if running) and starts it again on
    /// the same port.
    pub fn restart(&self) -> Result<(), SandboxError> {
        self.stop_immediate()?;
        self.spawn_server()
    }

    /// Makes the server re-read its configuration and `pg_hba.conf` (SIGHUP).
    /// The server applies it asynchronously, shortly after this returns.
    pub fn reload(&self) -> Result<(), SandboxError> {
        match &*self.server.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(child) => {
                signal(child, libc::SIGHUP);
                Ok(())
            }
            None => Err(SandboxError::InvalidArgument(format!(
                "cannot reload the server in {}: it is stopped",
                self.data_dir.display()
            ))),
        }
    }

    /// Stops the server and deletes its directory; later calls do nothing.
    /// Runs on drop; exists for owners that never drop, like a `static`.
    pub fn destroy(&self) {
        if self.destroyed.swap(true, Ordering::SeqCst) {
            return;
        }
        // Best effort: a failing stop must not keep the directory around.
        let _ = self.stop_immediate();
        let _ = std::fs::remove_dir_all(&self.base_dir);
    }

    fn init_db(&self) -> Result<(), SandboxError> {
        let data = self.data_dir.to_string_lossy().into_owned();
        let common = [
            "-D",
            &data,
            "-U",
            &self.superuser,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-sync",
        ];
        let temp_root = self.base_dir.parent().unwrap_or(&self.base_dir);
        let cache = InitdbCache::new(temp_root, self.version_num, &self.bin_dir, &self.superuser);
        if cache.restore(&self.data_dir, self.run_as) {
            return Ok(());
        }
        let with_locale = [&common[..], &["--locale=C.UTF-8"]].concat();
        if self.run_server_program("initdb", &with_locale).is_err() {
            // C.UTF-8 is missing on some systems; plain C always exists.
            let _ = std::fs::remove_dir_all(&self.data_dir);
            let without_locale = [&common[..], &["--no-locale"]].concat();
            self.run_server_program("initdb", &without_locale)?;
        }
        cache.store(&self.data_dir);
        Ok(())
    }

    fn write_hba(&self) -> Result<(), SandboxError> {
        let hba = conf::hba(self.version_num);
        self.write_owned(&self.hba_path(), hba.as_bytes(), 0o600)?;
        let main_conf = self.data_dir.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&main_conf)
            .map_err(|e| SandboxError::io("read", &main_conf, e))?;
        text.push_str(&conf::include_line());
        self.write_owned(&main_conf, text.as_bytes(), 0o600)
    }

    fn launch_on_free_port(&self) -> Result<u16, SandboxError> {
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            let port = free_port()?;
            {
                let extra = self.extra_conf.lock().unwrap_or_else(|p| p.into_inner());
                self.write_conf(port, &extra)?;
            }
            let log_start = self.log_len();
            match self.spawn_server() {
                Ok(()) => return Ok(port),
                Err(e) if self.log_since(log_start).contains("Address already in use") => {
                    last_error = Some(e)
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_error.unwrap_or_else(|| SandboxError::Start {
            data_dir: self.data_dir.clone(),
            detail: "no free port".into(),
        }))
    }

    fn write_conf(&self, port: u16, extra: &[(String, String)]) -> Result<(), SandboxError> {
        let text = conf::settings(HOST, port, &self.base_dir, extra);
        self.write_owned(&self.data_dir.join(conf::FILE_NAME), text.as_bytes(), 0o600)
    }

    /// Starts the postmaster as our child, so that we reap it (PID 1 of a
    /// container may not) and it shares our process group (Ctrl-C stops it
    /// too), then waits until it reports "ready" in postmaster.pid.
    fn spawn_server(&self) -> Result<(), SandboxError> {
        let log_path = self.log_path();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| SandboxError::io("open", &log_path, e))?;
        let log_err = log
            .try_clone()
            .map_err(|e| SandboxError::io("open", &log_path, e))?;
        let log_start = self.log_len();
        let mut cmd = self.server_command("postgres");
        cmd.arg("-D")
            .arg(&self.data_dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        let mut child = cmd.spawn().map_err(|source| SandboxError::Spawn {
            program: self.bin("postgres").display().to_string(),
            source,
        })?;
        let failure = |detail: String| SandboxError::Start {
            data_dir: self.data_dir.clone(),
            detail: format!("{detail}; server log: {}", self.log_since(log_start).trim()),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Err(failure(format!("postgres exited ({status})"))),
                Ok(None) if self.reports_ready(child.id()) => break,
                Ok(None) if Instant::now() > deadline => {
                    signal(&child, libc::SIGQUIT);
                    let _ = child.wait();
                    return Err(failure(format!("not ready after {START_TIMEOUT:?}")));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => return Err(failure(format!("cannot watch postgres: {e}"))),
            }
        }
        *self.server.lock().unwrap_or_else(|p| p.into_inner()) = Some(child);
        Ok(())
    }

    /// Line 8 of postmaster.pid is the postmaster's status (PostgreSQL 10+).
    fn reports_ready(&self, pid: u32) -> bool {
        let Ok(pidfile) = std::fs::read_to_string(self.data_dir.join("postmaster.pid")) else {
            return false;
        };
        let lines: Vec<&str> = pidfile.lines().collect();
        lines.len() >= 8 && lines[0].trim() == pid.to_string() && lines[7].trim() == "ready"
    }

    fn log_len(&self) -> u64 {
        std::fs::metadata(self.log_path())
            .map(|m| m.len())
            .unwrap_or(0)
    }

    fn log_since(&self, offset: u64) -> String {
        let log = std::fs::read(self.log_path()).unwrap_or_default();
        let start = usize::try_from(offset).unwrap_or(0).min(log.len());
        String::from_utf8_lossy(&log[start..]).into_owned()
    }

    /// Runs a program of this installation as the server's OS user.
    fn run_server_program(&self, name: &str, args: &[&str]) -> Result<Output, SandboxError> {
        let mut cmd = self.server_command(name);
        cmd.args(args);
        run(&mut cmd, &self.bin(name)).map_err(|e| self.explain_access(e))
    }

    /// When root, the server programs run as an unprivileged user, who may
    /// be unable to reach binaries kept under a private directory like /root.
    fn explain_access(&self, err: SandboxError) -> SandboxError {
        match err {
            SandboxError::Spawn { program, source }
                if self.run_as.is_some()
                    && source.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                SandboxError::Spawn {
                    program: format!(
                        "{program} as OS user {SERVER_USER} (it needs read and execute access \
                         to {} and every directory above it)",
                        self.bin_dir.display()
                    ),
                    source,
                }
            }
            err => err,
        }
    }

    /// A command for a program of this installation, run as the server's OS user.
    fn server_command(&self, name: &str) -> Command {
        let mut cmd = Command::new(self.bin(name));
        cmd.current_dir(&self.base_dir);
        // Our PG* environment (PGDATA, PGPORT, …) is for clients, not for this server.
        remove_pg_env(&mut cmd);
        if let Some(ids) = self.run_as {
            cmd.uid(ids.uid).gid(ids.gid);
        }
        cmd
    }

    fn write_owned(&self, path: &Path, contents: &[u8], mode: u32) -> Result<(), SandboxError> {
        std::fs::write(path, contents).map_err(|e| SandboxError::io("write", path, e))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| SandboxError::io("set permissions of", path, e))?;
        chown(path, self.run_as)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.destroy();
    }
}

fn remove_pg_env(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PG") {
            cmd.env_remove(key);
        }
    }
}

fn signal(child: &Child, signal: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) on our own, not yet reaped, child.
        unsafe { libc::kill(pid, signal) };
    }
}

fn run(cmd: &mut Command, program: &Path) -> Result<Output, SandboxError> {
    let out = cmd.output().map_err(|source| SandboxError::Spawn {
        program: program.display().to_string(),
        source,
    })?;
    if out.status.success() {
        return Ok(out);
    }
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Err(SandboxError::Command {
        program: program.display().to_string(),
        status: out.status.to_string(),
        output: text.trim().to_string(),
    })
}

fn make_base_dir(temp_root: &Path, run_as: Option<RunAs>) -> Result<PathBuf, SandboxError> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir = temp_root.join(format!(
        "{DIR_PREFIX}{}-{}-{nanos:x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir(&dir).map_err(|e| SandboxError::io("create directory", &dir, e))?;
    if let Err(e) = chown(&dir, run_as) {
        let _ = std::fs::remove_dir(&dir);
        return Err(e);
    }
    Ok(dir)
}

fn chown(path: &Path, run_as: Option<RunAs>) -> Result<(), SandboxError> {
    match run_as {
        Some(ids) => std::os::unix::fs::chown(path, Some(ids.uid), Some(ids.gid))
            .map_err(|e| SandboxError::io("change owner of", path, e)),
        None => Ok(()),
    }
}

fn free_port() -> Result<u16, SandboxError> {
    let listener = std::net::TcpListener::bind((HOST, 0))
        .map_err(|e| SandboxError::io("bind a probe socket on", HOST, e))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| SandboxError::io("read the probe socket address on", HOST, e))
}

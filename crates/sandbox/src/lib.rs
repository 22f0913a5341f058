//! Throwaway local PostgreSQL clusters for tests and demos, plus the
//! `learnapp` sample fixture.
//!
//! A [`Cluster`] lives in its own directory (under `$PGARK_SANDBOX_DIR`,
//! else /dev/shm when it has room, else the temp directory), listens on
//! 127.0.0.1 on a free port with its Unix socket in that directory, and is
//! stopped and deleted when dropped. When running as root the server runs
//! as the unprivileged OS user `pgark` (created if missing), because
//! `initdb` and `postgres` refuse to run as root. Clusters left behind by
//! killed processes are removed by the next [`Cluster::start`].

mod bins;
mod cluster;
mod conf;
mod error;
pub mod fixture;
mod initdb_cache;
mod location;
mod os_user;
mod quote;
mod stale;

pub use bins::{find_bin_dir, find_bin_dir_for_major};
pub use cluster::{Cluster, ClusterOptions};
pub use conf::PASSWORD_GROUP;
pub use error::SandboxError;

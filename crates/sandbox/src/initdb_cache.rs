//! A per-machine cache of freshly initdb'd data directories.
//!
//! `initdb` takes one to two seconds; copying its result takes a fraction
//! of that. Every test binary and every fault test starts a cluster, so the
//! first one runs initdb and stores the result under the temp directory;
//! later ones copy it. Entries are keyed by everything that shapes the
//! result: server version, installation, superuser name and owning user.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::os_user::RunAs;
use crate::stale::DIR_PREFIX;

/// Written last: an entry without it is incomplete and ignored.
const COMPLETE_MARKER: &str = "complete";

pub(crate) struct InitdbCache {
    entry: PathBuf,
}

impl InitdbCache {
    pub(crate) fn new(temp_root: &Path, version_num: u32, bin_dir: &Path, superuser: &str) -> Self {
        let mut hasher = DefaultHasher::new();
        (bin_dir, superuser).hash(&mut hasher);
        // SAFETY: geteuid has no preconditions and cannot fail.
        let euid = unsafe { libc::geteuid() };
        let entry = temp_root.join(format!(
            "pgark-initdb-cache-{euid}-{version_num}-{:016x}",
            hasher.finish()
        ));
        InitdbCache { entry }
    }

    /// Copies the cached data directory to `data_dir`; false if there is
    /// none or copying failed (then `data_dir` is removed again).
    pub(crate) fn restore(&self, data_dir: &Path, run_as: Option<RunAs>) -> bool {
        if !self.entry.join(COMPLETE_MARKER).exists() {
            return false;
        }
        if copy_tree(&self.entry.join("data"), data_dir, run_as).is_ok() {
            return true;
        }
        let _ = std::fs::remove_dir_all(data_dir);
        false
    }

    /// Best effort: stores a fresh, never started data directory. Concurrent
    /// stores race on the final rename; the loser's copy is discarded.
    pub(crate) fn store(&self, data_dir: &Path) {
        // Named like a cluster directory, so that if we die while copying,
        // the next start removes the leftover as abandoned.
        let Some(temp_root) = self.entry.parent() else {
            return;
        };
        static STORES: AtomicU32 = AtomicU32::new(0);
        let staging = temp_root.join(format!(
            "{DIR_PREFIX}{}-initdb-cache-{}",
            std::process::id(),
            STORES.fetch_add(1, Ordering::Relaxed)
        ));
        let stored = copy_tree(data_dir, &staging.join("data"), None)
            .and_then(|()| std::fs::write(staging.join(COMPLETE_MARKER), b""))
            .and_then(|()| std::fs::rename(&staging, &self.entry));
        if stored.is_err() {
            let _ = std::fs::remove_dir_all(&staging);
        }
    }
}

/// Recursive copy of directories and regular files (all a fresh data
/// directory holds), directories with mode 0700 as PostgreSQL demands.
fn copy_tree(from: &Path, to: &Path, run_as: Option<RunAs>) -> io::Result<()> {
    std::fs::create_dir_all(to)?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o700))?;
    chown(to, run_as)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_tree(&entry.path(), &target, run_as)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target)?;
            chown(&target, run_as)?;
        } else {
            return Err(io::Error::other(format!(
                "unexpected non-file {} in a fresh data directory",
                entry.path().display()
            )));
        }
    }
    Ok(())
}

fn chown(path: &Path, run_as: Option<RunAs>) -> io::Result<()> {
    match run_as {
        Some(ids) => std::os::unix::fs::chown(path, Some(ids.uid), Some(ids.gid)),
        None => Ok(()),
    }
}

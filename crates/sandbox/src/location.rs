//! Where cluster directories go.
//!
//! RAM beats disk by far for throwaway clusters: on this project's CI-like
//! VM, copying a 40 MB data directory takes 1.4 s onto the disk-backed /tmp
//! and 0.1 s onto /dev/shm, and every CREATE DATABASE copies a template the
//! same way. So /dev/shm is preferred when it has room.

use std::path::{Path, PathBuf};

/// Overrides the choice (for example to keep a huge benchmark cluster on disk).
const DIR_ENV: &str = "PGARK_SANDBOX_DIR";
const SHM: &str = "/dev/shm";
/// Below this much free space /dev/shm is left alone.
const MIN_SHM_FREE: u64 = 2 << 30;
/// Unix socket paths are limited to about 100 bytes and the socket lives in
/// the cluster directory, so a long `$TMPDIR` (macOS has them) is avoided.
const MAX_ROOT_LEN: usize = 60;

/// The directory new clusters are created in: `$PGARK_SANDBOX_DIR`, else
/// /dev/shm if it has room, else the temp directory.
pub(crate) fn cluster_root() -> PathBuf {
    if let Some(dir) = std::env::var_os(DIR_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if free_bytes(Path::new(SHM)).is_some_and(|free| free >= MIN_SHM_FREE) {
        return PathBuf::from(SHM);
    }
    temp_dir()
}

/// Every place clusters may have been left in by earlier runs.
pub(crate) fn all_roots() -> Vec<PathBuf> {
    let mut roots = vec![cluster_root(), PathBuf::from(SHM), temp_dir()];
    roots.sort();
    roots.dedup();
    roots
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir();
    if dir.as_os_str().len() > MAX_ROOT_LEN && Path::new("/tmp").is_dir() {
        PathBuf::from("/tmp")
    } else {
        dir
    }
}

fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs only writes into the zeroed struct we pass.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &mut stat) } != 0 {
        return None;
    }
    // SAFETY: access(2) with a valid C string has no other preconditions.
    if unsafe { libc::access(path.as_ptr(), libc::W_OK | libc::X_OK) } != 0 {
        return None;
    }
    // The field types are narrower than u64 on some targets.
    #[allow(clippy::useless_conversion)]
    let free = u64::from(stat.f_bavail).saturating_mul(u64::from(stat.f_frsize));
    Some(free)
}

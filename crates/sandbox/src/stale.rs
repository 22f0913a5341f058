//! Removing clusters left behind by processes that were killed before they
//! could clean up (SIGKILL, abort, a test runner timeout).
//!
//! Every cluster directory is named `pgark-sandbox-<owner pid>-…`; if that
//! owner is gone, its server is shut down and the directory deleted.

use std::path::Path;
use std::time::{Duration, Instant};

pub(crate) const DIR_PREFIX: &str = "pgark-sandbox-";

pub(crate) fn remove_abandoned_clusters(temp_root: &Path) {
    let Ok(entries) = std::fs::read_dir(temp_root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(owner) = name.to_str().and_then(owner_pid) else {
            continue;
        };
        if owner != std::process::id() && !alive(owner) {
            let dir = entry.path();
            stop_postmaster(&dir);
            // Best effort: another process may be cleaning the same directory.
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

fn owner_pid(dir_name: &str) -> Option<u32> {
    dir_name
        .strip_prefix(DIR_PREFIX)?
        .split('-')
        .next()?
        .parse()
        .ok()
}

fn alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks for existence and permission.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Sends SIGQUIT (what `pg_ctl stop -m immediate` does) to the postmaster
/// recorded in the directory, but only if that process really is a server
/// running on this directory: the pid may have been reused since.
fn stop_postmaster(dir: &Path) {
    let data_dir = dir.join("data");
    let Ok(pidfile) = std::fs::read_to_string(data_dir.join("postmaster.pid")) else {
        return;
    };
    let Some(pid) = pidfile
        .lines()
        .next()
        .and_then(|l| l.trim().parse::<libc::pid_t>().ok())
    else {
        return;
    };
    if !serves(pid, &data_dir) {
        return;
    }
    // SAFETY: plain kill(2) on a pid we just verified.
    unsafe { libc::kill(pid, libc::SIGQUIT) };
    let deadline = Instant::now() + Duration::from_secs(5);
    while serves(pid, &data_dir) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A zombie has an empty command line, so it no longer counts.
fn serves(pid: libc::pid_t, data_dir: &Path) -> bool {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    String::from_utf8_lossy(&cmdline).contains(&*data_dir.to_string_lossy())
}

#[cfg(test)]
mod tests {
    use super::owner_pid;

    #[test]
    fn owner_pid_comes_from_the_directory_name() {
        assert_eq!(owner_pid("pgark-sandbox-1234-7-abc"), Some(1234));
        assert_eq!(owner_pid("pgark-sandbox-x-7"), None);
        assert_eq!(owner_pid("other-1234"), None);
    }
}

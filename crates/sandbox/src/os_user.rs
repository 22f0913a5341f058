//! The unprivileged OS user a cluster runs as when we are root.

use std::process::Command;

use crate::SandboxError;

/// Name of the OS user that owns and runs clusters started by root.
pub(crate) const SERVER_USER: &str = "pgark";

/// Identity child processes switch to before running server programs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunAs {
    pub uid: u32,
    pub gid: u32,
}

/// `None` when we are not root: then the server simply runs as ourselves.
pub(crate) fn server_identity() -> Result<Option<RunAs>, SandboxError> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    if let Some(ids) = lookup() {
        return Ok(Some(ids));
    }
    let created = Command::new("useradd")
        .args(["--system", "--user-group", "--no-create-home"])
        .args(["--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin"])
        .arg(SERVER_USER)
        .output();
    // Another process may have created the user at the same moment, so the
    // lookup afterwards decides, not useradd's exit status.
    match lookup() {
        Some(ids) => Ok(Some(ids)),
        None => Err(SandboxError::User {
            user: SERVER_USER.to_string(),
            detail: match created {
                Ok(out) => format!(
                    "useradd failed ({}): {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
                Err(e) => format!("cannot run useradd: {e}"),
            },
        }),
    }
}

fn lookup() -> Option<RunAs> {
    Some(RunAs {
        uid: id_number("-u")?,
        gid: id_number("-g")?,
    })
}

fn id_number(flag: &str) -> Option<u32> {
    let out = Command::new("id")
        .arg(flag)
        .arg(SERVER_USER)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8(out.stdout).ok()?.trim().parse().ok()
}

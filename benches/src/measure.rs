//! Runs one client program and measures it: wall time, CPU and peak RSS of
//! the process and the children it waited for (pg_dump's workers), taken
//! from `wait4`, the same numbers `/usr/bin/time -v` prints.

use crate::error::{BenchError, Result};
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

/// What one run of one command cost.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    pub wall: f64,
    /// User + system CPU seconds of the client process tree.
    pub cpu: f64,
    /// Largest resident set of any one process of the tree (KiB).
    pub max_rss_kib: u64,
    /// CPU seconds of the server backends that served the run.
    pub server_cpu: f64,
}

/// Runs `cmd` to completion with stdout and stderr sent to files in `scratch`;
/// fails with the end of stderr when the exit status is not 0. Returns the
/// sample (server CPU unset) and the stdout text.
pub fn run(cmd: &mut Command, scratch: &Path) -> Result<(Sample, String)> {
    let out_path = scratch.join("stdout.txt");
    let err_path = scratch.join("stderr.txt");
    let create = |p: &Path| File::create(p).map_err(|e| BenchError::io(p.display(), &e));
    cmd.stdin(Stdio::null())
        .stdout(create(&out_path)?)
        .stderr(create(&err_path)?);
    let shown = format!("{cmd:?}");
    let start = Instant::now();
    let child = cmd
        .spawn()
        .map_err(|e| BenchError::io(format!("cannot run {shown}"), &e))?;
    let (status, usage) = wait4(child.id() as libc::pid_t)
        .map_err(|e| BenchError::io(format!("waiting for {shown}"), &e))?;
    let wall = start.elapsed().as_secs_f64();
    let stdout = read_text(&out_path);
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        let stderr = read_text(&err_path);
        let tail: Vec<&str> = stderr.lines().rev().take(6).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(BenchError::new(format!(
            "{shown} failed (wait status {status}): {}",
            tail.join(" | ")
        )));
    }
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let sample = Sample {
        wall,
        cpu: seconds(usage.ru_utime) + seconds(usage.ru_stime),
        max_rss_kib: usage.ru_maxrss.max(0) as u64,
        server_cpu: 0.0,
    };
    Ok((sample, stdout))
}

/// `wait4` rather than `Child::wait`: it also hands back the child's rusage,
/// which includes every descendant the child itself waited for.
fn wait4(pid: libc::pid_t) -> std::io::Result<(libc::c_int, libc::rusage)> {
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data; wait4 fills it in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: pid is our own child; both pointers are valid for writes.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            return Ok((status, usage));
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

fn read_text(path: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut f) = File::open(path) {
        let _ = f.read_to_string(&mut text);
    }
    text
}

/// Flushes dirty pages (earlier archives) so their writeback does not land
/// in the next measurement, and, when allowed, drops the page cache so an
/// archive is read from disk by whichever tool reads it. The cluster lives
/// in tmpfs, which the page cache drop does not touch.
pub fn settle(drop_caches: bool) -> bool {
    // SAFETY: sync(2) has no preconditions.
    unsafe { libc::sync() };
    drop_caches && std::fs::write("/proc/sys/vm/drop_caches", "3\n").is_ok()
}

/// Whether this process may drop the page cache (root outside a read-only /proc/sys).
pub fn can_drop_caches() -> bool {
    std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/sys/vm/drop_caches")
        .is_ok()
}

/// CPU seconds the server's postmaster has collected from exited children
/// (backends), plus its own.
pub fn server_cpu(postmaster: u32) -> Result<f64> {
    let path = format!("/proc/{postmaster}/stat");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| BenchError::io(format!("reading {path}"), &e))?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = text
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| BenchError::new(format!("{path} is not in the expected format")))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime, stime, cutime, cstime are fields 14-17 of stat(5); `rest` starts at field 3.
    let ticks: u64 = fields
        .get(11..15)
        .ok_or_else(|| BenchError::new(format!("{path} has too few fields")))?
        .iter()
        .map(|f| f.parse::<u64>().unwrap_or(0))
        .sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Ok(ticks as f64 / hz)
}

/// Processes the postmaster has started and not yet reaped (zombies stay
/// listed until it has).
pub fn server_children(postmaster: u32) -> Vec<u32> {
    let path = format!("/proc/{postmaster}/task/{postmaster}/children");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

//! `pgark demo`, the main job on an embedded default: it must prove both
//! rollbacks and leave nothing behind, even when interrupted.

mod common;

use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

/// A private directory for the demo's cluster, reachable by the server's OS user.
fn sandbox_root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// What pgark process `pid` may have left: its cluster directory, its work
/// directory, a server still running on either.
fn leftovers_of(pid: u32, root: &Path) -> Vec<String> {
    let mut left: Vec<String> = dir_entries(root)
        .into_iter()
        .filter(|n| n.starts_with(&format!("pgark-sandbox-{pid}-")))
        .collect();
    let work = std::env::temp_dir().join(format!("pgark-demo-{pid}"));
    if work.exists() {
        left.push(work.display().to_string());
    }
    let root = root.to_str().unwrap();
    let ps = std::process::Command::new("ps")
        .args(["-eo", "args"])
        .output()
        .unwrap();
    for line in String::from_utf8_lossy(&ps.stdout).lines() {
        if line.contains("postgres") && line.contains(root) {
            left.push(line.to_string());
        }
    }
    left
}

/// Whether the server of pgark process `pid`'s cluster reports "ready"
/// (line 8 of postmaster.pid; initdb's bootstrap backend writes the file too).
fn server_ready(pid: u32, root: &Path) -> bool {
    dir_entries(root)
        .iter()
        .filter(|n| n.starts_with(&format!("pgark-sandbox-{pid}-")))
        .filter_map(|n| std::fs::read_to_string(root.join(n).join("data/postmaster.pid")).ok())
        .any(|pidfile| pidfile.lines().nth(7).map(str::trim) == Some("ready"))
}

fn cluster_dir_exists(pid: u32, root: &Path) -> bool {
    dir_entries(root)
        .iter()
        .any(|n| n.starts_with(&format!("pgark-sandbox-{pid}-")))
}

/// Starts a demo, interrupts it with `sig` once `moment` holds, and checks
/// the exit code and that nothing is left.
async fn interrupt_demo(sig: libc::c_int, code: i32, moment: fn(u32, &Path) -> bool) {
    let root = sandbox_root();
    let mut cmd = pgark(["demo", "--scale", "3"]);
    cmd.env("PGARK_SANDBOX_DIR", root.path());
    let child = cmd.spawn().unwrap();
    let pid = child.id();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !moment(pid, root.path()) {
        assert!(
            std::time::Instant::now() < deadline,
            "the moment never came"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    signal(&child, sig);
    let out = finish_within(child, Duration::from_secs(60), "interrupted demo").await;
    out.expect_code(code);
    // The server stops asynchronously after its parent asked; give it a moment.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left = leftovers_of(pid, root.path());
        if left.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "signal {sig}: left behind {left:?}\n{}",
            out.stderr
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_proves_both_rollbacks_and_cleans_up() {
    let root = sandbox_root();
    let mut cmd = pgark(["demo", "--scale", "1", "-q"]);
    cmd.env("PGARK_SANDBOX_DIR", root.path());
    let child = cmd.spawn().unwrap();
    let pid = child.id();
    let out = finish_within(child, Duration::from_secs(240), "pgark demo").await;
    let text = out.expect_ok().stdout_text();
    assert!(text.contains("both rollbacks proved exact"), "{text}");
    assert!(text.contains("have been removed"), "{text}");
    assert!(out.stderr.is_empty(), "--quiet: {}", out.stderr);
    assert_eq!(leftovers_of(pid, root.path()), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_demo_stops_its_server_and_removes_everything() {
    interrupt_demo(libc::SIGINT, 130, server_ready).await;
    interrupt_demo(libc::SIGTERM, 143, server_ready).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demo_interrupted_while_its_cluster_starts_leaves_nothing() {
    interrupt_demo(libc::SIGINT, 130, cluster_dir_exists).await;
}

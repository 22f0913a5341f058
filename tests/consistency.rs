//! One snapshot for every worker: a dump taken while pgbench's TPC-B-like
//! transactions run must still satisfy the invariant they keep across four
//! tables (balances of accounts, tellers and branches, and the history of
//! deltas, all sum to the same number).

use pgark::{Dump, Restore};
use pgark_e2e::{archive_path, params};
use pgark_testkit::{fresh_db, TestDb};
use std::process::{Child, Command, Stdio};

fn pgbench(db: &TestDb, args: &[&str]) -> Command {
    let c = db.cluster();
    let mut cmd = Command::new(c.bin("pgbench"));
    cmd.args([
        "-h",
        c.host(),
        "-p",
        &c.port().to_string(),
        "-U",
        c.superuser(),
    ])
    .args(args)
    .arg(&db.name);
    cmd
}

async fn sums(db: &TestDb) -> Vec<Option<String>> {
    db.query_strings(
        "SELECT (SELECT sum(abalance) FROM pgbench_accounts)::text UNION ALL \
         SELECT (SELECT sum(tbalance) FROM pgbench_tellers)::text UNION ALL \
         SELECT (SELECT sum(bbalance) FROM pgbench_branches)::text UNION ALL \
         SELECT (SELECT coalesce(sum(delta), 0) FROM pgbench_history)::text",
    )
    .await
}

async fn history(db: &TestDb) -> Vec<Option<String>> {
    db.query_strings("SELECT count(*) FROM pgbench_history")
        .await
}

struct Load(Child);

impl Drop for Load {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn dump_under_concurrent_writes_is_one_consistent_snapshot() {
    let src = fresh_db().await;
    let init = pgbench(&src, &["-i", "-q", "-s", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(init.success());
    let mut load = Load(
        pgbench(&src, &["-n", "-c", "2", "-T", "60"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Wait until the load is really writing.
    while history(&src).await == [Some("0".to_string())] {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (_dir, path) = archive_path();
    // Small ranges and small chunks: many COPYs on two workers, all under one snapshot.
    let report = Dump::new(params(&src))
        .jobs(2)
        .split_bytes(1 << 20)
        .to_file(&path)
        .await
        .unwrap();
    let after = history(&src).await;
    assert!(
        load.0.try_wait().unwrap().is_none(),
        "pgbench stopped early"
    );
    drop(load);
    let accounts = report
        .trailer
        .tables
        .iter()
        .map(|t| t.chunks)
        .max()
        .unwrap();
    assert!(accounts > 2, "accounts was not split ({accounts} chunks)");

    let dst = fresh_db().await;
    Restore::new(params(&dst), &path).run().await.unwrap();
    let restored = sums(&dst).await;
    assert!(
        restored.iter().all(|s| *s == restored[0]),
        "invariant broken in the backup: {restored:?}"
    );
    let restored_history = history(&dst).await;
    assert_ne!(restored_history, [Some("0".to_string())]);
    assert_ne!(
        restored_history, after,
        "writes during the dump should not all be in it"
    );
}

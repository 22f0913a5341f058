//! `pgark demo`: the whole safety net on a throwaway local cluster — back up
//! the sample learning app, verify the backup, break the database with the
//! TIMESTAMP → TIMESTAMPTZ migration, roll back (critical tables, then
//! everything), and prove the result.

use crate::dump::human_bytes;
use crate::{ConnParams, Dump, Error, Rollback};
use pgark_sandbox::{fixture, Cluster, ClusterOptions};
use std::fmt::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct DemoOptions {
    /// Size of the generated data (1 ≈ 10 thousand rows).
    pub scale: u32,
    pub jobs: usize,
    /// Step-by-step narration.
    pub log: Arc<dyn Fn(&str) + Send + Sync>,
    /// Progress of the backup, for a progress bar.
    pub dump_progress: Option<crate::DumpProgressFn>,
}

/// Times and sizes of the demo's steps.
#[derive(Debug, Clone)]
pub struct DemoReport {
    pub runbook: String,
    pub rows: u64,
    pub archive_bytes: u64,
    pub timings: Vec<(String, Duration)>,
    pub migrated_columns: usize,
}

impl DemoReport {
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "pgark demo: {} rows backed up into {}",
            self.rows,
            human_bytes(self.archive_bytes)
        );
        let _ = writeln!(
            s,
            "migration changed {} timestamp columns to timestamptz; both rollbacks proved exact",
            self.migrated_columns
        );
        for (step, d) in &self.timings {
            let _ = writeln!(s, "  {step:<40} {:>8.2} s", d.as_secs_f64());
        }
        let _ = writeln!(
            s,
            "the throwaway cluster and the demo archive have been removed"
        );
        s
    }
}

pub async fn demo(opts: DemoOptions) -> Result<DemoReport, Error> {
    let log = opts.log.clone();
    let mut timings = Vec::new();
    let mut timed = |step: &str, t: Instant| timings.push((step.to_string(), t.elapsed()));
    log("starting a throwaway PostgreSQL cluster");
    let t = Instant::now();
    let cluster = tokio::task::spawn_blocking(|| Cluster::start(ClusterOptions::default()))
        .await
        .expect("cluster start does not panic")?;
    timed("start cluster", t);
    // Removed when dropped, also when a signal cancels the demo midway.
    let work = tempfile::Builder::new()
        .prefix("pgark-demo-")
        .tempdir()
        .map_err(|e| Error::Output {
            path: std::env::temp_dir().display().to_string(),
            reason: e.to_string(),
        })?;
    let result = run(&cluster, work.path(), &opts, &mut timed).await;
    drop(work);
    drop(cluster);
    let (runbook, rows, archive_bytes, migrated_columns) = result?;
    Ok(DemoReport {
        runbook,
        rows,
        archive_bytes,
        timings,
        migrated_columns,
    })
}

async fn run(
    cluster: &Cluster,
    work: &std::path::Path,
    opts: &DemoOptions,
    timed: &mut impl FnMut(&str, Instant),
) -> Result<(String, u64, u64, usize), Error> {
    let log = &opts.log;
    let db = "learnapp";
    cluster.create_database(db).await?;
    let params = ConnParams::resolve(Some(&cluster.conninfo(db)), &Default::default())?;
    log(&format!(
        "loading the sample learning app at scale {}",
        opts.scale
    ));
    let t = Instant::now();
    let client = cluster.connect(db).await?;
    fixture::load_learnapp(&client, opts.scale).await?;
    timed("load sample data", t);

    let archive = work.join("before-migration.pgark");
    log("backing up (full + critical tables first)");
    let t = Instant::now();
    let mut dump = Dump::new(params.clone())
        .jobs(opts.jobs)
        .critical(fixture::LEARNAPP_CRITICAL_TABLES)
        .label("before TIMESTAMP -> TIMESTAMPTZ migration");
    if let Some(p) = &opts.dump_progress {
        let p = p.clone();
        dump = dump.progress(move |x| p(x));
    }
    let report = dump.to_file(&archive).await?;
    timed("backup", t);
    let runbook = crate::runbook(&report, &cluster.conninfo(db));

    log("verifying checksums, then test-restoring into a temporary database");
    let t = Instant::now();
    crate::verify(&archive)?;
    timed("verify checksums", t);
    let t = Instant::now();
    let checks = crate::restore_test(&params.with_dbname("postgres"), &archive, opts.jobs).await?;
    prove(
        checks.iter().all(|c| c.ok()),
        "the test restore does not match the archive",
    )?;
    timed("test restore + compare", t);
    let schema_before = schema_fingerprint(&params).await?;

    log("breaking the database: the timestamptz migration, plus lost rows in a critical table");
    let t = Instant::now();
    let migrated = migrate(&client).await?;
    client
        .batch_execute("DELETE FROM public.spaced_repetition_cards WHERE id % 3 = 0")
        .await
        .map_err(|e| Error::server("deleting rows", &e))?;
    timed("migration", t);

    log("partial rollback: the critical tables' rows, into the migrated schema");
    let t = Instant::now();
    let tables = Rollback::new(params.clone(), &archive)
        .jobs(opts.jobs)
        .critical()
        .await?;
    timed("partial rollback (critical tables)", t);
    for tr in &tables {
        log(&format!(
            "  {} rows back in {} ({} columns converted)",
            tr.rows,
            tr.table,
            tr.conversions.len()
        ));
    }

    log("full rollback: the database as it was before the migration");
    drop(client);
    let t = Instant::now();
    Rollback::new(params.clone(), &archive)
        .jobs(opts.jobs)
        .full()
        .await?;
    timed("full rollback", t);
    let t = Instant::now();
    let checks = crate::compare(&params, &archive).await?;
    prove(
        checks.iter().all(|c| c.ok()),
        "data after rollback differs from the backup",
    )?;
    prove(
        schema_fingerprint(&params).await? == schema_before,
        "schema after rollback differs from before",
    )?;
    timed("prove schema and data identical", t);
    log("rolled back: every table's rows and the whole schema are as before the migration");
    Ok((runbook, report.rows(), report.archive_bytes, migrated))
}

fn prove(ok: bool, what: &str) -> Result<(), Error> {
    if ok {
        Ok(())
    } else {
        Err(Error::Refused(format!("demo check failed: {what}")))
    }
}

/// Every object's DDL as the catalog reads it: equal strings, equal schemas.
async fn schema_fingerprint(params: &ConnParams) -> Result<Vec<String>, Error> {
    let client = pgark_conn::connect_session(params, pgark_conn::Purpose::Dump).await?;
    let catalog = pgark_catalog::read_catalog(&client, &Default::default())
        .await
        .map_err(|e| Error::Refused(e.to_string()))?;
    Ok(catalog
        .objects
        .into_iter()
        .filter(|o| o.kind != "SEQUENCE SET")
        .map(|o| o.create_sql)
        .collect())
}

/// The migration pgark exists for: every `timestamp` column becomes
/// `timestamptz`, reading the old values as UTC. Returns how many columns.
async fn migrate(client: &tokio_postgres::Client) -> Result<usize, Error> {
    let rows = client
        .query(
            "SELECT pg_catalog.format('%I.%I', n.nspname, c.relname), pg_catalog.quote_ident(a.attname) \
             FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind = 'r' AND n.nspname = 'public' AND a.attnum > 0 AND NOT a.attisdropped \
               AND a.atttypid = 'pg_catalog.timestamp'::pg_catalog.regtype ORDER BY 1, 2",
            &[],
        )
        .await
        .map_err(|e| Error::server("finding timestamp columns", &e))?;
    let mut by_table: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for r in &rows {
        let col: String = r.get(1);
        by_table.entry(r.get(0)).or_default().push(format!(
            "ALTER COLUMN {col} TYPE timestamptz USING {col} AT TIME ZONE 'UTC'"
        ));
    }
    // A view over a column blocks its type change: drop and recreate views,
    // as a hand-written migration would.
    let views = client
        .query(
            "SELECT pg_catalog.format('%I.%I', n.nspname, c.relname), pg_catalog.pg_get_viewdef(c.oid) \
             FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind = 'v' AND n.nspname = 'public' ORDER BY c.oid",
            &[],
        )
        .await
        .map_err(|e| Error::server("reading views", &e))?;
    let mut sql = String::from("BEGIN;");
    for v in views.iter().rev() {
        let _ = write!(sql, "DROP VIEW {};", v.get::<_, String>(0));
    }
    for (table, alters) in &by_table {
        let _ = write!(sql, "ALTER TABLE {table} {};", alters.join(", "));
    }
    for v in &views {
        let _ = write!(
            sql,
            "CREATE VIEW {} AS {}",
            v.get::<_, String>(0),
            v.get::<_, String>(1)
        );
    }
    sql.push_str("COMMIT;");
    client
        .batch_execute(&sql)
        .await
        .map_err(|e| Error::server("running the migration", &e))?;
    Ok(rows.len())
}

//! COPY workers: each imports the leader's snapshot and streams units of work
//! into the archive as chunks of whole rows.

use crate::plan::{DataEntry, Plan, Unit};
use crate::snapshot::Leader;
use crate::{DumpOptions, ExportError, Progress};
use futures::TryFutureExt;
use pgark_archive::ChunkSender;
use pgark_conn::{ConnParams, CopyReader, Purpose};
use std::collections::VecDeque;
use std::sync::Mutex;
use tokio_postgres::Client;

/// State the workers share; locks are held only for counter updates.
struct Shared<'a> {
    plan: &'a Plan,
    opts: &'a DumpOptions,
    sender: &'a ChunkSender,
    queue: Mutex<VecDeque<Unit>>,
    units_left: Mutex<Vec<usize>>,
    progress: Mutex<Progress>,
}

/// Dumps every unit of the plan.
pub(crate) async fn run_all(
    params: &ConnParams,
    leader: &Leader,
    plan: &Plan,
    sender: &ChunkSender,
    opts: &DumpOptions,
) -> Result<(), ExportError> {
    let total_units = plan.critical_units.len() + plan.units.len();
    let jobs = opts.jobs.clamp(1, total_units.max(1));
    let mut units_left = vec![0; plan.entries.len()];
    for u in plan.critical_units.iter().chain(&plan.units) {
        units_left[u.entry] += 1;
    }
    let shared = Shared {
        plan,
        opts,
        sender,
        queue: Mutex::new(VecDeque::new()),
        units_left: Mutex::new(units_left),
        progress: Mutex::new(Progress {
            tables_total: plan.entries.len(),
            estimated_bytes: plan.estimated_bytes(),
            ..Progress::default()
        }),
    };
    if total_units == 0 {
        return Ok(());
    }
    let workers = futures::future::try_join_all((0..jobs).map(|_| connect(params, leader))).await?;
    for phase in [&plan.critical_units, &plan.units] {
        *shared.queue.lock().unwrap() = phase.iter().cloned().collect();
        futures::future::try_join_all(workers.iter().map(|w| drain(w, &shared))).await?;
    }
    for (w, _) in &workers {
        w.batch_execute("COMMIT")
            .await
            .map_err(|e| ExportError::server("ending a worker transaction", &e))?;
    }
    Ok(())
}

async fn connect(
    params: &ConnParams,
    leader: &Leader,
) -> Result<(Client, CopyReader), ExportError> {
    let (client, reader) = pgark_conn::connect_for_copy_out(params, Purpose::Dump).await?;
    let mut sql = format!(
        "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET TRANSACTION SNAPSHOT {}",
        pgark_catalog::quote_literal(&leader.snapshot)
    );
    // An SQL_ASCII database may hold any bytes: COPY them as they are, with
    // no conversion to (and validation as) UTF-8.
    if leader.catalog.database.encoding == "SQL_ASCII" {
        sql.push_str("; SET client_encoding = 'SQL_ASCII'");
    }
    client
        .batch_execute(&sql)
        .map_err(|e| ExportError::server("importing the snapshot in a worker", &e))
        .await?;
    Ok((client, reader))
}

async fn drain(worker: &(Client, CopyReader), shared: &Shared<'_>) -> Result<(), ExportError> {
    loop {
        let Some(unit) = shared.queue.lock().unwrap().pop_front() else {
            return Ok(());
        };
        copy_unit(worker, shared, &unit).await?;
        let table_done = {
            let mut left = shared.units_left.lock().unwrap();
            left[unit.entry] -= 1;
            left[unit.entry] == 0
        };
        if table_done {
            report(shared, |p| p.tables_done += 1);
        }
    }
}

async fn copy_unit(
    (client, reader): &(Client, CopyReader),
    shared: &Shared<'_>,
    unit: &Unit,
) -> Result<(), ExportError> {
    let entry = &shared.plan.entries[unit.entry];
    let what = || format!("dumping table {}", entry.table.qualified);
    let limit = shared.opts.chunk_bytes.max(1);
    let mut copy = reader
        .copy_out(client, &copy_sql(entry, unit), limit)
        .await
        .map_err(|e| ExportError::server(what(), &e))?;
    let mut buf: Vec<u8> = Vec::new();
    while let Some(rows) = copy
        .next()
        .await
        .map_err(|e| ExportError::server(what(), &e))?
    {
        if buf.is_empty() {
            buf = rows;
        } else {
            buf.extend_from_slice(&rows);
        }
        if buf.len() >= limit {
            buf = send_rows(shared, entry, buf).await?;
        }
    }
    if !buf.is_empty() {
        if buf.last() != Some(&b'\n') {
            return Err(ExportError::Server {
                what: what(),
                reason: "COPY output ended inside a row".into(),
            });
        }
        send_rows(shared, entry, buf).await?;
    }
    Ok(())
}

/// Sends the complete rows of `buf` as one chunk; returns the partial row left over.
async fn send_rows(
    shared: &Shared<'_>,
    entry: &DataEntry,
    mut buf: Vec<u8>,
) -> Result<Vec<u8>, ExportError> {
    let Some(last_newline) = memchr::memrchr(b'\n', &buf) else {
        return Ok(buf);
    };
    let rest = buf.split_off(last_newline + 1);
    // The rows' digest is not computed here (it cost a tenth of the dump's
    // CPU): a comparison computes it from the archive's chunks when needed.
    let rows = memchr::memchr_iter(b'\n', &buf).count() as u64;
    let raw = buf.len() as u64;
    shared.sender.send_async(entry.entry_id, rows, buf).await?;
    report(shared, |p| {
        p.rows += rows;
        p.raw_bytes += raw;
    });
    Ok(rest)
}

/// Updates the progress, then calls the user's callback on a copy, outside
/// the lock: a slow callback must not hold up the other workers.
fn report(shared: &Shared<'_>, update: impl FnOnce(&mut Progress)) {
    let snapshot = {
        let mut p = shared.progress.lock().unwrap();
        update(&mut p);
        p.clone()
    };
    if let Some(f) = &shared.opts.progress {
        f(&snapshot);
    }
}

fn copy_sql(entry: &DataEntry, unit: &Unit) -> String {
    let t = &entry.table;
    let cols: Vec<String> = t
        .columns
        .iter()
        .map(|c| pgark_catalog::quote_ident(&c.name))
        .collect();
    let mut conds = Vec::new();
    if let Some(f) = &t.copy_filter {
        // extcondition is a whole WHERE clause (pg_extension_config_dump's
        // argument), e.g. PostGIS's "WHERE NOT (srid BETWEEN ...)".
        let f = f.trim();
        let cond = match f.get(..5) {
            Some(w) if w.eq_ignore_ascii_case("where") => &f[5..],
            _ => f,
        };
        conds.push(format!("({cond})"));
    }
    if let Some((start, end)) = unit.pages {
        conds.push(format!("ctid >= '({start},0)'::pg_catalog.tid"));
        if let Some(end) = end {
            conds.push(format!("ctid < '({end},0)'::pg_catalog.tid"));
        }
    }
    if conds.is_empty() {
        let list = if cols.is_empty() {
            String::new()
        } else {
            format!(" ({})", cols.join(", "))
        };
        format!("COPY {}{list} TO STDOUT", t.qualified)
    } else {
        format!(
            "COPY (SELECT {} FROM ONLY {} WHERE {}) TO STDOUT",
            cols.join(", "),
            t.qualified,
            conds.join(" AND ")
        )
    }
}

//! Loading table data: the chunks of a table streamed into one
//! `COPY ... FROM STDIN`, while a blocking thread reads and decompresses the
//! next chunks.

use crate::ddl::{session, Run};
use crate::source::Source;
use crate::RestoreError;
use bytes::Bytes;
use futures::SinkExt;
use pgark_archive::{BlockRef, TocEntry};
use pgark_conn::ConnParams;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use tokio_postgres::Client;

/// Tables with more chunks than this are loaded by several jobs at once.
const SPLIT_CHUNKS: usize = 8;

/// One COPY: all or part of a table's chunks.
pub(crate) struct Unit<'a> {
    pub(crate) entry: &'a TocEntry,
    pub(crate) chunks: Vec<BlockRef>,
    /// The table was created by this restore and this unit loads all of it:
    /// TRUNCATE + COPY FREEZE in one transaction (no later vacuum needed).
    pub(crate) freeze: bool,
}

fn units<'a>(source: &Source, data: &[&'a TocEntry], run: &Run<'_>, jobs: usize) -> Vec<Unit<'a>> {
    let mut out = Vec::new();
    for e in data {
        let chunks = source.chunks_of(e.id);
        let created = e.deps.iter().any(|d| run.created_tables.contains(d));
        if chunks.len() > SPLIT_CHUNKS && jobs > 1 {
            let per = chunks.len().div_ceil(jobs);
            out.extend(chunks.chunks(per).map(|c| Unit {
                entry: e,
                chunks: c.to_vec(),
                freeze: false,
            }));
        } else {
            out.push(Unit {
                entry: e,
                chunks,
                freeze: created,
            });
        }
    }
    out.sort_by_key(|u| {
        std::cmp::Reverse(u.chunks.iter().map(|c| c.stored_len as u64).sum::<u64>())
    });
    out
}

/// Loads everything on one connection, inside the caller's transaction.
pub(crate) async fn serial(
    client: &Client,
    source: &Source,
    data: &[&TocEntry],
    run: &mut Run<'_>,
) -> Result<(), RestoreError> {
    let total = data.len();
    for (i, unit) in units(source, data, run, 1).into_iter().enumerate() {
        // In the one transaction that also created the table, FREEZE needs no TRUNCATE.
        let result = copy_unit(client, source, &unit, unit.freeze, false).await;
        let result = result.map(|rows| run.report.rows += rows);
        run.record(unit.entry, result)?;
        run.progress("data", i + 1, total);
    }
    Ok(())
}

/// Loads on `jobs` connections, biggest units first.
pub(crate) async fn parallel(
    params: &ConnParams,
    source: &Source,
    data: &[&TocEntry],
    run: &mut Run<'_>,
) -> Result<(), RestoreError> {
    let all = units(source, data, run, run.opts.jobs);
    if all.is_empty() {
        return Ok(());
    }
    let jobs = run.opts.jobs.clamp(1, all.len());
    let queue = Mutex::new(all.into_iter().collect::<VecDeque<_>>());
    let results = Mutex::new(Vec::new());
    let stop = AtomicBool::new(false);
    let exit_on_error = run.opts.exit_on_error;
    let mut clients = Vec::new();
    for _ in 0..jobs {
        clients.push(session(params, run.opts).await?);
    }
    let workers = clients.iter().map(|client| async {
        while !stop.load(Ordering::Relaxed) {
            let Some(unit) = queue.lock().unwrap().pop_front() else {
                break;
            };
            let result = copy_unit(client, source, &unit, unit.freeze, unit.freeze).await;
            if result.is_err() && exit_on_error {
                stop.store(true, Ordering::Relaxed);
            }
            results.lock().unwrap().push((unit.entry, result));
        }
    });
    futures::future::join_all(workers).await;
    record_by_entry(results.into_inner().unwrap(), run)?;
    run.report.not_attempted += queue.into_inner().unwrap().len();
    Ok(())
}

/// One outcome per table: a split table succeeded only if all its parts did.
fn record_by_entry(
    results: Vec<(&TocEntry, Result<u64, String>)>,
    run: &mut Run<'_>,
) -> Result<(), RestoreError> {
    let mut by_entry: BTreeMap<u32, (&TocEntry, Result<u64, String>)> = BTreeMap::new();
    for (e, r) in results {
        let slot = by_entry.entry(e.id).or_insert((e, Ok(0)));
        slot.1 = match (&slot.1, r) {
            (Ok(a), Ok(b)) => Ok(a + b),
            (Err(a), _) => Err(a.clone()),
            (_, Err(b)) => Err(b),
        };
    }
    for (_, (e, r)) in by_entry {
        let r = r.map(|rows| run.report.rows += rows);
        run.record(e, r)?;
    }
    Ok(())
}

/// Streams a unit's chunks into one COPY; returns the rows loaded.
pub(crate) async fn copy_unit(
    client: &Client,
    source: &Source,
    unit: &Unit<'_>,
    freeze: bool,
    truncate: bool,
) -> Result<u64, String> {
    let spec = unit.entry.copy.as_ref().ok_or("not a TABLE DATA entry")?;
    let target = spec.qualified_table.as_str();
    if truncate {
        let sql = format!("BEGIN; TRUNCATE ONLY {target}");
        client
            .batch_execute(&sql)
            .await
            .map_err(|e| pgark_conn::describe(&e))?;
    }
    let result = stream_copy(client, source, unit, &copy_sql(target, spec, freeze)).await;
    if truncate {
        let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
        client
            .batch_execute(end)
            .await
            .map_err(|e| pgark_conn::describe(&e))?;
    }
    result
}

pub(crate) fn copy_sql(target: &str, spec: &pgark_archive::CopySpec, freeze: bool) -> String {
    let cols: Vec<String> = spec
        .columns
        .iter()
        .map(|c| pgark_catalog::quote_ident(&c.name))
        .collect();
    let list = if cols.is_empty() {
        String::new()
    } else {
        format!(" ({})", cols.join(", "))
    };
    let with = if freeze { " WITH (FREEZE)" } else { "" };
    format!("COPY {target}{list} FROM STDIN{with}")
}

pub(crate) async fn stream_copy(
    client: &Client,
    source: &Source,
    unit: &Unit<'_>,
    sql: &str,
) -> Result<u64, String> {
    let rows = unit.chunks.iter().map(|c| c.rows).sum();
    let mut chunks = prefetch(source, unit.chunks.clone());
    let sink = client
        .copy_in::<_, Bytes>(sql)
        .await
        .map_err(|e| pgark_conn::describe(&e))?;
    futures::pin_mut!(sink);
    while let Some(data) = chunks.recv().await {
        // Dropping the sink without finish() aborts the COPY on the server.
        let data = data.map_err(|e| e.to_string())?;
        sink.send(data)
            .await
            .map_err(|e| pgark_conn::describe(&e))?;
    }
    sink.as_mut()
        .finish()
        .await
        .map_err(|e| pgark_conn::describe(&e))?;
    Ok(rows)
}

/// Reads and decompresses chunks on a blocking thread, two ahead of the COPY.
fn prefetch(
    source: &Source,
    chunks: Vec<BlockRef>,
) -> tokio::sync::mpsc::Receiver<Result<Bytes, RestoreError>> {
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    let source = source.clone();
    tokio::task::spawn_blocking(move || {
        let mut file = match source.handle() {
            Ok(f) => f,
            Err(e) => return drop(tx.blocking_send(Err(e))),
        };
        for at in chunks {
            let data = source
                .read(&mut file, &at)
                .and_then(|c| c.decompress().map_err(|e| source.archive_error(e)));
            let failed = data.is_err();
            if tx.blocking_send(data.map(Bytes::from)).is_err() || failed {
                return;
            }
        }
    });
    rx
}

//! The restore's order: clean, pre-data, then data and post-data together
//! in parallel, by dependencies (see [`crate::schedule`]).

use crate::schedule::{Scheduler, Task};
use crate::select::Selection;
use crate::source::Source;
use crate::{load, Failure, Progress, RestoreError, RestoreOptions, RestoreReport};
use futures::stream::{FuturesUnordered, StreamExt};
use pgark_archive::{Section, TocEntry};
use pgark_conn::{ConnParams, Purpose};
use std::collections::{BTreeMap, BTreeSet};
use tokio_postgres::Client;

/// Restore state: the report so far and whether to stop at the next error.
pub(crate) struct Run<'a> {
    pub(crate) opts: &'a RestoreOptions,
    pub(crate) report: RestoreReport,
    /// TABLE entries created by this restore: their data can be loaded with
    /// TRUNCATE + COPY FREEZE.
    pub(crate) created_tables: BTreeSet<u32>,
    /// Entries selected for this restore.
    pub(crate) total: usize,
}

impl Run<'_> {
    /// Records the outcome of one entry; Err means the restore must stop.
    pub(crate) fn record(
        &mut self,
        e: &TocEntry,
        result: Result<(), String>,
    ) -> Result<(), RestoreError> {
        match result {
            Ok(()) => {
                self.report.entries_restored += 1;
                Ok(())
            }
            Err(error) => {
                self.report.failed.push(Failure {
                    entry: describe(e),
                    error,
                });
                if self.opts.exit_on_error || self.opts.single_transaction {
                    let mut report = self.report.clone();
                    if self.opts.single_transaction {
                        // The transaction rolls back: nothing stays restored.
                        report.rolled_back = true;
                        report.entries_restored = 0;
                        report.rows = 0;
                    }
                    report.not_attempted =
                        self.total - report.entries_restored - report.failed.len();
                    Err(RestoreError::Incomplete(Box::new(report)))
                } else {
                    Ok(())
                }
            }
        }
    }

    pub(crate) fn progress(&self, phase: &'static str, done: usize, total: usize) {
        if let Some(f) = &self.opts.progress {
            f(&Progress {
                phase,
                done,
                total,
                rows: self.report.rows,
                raw_bytes: 0,
            });
        }
    }
}

pub(crate) fn describe(e: &TocEntry) -> String {
    match &e.schema {
        Some(s) => format!("{} {}.{}", e.kind, s, e.name),
        None => format!("{} {}", e.kind, e.name),
    }
}

pub(crate) async fn session(
    params: &ConnParams,
    opts: &RestoreOptions,
) -> Result<Client, RestoreError> {
    let client = pgark_conn::connect_session(params, Purpose::Restore).await?;
    if let Some(role) = &opts.role {
        let sql = format!("SET ROLE {}", pgark_catalog::quote_ident(role));
        client
            .batch_execute(&sql)
            .await
            .map_err(|e| RestoreError::server(format!("SET ROLE {role}"), &e))?;
    }
    Ok(client)
}

pub(crate) async fn run(
    params: &ConnParams,
    source: &Source,
    sel: &Selection,
    opts: &RestoreOptions,
) -> Result<RestoreReport, RestoreError> {
    let leader = session(params, opts).await?;
    let mut run = Run {
        opts,
        report: RestoreReport::default(),
        created_tables: BTreeSet::new(),
        total: sel.entries.len(),
    };
    if opts.single_transaction {
        leader
            .batch_execute("BEGIN")
            .await
            .map_err(|e| RestoreError::server("BEGIN", &e))?;
    }
    let result = run_sections(params, &leader, source, sel, &mut run).await;
    match result {
        Ok(()) if opts.single_transaction => {
            leader
                .batch_execute("COMMIT")
                .await
                .map_err(|e| RestoreError::server("COMMIT", &e))?;
        }
        Ok(()) => {}
        Err(e) => {
            if opts.single_transaction {
                // Nothing of this restore remains.
                let _ = leader.batch_execute("ROLLBACK").await;
            }
            return Err(e);
        }
    }
    if run.report.failed.is_empty() {
        Ok(run.report)
    } else {
        Err(RestoreError::Incomplete(Box::new(run.report)))
    }
}

async fn run_sections(
    params: &ConnParams,
    leader: &Client,
    source: &Source,
    sel: &Selection,
    run: &mut Run<'_>,
) -> Result<(), RestoreError> {
    if run.opts.clean {
        clean(leader, sel, run).await?;
    }
    let pre: Vec<&TocEntry> = sel.section(Section::PreData).collect();
    // Outside a single transaction, pre-data goes in batches: one round trip
    // for many small statements (thousands of tables), same outcome.
    let batch = if run.opts.single_transaction {
        1
    } else {
        PRE_DATA_BATCH
    };
    let mut done = 0;
    for group in pre.chunks(batch) {
        let results = exec_group(leader, group, run.opts).await;
        for (e, result) in group.iter().zip(results) {
            if result.is_ok() && e.kind == "TABLE" {
                run.created_tables.insert(e.id);
            }
            run.record(e, result)?;
        }
        done += group.len();
        run.progress("pre-data", done, pre.len());
    }
    // Rows go only into tables this restore created, or that the selection
    // does not create (--data-only): never into a table whose CREATE failed
    // and that existed already with other rows.
    let tables_in_selection: BTreeSet<u32> = sel
        .entries
        .iter()
        .filter(|e| e.kind == "TABLE")
        .map(|e| e.id)
        .collect();
    let mut data: Vec<&TocEntry> = Vec::new();
    for e in sel.section(Section::Data).filter(|e| e.copy.is_some()) {
        let failed_table = e
            .deps
            .iter()
            .any(|d| tables_in_selection.contains(d) && !run.created_tables.contains(d));
        if failed_table {
            run.record(e, Err("not loaded: its table could not be created".into()))?;
        } else {
            data.push(e);
        }
    }
    let sql: Vec<&TocEntry> = sel
        .section(Section::Data)
        .filter(|e| e.copy.is_none())
        .chain(sel.section(Section::PostData))
        .collect();
    run_tasks(params, leader, source, &data, &sql, run).await
}

/// The statements of one entry: its DDL, then its owner unless `--no-owner`.
pub(crate) fn entry_sql(e: &TocEntry, opts: &RestoreOptions) -> String {
    let mut sql = e.create_sql.clone();
    if let Some(owner) = e.owner_sql.as_ref().filter(|_| !opts.no_owner) {
        sql.push('\n');
        sql.push_str(owner);
    }
    sql
}

pub(crate) async fn exec(
    client: &Client,
    e: &TocEntry,
    opts: &RestoreOptions,
) -> Result<(), String> {
    let sql = entry_sql(e, opts);
    if sql.trim().is_empty() {
        return Ok(());
    }
    client
        .batch_execute(&sql)
        .await
        .map_err(|err| pgark_conn::describe(&err))
}

/// Statements per round trip in pre-data.
const PRE_DATA_BATCH: usize = 64;

/// Runs the entries as one transaction in one round trip; when that fails,
/// one by one, so each failure is pinned on its own entry.
async fn exec_group(
    client: &Client,
    group: &[&TocEntry],
    opts: &RestoreOptions,
) -> Vec<Result<(), String>> {
    if group.len() > 1 {
        let mut sql = String::from("BEGIN;\n");
        for e in group {
            sql.push_str(&entry_sql(e, opts));
            sql.push('\n');
        }
        sql.push_str("COMMIT;");
        if client.batch_execute(&sql).await.is_ok() {
            return group.iter().map(|_| Ok(())).collect();
        }
        let _ = client.batch_execute("ROLLBACK").await;
    }
    let mut results = Vec::with_capacity(group.len());
    for e in group {
        results.push(exec(client, e, opts).await);
    }
    results
}

/// Drops the selected objects, dependents first.
async fn clean(client: &Client, sel: &Selection, run: &mut Run<'_>) -> Result<(), RestoreError> {
    let drops = sel
        .entries
        .iter()
        .rev()
        .filter(|e| !e.drop_sql.trim().is_empty() && e.section != Section::Data);
    for e in drops {
        // The archive's DROP statements always say IF EXISTS, so `--if-exists`
        // is accepted for pg_restore compatibility and changes nothing.
        if let Err(err) = client.batch_execute(&e.drop_sql).await {
            run.record(e, Err(format!("dropping: {}", pgark_conn::describe(&err))))?;
        }
    }
    Ok(())
}

/// Data and what follows it, on `jobs` connections (the leader and the
/// others): see [`crate::schedule`]. A single-transaction restore runs it
/// all on the leader, in its transaction.
async fn run_tasks(
    params: &ConnParams,
    leader: &Client,
    source: &Source,
    data: &[&TocEntry],
    sql: &[&TocEntry],
    run: &mut Run<'_>,
) -> Result<(), RestoreError> {
    let single = run.opts.single_transaction;
    let jobs = if single { 1 } else { run.opts.jobs.max(1) };
    let parents = load::referenced_tables(leader, data).await?;
    let units = load::units(source, data, run, jobs);
    let (mut sched, tasks) = Scheduler::new(source.toc(), sql, units, &parents);
    let mut idle = open_sessions(params, run.opts, jobs - 1).await?;
    for client in std::iter::once(leader).chain(idle.iter()) {
        load::raw_encoding(client, source).await?;
    }
    let mut tally = Tally::new(&tasks, data.len(), sql.len());
    let mut running = FuturesUnordered::new();
    let mut leader_busy = false;
    while !sched.finished() || !running.is_empty() {
        while let Some(i) = sched.next_ready() {
            let slot = if !leader_busy {
                leader_busy = true;
                None
            } else if let Some(c) = idle.pop() {
                Some(c)
            } else {
                sched.unstart(i);
                break;
            };
            let task = &tasks[i];
            let opts = run.opts;
            running.push(async move {
                let client = slot.as_ref().unwrap_or(leader);
                let outcome = run_task(client, source, task, opts, single).await;
                (i, slot, outcome)
            });
        }
        let Some((i, slot, outcome)) = running.next().await else {
            break;
        };
        match slot {
            Some(c) => idle.push(c),
            None => leader_busy = false,
        }
        sched.done(i);
        tally.record(&tasks[i], outcome, run)?;
    }
    Ok(())
}

async fn open_sessions(
    params: &ConnParams,
    opts: &RestoreOptions,
    n: usize,
) -> Result<Vec<Client>, RestoreError> {
    futures::future::join_all((0..n).map(|_| session(params, opts)))
        .await
        .into_iter()
        .collect()
}

/// Rows loaded, or the entry's error.
async fn run_task(
    client: &Client,
    source: &Source,
    task: &Task<'_>,
    opts: &RestoreOptions,
    in_transaction: bool,
) -> Result<u64, String> {
    match task {
        Task::Copy(unit) => load::copy_unit(client, source, unit, in_transaction).await,
        Task::Sql(e) => {
            let mut result = exec(client, e, opts).await;
            // Statements on different tables can still deadlock on shared
            // catalog rows; once more usually goes through.
            if !in_transaction
                && result
                    .as_ref()
                    .is_err_and(|m| m.contains("deadlock detected"))
            {
                result = exec(client, e, opts).await;
            }
            result.map(|()| 0)
        }
        Task::AllData => Ok(0),
    }
}

/// Outcomes per entry: a split table succeeded only if all its parts did.
struct Tally {
    /// Per data entry: units not finished, rows so far, first error.
    tables: BTreeMap<u32, (usize, u64, Option<String>)>,
    data_total: usize,
    data_done: usize,
    sql_total: usize,
    sql_done: usize,
}

impl Tally {
    fn new(tasks: &[Task<'_>], data_total: usize, sql_total: usize) -> Self {
        let mut tables = BTreeMap::new();
        for t in tasks {
            if let Task::Copy(u) = t {
                tables.entry(u.entry.id).or_insert((0, 0, None)).0 += 1;
            }
        }
        Tally {
            tables,
            data_total,
            data_done: 0,
            sql_total,
            sql_done: 0,
        }
    }

    fn record(
        &mut self,
        task: &Task<'_>,
        outcome: Result<u64, String>,
        run: &mut Run<'_>,
    ) -> Result<(), RestoreError> {
        match task {
            Task::Copy(unit) => {
                let Some(t) = self.tables.get_mut(&unit.entry.id) else {
                    return Ok(());
                };
                t.0 -= 1;
                match outcome {
                    Ok(rows) => t.1 += rows,
                    Err(e) => {
                        t.2.get_or_insert(e);
                    }
                }
                if t.0 > 0 {
                    return Ok(());
                }
                let result = match t.2.take() {
                    None => {
                        run.report.rows += t.1;
                        Ok(())
                    }
                    Some(e) => Err(e),
                };
                self.data_done += 1;
                run.record(unit.entry, result)?;
            }
            Task::Sql(e) => {
                self.sql_done += 1;
                run.record(e, outcome.map(|_| ()))?;
            }
            Task::AllData => return Ok(()),
        }
        let (phase, done, total) = if self.data_done < self.data_total {
            ("data", self.data_done, self.data_total)
        } else {
            ("post-data", self.sql_done, self.sql_total)
        };
        run.progress(phase, done, total);
        Ok(())
    }
}

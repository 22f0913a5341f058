//! The restore's order: clean, pre-data, data, sequence values, post-data.
//! Post-data runs in parallel, by dependencies, never two statements that
//! lock the same table at once (except index builds, which share their lock).

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
    let client = pgark_conn::connect(params).await?;
    pgark_conn::prepare_session(&client, Purpose::Restore).await?;
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
    if run.opts.single_transaction {
        load::serial(leader, source, &data, run).await?;
    } else {
        load::parallel(params, source, &data, run).await?;
    }
    for e in sel.section(Section::Data).filter(|e| e.copy.is_none()) {
        let result = exec(leader, e, run.opts).await;
        run.record(e, result)?;
    }
    let post: Vec<&TocEntry> = sel.section(Section::PostData).collect();
    if run.opts.single_transaction || run.opts.jobs <= 1 {
        for (i, e) in post.iter().enumerate() {
            let result = exec(leader, e, run.opts).await;
            run.record(e, result)?;
            run.progress("post-data", i + 1, post.len());
        }
        Ok(())
    } else {
        post_data_parallel(params, leader, source, &post, run).await
    }
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

async fn post_data_parallel(
    params: &ConnParams,
    leader: &Client,
    source: &Source,
    post: &[&TocEntry],
    run: &mut Run<'_>,
) -> Result<(), RestoreError> {
    let mut idle: Vec<Client> = Vec::new();
    for _ in 1..run.opts.jobs {
        idle.push(session(params, run.opts).await?);
    }
    let mut sched = Scheduler::new(source, post);
    let mut running = FuturesUnordered::new();
    let mut leader_busy = false;
    let total = post.len();
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
            let e = post[i];
            let opts = run.opts;
            running.push(async move {
                let client = slot.as_ref().unwrap_or(leader);
                let mut result = exec(client, e, opts).await;
                if result
                    .as_ref()
                    .is_err_and(|m| m.contains("deadlock detected"))
                {
                    result = exec(client, e, opts).await;
                }
                (i, slot, result)
            });
        }
        let Some((i, slot, result)) = running.next().await else {
            break;
        };
        match slot {
            Some(c) => idle.push(c),
            None => leader_busy = false,
        }
        sched.done(i);
        run.record(post[i], result)?;
        run.progress("post-data", sched.done_count, total);
    }
    Ok(())
}

/// Chooses post-data entries whose dependencies are done and whose tables are
/// not locked by a running entry. Dependencies are counted, so each pick looks
/// only at the entries that are ready (thousands of indexes stay cheap).
struct Scheduler<'a> {
    entries: &'a [&'a TocEntry],
    tables: Vec<BTreeSet<u32>>,
    /// Unfinished dependencies of each entry, within this restore.
    waiting_on: Vec<usize>,
    /// Entries to tell when an entry finishes.
    dependents: Vec<Vec<usize>>,
    /// Ready entries, in TOC order.
    ready: BTreeSet<usize>,
    not_started: BTreeSet<usize>,
    running: BTreeSet<usize>,
    done_count: usize,
}

impl<'a> Scheduler<'a> {
    fn new(source: &Source, entries: &'a [&'a TocEntry]) -> Self {
        let table_ids: BTreeSet<u32> = source
            .toc()
            .iter()
            .filter(|e| matches!(e.kind.as_str(), "TABLE" | "MATERIALIZED VIEW"))
            .map(|e| e.id)
            .collect();
        let by_id: BTreeMap<u32, &TocEntry> = source.toc().iter().map(|e| (e.id, e)).collect();
        let index_of: BTreeMap<u32, usize> =
            entries.iter().enumerate().map(|(i, e)| (e.id, i)).collect();
        let mut waiting_on = vec![0; entries.len()];
        let mut dependents = vec![Vec::new(); entries.len()];
        for (i, e) in entries.iter().enumerate() {
            let deps: BTreeSet<usize> = e
                .deps
                .iter()
                .filter_map(|d| index_of.get(d).copied())
                .collect();
            waiting_on[i] = deps.len();
            for d in deps {
                dependents[d].push(i);
            }
        }
        Scheduler {
            entries,
            tables: entries
                .iter()
                .map(|e| tables_of(e, &by_id, &table_ids))
                .collect(),
            ready: (0..entries.len()).filter(|&i| waiting_on[i] == 0).collect(),
            waiting_on,
            dependents,
            not_started: (0..entries.len()).collect(),
            running: BTreeSet::new(),
            done_count: 0,
        }
    }

    fn finished(&self) -> bool {
        self.not_started.is_empty()
    }

    fn next_ready(&mut self) -> Option<usize> {
        let pick = self
            .ready
            .iter()
            .copied()
            .find(|&i| !self.conflicts(i))
            // Nothing is running and nothing is ready: a dependency cycle.
            // Run the first one anyway; its error, if any, is reported.
            .or_else(|| {
                self.running
                    .is_empty()
                    .then(|| self.not_started.first().copied())
                    .flatten()
            })?;
        self.ready.remove(&pick);
        self.not_started.remove(&pick);
        self.running.insert(pick);
        Some(pick)
    }

    fn unstart(&mut self, i: usize) {
        self.running.remove(&i);
        self.not_started.insert(i);
        if self.waiting_on[i] == 0 {
            self.ready.insert(i);
        }
    }

    /// A failed entry counts as done too: pg_restore also tries what follows.
    fn done(&mut self, i: usize) {
        self.running.remove(&i);
        self.done_count += 1;
        for &d in &self.dependents[i] {
            self.waiting_on[d] -= 1;
            if self.waiting_on[d] == 0 && self.not_started.contains(&d) {
                self.ready.insert(d);
            }
        }
    }

    fn conflicts(&self, i: usize) -> bool {
        let is_index = |j: usize| self.entries[j].kind == "INDEX";
        self.running.iter().any(|&j| {
            let shared = !self.tables[i].is_disjoint(&self.tables[j]);
            // Index builds take SHARE locks, which do not conflict with each other.
            shared && !(is_index(i) && is_index(j))
        })
    }
}

/// The tables an entry locks: the tables among its dependencies, and the
/// tables of dependencies that are themselves post-data objects (an FK's
/// referenced constraint).
fn tables_of(
    e: &TocEntry,
    by_id: &BTreeMap<u32, &TocEntry>,
    tables: &BTreeSet<u32>,
) -> BTreeSet<u32> {
    let mut out = BTreeSet::new();
    for d in &e.deps {
        if tables.contains(d) {
            out.insert(*d);
        } else if let Some(dep) = by_id.get(d).filter(|dep| dep.section == Section::PostData) {
            out.extend(dep.deps.iter().filter(|x| tables.contains(x)));
        }
    }
    out
}

//! Which task a restore worker takes next. Table data (COPY units) and
//! post-data entries share one pool, as in `pg_restore -j`: a table's indexes
//! and keys are built as soon as its rows are in, while other tables still
//! load, instead of every index waiting for the last table.
//!
//! A post-data entry of a table (index, key, trigger, ...) waits for its
//! dependencies and for the data of the tables it touches. Where that set is
//! not plain (a table with children or partitions, a materialized view's
//! refresh, a domain's constraint), it waits for all the data.
//! Two tasks never run at once when they lock the same table (except index
//! builds, whose locks do not conflict).

use crate::load::Unit;
use pgark_archive::{Section, TocEntry};
use std::collections::{BTreeMap, BTreeSet};

pub(crate) enum Task<'a> {
    /// Rows into a table: all or part of its chunks.
    Copy(Unit<'a>),
    /// One entry's SQL: sequence values, post-data.
    Sql(&'a TocEntry),
    /// A barrier, done when all data is loaded; the scheduler never hands
    /// it out.
    AllData,
}

pub(crate) struct Scheduler {
    /// Per task: an index build (these may share a table), a barrier.
    is_index: Vec<bool>,
    is_barrier: Vec<bool>,
    locks: Vec<BTreeSet<u32>>,
    /// Unfinished dependencies of each task.
    waiting_on: Vec<usize>,
    /// Tasks to tell when a task finishes.
    dependents: Vec<Vec<usize>>,
    /// Ready tasks; a lower index goes first: SQL in TOC order, then COPY
    /// units biggest first.
    ready: BTreeSet<usize>,
    not_started: BTreeSet<usize>,
    running: BTreeSet<usize>,
}

impl Scheduler {
    /// The tasks, and the scheduler that hands out their indexes.
    /// `units`: sorted biggest first. `parents`: for a data entry, the data
    /// entries of the tables its table references by a foreign key that
    /// exists already (their rows must be in first).
    pub(crate) fn new<'a>(
        toc: &'a [TocEntry],
        sql: &[&'a TocEntry],
        units: Vec<Unit<'a>>,
        parents: &BTreeMap<u32, Vec<u32>>,
    ) -> (Self, Vec<Task<'a>>) {
        let graph = Graph::new(toc);
        let mut tasks: Vec<Task<'a>> = sql.iter().map(|e| Task::Sql(e)).collect();
        tasks.extend(units.into_iter().map(Task::Copy));
        let all_data = tasks.len();
        tasks.push(Task::AllData);
        let mut s = Scheduler {
            is_index: tasks
                .iter()
                .map(|t| matches!(t, Task::Sql(e) if e.kind == "INDEX"))
                .collect(),
            is_barrier: tasks.iter().map(|t| matches!(t, Task::AllData)).collect(),
            locks: tasks.iter().map(|t| graph.locks(t)).collect(),
            waiting_on: vec![0; tasks.len()],
            dependents: vec![Vec::new(); tasks.len()],
            ready: BTreeSet::new(),
            not_started: (0..tasks.len()).collect(),
            running: BTreeSet::new(),
        };
        let mut units_of_entry: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
        let mut units_of_table: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
        let copies = || {
            tasks.iter().enumerate().filter_map(|(i, t)| match t {
                Task::Copy(u) => Some((i, u)),
                _ => None,
            })
        };
        for (i, u) in copies() {
            units_of_entry.entry(u.entry.id).or_default().push(i);
            for t in u.entry.deps.iter().filter(|d| graph.tables.contains(d)) {
                units_of_table.entry(*t).or_default().push(i);
            }
            s.depend(all_data, i);
        }
        for (i, u) in copies() {
            for p in parents.get(&u.entry.id).into_iter().flatten() {
                for &j in units_of_entry.get(p).into_iter().flatten() {
                    s.depend(i, j);
                }
            }
        }
        let task_of: BTreeMap<u32, usize> =
            sql.iter().enumerate().map(|(i, e)| (e.id, i)).collect();
        for (i, e) in sql.iter().enumerate() {
            if e.section != Section::PostData {
                continue;
            }
            for d in e.deps.iter().filter_map(|d| task_of.get(d)) {
                s.depend(i, *d);
            }
            if graph.needs_all_data(e, &s.locks[i]) {
                s.depend(i, all_data);
            } else {
                for t in &s.locks[i].clone() {
                    for &j in units_of_table.get(t).into_iter().flatten() {
                        s.depend(i, j);
                    }
                }
            }
        }
        for i in 0..tasks.len() {
            if s.waiting_on[i] == 0 {
                s.make_ready(i);
            }
        }
        (s, tasks)
    }

    /// A barrier that becomes ready is done at once: workers never see it.
    fn make_ready(&mut self, i: usize) {
        if self.is_barrier[i] {
            self.not_started.remove(&i);
            self.running.insert(i);
            self.done(i);
        } else {
            self.ready.insert(i);
        }
    }

    fn depend(&mut self, task: usize, on: usize) {
        if task != on && !self.dependents[on].contains(&task) {
            self.dependents[on].push(task);
            self.waiting_on[task] += 1;
        }
    }

    pub(crate) fn finished(&self) -> bool {
        self.not_started.is_empty()
    }

    /// The next task to start, if one may start now.
    pub(crate) fn next_ready(&mut self) -> Option<usize> {
        let pick = self
            .ready
            .iter()
            .copied()
            .find(|&i| !self.conflicts(i))
            // Nothing is running and nothing is ready: a dependency cycle.
            // Run the first one anyway; its error, if any, is reported.
            .or_else(|| {
                let barrier = |i: &&usize| self.is_barrier[**i];
                self.running
                    .is_empty()
                    .then(|| self.not_started.iter().find(|i| !barrier(i)).copied())
                    .flatten()
            })?;
        self.ready.remove(&pick);
        self.not_started.remove(&pick);
        self.running.insert(pick);
        Some(pick)
    }

    /// Puts a task taken by [`Scheduler::next_ready`] back (no worker was free).
    pub(crate) fn unstart(&mut self, i: usize) {
        self.running.remove(&i);
        self.not_started.insert(i);
        if self.waiting_on[i] == 0 {
            self.ready.insert(i);
        }
    }

    /// A failed task counts as done too: pg_restore also tries what follows.
    pub(crate) fn done(&mut self, i: usize) {
        self.running.remove(&i);
        for d in std::mem::take(&mut self.dependents[i]) {
            self.waiting_on[d] -= 1;
            if self.waiting_on[d] == 0 && self.not_started.contains(&d) {
                self.make_ready(d);
            }
        }
    }

    fn conflicts(&self, i: usize) -> bool {
        self.running.iter().any(|&j| {
            let shared = !self.locks[i].is_disjoint(&self.locks[j]);
            // Index builds take SHARE locks, which do not conflict with each other.
            shared && !(self.is_index[i] && self.is_index[j])
        })
    }
}

/// What the TOC says about tables.
struct Graph<'a> {
    /// Tables and materialized views.
    tables: BTreeSet<u32>,
    /// Tables another table inherits from, is a partition of, or otherwise
    /// builds on: statements on them can reach into other tables' rows.
    parents: BTreeSet<u32>,
    by_id: BTreeMap<u32, &'a TocEntry>,
}

impl<'a> Graph<'a> {
    fn new(toc: &'a [TocEntry]) -> Self {
        let tables: BTreeSet<u32> = toc
            .iter()
            .filter(|e| matches!(e.kind.as_str(), "TABLE" | "MATERIALIZED VIEW"))
            .map(|e| e.id)
            .collect();
        let parents = toc
            .iter()
            .filter(|e| e.section == Section::PreData && e.kind.starts_with("TABLE"))
            .flat_map(|e| e.deps.iter().filter(|d| tables.contains(d) && **d != e.id))
            .copied()
            .collect();
        Graph {
            tables,
            parents,
            by_id: toc.iter().map(|e| (e.id, e)).collect(),
        }
    }

    /// The tables a task locks. For an entry: the tables among its
    /// dependencies, and the tables of dependencies that are themselves
    /// post-data objects (a foreign key's referenced constraint). COPY units
    /// lock nothing that matters here: nothing on their table runs until
    /// they are done.
    fn locks(&self, task: &Task<'_>) -> BTreeSet<u32> {
        let Task::Sql(e) = task else {
            return BTreeSet::new();
        };
        let mut out = BTreeSet::new();
        for d in &e.deps {
            if self.tables.contains(d) {
                out.insert(*d);
            } else if let Some(dep) = self.by_id.get(d).filter(|x| x.section == Section::PostData) {
                out.extend(dep.deps.iter().filter(|x| self.tables.contains(x)));
            }
        }
        out
    }

    /// Only objects of a table, that touch nothing but its tables, may go
    /// before the rest of the data. Anything else (a domain's NOT VALID
    /// check binds every table of that type; a refresh reads other tables)
    /// waits for all of it.
    fn needs_all_data(&self, e: &TocEntry, locks: &BTreeSet<u32>) -> bool {
        const OF_A_TABLE: [&str; 12] = [
            "INDEX",
            "INDEX ATTACH",
            "CONSTRAINT",
            "CHECK CONSTRAINT",
            "FK CONSTRAINT",
            "TRIGGER",
            "RULE",
            "POLICY",
            "ROW SECURITY",
            "STATISTICS",
            "COMMENT",
            "ACL",
        ];
        !OF_A_TABLE.contains(&e.kind.as_str())
            || locks.is_empty()
            || locks.iter().any(|t| self.parents.contains(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgark_archive::{BlockRef, CopySpec};

    fn entry(id: u32, kind: &str, section: Section, deps: &[u32]) -> TocEntry {
        TocEntry {
            id,
            kind: kind.into(),
            schema: Some("public".into()),
            name: format!("e{id}"),
            owner: None,
            section,
            create_sql: String::new(),
            owner_sql: None,
            drop_sql: String::new(),
            deps: deps.to_vec(),
            copy: (kind == "TABLE DATA").then(|| CopySpec {
                qualified_table: format!("\"public\".\"e{id}\""),
                columns: vec![],
                format: "text".into(),
                critical: false,
            }),
        }
    }

    fn unit(e: &TocEntry) -> Unit<'_> {
        Unit {
            entry: e,
            chunks: Vec::<BlockRef>::new(),
            created: true,
            whole: true,
        }
    }

    /// Runs everything one task at a time, returning the order.
    fn order((mut s, tasks): (Scheduler, Vec<Task<'_>>)) -> Vec<String> {
        let mut out = Vec::new();
        while !s.finished() {
            let i = s.next_ready().expect("something is ready");
            out.push(match &tasks[i] {
                Task::Copy(u) => format!("copy {}", u.entry.id),
                Task::Sql(e) => format!("sql {}", e.id),
                Task::AllData => unreachable!("barriers are never handed out"),
            });
            s.done(i);
        }
        out
    }

    #[test]
    fn an_index_is_built_as_soon_as_its_table_is_loaded() {
        use Section::*;
        let toc = vec![
            entry(1, "TABLE", PreData, &[]),
            entry(2, "TABLE", PreData, &[]),
            entry(3, "TABLE DATA", Data, &[1]),
            entry(4, "TABLE DATA", Data, &[2]),
            entry(5, "INDEX", PostData, &[1]),
            entry(6, "INDEX", PostData, &[2]),
        ];
        let units = vec![unit(&toc[2]), unit(&toc[3])];
        let sql = [&toc[4], &toc[5]];
        let s = Scheduler::new(&toc, &sql, units, &BTreeMap::new());
        assert_eq!(order(s), ["copy 3", "sql 5", "copy 4", "sql 6"]);
    }

    #[test]
    fn a_partitioned_tables_index_and_a_refresh_wait_for_all_data() {
        use Section::*;
        let toc = vec![
            entry(1, "TABLE", PreData, &[]),
            entry(2, "TABLE", PreData, &[1]),
            entry(3, "TABLE DATA", Data, &[2]),
            entry(4, "INDEX", PostData, &[1]),
            entry(5, "MATERIALIZED VIEW", PreData, &[]),
            entry(6, "MATERIALIZED VIEW DATA", PostData, &[5]),
            entry(7, "TABLE", PreData, &[]),
            entry(8, "TABLE DATA", Data, &[7]),
        ];
        let units = vec![unit(&toc[2]), unit(&toc[7])];
        let sql = [&toc[3], &toc[5]];
        let s = Scheduler::new(&toc, &sql, units, &BTreeMap::new());
        assert_eq!(order(s), ["copy 3", "copy 8", "sql 4", "sql 6"]);
    }

    #[test]
    fn a_domains_constraint_waits_for_all_data() {
        use Section::*;
        let toc = vec![
            entry(1, "DOMAIN", PreData, &[]),
            entry(2, "TABLE", PreData, &[1]),
            entry(3, "TABLE DATA", Data, &[2]),
            entry(4, "CHECK CONSTRAINT", PostData, &[1]),
        ];
        let units = vec![unit(&toc[2])];
        let sql = [&toc[3]];
        let s = Scheduler::new(&toc, &sql, units, &BTreeMap::new());
        assert_eq!(order(s), ["copy 3", "sql 4"]);
    }

    #[test]
    fn a_table_loads_after_the_tables_its_existing_keys_reference() {
        use Section::*;
        let toc = vec![
            entry(1, "TABLE DATA", Data, &[]),
            entry(2, "TABLE DATA", Data, &[]),
        ];
        let parents = BTreeMap::from([(1, vec![2])]);
        let units = vec![unit(&toc[0]), unit(&toc[1])];
        let s = Scheduler::new(&toc, &[], units, &parents);
        assert_eq!(order(s), ["copy 2", "copy 1"]);
    }

    #[test]
    fn statements_on_one_table_never_run_together_but_index_builds_do() {
        use Section::*;
        let toc = vec![
            entry(1, "TABLE", PreData, &[]),
            entry(2, "INDEX", PostData, &[1]),
            entry(3, "INDEX", PostData, &[1]),
            entry(4, "CONSTRAINT", PostData, &[1]),
        ];
        let sql = [&toc[1], &toc[2], &toc[3]];
        let (mut s, _) = Scheduler::new(&toc, &sql, vec![], &BTreeMap::new());
        let (a, b) = (s.next_ready().unwrap(), s.next_ready().unwrap());
        assert_eq!((a, b), (0, 1), "two index builds at once");
        assert_eq!(s.next_ready(), None, "the constraint waits for both");
        s.done(a);
        assert_eq!(s.next_ready(), None);
        s.done(b);
        assert_eq!(s.next_ready(), Some(2));
    }

    #[test]
    fn a_cycle_still_runs_when_nothing_else_can() {
        use Section::*;
        let toc = vec![
            entry(1, "TABLE DATA", Data, &[]),
            entry(2, "TABLE DATA", Data, &[]),
        ];
        let parents = BTreeMap::from([(1, vec![2]), (2, vec![1])]);
        let units = vec![unit(&toc[0]), unit(&toc[1])];
        let s = Scheduler::new(&toc, &[], units, &parents);
        assert_eq!(order(s), ["copy 1", "copy 2"]);
    }
}

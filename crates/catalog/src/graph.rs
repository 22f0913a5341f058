//! Objects before ordering, and the ordering itself: catalog keys (classid,
//! objid) claimed by objects turn `pg_depend` rows into dependencies between
//! objects; a topological sort with pg_dump's kind priorities as tie-break
//! then gives the restore order.

use crate::{CatalogError, DdlObject, Section};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

/// A catalog object: the oid of its system catalog and its own oid.
pub(crate) type Key = (u32, u32);

pub(crate) mod class {
    pub const PG_CLASS: u32 = 1259;
    pub const PG_TYPE: u32 = 1247;
    pub const PG_PROC: u32 = 1255;
    pub const PG_NAMESPACE: u32 = 2615;
    pub const PG_CONSTRAINT: u32 = 2606;
    pub const PG_ATTRDEF: u32 = 2604;
    pub const PG_REWRITE: u32 = 2618;
    pub const PG_TRIGGER: u32 = 2620;
    pub const PG_EXTENSION: u32 = 3079;
    pub const PG_COLLATION: u32 = 3456;
    pub const PG_TS_CONFIG: u32 = 3602;
    pub const PG_TS_DICT: u32 = 3600;
    pub const PG_CAST: u32 = 2605;
    pub const PG_OPERATOR: u32 = 2617;
    pub const PG_POLICY: u32 = 3256;
    pub const PG_EVENT_TRIGGER: u32 = 3466;
    pub const PG_PUBLICATION: u32 = 6104;
    pub const PG_STATISTIC_EXT: u32 = 3381;
}

#[derive(Debug, Clone)]
pub(crate) struct Obj {
    pub kind: &'static str,
    pub schema: Option<String>,
    pub name: String,
    pub owner: Option<String>,
    pub section: Section,
    pub create_sql: String,
    pub owner_sql: Option<String>,
    pub drop_sql: String,
    pub deps: Vec<usize>,
}

impl Obj {
    pub fn new(kind: &'static str, schema: Option<&str>, name: &str, section: Section) -> Obj {
        Obj {
            kind,
            schema: schema.map(str::to_string),
            name: name.to_string(),
            owner: None,
            section,
            create_sql: String::new(),
            owner_sql: None,
            drop_sql: String::new(),
            deps: Vec::new(),
        }
    }

    pub fn sql(mut self, create: String, drop: String) -> Obj {
        self.create_sql = create;
        self.drop_sql = drop;
        self
    }
}

#[derive(Default)]
pub(crate) struct Graph {
    objs: Vec<Obj>,
    keys: HashMap<Key, usize>,
    /// `pg_depend` edges replaced by explicit ones: (dependent object, referenced key).
    ignored: HashSet<(usize, Key)>,
}

impl Graph {
    pub fn add(&mut self, obj: Obj) -> usize {
        self.objs.push(obj);
        self.objs.len() - 1
    }

    /// Makes `key` stand for object `id`: dependencies on it become dependencies on `id`.
    pub fn claim(&mut self, key: Key, id: usize) {
        self.keys.insert(key, id);
    }

    pub fn id_of(&self, key: Key) -> Option<usize> {
        self.keys.get(&key).copied()
    }

    pub fn len(&self) -> usize {
        self.objs.len()
    }

    pub fn get(&self, id: usize) -> &Obj {
        &self.objs[id]
    }

    /// The object goes away with another one: nothing to drop on its own.
    pub fn no_drop(&mut self, id: usize) {
        self.objs[id].drop_sql.clear();
    }

    pub fn depend(&mut self, id: usize, on: usize) {
        if id != on {
            self.objs[id].deps.push(on);
        }
    }

    /// Applies one `pg_depend` row; rows naming objects nobody claimed are ignored.
    pub fn pg_depend(&mut self, dependent: Key, referenced: Key) {
        if let (Some(a), Some(b)) = (self.id_of(dependent), self.id_of(referenced)) {
            if !self.ignored.contains(&(a, referenced)) {
                self.depend(a, b);
            }
        }
    }

    /// Object `id` gets its dependency on `referenced` another way.
    pub fn ignore_pg_depend(&mut self, id: usize, referenced: Key) {
        self.ignored.insert((id, referenced));
    }

    /// Orders the objects; returns them with ids equal to their positions,
    /// and the new id of each old one.
    pub fn finish(mut self) -> Result<(Vec<DdlObject>, Vec<u32>), CatalogError> {
        for o in &mut self.objs {
            o.deps.sort_unstable();
            o.deps.dedup();
        }
        self.promote_sections();
        let order = self.sort()?;
        let mut position = vec![0u32; self.objs.len()];
        for (pos, &id) in order.iter().enumerate() {
            position[id] = pos as u32;
        }
        let mut objs: Vec<Option<Obj>> = self.objs.into_iter().map(Some).collect();
        let objects = order
            .iter()
            .enumerate()
            .map(|(pos, &id)| {
                let o = objs[id].take().expect("each object is placed once");
                let mut deps: Vec<u32> = o.deps.iter().map(|&d| position[d]).collect();
                deps.sort_unstable();
                DdlObject {
                    id: pos as u32,
                    kind: o.kind.to_string(),
                    schema: o.schema,
                    name: o.name,
                    owner: o.owner,
                    section: o.section,
                    create_sql: o.create_sql,
                    owner_sql: o.owner_sql,
                    drop_sql: o.drop_sql,
                    deps,
                }
            })
            .collect();
        Ok((objects, position))
    }

    /// An object that needs a later-section object moves to that section
    /// (e.g. a view whose GROUP BY relies on a primary key).
    fn promote_sections(&mut self) {
        loop {
            let mut changed = false;
            for i in 0..self.objs.len() {
                let latest = self.objs[i]
                    .deps
                    .iter()
                    .map(|&d| self.objs[d].section)
                    .max()
                    .unwrap_or(Section::PreData);
                if latest > self.objs[i].section {
                    self.objs[i].section = latest;
                    changed = true;
                }
            }
            if !changed {
                return;
            }
        }
    }

    fn sort(&self) -> Result<Vec<usize>, CatalogError> {
        let n = self.objs.len();
        let mut waiting = vec![0usize; n];
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (i, o) in self.objs.iter().enumerate() {
            waiting[i] = o.deps.len();
            for &d in &o.deps {
                dependents[d].push(i);
            }
        }
        let rank = |i: usize| {
            let o = &self.objs[i];
            Reverse((
                o.section,
                priority(o.kind),
                o.schema.clone().unwrap_or_default(),
                o.name.clone(),
                i,
            ))
        };
        let mut ready: BinaryHeap<_> = (0..n).filter(|&i| waiting[i] == 0).map(rank).collect();
        let mut order = Vec::with_capacity(n);
        while let Some(Reverse((.., i))) = ready.pop() {
            order.push(i);
            for &j in &dependents[i] {
                waiting[j] -= 1;
                if waiting[j] == 0 {
                    ready.push(rank(j));
                }
            }
        }
        if order.len() < n {
            return Err(CatalogError::DependencyLoop(self.describe_loop(&waiting)));
        }
        Ok(order)
    }

    fn describe_loop(&self, waiting: &[usize]) -> String {
        let start = (0..self.objs.len()).find(|&i| waiting[i] > 0).unwrap_or(0);
        let mut path = vec![start];
        let mut cur = start;
        loop {
            let next = self.objs[cur]
                .deps
                .iter()
                .copied()
                .find(|&d| waiting[d] > 0)
                .unwrap_or(start);
            if let Some(pos) = path.iter().position(|&p| p == next) {
                let cycle: Vec<String> = path[pos..].iter().map(|&i| self.label(i)).collect();
                return cycle.join(" -> ");
            }
            path.push(next);
            cur = next;
        }
    }

    fn label(&self, i: usize) -> String {
        let o = &self.objs[i];
        match &o.schema {
            Some(s) => format!("{} {}.{}", o.kind, s, o.name),
            None => format!("{} {}", o.kind, o.name),
        }
    }
}

/// Tie-break between objects free to go: pg_dump's order of kinds, so that
/// dependencies `pg_depend` does not record (function bodies) usually work too.
fn priority(kind: &str) -> u8 {
    match kind {
        "SCHEMA" => 1,
        "EXTENSION" => 2,
        "COLLATION" => 3,
        "TYPE" | "SHELL TYPE" | "DOMAIN" => 5,
        "FUNCTION" | "PROCEDURE" => 6,
        "AGGREGATE" => 7,
        "OPERATOR" => 8,
        "CAST" => 9,
        "TEXT SEARCH DICTIONARY" => 10,
        "TEXT SEARCH CONFIGURATION" => 11,
        "SEQUENCE" | "TABLE" | "VIEW" | "MATERIALIZED VIEW" => 12,
        "TABLE COLUMNS" | "TABLE ATTACH" | "SEQUENCE OWNED BY" => 13,
        "DEFAULT" => 14,
        "SEQUENCE SET" => 20,
        "CONSTRAINT" | "CHECK CONSTRAINT" => 30,
        "INDEX" => 31,
        "INDEX ATTACH" => 32,
        "STATISTICS" => 33,
        "RULE" => 34,
        "TRIGGER" => 35,
        "FK CONSTRAINT" => 36,
        "ROW SECURITY" | "POLICY" => 37,
        "PUBLICATION" => 38,
        "PUBLICATION TABLE" | "PUBLICATION TABLES IN SCHEMA" => 39,
        "DEFAULT ACL" => 40,
        "EVENT TRIGGER" => 41,
        "MATERIALIZED VIEW DATA" => 42,
        // COMMENT and ACL follow their object through their dependency.
        _ => 50,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(kind: &'static str, name: &str, section: Section) -> Obj {
        Obj::new(kind, Some("s"), name, section)
    }

    #[test]
    fn orders_by_dependency_then_priority() {
        let mut g = Graph::default();
        let idx = g.add(obj("INDEX", "i", Section::PostData));
        let table = g.add(obj("TABLE", "t", Section::PreData));
        let func = g.add(obj("FUNCTION", "f", Section::PreData));
        let schema = g.add(obj("SCHEMA", "s", Section::PreData));
        g.depend(idx, table);
        g.depend(func, table); // a function taking the table's row type
        g.depend(table, schema);
        let (out, _) = g.finish().unwrap();
        let names: Vec<&str> = out.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["s", "t", "f", "i"]);
        assert_eq!(out[3].deps, vec![1]);
    }

    #[test]
    fn reports_a_loop_by_name() {
        let mut g = Graph::default();
        let a = g.add(obj("VIEW", "a", Section::PreData));
        let b = g.add(obj("VIEW", "b", Section::PreData));
        g.depend(a, b);
        g.depend(b, a);
        let err = g.finish().unwrap_err().to_string();
        assert!(
            err.contains("VIEW s.a") && err.contains("VIEW s.b"),
            "{err}"
        );
    }

    #[test]
    fn promotes_what_needs_post_data() {
        let mut g = Graph::default();
        let pk = g.add(obj("CONSTRAINT", "pk", Section::PostData));
        let view = g.add(obj("VIEW", "v", Section::PreData));
        g.depend(view, pk);
        let (out, _) = g.finish().unwrap();
        assert_eq!(out[1].name, "v");
        assert_eq!(out[1].section, Section::PostData);
    }
}

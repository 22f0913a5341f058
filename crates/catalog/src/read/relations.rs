//! Tables (with columns, defaults, inline checks, partitions, inheritance),
//! views, materialized views and sequences.

use super::types::collation_name;
use super::{post, pre, q, Ctx, Rel};
use crate::acl::{acl_sql, AclTarget};
use crate::graph::class::*;
use crate::graph::Obj;
use crate::{quote_ident, quote_literal, CatalogError, Column, Section, TableInfo};
use std::collections::{HashMap, HashSet};
use tokio_postgres::Row;

struct RelRow {
    oid: u32,
    nsp: u32,
    schema: String,
    name: String,
    owner: String,
    kind: char,
    unlogged: bool,
    acl: Option<Vec<String>>,
    acl_default: Vec<String>,
    options: Option<String>,
    toast_options: Option<String>,
    is_partition: bool,
    bound: Option<String>,
    partkey: Option<String>,
    row_security: bool,
    force_row_security: bool,
    replident: String,
    am: Option<String>,
    reltype: u32,
    of_type: Option<String>,
    relpages: i64,
    reltuples: f64,
    size: i64,
    populated: bool,
    viewdef: Option<String>,
    parents: Vec<u32>,
    extension: Option<u32>,
    ext_condition: Option<String>,
    user_made: bool,
    tablespace: bool,
    /// The `_RETURN` rule of a view: what the view's dependencies hang on.
    view_rule: Option<u32>,
    /// The view calls a function that needs the view itself.
    view_loop: bool,
}

impl RelRow {
    fn qualified(&self) -> String {
        q(&self.schema, &self.name)
    }
}

#[derive(Clone)]
struct Col {
    attnum: i32,
    name: String,
    ty: String,
    not_null: bool,
    default: Option<String>,
    default_oid: Option<u32>,
    default_needs_relation: bool,
    identity: String,
    generated: String,
    collation: Option<String>,
    storage: Option<String>,
    compression: Option<String>,
    stat_target: Option<i32>,
    options: Option<String>,
    is_local: bool,
    acl: Option<Vec<String>>,
    parent_not_null: bool,
    parent_default: Option<String>,
    /// The NOT NULL constraint (18+): name, validated, NO INHERIT, local.
    not_null_name: Option<String>,
    not_null_valid: bool,
    not_null_no_inherit: bool,
    not_null_local: bool,
    base_type: Option<String>,
}

struct Check {
    oid: u32,
    name: String,
    def: String,
    is_local: bool,
    /// Added after the table: NOT VALID, or it calls a function that needs the table.
    separate: bool,
    /// Attribute numbers it uses.
    columns: Vec<i32>,
}

/// SQL condition: object `objid` of catalog `cat` calls a user function that
/// itself depends on table `relid` (its row type as an argument, or its SQL
/// body reading it). Written inside CREATE TABLE that would be a loop.
fn uses_function_of_table(cat: &str, objid: &str, relid: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_depend fd \
             ON fd.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND fd.objid = d.refobjid \
         WHERE d.classid = 'pg_catalog.{cat}'::pg_catalog.regclass AND d.objid = {objid} \
         AND d.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND d.refobjid >= 16384 \
         AND ((fd.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND fd.refobjid = {relid}) \
           OR (fd.refclassid = 'pg_catalog.pg_type'::pg_catalog.regclass \
               AND fd.refobjid = (SELECT rt.reltype FROM pg_catalog.pg_class rt WHERE rt.oid = {relid}))))"
    )
}

struct Seq {
    ty: String,
    start: i64,
    increment: i64,
    min: i64,
    max: i64,
    cache: i64,
    cycle: bool,
    owner_table: Option<u32>,
    owner_column: Option<i32>,
    identity: bool,
}

pub(crate) async fn read_relations(ctx: &mut Ctx<'_>) -> Result<(), CatalogError> {
    let rels = read_rel_rows(ctx).await?;
    let cols = read_columns(ctx).await?;
    let mut checks = read_checks(ctx).await?;
    let seqs = read_sequences(ctx).await?;
    let by_oid: HashMap<u32, &RelRow> = rels.iter().map(|r| (r.oid, r)).collect();

    let mut included: HashSet<u32> = HashSet::new();
    for r in &rels {
        if r.user_made && r.kind != 'S' && ctx.filter.relation_included(&r.schema, &r.name) {
            included.insert(r.oid);
        }
    }
    for r in rels.iter().filter(|r| r.user_made && r.kind == 'S') {
        let owner = seqs.get(&r.oid).and_then(|s| s.owner_table);
        if ctx.filter.relation_included(&r.schema, &r.name)
            || owner.is_some_and(|o| included.contains(&o))
        {
            included.insert(r.oid);
        }
    }
    // Identity sequences are part of their table's definition.
    let mut identity_of: HashMap<(u32, i32), (&RelRow, &Seq)> = HashMap::new();
    for r in rels.iter().filter(|r| r.kind == 'S') {
        if let Some(s) = seqs.get(&r.oid).filter(|s| s.identity) {
            if let (Some(t), Some(c)) = (s.owner_table, s.owner_column) {
                identity_of.insert((t, c), (r, s));
            }
        }
    }

    let mut late = late_columns_plan(&rels, &cols);
    let mut matviews = Vec::new();
    for r in &rels {
        if r.extension.is_some() {
            extension_config(
                ctx,
                r,
                cols.get(&r.oid).map(Vec::as_slice).unwrap_or_default(),
            );
            continue;
        }
        if !included.contains(&r.oid) || r.kind == 'S' {
            continue;
        }
        if r.tablespace {
            ctx.warn(
                "TABLESPACE",
                &format!("{}.{}", r.schema, r.name),
                "created in the default tablespace: tablespaces are not dumped",
            );
        }
        let columns = cols.get(&r.oid).cloned().unwrap_or_default();
        let id = match r.kind {
            'r' | 'p' => {
                let parent_cols: Vec<Vec<String>> = r
                    .parents
                    .iter()
                    .map(|p| {
                        cols.get(p)
                            .map(|l| l.iter().map(|c| c.name.clone()).collect())
                            .unwrap_or_default()
                    })
                    .collect();
                let checks = checks.remove(&r.oid).unwrap_or_default();
                let parts = TableParts {
                    columns: &columns,
                    checks: &checks,
                    identity_of: &identity_of,
                    parent_cols: &parent_cols,
                    by_oid: &by_oid,
                };
                table(ctx, r, &parts, &mut late)?
            }
            'v' | 'm' => {
                let id = view(ctx, r, &columns)?;
                if r.kind == 'm' {
                    matviews.push((r, id));
                }
                id
            }
            'f' => {
                ctx.warn(
                    "FOREIGN TABLE",
                    &format!("{}.{}", r.schema, r.name),
                    "foreign tables are not dumped yet",
                );
                continue;
            }
            _ => continue,
        };
        for c in &columns {
            if c.default.is_some() && c.generated.is_empty() {
                column_default(ctx, r, id, c);
            }
        }
        column_acls(ctx, r, id, &columns)?;
    }
    late.wire(ctx);
    for r in rels
        .iter()
        .filter(|r| r.kind == 'S' && included.contains(&r.oid))
    {
        if let Some(s) = seqs.get(&r.oid) {
            sequence(ctx, r, s)?;
        }
    }
    for r in &rels {
        if r.is_partition && included.contains(&r.oid) {
            attach_partition(ctx, r, &by_oid);
        }
    }
    for t in ctx.tables.iter_mut() {
        t.partition_of = partition_ancestors(t.oid, &by_oid);
    }
    for (r, id) in matviews {
        if r.populated {
            let obj = post("MATERIALIZED VIEW DATA", Some(&r.schema), &r.name).sql(
                format!("REFRESH MATERIALIZED VIEW {};", r.qualified()),
                String::new(),
            );
            let data = ctx.g.add(obj);
            ctx.g.depend(data, id);
            ctx.matview_data.insert(id, data);
        }
    }
    sequence_values(ctx, &rels).await
}

/// A table's size on disk (main fork and TOAST), for ordering, splitting
/// and the space estimate. `pg_relation_size` opens the relation, which in a
/// fresh session builds its cache entry: 35 µs a table, 0.15 s for 4000
/// small ones. A table the statistics saw under 8 MB is taken at their word
/// (pg_dump orders by relpages alone); a stale figure only costs a table
/// that has since grown past the split size its split.
const SIZE: &str = "CASE WHEN c.relkind NOT IN ('r', 'm', 't') THEN 0 \
     WHEN c.relpages BETWEEN 1 AND 1023 AND coalesce(tc.relpages, 0) < 1024 \
     THEN (c.relpages + coalesce(tc.relpages, 0))::int8 * pg_catalog.current_setting('block_size')::int8 \
     ELSE pg_catalog.pg_relation_size(c.oid) + coalesce(pg_catalog.pg_relation_size(tc.oid), 0) END";

async fn read_rel_rows(ctx: &Ctx<'_>) -> Result<Vec<RelRow>, CatalogError> {
    let sql = format!(
        "SELECT c.oid, c.relnamespace, n.nspname::text, c.relname::text, \
         pg_catalog.pg_get_userbyid(c.relowner)::text, c.relkind::text, c.relpersistence = 'u', \
         c.relacl::text[], pg_catalog.acldefault((CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END)::\"char\", c.relowner)::text[], \
         pg_catalog.array_to_string(c.reloptions, ', '), pg_catalog.array_to_string(tc.reloptions, ', '), \
         c.relispartition, pg_catalog.pg_get_expr(c.relpartbound, c.oid), \
         CASE WHEN c.relkind = 'p' THEN pg_catalog.pg_get_partkeydef(c.oid) END, \
         c.relrowsecurity, c.relforcerowsecurity, c.relreplident::text, \
         CASE WHEN c.relkind IN ('r', 'm') AND am.amname <> 'heap' THEN am.amname::text END, \
         c.reltype, CASE WHEN c.reloftype <> 0 THEN pg_catalog.format_type(c.reloftype, NULL) END, \
         c.relpages::int8, c.reltuples::float8, \
         {size}, \
         c.relispopulated, CASE WHEN c.relkind IN ('v', 'm') THEN pg_catalog.pg_get_viewdef(c.oid) END, \
         ARRAY(SELECT i.inhparent FROM pg_catalog.pg_inherits i WHERE i.inhrelid = c.oid ORDER BY i.inhseqno), \
         x.oid, x.extcondition[pg_catalog.array_position(x.extconfig, c.oid)], \
         c.oid >= 16384 AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e \
             WHERE e.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND e.objid = c.oid AND e.deptype = 'e'), \
         c.reltablespace <> 0, \
         (SELECT w.oid FROM pg_catalog.pg_rewrite w WHERE w.ev_class = c.oid AND w.rulename = '_RETURN'), \
         c.relkind = 'v' AND EXISTS (SELECT 1 FROM pg_catalog.pg_rewrite w WHERE w.ev_class = c.oid \
             AND w.rulename = '_RETURN' AND {view_loop}) \
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         LEFT JOIN pg_catalog.pg_class tc ON tc.oid = c.reltoastrelid \
         LEFT JOIN pg_catalog.pg_am am ON am.oid = c.relam \
         LEFT JOIN pg_catalog.pg_extension x ON c.oid = ANY (x.extconfig) \
         WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') \
         AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema' AND c.oid >= 16384 \
         ORDER BY c.oid",
        view_loop = uses_function_of_table("pg_rewrite", "w.oid", "c.oid"),
        size = SIZE,
    );
    Ok(ctx
        .query("relations", &sql)
        .await?
        .into_iter()
        .map(|r| rel_row(&r))
        .collect())
}

fn rel_row(r: &Row) -> RelRow {
    RelRow {
        oid: r.get(0),
        nsp: r.get(1),
        schema: r.get(2),
        name: r.get(3),
        owner: r.get(4),
        kind: r.get::<_, String>(5).chars().next().unwrap_or('r'),
        unlogged: r.get(6),
        acl: r.get(7),
        acl_default: r.get(8),
        options: r.get::<_, Option<String>>(9).filter(|s| !s.is_empty()),
        toast_options: r.get::<_, Option<String>>(10).filter(|s| !s.is_empty()),
        is_partition: r.get(11),
        bound: r.get(12),
        partkey: r.get(13),
        row_security: r.get(14),
        force_row_security: r.get(15),
        replident: r.get(16),
        am: r.get(17),
        reltype: r.get(18),
        of_type: r.get(19),
        relpages: r.get(20),
        reltuples: r.get(21),
        size: r.get(22),
        populated: r.get(23),
        viewdef: r.get(24),
        parents: r.get(25),
        extension: r.get(26),
        ext_condition: r.get(27),
        user_made: r.get(28),
        tablespace: r.get(29),
        view_rule: r.get(30),
        view_loop: r.get(31),
    }
}

async fn read_columns(ctx: &Ctx<'_>) -> Result<HashMap<u32, Vec<Col>>, CatalogError> {
    let compression = if ctx.v >= 140000 {
        "CASE WHEN a.attcompression <> '' THEN a.attcompression::text END"
    } else {
        "NULL::text"
    };
    // From 18 a NOT NULL is a named constraint; its name must survive.
    let (nn_cols, nn_join) = if ctx.v >= 180000 {
        (
            "nn.conname::text, COALESCE(nn.convalidated, true), COALESCE(nn.connoinherit, false), \
             COALESCE(nn.conislocal, true)",
            "LEFT JOIN pg_catalog.pg_constraint nn ON nn.conrelid = a.attrelid AND nn.contype = 'n' \
             AND nn.conkey[1] = a.attnum",
        )
    } else {
        ("NULL::text, true, false, true", "")
    };
    let sql = format!(
        "SELECT a.attrelid, a.attnum::int4, a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod), \
         a.attnotnull, pg_catalog.pg_get_expr(ad.adbin, ad.adrelid), ad.oid, \
         EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass \
             AND d.objid = ad.oid AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid <> a.attrelid) \
         OR {default_loop}, \
         a.attidentity::text, a.attgenerated::text, \
         CASE WHEN a.attcollation <> t.typcollation THEN {coll} END, \
         CASE WHEN a.attstorage <> t.typstorage THEN a.attstorage::text END, {compression}, \
         CASE WHEN a.attstattarget >= 0 THEN a.attstattarget::int4 END, \
         pg_catalog.array_to_string(a.attoptions, ', '), a.attislocal, a.attacl::text[], \
         EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_attribute pa \
             ON pa.attrelid = i.inhparent AND pa.attname = a.attname WHERE i.inhrelid = a.attrelid AND pa.attnotnull), \
         (SELECT pg_catalog.pg_get_expr(pd.adbin, pd.adrelid) FROM pg_catalog.pg_inherits i \
             JOIN pg_catalog.pg_attribute pa ON pa.attrelid = i.inhparent AND pa.attname = a.attname \
             JOIN pg_catalog.pg_attrdef pd ON pd.adrelid = pa.attrelid AND pd.adnum = pa.attnum \
             WHERE i.inhrelid = a.attrelid LIMIT 1), {nn_cols}, {base_type} \
         FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
         JOIN pg_catalog.pg_type t ON t.oid = a.atttypid \
         LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum {nn_join} \
         WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND c.oid >= 16384 AND a.attnum > 0 AND NOT a.attisdropped \
         ORDER BY a.attrelid, a.attnum",
        coll = collation_name("a.attcollation"),
        default_loop = uses_function_of_table("pg_attrdef", "ad.oid", "a.attrelid"),
        base_type = BASE_TYPE,
    );
    let mut out: HashMap<u32, Vec<Col>> = HashMap::new();
    for r in ctx.query("columns", &sql).await? {
        out.entry(r.get(0)).or_default().push(Col {
            attnum: r.get(1),
            name: r.get(2),
            ty: r.get(3),
            not_null: r.get(4),
            default: r.get(5),
            default_oid: r.get(6),
            default_needs_relation: r.get(7),
            identity: r.get(8),
            generated: r.get(9),
            collation: r.get(10),
            storage: r.get(11),
            compression: r.get(12),
            stat_target: r.get(13),
            options: r.get::<_, Option<String>>(14).filter(|s| !s.is_empty()),
            is_local: r.get(15),
            acl: r.get(16),
            parent_not_null: r.get(17),
            parent_default: r.get(18),
            not_null_name: r.get(19),
            not_null_valid: r.get(20),
            not_null_no_inherit: r.get(21),
            not_null_local: r.get(22),
            base_type: r.get(23),
        });
    }
    Ok(out)
}

/// A column's [`Column::base_type`]: a domain's chain of base types is
/// followed to its end (typtypmod is the typmod a domain applies to its base).
const BASE_TYPE: &str = "CASE t.typtype WHEN 'e' THEN 'text' WHEN 'd' THEN (\
     WITH RECURSIVE b(oid, typmod) AS (SELECT t.typbasetype, t.typtypmod \
         UNION ALL SELECT bt.typbasetype, bt.typtypmod FROM b \
         JOIN pg_catalog.pg_type bt ON bt.oid = b.oid AND bt.typtype = 'd') \
     SELECT CASE WHEN bt.typtype = 'e' THEN 'text' ELSE pg_catalog.format_type(b.oid, b.typmod) END \
     FROM b JOIN pg_catalog.pg_type bt ON bt.oid = b.oid WHERE bt.typtype <> 'd') END";

async fn read_checks(ctx: &Ctx<'_>) -> Result<HashMap<u32, Vec<Check>>, CatalogError> {
    let sql = format!(
        "SELECT c.conrelid, c.oid, c.conname::text, pg_catalog.pg_get_constraintdef(c.oid), \
         c.conislocal, NOT c.convalidated OR {}, \
         ARRAY(SELECT k::int4 FROM pg_catalog.unnest(c.conkey) k) FROM pg_catalog.pg_constraint c \
         WHERE c.contype = 'c' AND c.conrelid >= 16384 ORDER BY c.conrelid, c.conname",
        uses_function_of_table("pg_constraint", "c.oid", "c.conrelid")
    );
    let mut out: HashMap<u32, Vec<Check>> = HashMap::new();
    for r in ctx.query("check constraints", &sql).await? {
        out.entry(r.get(0)).or_default().push(Check {
            oid: r.get(1),
            name: r.get(2),
            def: r.get(3),
            is_local: r.get(4),
            separate: r.get(5),
            columns: r.get(6),
        });
    }
    Ok(out)
}

async fn read_sequences(ctx: &Ctx<'_>) -> Result<HashMap<u32, Seq>, CatalogError> {
    let sql = "SELECT s.seqrelid, pg_catalog.format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, \
               s.seqmin, s.seqmax, s.seqcache, s.seqcycle, d.refobjid, d.refobjsubid, d.deptype = 'i' \
               FROM pg_catalog.pg_sequence s LEFT JOIN LATERAL ( \
                 SELECT d.refobjid, d.refobjsubid, d.deptype FROM pg_catalog.pg_depend d \
                 WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = s.seqrelid \
                 AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.deptype IN ('a', 'i') LIMIT 1) d ON true";
    let mut out = HashMap::new();
    for r in ctx.query("sequences", sql).await? {
        out.insert(
            r.get::<_, u32>(0),
            Seq {
                ty: r.get(1),
                start: r.get(2),
                increment: r.get(3),
                min: r.get(4),
                max: r.get(5),
                cache: r.get(6),
                cycle: r.get(7),
                owner_table: r.get(8),
                owner_column: r.get(9),
                identity: r.get::<_, Option<bool>>(10).unwrap_or(false),
            },
        );
    }
    Ok(out)
}

/// Children of a plain parent created before the parent gained columns
/// (order: first k parent columns, own columns, the parent's later ones) are
/// recreated the same way: the parent is created with its first columns, the
/// children inherit, then the parent gets the rest, which appends them to its
/// children. That keeps both the physical order and which columns are local.
#[derive(Default)]
struct LateColumns {
    /// Parent oid -> the column counts at which children were created, ascending.
    epochs: HashMap<u32, Vec<usize>>,
    /// Child oid -> (parent oid, parent columns it got, by ALTER TABLE INHERIT).
    children: HashMap<u32, (u32, usize, bool)>,
    /// Parent oid -> its CREATE TABLE object, then one object per epoch.
    created: HashMap<u32, Vec<usize>>,
    /// Children to put between the parent's steps: (child object, parent oid, k).
    waiting: Vec<(usize, u32, usize)>,
}

impl LateColumns {
    /// A child created with k parent columns comes after the step that made
    /// k columns, and before the step that adds the next ones.
    fn wire(&self, ctx: &mut Ctx<'_>) {
        for &(child, parent, k) in &self.waiting {
            let (Some(chain), Some(epochs)) = (self.created.get(&parent), self.epochs.get(&parent))
            else {
                continue;
            };
            let Some(i) = epochs.iter().position(|&e| e == k) else {
                continue;
            };
            ctx.g.depend(child, chain[i]);
            ctx.g.depend(chain[i + 1], child);
        }
    }
}

fn late_columns_plan(rels: &[RelRow], cols: &HashMap<u32, Vec<Col>>) -> LateColumns {
    let mut plan = LateColumns::default();
    let has_children: HashSet<u32> = rels
        .iter()
        .flat_map(|r| r.parents.iter().copied())
        .collect();
    let by_oid: HashMap<u32, &RelRow> = rels.iter().map(|r| (r.oid, r)).collect();
    for child in rels {
        let [parent] = child.parents.as_slice() else {
            continue;
        };
        let Some(p) = by_oid.get(parent) else {
            continue;
        };
        if child.kind != 'r'
            || child.is_partition
            || has_children.contains(&child.oid)
            || p.kind != 'r'
            || !p.parents.is_empty()
        {
            continue;
        }
        let (Some(pc), Some(cc)) = (cols.get(parent), cols.get(&child.oid)) else {
            continue;
        };
        if let Some((k, adopted)) = created_with(pc, cc) {
            plan.children.insert(child.oid, (*parent, k, adopted));
            plan.epochs.entry(*parent).or_default().push(k);
        }
    }
    for e in plan.epochs.values_mut() {
        e.sort_unstable();
        e.dedup();
    }
    plan
}

/// How many parent columns the child got the parent with, and whether it
/// got them by `ALTER TABLE ... INHERIT` (having them as its own columns)
/// rather than by `CREATE TABLE ... INHERITS`. Its columns must end with the
/// parent's later columns, inherited only.
fn created_with(parent: &[Col], child: &[Col]) -> Option<(usize, bool)> {
    let t = parent
        .iter()
        .rev()
        .zip(child.iter().rev())
        .take_while(|(p, c)| p.name == c.name && !c.is_local)
        .count();
    if t == 0 || t == child.len() {
        return None;
    }
    let k = parent.len() - t;
    let first = &child[..child.len() - t];
    let in_parent = |c: &&Col| parent[..k].iter().any(|p| p.name == c.name);
    let inherited: Vec<&Col> = first.iter().filter(in_parent).collect();
    if inherited.len() != k
        || first
            .iter()
            .any(|c| parent[k..].iter().any(|p| p.name == c.name))
    {
        return None;
    }
    // INHERITS puts the parent's columns first, in its order.
    if first.len() > k
        && first
            .iter()
            .zip(&parent[..k])
            .all(|(c, p)| c.name == p.name)
    {
        return Some((k, false));
    }
    // INHERIT later adopts columns the child already had.
    inherited.iter().all(|c| c.is_local).then_some((k, true))
}

fn seq_options(s: &Seq) -> String {
    format!(
        "START WITH {}\n    INCREMENT BY {}\n    MINVALUE {}\n    MAXVALUE {}\n    CACHE {}{}",
        s.start,
        s.increment,
        s.min,
        s.max,
        s.cache,
        if s.cycle { "\n    CYCLE" } else { "" }
    )
}

/// The column order `CREATE TABLE ... INHERITS` would give: the parents'
/// columns merged in order, then the child's own.
fn inherits_order(parents: &[Vec<String>], own: &[Col]) -> Vec<String> {
    let mut order: Vec<String> = Vec::new();
    for p in parents {
        for c in p {
            if !order.contains(c) {
                order.push(c.clone());
            }
        }
    }
    for c in own {
        if !order.contains(&c.name) {
            order.push(c.name.clone());
        }
    }
    order
}

/// What a table is made of, besides its catalog row.
struct TableParts<'a> {
    columns: &'a [Col],
    checks: &'a [Check],
    identity_of: &'a HashMap<(u32, i32), (&'a RelRow, &'a Seq)>,
    parent_cols: &'a [Vec<String>],
    by_oid: &'a HashMap<u32, &'a RelRow>,
}

/// Creates the table (and, for a parent with late columns, the objects that
/// add them); returns the object that stands for the finished table.
fn table(
    ctx: &mut Ctx<'_>,
    r: &RelRow,
    parts: &TableParts,
    late: &mut LateColumns,
) -> Result<usize, CatalogError> {
    let TableParts {
        columns,
        checks,
        identity_of,
        parent_cols,
        by_oid,
    } = *parts;
    let qn = r.qualified();
    // A parent whose columns partly come after some children were created.
    let epochs = late.epochs.get(&r.oid).cloned().unwrap_or_default();
    let first_late = epochs.first().copied().unwrap_or(columns.len());
    let late_attnums: HashSet<i32> = columns[first_late..].iter().map(|c| c.attnum).collect();
    let mut late_lines = Vec::new();
    let parents: Vec<String> = r
        .parents
        .iter()
        .filter_map(|p| by_oid.get(p).map(|p| p.qualified()))
        .collect();
    let inherits = !r.is_partition && !parents.is_empty();
    let physical: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
    // A child whose parent gained columns after it was created has another
    // physical order than INHERITS would give: keep the order by creating all
    // columns and attaching the parents afterwards.
    let replayed = late.children.get(&r.oid).copied();
    let keep_order =
        inherits && replayed.is_none() && inherits_order(parent_cols, columns) != physical;
    let mut lines = Vec::new();
    let mut after = String::new();
    // NOT VALID NOT NULLs come after the data, which may break them.
    let mut not_valid = String::new();
    for (i, c) in columns.iter().enumerate() {
        if !printed(r, c, inherits, keep_order) {
            if c.not_null && (!c.parent_not_null || (c.not_null_name.is_some() && c.not_null_local))
            {
                match &c.not_null_name {
                    Some(n) => {
                        let (list, tail) = if c.not_null_valid {
                            (&mut after, "")
                        } else {
                            (&mut not_valid, " NOT VALID")
                        };
                        *list += &format!(
                            "ALTER TABLE ONLY {qn} ADD CONSTRAINT {} NOT NULL {}{tail};\n",
                            quote_ident(n),
                            quote_ident(&c.name),
                        )
                    }
                    None => {
                        after += &format!(
                            "ALTER TABLE ONLY {qn} ALTER COLUMN {} SET NOT NULL;\n",
                            quote_ident(&c.name)
                        )
                    }
                }
            }
            continue;
        }
        let mut line = format!("{} {}", quote_ident(&c.name), c.ty);
        if let Some(coll) = &c.collation {
            line += &format!(" COLLATE {coll}");
        }
        if let Some(expr) = c.default.as_ref().filter(|_| !c.generated.is_empty()) {
            let kind = if c.generated == "v" {
                "VIRTUAL"
            } else {
                "STORED"
            };
            line += &format!(" GENERATED ALWAYS AS ({expr}) {kind}");
        } else if let Some(expr) = c
            .default
            .as_ref()
            .filter(|_| default_inline(r, c, inherits, keep_order))
        {
            line += &format!(" DEFAULT {expr}");
        }
        if let Some((seq, s)) = identity_of
            .get(&(r.oid, c.attnum))
            .filter(|_| !r.is_partition)
        {
            let when = if c.identity == "a" {
                "ALWAYS"
            } else {
                "BY DEFAULT"
            };
            line += &format!(
                " GENERATED {when} AS IDENTITY (\n    SEQUENCE NAME {}\n    {}\n)",
                seq.qualified(),
                seq_options(s)
            );
        }
        match (&c.not_null_name, c.not_null) {
            (Some(n), true) if c.not_null_valid => {
                line += &format!(" CONSTRAINT {} NOT NULL", quote_ident(n));
                if c.not_null_no_inherit {
                    line += " NO INHERIT";
                }
            }
            (Some(n), true) => {
                not_valid += &format!(
                    "ALTER TABLE ONLY {qn} ADD CONSTRAINT {} NOT NULL {} NOT VALID;\n",
                    quote_ident(n),
                    quote_ident(&c.name)
                );
            }
            (None, true) => line += " NOT NULL",
            _ => {}
        }
        if i >= first_late {
            late_lines.push(line);
        } else {
            lines.push(line);
        }
    }
    let mut late_checks = String::new();
    for k in checks {
        if !k.separate && (k.is_local || r.is_partition || keep_order) {
            if k.columns.iter().any(|a| late_attnums.contains(a)) {
                late_checks += &format!(
                    "ALTER TABLE {qn} ADD CONSTRAINT {} {};\n",
                    quote_ident(&k.name),
                    k.def
                );
            } else {
                lines.push(format!("CONSTRAINT {} {}", quote_ident(&k.name), k.def));
            }
        }
    }
    let mut sql = format!(
        "CREATE {}TABLE {qn}",
        if r.unlogged { "UNLOGGED " } else { "" }
    );
    if let Some(t) = &r.of_type {
        sql += &format!(" OF {t}");
        if !lines.is_empty() {
            sql += &format!(" (\n    {}\n)", lines.join(",\n    "));
        }
    } else {
        sql += &format!(" (\n    {}\n)", lines.join(",\n    "));
    }
    let adopted = replayed.is_some_and(|(_, _, adopted)| adopted);
    if inherits && !keep_order && !adopted {
        sql += &format!("\nINHERITS ({})", parents.join(", "));
    }
    if let Some(k) = &r.partkey {
        sql += &format!("\nPARTITION BY {k}");
    }
    if let Some(am) = &r.am {
        sql += &format!("\nUSING {}", quote_ident(am));
    }
    let mut with = r.options.clone().into_iter().collect::<Vec<_>>();
    if let Some(t) = &r.toast_options {
        with.extend(t.split(", ").map(|o| format!("toast.{o}")));
    }
    if !with.is_empty() {
        sql += &format!("\nWITH ({})", with.join(", "));
    }
    sql += ";\n";
    let mut tail = String::new();
    if keep_order || adopted {
        for p in &parents {
            tail += &format!("ALTER TABLE ONLY {qn} INHERIT {p};\n");
        }
    }
    tail += &after;
    tail += &late_checks;
    tail += &column_settings("TABLE", &qn, columns);
    match r.replident.as_str() {
        "f" => tail += &format!("ALTER TABLE ONLY {qn} REPLICA IDENTITY FULL;\n"),
        "n" => tail += &format!("ALTER TABLE ONLY {qn} REPLICA IDENTITY NOTHING;\n"),
        _ => {}
    }
    let target = format!("TABLE {qn}");
    let mut steps = vec![sql];
    // Each epoch adds the parent's columns that the next children were created without.
    let mut bounds = epochs.clone();
    bounds.push(columns.len());
    for w in bounds.windows(2) {
        let adds: Vec<String> = late_lines[w[0] - first_late..w[1] - first_late]
            .iter()
            .map(|l| format!("ADD COLUMN {l}"))
            .collect();
        steps.push(format!("ALTER TABLE {qn}\n    {};\n", adds.join(",\n    ")));
    }
    steps
        .last_mut()
        .expect("at least the CREATE")
        .push_str(&tail);
    let create = steps.remove(0);
    let obj = pre("TABLE", Some(&r.schema), &r.name).sql(
        create.trim_end().to_string(),
        format!("DROP TABLE IF EXISTS {qn};"),
    );
    let table_id = ctx.add(obj, Some(r.nsp), Some((&target, r.owner.clone())));
    let mut chain = vec![table_id];
    for step in steps {
        let obj = pre("TABLE COLUMNS", Some(&r.schema), &r.name)
            .sql(step.trim_end().to_string(), String::new());
        let id = ctx.g.add(obj);
        ctx.g.depend(id, *chain.last().expect("never empty"));
        chain.push(id);
    }
    let id = *chain.last().expect("never empty");
    if !epochs.is_empty() {
        late.created.insert(r.oid, chain);
    }
    if let Some((parent, k, _)) = replayed {
        late.waiting.push((table_id, parent, k));
        ctx.g.ignore_pg_depend(table_id, (PG_CLASS, parent));
    }
    claim_relation(ctx, r, id, &target);
    for c in columns {
        if let Some((seq, _)) = identity_of.get(&(r.oid, c.attnum)) {
            ctx.g.claim((PG_CLASS, seq.oid), id);
        }
        if let Some(d) = c
            .default_oid
            .filter(|_| !c.generated.is_empty() || default_inline(r, c, inherits, keep_order))
        {
            ctx.g.claim((PG_ATTRDEF, d), id);
        }
    }
    for k in checks {
        if k.separate && k.is_local {
            separate_check(ctx, r, id, k);
        } else {
            ctx.g.claim((PG_CONSTRAINT, k.oid), id);
            ctx.commentable(
                (PG_CONSTRAINT, k.oid),
                id,
                format!("CONSTRAINT {} ON {qn}", quote_ident(&k.name)),
            );
        }
    }
    if !not_valid.is_empty() {
        let obj = post(
            "CONSTRAINT",
            Some(&r.schema),
            &format!("{} NOT NULL", r.name),
        )
        .sql(not_valid.trim_end().to_string(), String::new());
        let nn = ctx.g.add(obj);
        ctx.g.depend(nn, id);
    }
    if r.row_security || r.force_row_security {
        let mut sql = String::new();
        if r.row_security {
            sql += &format!("ALTER TABLE {qn} ENABLE ROW LEVEL SECURITY;\n");
        }
        if r.force_row_security {
            sql += &format!("ALTER TABLE ONLY {qn} FORCE ROW LEVEL SECURITY;\n");
        }
        let obj = post("ROW SECURITY", Some(&r.schema), &r.name)
            .sql(sql.trim_end().to_string(), String::new());
        let rs = ctx.g.add(obj);
        ctx.g.depend(rs, id);
    }
    if r.kind == 'r' {
        ctx.table_info(TableInfo {
            object_id: table_id as u32,
            oid: r.oid,
            schema: r.schema.clone(),
            name: r.name.clone(),
            qualified: qn,
            columns: copy_columns(columns),
            relpages: r.relpages,
            reltuples: r.reltuples,
            size_bytes: r.size,
            copy_filter: None,
            unlogged: r.unlogged,
            partition_of: Vec::new(),
        });
    }
    Ok(id)
}

/// Whether CREATE TABLE lists the column: not for a typed table's columns
/// (they come from the type), nor for inherited ones (from the parent).
fn printed(r: &RelRow, c: &Col, inherits: bool, keep_order: bool) -> bool {
    r.of_type.is_none() && (!inherits || c.is_local || keep_order)
}

/// A default goes into CREATE TABLE unless it needs another relation (a
/// sequence: the owned sequence comes after its table) or the column is not
/// written there.
fn default_inline(r: &RelRow, c: &Col, inherits: bool, keep_order: bool) -> bool {
    !c.default_needs_relation && printed(r, c, inherits, keep_order)
}

fn copy_columns(columns: &[Col]) -> Vec<Column> {
    columns
        .iter()
        .filter(|c| c.generated.is_empty())
        .map(|c| Column {
            name: c.name.clone(),
            type_name: c.ty.clone(),
            base_type: c.base_type.clone(),
        })
        .collect()
}

/// Per-column settings CREATE TABLE cannot express.
fn column_settings(keyword: &str, qn: &str, columns: &[Col]) -> String {
    let mut sql = String::new();
    for c in columns {
        let col = quote_ident(&c.name);
        if let Some(s) = &c.storage {
            let storage = match s.as_str() {
                "p" => "PLAIN",
                "e" => "EXTERNAL",
                "m" => "MAIN",
                _ => "EXTENDED",
            };
            sql +=
                &format!("ALTER {keyword} ONLY {qn} ALTER COLUMN {col} SET STORAGE {storage};\n");
        }
        if let Some(m) = &c.compression {
            let method = if m == "l" { "lz4" } else { "pglz" };
            sql += &format!(
                "ALTER {keyword} ONLY {qn} ALTER COLUMN {col} SET COMPRESSION {method};\n"
            );
        }
        if let Some(n) = c.stat_target {
            sql += &format!("ALTER {keyword} ONLY {qn} ALTER COLUMN {col} SET STATISTICS {n};\n");
        }
        if let Some(o) = &c.options {
            sql += &format!("ALTER {keyword} ONLY {qn} ALTER COLUMN {col} SET ({o});\n");
        }
    }
    sql
}

fn claim_relation(ctx: &mut Ctx<'_>, r: &RelRow, id: usize, target: &str) {
    ctx.g.claim((PG_CLASS, r.oid), id);
    if r.reltype != 0 {
        ctx.g.claim((PG_TYPE, r.reltype), id);
    }
    if let Some(rule) = r.view_rule {
        ctx.g.claim((PG_REWRITE, rule), id);
    }
    ctx.commentable((PG_CLASS, r.oid), id, target.to_string());
    ctx.rels.insert(
        r.oid,
        Rel {
            id,
            qualified: r.qualified(),
            kind: r.kind,
            schema: r.schema.clone(),
            name: r.name.clone(),
        },
    );
}

fn separate_check(ctx: &mut Ctx<'_>, r: &RelRow, table: usize, k: &Check) {
    let qn = r.qualified();
    let cn = quote_ident(&k.name);
    let obj = post(
        "CHECK CONSTRAINT",
        Some(&r.schema),
        &format!("{} {}", r.name, k.name),
    )
    .sql(
        format!("ALTER TABLE {qn}\n    ADD CONSTRAINT {cn} {};", k.def),
        format!("ALTER TABLE IF EXISTS {qn} DROP CONSTRAINT IF EXISTS {cn};"),
    );
    let id = ctx.g.add(obj);
    ctx.g.depend(id, table);
    ctx.g.claim((PG_CONSTRAINT, k.oid), id);
    ctx.commentable(
        (PG_CONSTRAINT, k.oid),
        id,
        format!("CONSTRAINT {cn} ON {qn}"),
    );
}

/// A default not written into CREATE TABLE: a separate "DEFAULT" object.
fn column_default(ctx: &mut Ctx<'_>, r: &RelRow, table: usize, c: &Col) {
    let Some(def_oid) = c.default_oid else { return };
    if ctx.g.id_of((PG_ATTRDEF, def_oid)).is_some() {
        return;
    }
    let expr = c.default.clone().unwrap_or_default();
    // An inherited column that got the parent's default at creation needs nothing.
    if !c.is_local
        && c.parent_default.as_deref() == Some(expr.as_str())
        && !c.default_needs_relation
    {
        ctx.g.claim((PG_ATTRDEF, def_oid), table);
        return;
    }
    let keyword = if r.kind == 'v' { "VIEW" } else { "TABLE ONLY" };
    let qn = r.qualified();
    let col = quote_ident(&c.name);
    let obj = pre(
        "DEFAULT",
        Some(&r.schema),
        &format!("{} {}", r.name, c.name),
    )
    .sql(
        format!("ALTER {keyword} {qn} ALTER COLUMN {col} SET DEFAULT {expr};"),
        format!(
            "ALTER {} IF EXISTS {qn} ALTER COLUMN {col} DROP DEFAULT;",
            keyword.trim_end_matches(" ONLY")
        ),
    );
    let id = ctx.g.add(obj);
    ctx.g.depend(id, table);
    ctx.g.claim((PG_ATTRDEF, def_oid), id);
}

fn column_acls(
    ctx: &mut Ctx<'_>,
    r: &RelRow,
    id: usize,
    columns: &[Col],
) -> Result<(), CatalogError> {
    let qn = r.qualified();
    let on = if r.kind == 'S' {
        format!("SEQUENCE {qn}")
    } else {
        format!("TABLE {qn}")
    };
    let mut sql = match &r.acl {
        Some(acl) => acl_sql(
            &AclTarget {
                prefix: "",
                on: &on,
                column: None,
                owner: &r.owner,
            },
            acl,
            &r.acl_default,
            &mut ctx.roles,
        )?,
        None => String::new(),
    };
    for c in columns {
        ctx.columns.insert(
            (r.oid, c.attnum),
            (Some(id), format!("COLUMN {qn}.{}", quote_ident(&c.name))),
        );
        if let Some(acl) = &c.acl {
            let target = AclTarget {
                prefix: "",
                on: &format!("TABLE {qn}"),
                column: Some(&c.name),
                owner: &r.owner,
            };
            sql += &acl_sql(&target, acl, &[], &mut ctx.roles)?;
        }
    }
    ctx.acl_object(Some(id), &on, sql);
    Ok(())
}

fn view(ctx: &mut Ctx<'_>, r: &RelRow, columns: &[Col]) -> Result<usize, CatalogError> {
    let qn = r.qualified();
    let def = r.viewdef.clone().unwrap_or_default();
    let def = def.trim_end().trim_end_matches(';');
    let with = r
        .options
        .as_ref()
        .map(|o| format!(" WITH ({o})"))
        .unwrap_or_default();
    let (kind, keyword, sql) = if r.kind == 'm' {
        let using =
            r.am.as_ref()
                .map(|a| format!(" USING {}", quote_ident(a)))
                .unwrap_or_default();
        (
            "MATERIALIZED VIEW",
            "MATERIALIZED VIEW",
            format!("CREATE MATERIALIZED VIEW {qn}{using}{with} AS\n{def}\n  WITH NO DATA;\n"),
        )
    } else {
        (
            "VIEW",
            "VIEW",
            format!("CREATE VIEW {qn}{with} AS\n{def};\n"),
        )
    };
    let target = format!("{keyword} {qn}");
    let drop = format!("DROP {keyword} IF EXISTS {qn};");
    if r.view_loop {
        return view_in_two_steps(ctx, r, columns, &sql, &target, drop);
    }
    let sql = sql + &column_settings(keyword, &qn, columns);
    let obj = pre(kind, Some(&r.schema), &r.name).sql(sql.trim_end().to_string(), drop);
    let id = ctx.add(obj, Some(r.nsp), Some((&target, r.owner.clone())));
    claim_relation(ctx, r, id, &target);
    Ok(id)
}

/// A view calling a function that needs the view: like pg_dump, first a
/// placeholder view with the same columns (what the function needs), then the
/// real definition with CREATE OR REPLACE (what needs the function).
fn view_in_two_steps(
    ctx: &mut Ctx<'_>,
    r: &RelRow,
    columns: &[Col],
    create: &str,
    target: &str,
    drop: String,
) -> Result<usize, CatalogError> {
    let qn = r.qualified();
    let placeholders: Vec<String> = columns
        .iter()
        .map(|c| {
            let coll = c
                .collation
                .as_ref()
                .map(|c| format!(" COLLATE {c}"))
                .unwrap_or_default();
            format!("NULL::{}{coll} AS {}", c.ty, quote_ident(&c.name))
        })
        .collect();
    let sql = format!(
        "CREATE VIEW {qn} AS\n SELECT {};\n",
        placeholders.join(",\n    ")
    ) + &column_settings("VIEW", &qn, columns);
    let obj = pre("VIEW", Some(&r.schema), &r.name).sql(sql.trim_end().to_string(), drop);
    let placeholder = ctx.add(obj, Some(r.nsp), Some((target, r.owner.clone())));
    let replace = create.replacen("CREATE VIEW", "CREATE OR REPLACE VIEW", 1);
    let obj = pre("RULE", Some(&r.schema), &format!("{} _RETURN", r.name))
        .sql(replace.trim_end().to_string(), String::new());
    let id = ctx.g.add(obj);
    ctx.g.depend(id, placeholder);
    claim_relation(ctx, r, id, target);
    ctx.g.claim((PG_CLASS, r.oid), placeholder);
    ctx.g.claim((PG_TYPE, r.reltype), placeholder);
    Ok(id)
}

fn sequence(ctx: &mut Ctx<'_>, r: &RelRow, s: &Seq) -> Result<(), CatalogError> {
    let qn = r.qualified();
    if s.identity {
        // Created with its column; its value and privileges are its own.
        if let Some(&id) = s.owner_table.and_then(|t| ctx.rels.get(&t)).map(|t| &t.id) {
            ctx.seq_objects.insert(r.oid, (id, qn));
            ctx.commentable((PG_CLASS, r.oid), id, format!("SEQUENCE {}", r.qualified()));
            column_acls(ctx, r, id, &[])?;
        }
        return Ok(());
    }
    let sql = format!(
        "CREATE {}SEQUENCE {qn}\n    AS {}\n    {};",
        if r.unlogged { "UNLOGGED " } else { "" },
        s.ty,
        seq_options(s)
    );
    let target = format!("SEQUENCE {qn}");
    let obj = pre("SEQUENCE", Some(&r.schema), &r.name)
        .sql(sql, format!("DROP SEQUENCE IF EXISTS {qn};"));
    let id = ctx.add(obj, Some(r.nsp), Some((&target, r.owner.clone())));
    claim_relation(ctx, r, id, &target);
    ctx.seq_objects.insert(r.oid, (id, qn.clone()));
    if let (Some(t), Some(c)) = (s.owner_table, s.owner_column) {
        let table = ctx.rels.get(&t).cloned();
        let column = ctx
            .columns
            .get(&(t, c))
            .map(|(_, target)| target.trim_start_matches("COLUMN ").to_string());
        if let (Some(table), Some(column)) = (table, column) {
            let obj = pre("SEQUENCE OWNED BY", Some(&r.schema), &r.name).sql(
                format!("ALTER SEQUENCE {qn} OWNED BY {column};"),
                String::new(),
            );
            let owned = ctx.g.add(obj);
            ctx.g.depend(owned, id);
            ctx.g.depend(owned, table.id);
        }
    }
    column_acls(ctx, r, id, &[])
}

/// The partitioned tables above a partition, nearest first.
fn partition_ancestors(oid: u32, by_oid: &HashMap<u32, &RelRow>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut at = by_oid.get(&oid);
    while let Some(r) = at.filter(|r| r.is_partition) {
        at = r.parents.first().and_then(|p| by_oid.get(p));
        match at {
            Some(p) if out.len() < by_oid.len() => out.push((p.schema.clone(), p.name.clone())),
            _ => break,
        }
    }
    out
}

fn attach_partition(ctx: &mut Ctx<'_>, r: &RelRow, by_oid: &HashMap<u32, &RelRow>) {
    let (Some(child), Some(parent_oid)) = (ctx.rels.get(&r.oid).cloned(), r.parents.first()) else {
        return;
    };
    let Some(parent) = ctx.rels.get(parent_oid).cloned() else {
        return;
    };
    let bound = r.bound.clone().unwrap_or_default();
    let parent_qn = by_oid
        .get(parent_oid)
        .map(|p| p.qualified())
        .unwrap_or_default();
    let obj = pre("TABLE ATTACH", Some(&r.schema), &r.name).sql(
        format!(
            "ALTER TABLE ONLY {parent_qn} ATTACH PARTITION {} {bound};",
            child.qualified
        ),
        format!(
            "ALTER TABLE IF EXISTS {parent_qn} DETACH PARTITION {};",
            child.qualified
        ),
    );
    let id = ctx.g.add(obj);
    ctx.g.depend(id, parent.id);
    ctx.g.depend(id, child.id);
}

/// An extension's configuration table: its rows are dumped, its DDL is the extension's.
fn extension_config(ctx: &mut Ctx<'_>, r: &RelRow, columns: &[Col]) {
    let Some(ext) = r.extension.and_then(|x| ctx.g.id_of((PG_EXTENSION, x))) else {
        return;
    };
    if r.kind == 'S' {
        ctx.seq_objects.insert(r.oid, (ext, r.qualified()));
        return;
    }
    if r.kind != 'r' {
        return;
    }
    ctx.table_info(TableInfo {
        object_id: ext as u32,
        oid: r.oid,
        schema: r.schema.clone(),
        name: r.name.clone(),
        qualified: r.qualified(),
        columns: copy_columns(columns),
        relpages: r.relpages,
        reltuples: r.reltuples,
        size_bytes: r.size,
        copy_filter: r.ext_condition.clone().filter(|c| !c.is_empty()),
        unlogged: r.unlogged,
        partition_of: Vec::new(),
    });
}

/// "SEQUENCE SET" objects: the current values, read in batches.
async fn sequence_values(ctx: &mut Ctx<'_>, rels: &[RelRow]) -> Result<(), CatalogError> {
    let wanted: Vec<(u32, usize, String, &RelRow)> = rels
        .iter()
        .filter_map(|r| {
            ctx.seq_objects
                .get(&r.oid)
                .map(|(id, qn)| (r.oid, *id, qn.clone(), r))
        })
        .collect();
    for chunk in wanted.chunks(200) {
        let sql = chunk
            .iter()
            .map(|(oid, _, qn, _)| format!("SELECT {oid}::oid, last_value, is_called FROM {qn}"))
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        let values: HashMap<u32, (i64, bool)> = ctx
            .query("sequence values", &sql)
            .await?
            .iter()
            .map(|r| (r.get(0), (r.get(1), r.get(2))))
            .collect();
        for (oid, id, qn, r) in chunk {
            let Some((last, called)) = values.get(oid) else {
                continue;
            };
            let obj = Obj::new("SEQUENCE SET", Some(&r.schema), &r.name, Section::Data).sql(
                format!(
                    "SELECT pg_catalog.setval({}, {last}, {called});",
                    quote_literal(qn)
                ),
                String::new(),
            );
            let set = ctx.g.add(obj);
            ctx.g.depend(set, *id);
        }
    }
    Ok(())
}

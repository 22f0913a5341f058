//! Partial rollback: replace the rows of a few tables with the archive's, in
//! one transaction, reading only their chunks.
//!
//! `TRUNCATE ... CASCADE` would also empty every table that references them,
//! and a plain DELETE would cascade or fail. Instead the foreign keys that
//! point at the tables are dropped, the tables truncated and reloaded, and the
//! keys added back, which checks every referencing row against the restored
//! rows: if one no longer matches, the whole transaction rolls back.

use crate::load::{stream_copy, Unit};
use crate::source::Source;
use crate::RestoreError;
use pgark_archive::{CopySpec, TocEntry};
use pgark_catalog::{quote_ident, quote_literal, TableMatcher};
use pgark_conn::{ConnParams, Purpose};
use std::collections::BTreeMap;
use tokio_postgres::Client;

/// Which tables to roll back, and how to convert values whose column type
/// changed since the dump.
#[derive(Debug, Clone)]
pub struct TableRollback {
    /// `[schema.]table` patterns.
    pub tables: Vec<String>,
    /// Also every table the archive marks critical.
    pub critical: bool,
    /// The zone a `timestamp` (without time zone) is taken to be in when the
    /// target column is now `timestamptz`, and the other way round.
    pub time_zone: String,
    pub lock_timeout_ms: u64,
}

impl Default for TableRollback {
    fn default() -> Self {
        TableRollback {
            tables: Vec::new(),
            critical: false,
            time_zone: "UTC".into(),
            lock_timeout_ms: 30_000,
        }
    }
}

/// What a partial rollback did, per table.
#[derive(Debug, Clone)]
pub struct TableReport {
    pub table: String,
    pub rows: u64,
    /// One line per column whose type differs between archive and target.
    pub conversions: Vec<String>,
}

/// A foreign key pointing at a rolled-back table, to be dropped and re-added.
struct ForeignKey {
    table: String,
    name: String,
    definition: String,
    comment: Option<String>,
}

/// Replaces the rows of the selected tables with the archive's.
pub async fn rollback_tables(
    params: &ConnParams,
    source: &Source,
    req: &TableRollback,
) -> Result<Vec<TableReport>, RestoreError> {
    let entries = select(source, req)?;
    let ids: Vec<u32> = entries.iter().map(|e| e.id).collect();
    source.verify_chunks(&ids)?;
    let client = pgark_conn::connect_session(params, Purpose::Restore).await?;
    crate::load::raw_encoding(&client, source).await?;
    // This replaces rows in a live database: its own search_path, not the
    // empty one of a restore, is what its index and default expressions
    // (SQL functions with unqualified names) were written for. Every name
    // pgark writes is qualified, so nothing else depends on it.
    client
        .batch_execute("RESET search_path")
        .await
        .map_err(|e| RestoreError::server("resetting search_path", &e))?;
    let q = |what: String| move |e: tokio_postgres::Error| RestoreError::server(what.clone(), &e);
    client
        .batch_execute(&format!(
            "BEGIN; SET LOCAL lock_timeout = {}; SET LOCAL TimeZone = {}",
            req.lock_timeout_ms,
            quote_literal(&req.time_zone)
        ))
        .await
        .map_err(q("starting the rollback transaction".into()))?;
    let result = replace_all(&client, source, &entries, req).await;
    match result {
        Ok(reports) => {
            client
                .batch_execute("COMMIT")
                .await
                .map_err(q("COMMIT".into()))?;
            for r in &reports {
                // The table's statistics describe rows that are gone.
                let _ = client.batch_execute(&format!("ANALYZE {}", r.table)).await;
            }
            Ok(reports)
        }
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK").await;
            Err(e)
        }
    }
}

fn select<'a>(source: &'a Source, req: &TableRollback) -> Result<Vec<&'a TocEntry>, RestoreError> {
    let m = TableMatcher::new(&req.tables).map_err(|e| RestoreError::Options(e.to_string()))?;
    let chosen: Vec<&TocEntry> = source
        .toc()
        .iter()
        .filter(|e| e.copy.as_ref().is_some_and(|c| req.critical && c.critical))
        .chain(source.toc().iter().filter(|e| {
            e.copy.is_some()
                && !req.tables.is_empty()
                && names(source.toc(), e).any(|(s, n)| m.matches(s, n))
        }))
        .collect();
    let mut unique: Vec<&TocEntry> = Vec::new();
    for e in chosen {
        if !unique.iter().any(|u| u.id == e.id) {
            unique.push(e);
        }
    }
    if unique.is_empty() {
        let what = if req.critical {
            "critical tables".to_string()
        } else {
            req.tables.join(", ")
        };
        return Err(RestoreError::Options(format!(
            "the archive has no data for {what}"
        )));
    }
    Ok(unique)
}

/// A data entry's table, then the partitioned tables it is a partition of,
/// nearest first (from the TOC's TABLE ATTACH entries): naming a partitioned
/// table names its partitions.
fn names<'a>(toc: &'a [TocEntry], e: &'a TocEntry) -> impl Iterator<Item = (&'a str, &'a str)> {
    let table = |id: u32| toc.iter().find(|t| t.id == id && t.kind == "TABLE");
    let parent_of = move |t: &TocEntry| {
        toc.iter()
            .find(|a| {
                a.kind == "TABLE ATTACH"
                    && a.schema == t.schema
                    && a.name == t.name
                    && a.deps.contains(&t.id)
            })
            .and_then(|a| {
                a.deps
                    .iter()
                    .copied()
                    .filter(|&d| d != t.id)
                    .find_map(table)
            })
    };
    let own = e.schema.as_deref().map(|s| (s, e.name.as_str()));
    let parent = e.deps.iter().copied().find_map(table).and_then(parent_of);
    let ancestors = std::iter::successors(parent, move |t| parent_of(t))
        .take(toc.len())
        .filter_map(|t| Some((t.schema.as_deref()?, t.name.as_str())));
    own.into_iter().chain(ancestors)
}

async fn replace_all(
    client: &Client,
    source: &Source,
    entries: &[&TocEntry],
    req: &TableRollback,
) -> Result<Vec<TableReport>, RestoreError> {
    let targets: Vec<&str> = entries
        .iter()
        .map(|e| spec(e).qualified_table.as_str())
        .collect();
    let lock = format!("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE", targets.join(", "));
    client
        .batch_execute(&lock)
        .await
        .map_err(|e| RestoreError::server("locking the tables to roll back", &e))?;
    let fks = referencing_keys(client, &targets).await?;
    for fk in &fks {
        let sql = format!(
            "ALTER TABLE {} DROP CONSTRAINT {}",
            fk.table,
            quote_ident(&fk.name)
        );
        client.batch_execute(&sql).await.map_err(|e| {
            RestoreError::server(format!("dropping {} on {}", fk.name, fk.table), &e)
        })?;
    }
    let triggers = crate::triggers::disable(client, &targets).await?;
    let kept = extension_rows(client, &targets).await?;
    empty_tables(client, &targets, &kept).await?;
    let mut aside = Vec::new();
    for e in entries
        .iter()
        .filter(|e| source.chunks_of(e.id).len() >= crate::set_aside::MIN_CHUNKS)
    {
        let plan = crate::set_aside::plan(client, &spec(e).qualified_table).await?;
        let fail = |err| RestoreError::server("setting indexes aside for the load", &err);
        client.batch_execute(&plan.drop).await.map_err(fail)?;
        aside.push(plan);
    }
    let mut reports = Vec::new();
    for e in entries {
        let truncated = !kept.contains_key(&spec(e).qualified_table);
        reports.push(load_table(client, source, e, req, truncated).await?);
    }
    for plan in &aside {
        let fail = |err| RestoreError::server("building the indexes again", &err);
        client
            .batch_execute(&plan.rebuild_indexes)
            .await
            .map_err(fail)?;
    }
    for plan in &aside {
        client
            .batch_execute(&plan.readd_keys)
            .await
            .map_err(|err| {
                RestoreError::Refused(format!(
                "restored rows no longer match a table they reference ({}); nothing was changed",
                pgark_conn::describe(&err)
            ))
            })?;
    }
    for fk in &fks {
        let mut sql = format!(
            "ALTER TABLE {} ADD CONSTRAINT {} {}",
            fk.table,
            quote_ident(&fk.name),
            fk.definition
        );
        if let Some(c) = &fk.comment {
            sql.push_str(&format!(
                "; COMMENT ON CONSTRAINT {} ON {} IS {}",
                quote_ident(&fk.name),
                fk.table,
                quote_literal(c)
            ));
        }
        client.batch_execute(&sql).await.map_err(|e| {
            RestoreError::Refused(format!(
                "rows of {} no longer match the restored rows ({}: {}); nothing was changed",
                fk.table,
                fk.name,
                pgark_conn::describe(&e)
            ))
        })?;
    }
    client
        .batch_execute(&triggers)
        .await
        .map_err(|e| RestoreError::server("re-enabling triggers", &e))?;
    Ok(reports)
}

fn spec(e: &TocEntry) -> &CopySpec {
    e.copy.as_ref().expect("selected entries carry data")
}

/// Keys that point at the tables, or at a partitioned table above one of
/// them (its per-partition clones are what blocks a TRUNCATE;
/// `pg_partition_ancestors` knows nothing of plain tables); the top-level
/// key is dropped and re-added, which re-checks every row.
async fn referencing_keys(
    client: &Client,
    targets: &[&str],
) -> Result<Vec<ForeignKey>, RestoreError> {
    let rows = client
        .query(
            "SELECT c.conrelid::pg_catalog.regclass::text, c.conname, pg_catalog.pg_get_constraintdef(c.oid), \
                    pg_catalog.obj_description(c.oid, 'pg_constraint') \
             FROM pg_catalog.pg_constraint c \
             WHERE c.contype = 'f' AND c.conparentid = 0 \
               AND c.confrelid IN (SELECT pg_catalog.to_regclass(t)::oid FROM pg_catalog.unnest($1::text[]) t \
                                   UNION SELECT a.relid FROM pg_catalog.unnest($1::text[]) t, \
                                   pg_catalog.pg_partition_ancestors(pg_catalog.to_regclass(t)) a) \
             ORDER BY 1, 2",
            &[&targets],
        )
        .await
        .map_err(|e| RestoreError::server("reading the foreign keys that reference the tables", &e))?;
    Ok(rows
        .iter()
        .map(|r| ForeignKey {
            table: r.get(0),
            name: r.get(1),
            definition: r.get(2),
            comment: r.get(3),
        })
        .collect())
}

/// Extension configuration tables hold the extension's own rows beside the
/// user's; the dump took only the rows matching the extension's condition.
/// Per such table: that condition (`WHERE ...`).
async fn extension_rows(
    client: &Client,
    targets: &[&str],
) -> Result<BTreeMap<String, String>, RestoreError> {
    let rows = client
        .query(
            "SELECT t, x.extcondition[pg_catalog.array_position(x.extconfig, pg_catalog.to_regclass(t)::oid)] \
             FROM pg_catalog.unnest($1::text[]) t JOIN pg_catalog.pg_extension x \
               ON pg_catalog.to_regclass(t)::oid = ANY (x.extconfig)",
            &[&targets],
        )
        .await
        .map_err(|e| RestoreError::server("reading extension configuration tables", &e))?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let cond: Option<String> = r.get(1);
            cond.filter(|c| !c.trim().is_empty()).map(|c| (r.get(0), c))
        })
        .collect())
}

/// Empties the tables for the archive's rows: TRUNCATE, except that an
/// extension configuration table loses only the rows its dump covered.
async fn empty_tables(
    client: &Client,
    targets: &[&str],
    kept: &BTreeMap<String, String>,
) -> Result<(), RestoreError> {
    let fail = |e| RestoreError::server("emptying the tables", &e);
    for (table, condition) in kept {
        let delete = format!("DELETE FROM ONLY {table} {condition}");
        client.batch_execute(&delete).await.map_err(fail)?;
    }
    let whole: Vec<&str> = targets
        .iter()
        .copied()
        .filter(|t| !kept.contains_key(*t))
        .collect();
    if !whole.is_empty() {
        let truncate = format!("TRUNCATE ONLY {}", whole.join(", "));
        client.batch_execute(&truncate).await.map_err(fail)?;
    }
    Ok(())
}

/// Loads one table's rows; `truncated`: emptied by TRUNCATE in this
/// transaction, so COPY FREEZE may be used.
async fn load_table(
    client: &Client,
    source: &Source,
    e: &TocEntry,
    req: &TableRollback,
    truncated: bool,
) -> Result<TableReport, RestoreError> {
    let spec = spec(e);
    let target = spec.qualified_table.as_str();
    let current = target_columns(client, target).await?;
    let mut conversions = Vec::new();
    let mut select = Vec::new();
    let mut lossless = Vec::new();
    for c in &spec.columns {
        let now = current.iter().find(|(n, _)| *n == c.name).ok_or_else(|| {
            RestoreError::Refused(format!(
                "column {} of {target} is in the archive but not in the database",
                c.name
            ))
        })?;
        let col = quote_ident(&c.name);
        if now.1 == c.type_name {
            select.push(col);
            continue;
        }
        let assignable = assignable(client, &c.type_name, &now.1)
            .await
            .map_err(|reason| RestoreError::Server {
                what: format!("comparing the types of {target}.{}", c.name),
                reason,
            })?;
        let expr = convert(&col, &c.type_name, &now.1, &req.time_zone, assignable);
        conversions.push(format!(
            "{}: {} -> {} as {expr}",
            c.name, c.type_name, now.1
        ));
        // The archive's type name is never put into SQL as it stands.
        let from = canonical_type(client, &c.type_name)
            .await
            .map_err(|reason| RestoreError::Server {
                what: format!("reading the type of {target}.{}", c.name),
                reason,
            })?;
        lossless.extend(round_trip(&col, &from, &now.1));
        select.push(expr);
    }
    let unit = Unit {
        entry: e,
        chunks: source.chunks_of(e.id),
        created: true,
        whole: true,
    };
    let fail = |m: String| RestoreError::Server {
        what: format!("loading {target}"),
        reason: m,
    };
    let rows = if conversions.is_empty() {
        // No column changed type (conversions is empty).
        stream_copy(client, source, &unit, target, truncated, true)
            .await
            .map_err(fail)?
    } else {
        load_converted(client, source, &unit, spec, &select, &lossless)
            .await
            .map_err(fail)?
    };
    Ok(TableReport {
        table: target.to_string(),
        rows,
        conversions,
    })
}

/// Loads into a temporary table with the archive's column types, then
/// converts explicitly into the target.
async fn load_converted(
    client: &Client,
    source: &Source,
    unit: &Unit<'_>,
    spec: &CopySpec,
    select: &[String],
    lossless: &[(String, String)],
) -> Result<u64, String> {
    let stage = "pg_temp.pgark_stage";
    let mut cols = Vec::new();
    for c in &spec.columns {
        cols.push(format!(
            "{} {}",
            quote_ident(&c.name),
            canonical_type(client, &c.type_name).await?
        ));
    }
    let names: Vec<String> = spec.columns.iter().map(|c| quote_ident(&c.name)).collect();
    let create = format!(
        "DROP TABLE IF EXISTS {stage}; CREATE TEMP TABLE pgark_stage ({}) ON COMMIT DROP",
        cols.join(", ")
    );
    client
        .batch_execute(&create)
        .await
        .map_err(|e| pgark_conn::describe(&e))?;
    let rows = stream_copy(client, source, unit, stage, false, true).await?;
    for (col, back) in lossless {
        check_lossless(client, stage, col, back).await?;
    }
    // COPY ignores rules, INSERT does not: an ON INSERT rule (DO INSTEAD,
    // DO ALSO) would drop rows or write elsewhere. Off during the move.
    let enable_rules = disable_insert_rules(client, &spec.qualified_table).await?;
    let insert = format!(
        "INSERT INTO {} ({}) OVERRIDING SYSTEM VALUE SELECT {} FROM {stage}",
        spec.qualified_table,
        names.join(", "),
        select.join(", ")
    );
    let inserted = client
        .execute(insert.as_str(), &[])
        .await
        .map_err(|e| pgark_conn::describe(&e))?;
    if inserted != rows {
        return Err(format!(
            "only {inserted} of the archive's {rows} rows were inserted"
        ));
    }
    let finish = format!("DROP TABLE {stage}; {enable_rules}");
    client
        .batch_execute(&finish)
        .await
        .map_err(|e| pgark_conn::describe(&e))?;
    Ok(rows)
}

/// Disables the table's enabled ON INSERT rules; returns the SQL that puts
/// each back as it was.
async fn disable_insert_rules(client: &Client, table: &str) -> Result<String, String> {
    let rows = client
        .query(
            "SELECT r.rulename::text, r.ev_enabled::text FROM pg_catalog.pg_rewrite r \
             WHERE r.ev_class = pg_catalog.to_regclass($1) AND r.ev_type = '3' AND r.ev_enabled <> 'D'",
            &[&table],
        )
        .await
        .map_err(|e| pgark_conn::describe(&e))?;
    let mut restore = String::new();
    for r in &rows {
        let (name, mode): (String, String) = (r.get(0), r.get(1));
        let name = quote_ident(&name);
        let sql = format!("ALTER TABLE {table} DISABLE RULE {name}");
        client
            .batch_execute(&sql)
            .await
            .map_err(|e| pgark_conn::describe(&e))?;
        let how = crate::triggers::enable_clause(&mode);
        restore.push_str(&format!("ALTER TABLE {table} {how} RULE {name};"));
    }
    Ok(restore)
}

/// The column converted to the target's type and back to the archive's: a
/// value that does not come back the same would be changed by the rollback
/// (a narrower numeric scale or timestamp precision rounds silently).
fn round_trip(col: &str, from: &str, to: &str) -> Option<(String, String)> {
    const TS: &str = "timestamp without time zone";
    const TSTZ: &str = "timestamp with time zone";
    match (from, to) {
        // Read at the stated zone: the instant the user asked for, with no
        // precision to lose (a wall-clock time in a DST gap has no way back).
        (TS, TSTZ) | (TSTZ, TS) => None,
        _ => Some((col.to_string(), format!("(({col})::{to})::{from}"))),
    }
}

/// Refuses when a staged value would not survive the conversion. A type
/// pair without a cast back cannot be checked this way, and is not.
async fn check_lossless(client: &Client, stage: &str, col: &str, back: &str) -> Result<(), String> {
    let sql = format!("SELECT count(*) FROM {stage} WHERE {back} IS DISTINCT FROM {col}");
    client
        .batch_execute("SAVEPOINT pgark_lossless")
        .await
        .map_err(|e| pgark_conn::describe(&e))?;
    match client.query_one(sql.as_str(), &[]).await {
        Ok(row) => {
            client
                .batch_execute("RELEASE SAVEPOINT pgark_lossless")
                .await
                .map_err(|e| pgark_conn::describe(&e))?;
            let changed: i64 = row.get(0);
            if changed > 0 {
                return Err(format!(
                    "{changed} value(s) of column {col} would change to fit the column's type now (for example rounded); nothing was changed"
                ));
            }
            Ok(())
        }
        Err(_) => client
            .batch_execute("ROLLBACK TO SAVEPOINT pgark_lossless; RELEASE SAVEPOINT pgark_lossless")
            .await
            .map_err(|e| pgark_conn::describe(&e)),
    }
}

/// The archive's type name as the server spells it. The archive's text is
/// never put into SQL itself: a name that is not a type is refused.
async fn canonical_type(client: &Client, name: &str) -> Result<String, String> {
    let row = client
        .query_one(
            "SELECT pg_catalog.format_type(pg_catalog.to_regtype($1), NULL)",
            &[&name],
        )
        .await
        .map_err(|e| pgark_conn::describe(&e))?;
    row.get::<_, Option<String>>(0).ok_or_else(|| {
        format!("the archive's column type \"{name}\" is not a type in this database")
    })
}

/// The expression that turns an archive value into the target column's type.
/// `assignable`: the server converts `from` to `to` on INSERT by itself (an
/// implicit or assignment cast, or only the length changed). Then no cast is
/// written: an explicit cast to varchar(n) would cut a value silently, while
/// assignment refuses a value that does not fit.
fn convert(col: &str, from: &str, to: &str, zone: &str, assignable: bool) -> String {
    const TS: &str = "timestamp without time zone";
    const TSTZ: &str = "timestamp with time zone";
    let zone = quote_literal(zone);
    match (from, to) {
        // A wall-clock time read as a time in `zone`, and the reverse.
        (TS, TSTZ) | (TSTZ, TS) => format!("({col} AT TIME ZONE {zone})"),
        _ if assignable => col.to_string(),
        _ => format!("{col}::{to}"),
    }
}

async fn assignable(client: &Client, from: &str, to: &str) -> Result<bool, String> {
    let row = client
        .query_one(
            "SELECT pg_catalog.to_regtype($1) = pg_catalog.to_regtype($2) \
                 OR EXISTS (SELECT FROM pg_catalog.pg_cast WHERE castsource = pg_catalog.to_regtype($1) \
                            AND casttarget = pg_catalog.to_regtype($2) AND castcontext IN ('i', 'a')) \
                 OR EXISTS (SELECT FROM pg_catalog.pg_type WHERE oid = pg_catalog.to_regtype($2) AND typcategory = 'S')",
            &[&from, &to],
        )
        .await
        .map_err(|e| pgark_conn::describe(&e))?;
    Ok(row.get::<_, Option<bool>>(0).unwrap_or(false))
}

async fn target_columns(
    client: &Client,
    target: &str,
) -> Result<Vec<(String, String)>, RestoreError> {
    let what = || format!("reading the columns of {target}");
    let exists: bool = client
        .query_one("SELECT pg_catalog.to_regclass($1) IS NOT NULL", &[&target])
        .await
        .map_err(|e| RestoreError::server(what(), &e))?
        .get(0);
    if !exists {
        return Err(RestoreError::Refused(format!(
            "table {target} does not exist in the target database"
        )));
    }
    let rows = client
        .query(
            "SELECT a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod) \
             FROM pg_catalog.pg_attribute a \
             WHERE a.attrelid = pg_catalog.to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped",
            &[&target],
        )
        .await
        .map_err(|e| RestoreError::server(what(), &e))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

#[cfg(test)]
mod tests {
    use super::convert;

    #[test]
    fn timestamps_convert_through_the_stated_zone_and_others_cast() {
        let ts = "timestamp without time zone";
        let tz = "timestamp with time zone";
        assert_eq!(
            convert("\"c\"", ts, tz, "UTC", true),
            "(\"c\" AT TIME ZONE 'UTC')"
        );
        assert_eq!(
            convert("\"c\"", tz, ts, "Europe/Paris", true),
            "(\"c\" AT TIME ZONE 'Europe/Paris')"
        );
        assert_eq!(
            convert("\"c\"", "integer", "bigint", "UTC", false),
            "\"c\"::bigint"
        );
    }
}

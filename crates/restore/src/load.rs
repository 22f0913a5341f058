//! Loading table data: the chunks of a table streamed into one
//! `COPY ... FROM STDIN`, while a blocking thread reads, decompresses and
//! (for binary COPY) converts the next chunks.

use crate::binary::{self, Kind};
use crate::ddl::Run;
use crate::source::Source;
use crate::RestoreError;
use bytes::Bytes;
use futures::SinkExt;
use pgark_archive::{BlockRef, CopyColumn, TocEntry};
use std::collections::BTreeMap;
use tokio_postgres::Client;

/// Tables with more chunks than this are loaded by several jobs at once.
const SPLIT_CHUNKS: usize = 8;

/// One COPY: all or part of a table's chunks.
pub(crate) struct Unit<'a> {
    pub(crate) entry: &'a TocEntry,
    pub(crate) chunks: Vec<BlockRef>,
    /// The table was created by this restore: it is empty and has no
    /// triggers yet (those are post-data).
    pub(crate) created: bool,
    /// This unit loads all of the table: with `created`, TRUNCATE + COPY
    /// FREEZE in one transaction, so no later vacuum has to freeze the rows.
    pub(crate) whole: bool,
}

pub(crate) fn units<'a>(
    source: &Source,
    data: &[&'a TocEntry],
    run: &Run<'_>,
    jobs: usize,
) -> Vec<Unit<'a>> {
    let mut out = Vec::new();
    for e in data {
        let chunks = source.chunks_of(e.id);
        let created = e.deps.iter().any(|d| run.created_tables.contains(d));
        // A table that existed before keeps its triggers off during the load,
        // which locks it: its parts could not load in parallel anyway.
        if created && chunks.len() > SPLIT_CHUNKS && jobs > 1 {
            let per = chunks.len().div_ceil(jobs);
            out.extend(chunks.chunks(per).map(|c| Unit {
                entry: e,
                chunks: c.to_vec(),
                created,
                whole: false,
            }));
        } else {
            out.push(Unit {
                entry: e,
                chunks,
                created,
                whole: true,
            });
        }
    }
    out.sort_by_key(|u| {
        std::cmp::Reverse(u.chunks.iter().map(|c| c.stored_len as u64).sum::<u64>())
    });
    out
}

/// Archives of SQL_ASCII databases hold bytes that need not be UTF-8: such
/// COPY sessions pass bytes through unconverted (into a UTF-8 database the
/// server then refuses invalid ones, loudly, as pg_restore's would).
pub(crate) async fn raw_encoding(client: &Client, source: &Source) -> Result<(), RestoreError> {
    if source.meta().database_props.encoding != "SQL_ASCII" {
        return Ok(());
    }
    client
        .batch_execute("SET client_encoding = 'SQL_ASCII'")
        .await
        .map_err(|e| RestoreError::server("setting client_encoding", &e))
}

/// For each entry, the entries whose tables its table references by a
/// foreign key that exists in the target now.
pub(crate) async fn referenced_tables(
    client: &Client,
    data: &[&TocEntry],
) -> Result<BTreeMap<u32, Vec<u32>>, RestoreError> {
    let names: Vec<&str> = data
        .iter()
        .filter_map(|e| e.copy.as_ref())
        .map(|c| c.qualified_table.as_str())
        .collect();
    let rows = client
        .query(
            "WITH t AS (SELECT n, pg_catalog.to_regclass(n)::oid AS oid FROM pg_catalog.unnest($1::text[]) n) \
             SELECT DISTINCT child.n, parent.n FROM pg_catalog.pg_constraint c \
             JOIN t child ON child.oid = c.conrelid JOIN t parent ON parent.oid = c.confrelid \
             WHERE c.contype = 'f' AND c.conrelid <> c.confrelid",
            &[&names],
        )
        .await
        .map_err(|e| RestoreError::server("reading foreign keys between the tables", &e))?;
    let id_of = |name: &str| {
        data.iter()
            .find(|e| e.copy.as_ref().is_some_and(|c| c.qualified_table == name))
            .map(|e| e.id)
    };
    let mut parents: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for r in &rows {
        if let (Some(child), Some(parent)) = (id_of(r.get(0)), id_of(r.get(1))) {
            parents.entry(child).or_default().push(parent);
        }
    }
    Ok(parents)
}

/// Streams a unit's chunks into one COPY; returns the rows loaded.
/// `in_transaction`: the caller's transaction holds everything (the
/// single-transaction restore), so no BEGIN/COMMIT here; the tables it
/// created are new in that same transaction, so FREEZE needs no TRUNCATE.
pub(crate) async fn copy_unit(
    client: &Client,
    source: &Source,
    unit: &Unit<'_>,
    in_transaction: bool,
) -> Result<u64, String> {
    let spec = unit.entry.copy.as_ref().ok_or("not a TABLE DATA entry")?;
    let target = spec.qualified_table.as_str();
    let freeze = unit.created && unit.whole;
    let own_transaction = !in_transaction && (freeze || !unit.created);
    let exec = |sql: String| async move {
        client
            .batch_execute(&sql)
            .await
            .map_err(|e| pgark_conn::describe(&e))
    };
    if own_transaction {
        exec("BEGIN".into()).await?;
    }
    let result = async {
        if freeze && own_transaction {
            exec(format!("TRUNCATE ONLY {target}")).await?;
        }
        let enable_again = if unit.created {
            String::new()
        } else {
            crate::triggers::disable(client, &[target])
                .await
                .map_err(|e| e.to_string())?
        };
        // Only a table this restore created surely has the archive's column
        // types; in another one binary rows could be misread (an int4 into a
        // bigint column fails, a timestamp into timestamptz shifts).
        let rows = stream_copy(client, source, unit, target, freeze, unit.created).await?;
        if !enable_again.is_empty() {
            exec(enable_again).await?;
        }
        Ok(rows)
    }
    .await;
    if own_transaction {
        exec(if result.is_ok() { "COMMIT" } else { "ROLLBACK" }.into()).await?;
    }
    result
}

/// `COPY target (columns) FROM STDIN`, binary when the rows are converted.
pub(crate) fn copy_sql(
    target: &str,
    spec: &pgark_archive::CopySpec,
    freeze: bool,
    binary: bool,
) -> String {
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
    let with = match (freeze, binary) {
        (true, true) => " WITH (FREEZE, FORMAT binary)",
        (true, false) => " WITH (FREEZE)",
        (false, true) => " WITH (FORMAT binary)",
        (false, false) => "",
    };
    format!("COPY {target}{list} FROM STDIN{with}")
}

/// How the rows of a table go to the server: converted to binary (see
/// [`crate::binary`]) when every column's type allows it.
pub(crate) fn binary_plan(source: &Source, spec: &pgark_archive::CopySpec) -> Option<Vec<Kind>> {
    // SQL_ASCII text may hold any bytes: it goes through untouched, as text.
    if spec.format != "text" || source.meta().database_props.encoding == "SQL_ASCII" {
        return None;
    }
    binary::plan(&spec.columns)
}

/// Streams a unit's chunks into one COPY into `target`; returns the rows
/// loaded. `same_types`: the target's columns have the archive's types, so
/// the rows may go in binary.
pub(crate) async fn stream_copy(
    client: &Client,
    source: &Source,
    unit: &Unit<'_>,
    target: &str,
    freeze: bool,
    same_types: bool,
) -> Result<u64, String> {
    let spec = unit.entry.copy.as_ref().ok_or("not a TABLE DATA entry")?;
    let kinds = binary_plan(source, spec).filter(|_| same_types);
    let binary = kinds.is_some();
    let sql = copy_sql(target, spec, freeze, binary);
    let rows = unit.chunks.iter().map(|c| c.rows).sum();
    let mut chunks = prefetch(source, unit.chunks.clone(), spec.columns.clone(), kinds);
    let sink = client
        .copy_in::<_, Bytes>(&sql)
        .await
        .map_err(|e| pgark_conn::describe(&e))?;
    futures::pin_mut!(sink);
    let send_err = |e: tokio_postgres::Error| pgark_conn::describe(&e);
    if binary {
        sink.send(Bytes::from_static(binary::HEADER))
            .await
            .map_err(send_err)?;
    }
    let mut received = 0;
    while let Some(data) = chunks.recv().await {
        // Returning early drops the sink without finish(): the server aborts the COPY.
        sink.send(data?).await.map_err(send_err)?;
        received += 1;
    }
    if received != unit.chunks.len() {
        return Err(format!(
            "only {received} of {} chunks could be read",
            unit.chunks.len()
        ));
    }
    if binary {
        sink.send(Bytes::from_static(binary::TRAILER))
            .await
            .map_err(send_err)?;
    }
    let stored = sink.as_mut().finish().await.map_err(send_err)?;
    if stored != rows {
        return Err(format!(
            "the server stored {stored} rows, the archive holds {rows}"
        ));
    }
    Ok(rows)
}

/// A line `\.` ends COPY data early; COPY TO never writes one (it doubles
/// every backslash), so only a damaged or crafted archive has it.
pub(crate) fn has_end_marker(data: &[u8]) -> bool {
    data.starts_with(b"\\.\n") || memchr::memmem::find(data, b"\n\\.\n").is_some()
}

/// Reads, decompresses and (for binary) converts chunks on a blocking
/// thread, two ahead of the COPY.
fn prefetch(
    source: &Source,
    chunks: Vec<BlockRef>,
    columns: Vec<CopyColumn>,
    kinds: Option<Vec<Kind>>,
) -> tokio::sync::mpsc::Receiver<Result<Bytes, String>> {
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    let source = source.clone();
    tokio::task::spawn_blocking(move || {
        let mut file = match source.handle() {
            Ok(f) => f,
            Err(e) => return drop(tx.blocking_send(Err(e.to_string()))),
        };
        for at in chunks {
            let data = source
                .read(&mut file, &at)
                .and_then(|c| c.decompress().map_err(|e| source.archive_error(e)))
                .map_err(|e| e.to_string())
                .and_then(|text| {
                    if has_end_marker(&text) {
                        return Err("an archive chunk holds a COPY end-of-data line (\\.), which COPY never writes: refusing".to_string());
                    }
                    match &kinds {
                        Some(k) => binary::convert(&text, k, &columns),
                        None => Ok(text),
                    }
                });
            let failed = data.is_err();
            if tx.blocking_send(data.map(Bytes::from)).is_err() || failed {
                return;
            }
        }
    });
    rx
}

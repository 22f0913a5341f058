//! The physical limit: `COPY ... TO STDOUT` of every table, in text format,
//! over several connections, the bytes counted and thrown away. Big tables
//! are split into `ctid` page ranges the way pgark splits them, so one table
//! cannot hold the limit back to a single stream.

use crate::error::{BenchError, Result};
use futures::StreamExt;
use std::collections::VecDeque;
use std::sync::Mutex;
use tokio_postgres::{Client, NoTls};

/// Tables smaller than this many pages (64 MiB) are copied whole.
const MIN_SPLIT_PAGES: i64 = 8192;

/// Copies every ordinary table of the database; returns the COPY text bytes.
pub async fn copy_all(conninfo: &str, streams: usize) -> Result<u64> {
    let first = connect(conninfo).await?;
    let rows = first
        .query(
            "SELECT pg_catalog.format('%I.%I', n.nspname, c.relname), c.relpages::int8 \
             FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind = 'r' AND n.nspname <> 'information_schema' \
               AND n.nspname !~ '^pg_' ORDER BY c.relpages DESC",
            &[],
        )
        .await
        .map_err(|e| BenchError::pg("listing tables", &e))?;
    let tables: Vec<(String, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    drop(first);
    let queue = std::sync::Arc::new(Mutex::new(statements(&tables, streams)));
    // One thread per stream, each with its own single-threaded runtime: the
    // connection task and the reader never hand messages across threads
    // (on a shared multi-threaded runtime the same copy costs 1.7x the
    // client CPU, most of it in futex wakeups and context switches).
    let threads: Vec<_> = (0..streams.max(1))
        .map(|_| {
            let queue = queue.clone();
            let conninfo = conninfo.to_string();
            std::thread::spawn(move || -> Result<u64> {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| BenchError::io("starting a runtime", &e))?;
                rt.block_on(async {
                    let client = connect(&conninfo).await?;
                    drain(&client, &queue).await
                })
            })
        })
        .collect();
    let mut total = 0;
    for t in threads {
        total += t
            .join()
            .map_err(|_| BenchError::new("a COPY thread panicked"))??;
    }
    Ok(total)
}

async fn connect(conninfo: &str) -> Result<Client> {
    let (client, conn) = tokio_postgres::connect(conninfo, NoTls)
        .await
        .map_err(|e| BenchError::pg(format!("connecting to {conninfo}"), &e))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    // The settings pg_dump and pgark pin, so the text is the same bytes.
    client
        .batch_execute(
            "SET DateStyle = ISO; SET extra_float_digits = 3; SET synchronize_seqscans = off",
        )
        .await
        .map_err(|e| BenchError::pg("setting up a session", &e))?;
    Ok(client)
}

/// COPY statements, largest pieces first.
fn statements(tables: &[(String, i64)], streams: usize) -> VecDeque<String> {
    let total: i64 = tables.iter().map(|t| t.1.max(0)).sum();
    let piece = (total / (4 * streams.max(1) as i64)).max(MIN_SPLIT_PAGES);
    let mut out: Vec<(i64, String)> = Vec::new();
    for (name, pages) in tables {
        let pages = (*pages).max(0);
        if pages <= piece {
            out.push((pages, format!("COPY {name} TO STDOUT")));
            continue;
        }
        let mut start = 0;
        while start < pages {
            let end = start + piece;
            // The last range stays open: rows beyond relpages must not be lost.
            let range = if end >= pages {
                format!("ctid >= '({start},0)'::tid")
            } else {
                format!("ctid >= '({start},0)'::tid AND ctid < '({end},0)'::tid")
            };
            out.push((
                piece.min(pages - start),
                format!("COPY (SELECT * FROM ONLY {name} WHERE {range}) TO STDOUT"),
            ));
            start = end;
        }
    }
    out.sort_by_key(|(pages, _)| std::cmp::Reverse(*pages));
    out.into_iter().map(|(_, sql)| sql).collect()
}

async fn drain(client: &Client, queue: &Mutex<VecDeque<String>>) -> Result<u64> {
    let mut bytes = 0u64;
    loop {
        let Some(sql) = queue.lock().unwrap().pop_front() else {
            return Ok(bytes);
        };
        let stream = client
            .copy_out(sql.as_str())
            .await
            .map_err(|e| BenchError::pg(&sql, &e))?;
        futures::pin_mut!(stream);
        while let Some(data) = stream.next().await {
            bytes += data.map_err(|e| BenchError::pg(&sql, &e))?.len() as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::statements;

    #[test]
    fn big_tables_are_split_and_the_last_range_is_open() {
        let tables = vec![("a".to_string(), 100_000), ("b".to_string(), 0)];
        let list: Vec<String> = statements(&tables, 2).into();
        assert_eq!(list.len(), 9, "{list:?}");
        assert!(list[0].contains("ctid >= '(0,0)'::tid AND ctid < '(12500,0)'::tid"));
        assert!(list
            .iter()
            .any(|s| s.ends_with("WHERE ctid >= '(87500,0)'::tid) TO STDOUT")));
        assert_eq!(list[8], "COPY b TO STDOUT");
    }
}

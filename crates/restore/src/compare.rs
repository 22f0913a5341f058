//! Compares a restored database with the archive: per table, the row count
//! and the order-independent row digest recorded at dump time.

use crate::source::Source;
use crate::RestoreError;
use futures::StreamExt;
use pgark_archive::RowDigest;
use pgark_conn::{ConnParams, Purpose};

/// One table's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCheck {
    pub table: String,
    pub archive_rows: u64,
    pub database_rows: u64,
    /// The rows' digest matches the archive's (false when the archive has none).
    pub digest_matches: bool,
}

impl TableCheck {
    pub fn ok(&self) -> bool {
        self.archive_rows == self.database_rows && self.digest_matches
    }
}

/// Reads every table of the archive back from `params`' database.
pub async fn compare(
    params: &ConnParams,
    source: &Source,
) -> Result<Vec<TableCheck>, RestoreError> {
    let client = pgark_conn::connect_session(params, Purpose::Dump).await?;
    crate::load::raw_encoding(&client, source).await?;
    let mut checks = Vec::new();
    let specs: std::collections::BTreeMap<u32, &pgark_archive::CopySpec> = source
        .toc()
        .iter()
        .filter_map(|e| Some((e.id, e.copy.as_ref()?)))
        .collect();
    for stats in &source.trailer().tables {
        let Some(spec) = specs.get(&stats.entry_id) else {
            continue;
        };
        let cols: Vec<String> = spec
            .columns
            .iter()
            .map(|c| pgark_catalog::quote_ident(&c.name))
            .collect();
        let sql = if cols.is_empty() {
            format!("COPY {} TO STDOUT", spec.qualified_table)
        } else {
            format!(
                "COPY {} ({}) TO STDOUT",
                spec.qualified_table,
                cols.join(", ")
            )
        };
        let what = || format!("reading {}", spec.qualified_table);
        let stream = client
            .copy_out(sql.as_str())
            .await
            .map_err(|e| RestoreError::server(what(), &e))?;
        futures::pin_mut!(stream);
        let (mut digest, mut rows, mut partial) = (RowDigest::default(), 0u64, Vec::new());
        while let Some(msg) = stream.next().await {
            partial.extend_from_slice(&msg.map_err(|e| RestoreError::server(what(), &e))?);
            if let Some(end) = memchr_last(&partial) {
                rows += digest.add_rows(&partial[..=end]);
                partial.drain(..=end);
            }
        }
        let expected = archive_digest(source, stats.entry_id, stats.row_digest.as_deref()).await?;
        checks.push(TableCheck {
            table: spec.qualified_table.clone(),
            archive_rows: stats.rows,
            database_rows: rows,
            digest_matches: expected == digest.hex(),
        });
    }
    Ok(checks)
}

/// The digest recorded at dump time, or else computed from the table's
/// chunks (pgark does not spend dump time on it).
async fn archive_digest(
    source: &Source,
    entry_id: u32,
    recorded: Option<&str>,
) -> Result<String, RestoreError> {
    if let Some(d) = recorded {
        return Ok(d.to_string());
    }
    let source = source.clone();
    let task = tokio::task::spawn_blocking(move || {
        let mut file = source.handle()?;
        let mut digest = RowDigest::default();
        for at in source.chunks_of(entry_id) {
            let data = source
                .read(&mut file, &at)?
                .decompress()
                .map_err(|e| source.archive_error(e))?;
            digest.add_rows(&data);
        }
        Ok(digest.hex())
    });
    match task.await {
        Ok(result) => result,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

fn memchr_last(data: &[u8]) -> Option<usize> {
    data.iter().rposition(|b| *b == b'\n')
}

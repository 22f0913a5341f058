//! Which rows to read, in which order, in how many pieces.

use crate::{DumpOptions, ExportError};
use pgark_catalog::{Catalog, TableInfo, TableMatcher};

/// Bytes per heap page; `relpages` counts these.
const PAGE_BYTES: u64 = 8192;

/// One table's rows to dump, as a TABLE DATA entry of the archive.
pub(crate) struct DataEntry {
    pub(crate) entry_id: u32,
    pub(crate) table: TableInfo,
    pub(crate) critical: bool,
}

/// One COPY: a whole table or a range of its pages.
#[derive(Debug, Clone)]
pub(crate) struct Unit {
    /// Index into [`Plan::entries`].
    pub(crate) entry: usize,
    /// Page range `[start, end)`; `None` = the whole table, `end: None` = to the end.
    pub(crate) pages: Option<(u64, Option<u64>)>,
}

pub(crate) struct Plan {
    pub(crate) entries: Vec<DataEntry>,
    /// Units of the critical tables: dumped first, and finished before anything
    /// else starts, so their chunks are contiguous at the front of the archive.
    pub(crate) critical_units: Vec<Unit>,
    /// The other units, largest first.
    pub(crate) units: Vec<Unit>,
}

/// The table is named by the pattern, itself or through a partitioned
/// table it is a partition of.
fn named(m: &TableMatcher, t: &pgark_catalog::TableInfo) -> bool {
    m.matches(&t.schema, &t.name) || t.partition_of.iter().any(|(s, n)| m.matches(s, n))
}

impl Plan {
    pub(crate) fn new(catalog: &Catalog, opts: &DumpOptions) -> Result<Plan, ExportError> {
        let critical = TableMatcher::new(&opts.critical)?;
        let excluded = TableMatcher::new(&opts.exclude_table_data)?;
        for pattern in &opts.critical {
            let one = TableMatcher::new(std::slice::from_ref(pattern))?;
            if !catalog.tables.iter().any(|t| named(&one, t)) {
                return Err(ExportError::Options(format!(
                    "--critical: no table matches \"{pattern}\""
                )));
            }
        }
        // Like pg_dump: include patterns that together match nothing are an error,
        // not an empty backup.
        let nothing = !catalog
            .objects
            .iter()
            .any(|o| o.schema.is_some() || o.kind == "SCHEMA");
        if nothing && !opts.catalog.tables.is_empty() {
            return Err(ExportError::Options(format!(
                "-t: no table matches {}",
                opts.catalog.tables.join(", ")
            )));
        }
        if nothing && !opts.catalog.schemas.is_empty() {
            return Err(ExportError::Options(format!(
                "-n: no schema matches {}",
                opts.catalog.schemas.join(", ")
            )));
        }
        let first_id = catalog.objects.len() as u32;
        let mut entries: Vec<DataEntry> = if opts.schema_only {
            Vec::new()
        } else {
            catalog
                .tables
                .iter()
                .filter(|t| !excluded.matches(&t.schema, &t.name))
                .map(|t| DataEntry {
                    entry_id: 0,
                    table: t.clone(),
                    critical: named(&critical, t),
                })
                .collect()
        };
        // Critical tables first, then largest first: the order of the TOC too.
        entries.sort_by_key(|e| (!e.critical, std::cmp::Reverse(e.table.size_bytes)));
        for (i, e) in entries.iter_mut().enumerate() {
            e.entry_id = first_id + i as u32;
        }
        let split = opts.split_bytes.max(PAGE_BYTES) / PAGE_BYTES;
        let can_split = catalog.server_version_num >= 140000;
        let (mut critical_units, mut units) = (Vec::new(), Vec::new());
        for (i, e) in entries.iter().enumerate() {
            let pieces = if can_split && e.table.copy_filter.is_none() {
                split_pages(e.table.relpages.max(0) as u64, split)
            } else {
                vec![None]
            };
            let list = if e.critical {
                &mut critical_units
            } else {
                &mut units
            };
            list.extend(pieces.into_iter().map(|pages| Unit { entry: i, pages }));
        }
        // Entries are sorted largest first, and a split table's ranges stay
        // together, so the biggest work starts first.
        Ok(Plan {
            entries,
            critical_units,
            units,
        })
    }

    pub(crate) fn critical_names(&self) -> Vec<String> {
        self.entries
            .iter()
            .filter(|e| e.critical)
            .map(|e| e.table.qualified.clone())
            .collect()
    }

    pub(crate) fn estimated_bytes(&self) -> u64 {
        self.entries
            .iter()
            .map(|e| e.table.size_bytes.max(0) as u64)
            .sum()
    }
}

/// Splits `relpages` pages into ranges of about `per_piece` pages. The last
/// range is open-ended, so rows in pages added since `relpages` was last
/// updated are not lost.
fn split_pages(relpages: u64, per_piece: u64) -> Vec<Option<(u64, Option<u64>)>> {
    if relpages <= per_piece {
        return vec![None];
    }
    let pieces = relpages.div_ceil(per_piece);
    let step = relpages.div_ceil(pieces);
    (0..pieces)
        .map(|i| {
            let start = i * step;
            let end = if i + 1 == pieces {
                None
            } else {
                Some(start + step)
            };
            Some((start, end))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_tables_are_not_split() {
        assert_eq!(split_pages(0, 100), vec![None]);
        assert_eq!(split_pages(100, 100), vec![None]);
    }

    #[test]
    fn ranges_cover_every_page_and_the_last_is_open() {
        let r = split_pages(1001, 100);
        assert_eq!(r.len(), 11);
        assert_eq!(r[0], Some((0, Some(91))));
        let mut next = 0;
        for piece in &r {
            let (start, end) = piece.unwrap();
            assert_eq!(start, next);
            next = end.unwrap_or(u64::MAX);
        }
        assert_eq!(r.last().unwrap().unwrap().1, None);
    }
}

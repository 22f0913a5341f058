//! Which TOC entries a restore runs, and in which sections.

use crate::source::Source;
use crate::{RestoreError, RestoreOptions};
use pgark_archive::{Section, TocEntry};
use pgark_catalog::TableMatcher;
use std::collections::BTreeSet;

pub(crate) struct Selection {
    /// Selected entries in TOC order.
    pub(crate) entries: Vec<TocEntry>,
}

impl Selection {
    pub(crate) fn new(source: &Source, opts: &RestoreOptions) -> Result<Selection, RestoreError> {
        let bad = |e: pgark_catalog::CatalogError| RestoreError::Options(e.to_string());
        let tables = TableMatcher::new(&opts.tables).map_err(bad)?;
        let schemas = TableMatcher::new(
            &opts
                .schemas
                .iter()
                .map(|s| format!("{s}.*"))
                .collect::<Vec<_>>(),
        )
        .map_err(bad)?;
        let toc = source.toc();
        let mut chosen: BTreeSet<u32> = BTreeSet::new();
        for e in toc {
            let in_schema = opts.schemas.is_empty()
                || e.schema
                    .as_deref()
                    .is_some_and(|s| schemas.matches(s, &e.name));
            let is_table = matches!(e.kind.as_str(), "TABLE" | "TABLE DATA");
            let table_ok = opts.tables.is_empty()
                || (is_table
                    && e.schema
                        .as_deref()
                        .is_some_and(|s| tables.matches(s, &e.name)));
            if in_schema && table_ok && section_ok(e, opts) {
                chosen.insert(e.id);
            }
        }
        if !opts.tables.is_empty() {
            add_dependents(toc, &mut chosen, opts);
            if !toc
                .iter()
                .any(|e| chosen.contains(&e.id) && e.kind.starts_with("TABLE"))
            {
                return Err(RestoreError::Options(format!(
                    "no table in the archive matches {}",
                    opts.tables.join(", ")
                )));
            }
        }
        let entries = toc
            .iter()
            .filter(|e| chosen.contains(&e.id))
            .cloned()
            .collect();
        Ok(Selection { entries })
    }

    pub(crate) fn data_entries(&self) -> Vec<u32> {
        self.entries
            .iter()
            .filter(|e| e.copy.is_some())
            .map(|e| e.id)
            .collect()
    }

    pub(crate) fn section(&self, section: Section) -> impl Iterator<Item = &TocEntry> {
        self.entries.iter().filter(move |e| e.section == section)
    }
}

fn section_ok(e: &TocEntry, opts: &RestoreOptions) -> bool {
    let data = e.section == Section::Data;
    if opts.data_only {
        return data;
    }
    if opts.schema_only && data {
        return false;
    }
    !(opts.no_privileges && matches!(e.kind.as_str(), "ACL" | "DEFAULT ACL"))
}

/// With `-t`, what hangs only on the chosen tables comes along: their indexes,
/// constraints, triggers, comments. Anything that also needs an unchosen
/// object (a foreign key to another table) stays out.
fn add_dependents(toc: &[TocEntry], chosen: &mut BTreeSet<u32>, opts: &RestoreOptions) {
    loop {
        let more: Vec<u32> = toc
            .iter()
            .filter(|e| !chosen.contains(&e.id) && !e.deps.is_empty() && section_ok(e, opts))
            .filter(|e| e.kind != "TABLE DATA" && e.deps.iter().all(|d| chosen.contains(d)))
            .map(|e| e.id)
            .collect();
        if more.is_empty() {
            return;
        }
        chosen.extend(more);
    }
}

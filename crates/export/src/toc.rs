//! The archive's table of contents: the catalog's objects, then one
//! "TABLE DATA" entry per dumped table.

use crate::plan::Plan;
use crate::DumpOptions;
use pgark_archive::{CopyColumn, CopySpec, Section, TocEntry};
use pgark_catalog::{Catalog, DdlObject};

pub(crate) fn build(catalog: &Catalog, plan: &Plan, opts: &DumpOptions) -> Vec<TocEntry> {
    let mut toc: Vec<TocEntry> = catalog
        .objects
        .iter()
        .filter(|o| keep(o, opts))
        .map(object_entry)
        .collect();
    toc.extend(plan.entries.iter().map(|e| {
        let t = &e.table;
        TocEntry {
            id: e.entry_id,
            kind: "TABLE DATA".into(),
            schema: Some(t.schema.clone()),
            name: t.name.clone(),
            owner: catalog
                .objects
                .get(t.object_id as usize)
                .and_then(|o| o.owner.clone()),
            section: Section::Data,
            create_sql: String::new(),
            owner_sql: None,
            drop_sql: String::new(),
            deps: vec![t.object_id],
            copy: Some(CopySpec {
                qualified_table: t.qualified.clone(),
                columns: t
                    .columns
                    .iter()
                    .map(|c| CopyColumn {
                        name: c.name.clone(),
                        type_name: c.type_name.clone(),
                        base_type: c.base_type.clone(),
                    })
                    .collect(),
                format: "text".into(),
                critical: e.critical,
            }),
        }
    }));
    toc
}

/// `--data-only` keeps only what sets data (sequence values); `--schema-only`
/// keeps everything but data.
fn keep(o: &DdlObject, opts: &DumpOptions) -> bool {
    let data = o.section == pgark_catalog::Section::Data;
    if opts.data_only {
        data
    } else {
        !(opts.schema_only && data)
    }
}

fn object_entry(o: &DdlObject) -> TocEntry {
    TocEntry {
        id: o.id,
        kind: o.kind.clone(),
        schema: o.schema.clone(),
        name: o.name.clone(),
        owner: o.owner.clone(),
        section: match o.section {
            pgark_catalog::Section::PreData => Section::PreData,
            pgark_catalog::Section::Data => Section::Data,
            pgark_catalog::Section::PostData => Section::PostData,
        },
        create_sql: o.create_sql.clone(),
        owner_sql: o.owner_sql.clone(),
        drop_sql: o.drop_sql.clone(),
        deps: o.deps.clone(),
        copy: None,
    }
}

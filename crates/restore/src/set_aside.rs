//! For a big table in a partial rollback: its indexes and its own foreign
//! keys are dropped after the TRUNCATE and built again after the load. One
//! sort per index and one join per key cost far less than maintaining them
//! row by row during COPY. Only what comes back exactly as it was is set
//! aside: an index that is a replica identity, clustered, commented, has a
//! statistics target, belongs to a partitioned index, or whose name differs
//! from its constraint's stays in place.

use crate::RestoreError;
use pgark_catalog::quote_ident;
use tokio_postgres::Client;

/// Tables with fewer chunks than this load quickly either way.
pub(crate) const MIN_CHUNKS: usize = 4;

/// The SQL that drops what was set aside, and the SQL that builds it again.
#[derive(Default)]
pub(crate) struct SetAside {
    pub(crate) drop: String,
    pub(crate) rebuild_indexes: String,
    pub(crate) readd_keys: String,
}

/// Runs after the referencing keys were dropped, so none of those remain.
pub(crate) async fn plan(client: &Client, table: &str) -> Result<SetAside, RestoreError> {
    let fail = |e: tokio_postgres::Error| {
        RestoreError::server(format!("reading the indexes of {table}"), &e)
    };
    let plain: bool = client
        .query_one(
            "SELECT c.relkind = 'r' AND NOT c.relispartition FROM pg_catalog.pg_class c WHERE c.oid = pg_catalog.to_regclass($1)",
            &[&table],
        )
        .await
        .map_err(fail)?
        .get(0);
    let mut out = SetAside::default();
    if !plain {
        return Ok(out);
    }
    let rows = client
        .query(
            "SELECT i.indexrelid::pg_catalog.regclass::text, pg_catalog.pg_get_indexdef(i.indexrelid), \
                    c.conname::text, pg_catalog.pg_get_constraintdef(c.oid), \
                    (i.indisreplident OR i.indisclustered OR NOT i.indisvalid \
                     OR pg_catalog.obj_description(i.indexrelid, 'pg_class') IS NOT NULL \
                     OR (c.oid IS NOT NULL AND (c.conname <> ic.relname \
                         OR pg_catalog.obj_description(c.oid, 'pg_constraint') IS NOT NULL \
                         OR (c.contype = 'p' AND pg_catalog.current_setting('server_version_num')::int >= 180000))) \
                     OR EXISTS (SELECT FROM pg_catalog.pg_inherits h WHERE h.inhrelid = i.indexrelid) \
                     OR EXISTS (SELECT FROM pg_catalog.pg_constraint f WHERE f.contype = 'f' AND f.conindid = i.indexrelid) \
                     OR EXISTS (SELECT FROM pg_catalog.pg_attribute a WHERE a.attrelid = i.indexrelid AND a.attstattarget > 0)) \
             FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid \
             LEFT JOIN pg_catalog.pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid \
                  AND c.contype IN ('p', 'u', 'x') \
             WHERE i.indrelid = pg_catalog.to_regclass($1)",
            &[&table],
        )
        .await
        .map_err(fail)?;
    for r in &rows {
        let (index, def, constraint, condef, keep): (
            String,
            String,
            Option<String>,
            Option<String>,
            bool,
        ) = (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
        if keep {
            continue;
        }
        match (constraint, condef) {
            (Some(name), Some(condef)) => {
                let name = quote_ident(&name);
                out.drop
                    .push_str(&format!("ALTER TABLE {table} DROP CONSTRAINT {name};\n"));
                out.rebuild_indexes.push_str(&format!(
                    "ALTER TABLE {table} ADD CONSTRAINT {name} {condef};\n"
                ));
            }
            _ => {
                out.drop.push_str(&format!("DROP INDEX {index};\n"));
                out.rebuild_indexes.push_str(&format!("{def};\n"));
            }
        }
    }
    let keys = client
        .query(
            "SELECT c.conname::text, pg_catalog.pg_get_constraintdef(c.oid) FROM pg_catalog.pg_constraint c \
             WHERE c.contype = 'f' AND c.conrelid = pg_catalog.to_regclass($1) AND c.conparentid = 0 \
               AND pg_catalog.obj_description(c.oid, 'pg_constraint') IS NULL",
            &[&table],
        )
        .await
        .map_err(fail)?;
    for k in &keys {
        let (name, def): (String, String) = (k.get(0), k.get(1));
        let name = quote_ident(&name);
        // Keys go first: a key may rest on one of the indexes dropped below.
        out.drop
            .insert_str(0, &format!("ALTER TABLE {table} DROP CONSTRAINT {name};\n"));
        out.readd_keys.push_str(&format!(
            "ALTER TABLE {table} ADD CONSTRAINT {name} {def};\n"
        ));
    }
    Ok(out)
}

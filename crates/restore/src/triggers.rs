//! User triggers off while rows are loaded into a table that already has
//! them (a BEFORE INSERT trigger would change restored rows, an audit
//! trigger would log rows that were never inserted), then back as they were.
//! Internal triggers (foreign keys) stay on; a partition's clone of its
//! parent's trigger counts as a user trigger (up to PostgreSQL 14 it is
//! marked internal).

use crate::RestoreError;
use pgark_catalog::quote_ident;
use tokio_postgres::Client;

/// Disables the tables' enabled user triggers (a BEFORE INSERT trigger would
/// change restored rows); returns the SQL that puts each back as it was.
pub(crate) async fn disable(client: &Client, targets: &[&str]) -> Result<String, RestoreError> {
    let rows = client
        .query(
            "SELECT t.tgrelid::pg_catalog.regclass::text, t.tgname, t.tgenabled::text \
             FROM pg_catalog.pg_trigger t \
             WHERE (NOT t.tgisinternal OR (t.tgparentid <> 0 AND t.tgconstraint = 0)) AND t.tgenabled <> 'D' \
               AND t.tgrelid = ANY (SELECT pg_catalog.to_regclass(x)::oid FROM pg_catalog.unnest($1::text[]) x)",
            &[&targets],
        )
        .await
        .map_err(|e| RestoreError::server("reading the tables' triggers", &e))?;
    let mut restore = String::new();
    for r in &rows {
        let (table, name, mode): (String, String, String) = (r.get(0), r.get(1), r.get(2));
        let name = quote_ident(&name);
        let sql = format!("ALTER TABLE {table} DISABLE TRIGGER {name}");
        client
            .batch_execute(&sql)
            .await
            .map_err(|e| RestoreError::server(format!("disabling trigger {name}"), &e))?;
        let how = enable_clause(&mode);
        restore.push_str(&format!("ALTER TABLE {table} {how} TRIGGER {name};\n"));
    }
    Ok(restore)
}

/// How to switch a trigger or rule back on as it was, from its
/// `tgenabled` / `ev_enabled` letter.
pub(crate) fn enable_clause(mode: &str) -> &'static str {
    match mode {
        "R" => "ENABLE REPLICA",
        "A" => "ENABLE ALWAYS",
        _ => "ENABLE",
    }
}

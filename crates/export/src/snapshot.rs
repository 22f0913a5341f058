//! The leader: one REPEATABLE READ, READ ONLY transaction whose snapshot every
//! worker imports, and which holds ACCESS SHARE locks on the dumped tables
//! until the dump ends, so concurrent DDL cannot change them mid-dump.

use crate::plan::Plan;
use crate::{DumpOptions, ExportError};
use pgark_archive::{ArchiveMeta, DatabaseProps, Unsupported};
use pgark_catalog::{Catalog, TableInfo};
use pgark_conn::{ConnParams, Purpose};
use tokio_postgres::Client;

pub(crate) struct Leader {
    client: Client,
    pub(crate) snapshot: String,
    pub(crate) catalog: Catalog,
    pub(crate) server_version_num: u32,
    server_version: String,
    started_at: chrono::DateTime<chrono::Utc>,
}

impl Leader {
    pub(crate) async fn begin(
        params: &ConnParams,
        opts: &DumpOptions,
    ) -> Result<Self, ExportError> {
        let started_at = chrono::Utc::now();
        let client = pgark_conn::connect_session(params, Purpose::Dump).await?;
        let row = client
            .query_one(
                "SELECT current_setting('server_version'), current_setting('server_version_num')::int",
                &[],
            )
            .await
            .map_err(|e| ExportError::server("reading the server version", &e))?;
        let server_version: String = row.get(0);
        let server_version_num = row.get::<_, i32>(1) as u32;
        if server_version_num < 140000 {
            return Err(ExportError::Options(format!(
                "server version {server_version} is not supported (pgark needs PostgreSQL 14 or later)"
            )));
        }
        client
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await
            .map_err(|e| ExportError::server("starting the snapshot transaction", &e))?;
        let snapshot: String = client
            .query_one("SELECT pg_catalog.pg_export_snapshot()", &[])
            .await
            .map_err(|e| ExportError::server("exporting the snapshot", &e))?
            .get(0);
        // Reading the catalog locks some objects too (views, sequences): a
        // session holding an exclusive lock must not make the dump hang.
        let ms = opts.lock_timeout.as_millis();
        client
            .batch_execute(&format!("SET LOCAL lock_timeout = {ms}"))
            .await
            .map_err(|e| ExportError::server("setting lock_timeout", &e))?;
        let catalog = match pgark_catalog::read_catalog(&client, &opts.catalog).await {
            Err(pgark_catalog::CatalogError::Query { source, .. })
                if source.code().map(|c| c.code()) == Some("55P03") =>
            {
                return Err(lock_error(opts, &source, &client).await);
            }
            other => other?,
        };
        let leader = Leader {
            client,
            snapshot,
            catalog,
            server_version_num,
            server_version,
            started_at,
        };
        leader.check_select(params).await?;
        leader.lock_tables(opts).await?;
        leader.check_not_rewritten().await?;
        Ok(leader)
    }

    /// Names every table the role cannot read, before any work is done.
    async fn check_select(&self, params: &ConnParams) -> Result<(), ExportError> {
        let oids: Vec<u32> = self.catalog.tables.iter().map(|t| t.oid).collect();
        let rows = self
            .client
            .query(
                "SELECT o FROM unnest($1::oid[]) AS o WHERE NOT pg_catalog.has_table_privilege(o, 'SELECT')",
                &[&oids],
            )
            .await
            .map_err(|e| ExportError::server("checking table privileges", &e))?;
        if rows.is_empty() {
            return Ok(());
        }
        let denied: Vec<u32> = rows.iter().map(|r| r.get(0)).collect();
        let names: Vec<&str> = self
            .catalog
            .tables
            .iter()
            .filter(|t| denied.contains(&t.oid))
            .map(|t| t.qualified.as_str())
            .collect();
        Err(ExportError::NoSelect {
            role: params.user.clone(),
            tables: names.join(", "),
        })
    }

    /// TRUNCATE and table rewrites are not MVCC-safe: one committed between
    /// the snapshot and the locks would make the dump read an empty or new
    /// relation as if it were the snapshot's. The snapshot's pg_class still
    /// has the old file number; the relation cache has the current one.
    async fn check_not_rewritten(&self) -> Result<(), ExportError> {
        let oids: Vec<u32> = self.catalog.tables.iter().map(|t| t.oid).collect();
        let rows = self
            .client
            .query(
                "SELECT c.oid::pg_catalog.regclass::text FROM pg_catalog.pg_class c \
                 WHERE c.oid = ANY($1) AND c.relfilenode <> 0 \
                   AND c.relfilenode IS DISTINCT FROM pg_catalog.pg_relation_filenode(c.oid)",
                &[&oids],
            )
            .await
            .map_err(|e| {
                ExportError::server("checking for tables rewritten during the dump", &e)
            })?;
        if rows.is_empty() {
            return Ok(());
        }
        let names: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        Err(ExportError::Server {
            what: "taking a consistent snapshot".into(),
            reason: format!(
                "{} truncated or rewritten by another session after the snapshot was taken; run the dump again",
                names.join(", ")
            ),
        })
    }

    /// Runs under the lock_timeout set in `begin`.
    async fn lock_tables(&self, opts: &DumpOptions) -> Result<(), ExportError> {
        // One statement per batch of tables keeps round trips low without
        // building one huge statement for databases with many tables.
        for batch in self.catalog.tables.chunks(500) {
            let names: Vec<&str> = batch
                .iter()
                .map(|t: &TableInfo| t.qualified.as_str())
                .collect();
            let sql = format!("LOCK TABLE {} IN ACCESS SHARE MODE", names.join(", "));
            if let Err(e) = self.client.batch_execute(&sql).await {
                return Err(lock_error(opts, &e, &self.client).await);
            }
        }
        self.client
            .batch_execute("SET LOCAL lock_timeout = 0")
            .await
            .map_err(|e| ExportError::server("resetting lock_timeout", &e))
    }

    pub(crate) fn meta(&self, params: &ConnParams, opts: &DumpOptions, plan: &Plan) -> ArchiveMeta {
        let db = &self.catalog.database;
        ArchiveMeta {
            tool: "pgark".into(),
            tool_version: env!("CARGO_PKG_VERSION").into(),
            server_version: self.server_version.clone(),
            server_version_num: self.server_version_num,
            database: db.name.clone(),
            host: params.host.clone(),
            port: params.port,
            user: params.user.clone(),
            snapshot: Some(self.snapshot.clone()),
            started_at: self.started_at,
            label: opts.label.clone(),
            options: opts.recorded_options.clone(),
            database_props: DatabaseProps {
                encoding: db.encoding.clone(),
                collate: db.collate.clone(),
                ctype: db.ctype.clone(),
                locale_provider: db.locale_provider.clone(),
                icu_locale: db.icu_locale.clone(),
                owner: db.owner.clone(),
                size_bytes: db.size_bytes.max(0) as u64,
            },
            unsupported: self
                .catalog
                .warnings
                .iter()
                .map(|w| Unsupported {
                    kind: w.kind.clone(),
                    name: w.name.clone(),
                    reason: w.reason.clone(),
                })
                .collect(),
            critical_tables: plan.critical_names(),
            partial: is_partial(opts),
        }
    }

    pub(crate) async fn commit(self) -> Result<(), ExportError> {
        self.client
            .batch_execute("COMMIT")
            .await
            .map_err(|e| ExportError::server("ending the snapshot transaction", &e))
    }
}

async fn lock_error(opts: &DumpOptions, e: &tokio_postgres::Error, client: &Client) -> ExportError {
    let reason = pgark_conn::describe(e);
    match e.code().map(|c| c.code()) {
        Some("55P03") => ExportError::LockTimeout {
            seconds: opts.lock_timeout.as_secs(),
            reason: lock_holders(client).await.unwrap_or(reason),
        },
        Some("53200") => ExportError::Server {
            what: "locking the tables to dump".into(),
            reason: format!("{reason}; raise max_locks_per_transaction on the server or dump fewer tables at once"),
        },
        _ => ExportError::server("locking the tables to dump", e),
    }
}

/// Which tables other sessions hold exclusive locks on, and who holds them,
/// so the error can say what the dump waited for.
async fn lock_holders(client: &Client) -> Option<String> {
    // The failed statement aborted the transaction: end it to ask again.
    client.batch_execute("ROLLBACK").await.ok()?;
    let rows = client
        .query(
            "SELECT pg_catalog.format('%I.%I', n.nspname, c.relname), l.pid, l.mode \
             FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_class c ON c.oid = l.relation \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE l.granted AND l.mode IN ('AccessExclusiveLock', 'ExclusiveLock') \
               AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database()) \
               AND l.pid <> pg_catalog.pg_backend_pid() ORDER BY 1 LIMIT 5",
            &[],
        )
        .await
        .ok()?;
    let held: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "table {} is locked by session {} ({})",
                r.get::<_, String>(0),
                r.get::<_, i32>(1),
                r.get::<_, String>(2)
            )
        })
        .collect();
    (!held.is_empty()).then(|| held.join("; "))
}

fn is_partial(opts: &DumpOptions) -> bool {
    let c = &opts.catalog;
    opts.schema_only
        || opts.data_only
        || !opts.exclude_table_data.is_empty()
        || !c.tables.is_empty()
        || !c.exclude_tables.is_empty()
        || !c.schemas.is_empty()
        || !c.exclude_schemas.is_empty()
}

//! pgark-catalog: reads `pg_catalog` of one database into a list of DDL objects,
//! each with the SQL that recreates it, ordered so that executing them in order
//! (pre-data, data, post-data) on an empty database never fails on order.
//!
//! How it works: every reader adds objects and "claims" the catalog keys
//! (classid, objid) they stand for — a table claims its row type and inline
//! CHECK constraints, a view its `_RETURN` rule, a primary key its index, an
//! extension all its members. `pg_depend` rows between claimed keys become
//! dependencies between objects; a topological sort with pg_dump's kind
//! priorities as tie-break gives the order; a loop is an error naming it.
//!
//! The server's own deparsers (`pg_get_indexdef`, `pg_get_constraintdef`,
//! `pg_get_functiondef`, ...) are used wherever they exist; they are called
//! with an empty `search_path`, so everything they print is schema-qualified.
//!
//! Choices worth knowing:
//! - Roles and tablespaces are cluster-level and never created. Every role
//!   named as owner, grantee, grantor or policy role is listed in
//!   [`Catalog::roles`]: the restorer checks (or creates) them first.
//!   Objects in a non-default tablespace get a "TABLESPACE" warning.
//! - Kinds not dumped are [`Warning`]s (large objects with their count,
//!   security labels, foreign data wrappers/servers/tables, base types,
//!   operator classes/families, ...), never silent omissions.
//! - An inheritance child whose parent gained columns after it was created
//!   keeps its physical column order, which pg_dump loses: the parent is
//!   created with its first columns, the child inherits, then "TABLE COLUMNS"
//!   objects add the parent's later columns (appending them to the child), so
//!   which columns are local is kept too. Shapes this replay does not cover
//!   (multiple inheritance, grandchildren) keep the order by creating all
//!   columns then `ALTER TABLE ... INHERIT`; those columns then count as local.
//! - Loops are broken like pg_dump does: a CHECK or DEFAULT calling a
//!   function that needs its own table (or a domain CHECK calling a function
//!   of the domain) is added after the table (domain); a view calling a
//!   function that needs the view is first created as a placeholder with the
//!   same columns, then replaced ("RULE" `_RETURN`). Other loops are an error
//!   naming the objects.
//! - "public" is restored relative to the PostgreSQL 15+ template (owner
//!   pg_database_owner, USAGE for PUBLIC), like pg_dump, whatever the source.
//! - An extension's configuration table is listed in [`Catalog::tables`]
//!   with `object_id` pointing at its "EXTENSION" object.
mod acl;
mod error;
mod filter;
mod graph;
mod ident;
mod read;

pub use error::CatalogError;
pub use filter::TableMatcher;
pub use ident::{quote_ident, quote_literal};

/// What to read. Patterns follow psql's rules: `*` and `?` are wildcards,
/// unquoted letters are folded to lower case, `"quoted"` parts match exactly.
#[derive(Debug, Default, Clone)]
pub struct CatalogOptions {
    pub schemas: Vec<String>,
    pub exclude_schemas: Vec<String>,
    /// `[schema.]table` patterns: only these tables (and views, sequences)
    /// with what belongs to them, like `pg_dump -t`.
    pub tables: Vec<String>,
    pub exclude_tables: Vec<String>,
    pub no_owner: bool,
    pub no_privileges: bool,
}

/// Where an object goes in a restore.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Section {
    PreData,
    Data,
    PostData,
}

#[derive(Debug, Clone)]
pub struct Catalog {
    pub server_version_num: u32,
    pub database: DatabaseInfo,
    /// In a valid restore order: all pre-data, then data, then post-data.
    pub objects: Vec<DdlObject>,
    /// Tables whose rows are to be dumped.
    pub tables: Vec<TableInfo>,
    /// Objects seen but not dumped: never a silent omission.
    pub warnings: Vec<Warning>,
    /// Roles named as owners or grantees by the dumped objects (sorted).
    pub roles: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct DatabaseInfo {
    pub name: String,
    pub encoding: String,
    pub collate: String,
    pub ctype: String,
    /// `datlocprovider` ("c", "i", "b"), from 15.
    pub locale_provider: Option<String>,
    /// `daticulocale` (15, 16) or `datlocale` (17+).
    pub icu_locale: Option<String>,
    pub owner: String,
    pub size_bytes: i64,
    pub comment: Option<String>,
    /// `ALTER DATABASE ... SET` settings of this database (for all roles), "name=value".
    pub settings: Vec<String>,
    /// GRANT/REVOKE statements giving the database its privileges (relative
    /// to a new database's), for a restore that creates the database.
    pub privileges_sql: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DdlObject {
    /// Equal to the index in [`Catalog::objects`].
    pub id: u32,
    /// pg_dump's name of the kind. Pre-data: SCHEMA, EXTENSION, COLLATION,
    /// TYPE, DOMAIN, FUNCTION, PROCEDURE, AGGREGATE, OPERATOR, CAST, TEXT
    /// SEARCH DICTIONARY/CONFIGURATION, SEQUENCE, TABLE, TABLE COLUMNS (a
    /// parent's later columns, see the crate docs), TABLE ATTACH, SEQUENCE
    /// OWNED BY, DEFAULT, VIEW, MATERIALIZED VIEW, RULE (`_RETURN` of a view
    /// created in two steps), CHECK CONSTRAINT (of a domain). Data: SEQUENCE
    /// SET. Post-data: CONSTRAINT, CHECK CONSTRAINT, FK CONSTRAINT, INDEX,
    /// INDEX ATTACH, STATISTICS, RULE, TRIGGER, POLICY, ROW SECURITY,
    /// PUBLICATION, PUBLICATION TABLE, PUBLICATION TABLES IN SCHEMA, DEFAULT
    /// ACL, EVENT TRIGGER, MATERIALIZED VIEW DATA. COMMENT and ACL go in the
    /// section of their object.
    pub kind: String,
    pub schema: Option<String>,
    pub name: String,
    pub owner: Option<String>,
    pub section: Section,
    /// Complete statements ending in ';', safe with `search_path = ''`.
    pub create_sql: String,
    /// `ALTER ... OWNER TO ...;`, None with `no_owner` or for objects without owner.
    pub owner_sql: Option<String>,
    pub drop_sql: String,
    /// Ids of the objects that must exist first.
    pub deps: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TableInfo {
    /// Id of its "TABLE" object (of its "EXTENSION" object for an extension's
    /// configuration table).
    pub object_id: u32,
    pub oid: u32,
    pub schema: String,
    pub name: String,
    /// Quoted and schema-qualified.
    pub qualified: String,
    /// The COPY column list: no dropped or generated columns.
    pub columns: Vec<Column>,
    pub relpages: i64,
    pub reltuples: f64,
    pub size_bytes: i64,
    /// WHERE condition of an extension configuration table.
    pub copy_filter: Option<String>,
    pub unlogged: bool,
    /// (schema, name) of the partitioned tables this table is a partition
    /// of, nearest first: naming a partitioned table names its partitions.
    pub partition_of: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    /// As `format_type()` prints it.
    pub type_name: String,
    /// For a domain, its base type (through domains over domains); "text"
    /// for an enum or a domain over one: the type whose binary form the
    /// values take.
    pub base_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub kind: String,
    pub name: String,
    pub reason: String,
}

/// Reads the catalog of the connected database. Read-only and without temp
/// objects, so it runs inside the caller's snapshot transaction; it sets
/// `search_path` to empty while it reads (so the deparsers qualify every name)
/// and puts the caller's value back afterwards.
pub async fn read_catalog(
    client: &tokio_postgres::Client,
    opts: &CatalogOptions,
) -> Result<Catalog, CatalogError> {
    let saved = read::session::enter(client).await?;
    let result = read::read_all(client, opts).await;
    let restored = read::session::leave(client, &saved).await;
    let catalog = result?;
    restored?;
    Ok(catalog)
}

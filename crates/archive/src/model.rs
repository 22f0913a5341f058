//! The structured sections of an archive: metadata, table of contents and trailer.
//! They are serialized as JSON (see docs/FORMAT.md for why), so a reader ignores
//! fields it does not know and minor versions can add fields.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What is known when a dump starts; written right after the file header.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ArchiveMeta {
    pub tool: String,
    pub tool_version: String,
    pub server_version: String,
    pub server_version_num: u32,
    pub database: String,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub snapshot: Option<String>,
    pub started_at: DateTime<Utc>,
    pub label: Option<String>,
    /// The options the dump ran with, as the user gave them (never a password).
    pub options: BTreeMap<String, String>,
    /// Properties of the dumped database, for `--create` and full rollback.
    pub database_props: DatabaseProps,
    /// Objects the dumper saw but could not dump: never a silent omission.
    pub unsupported: Vec<Unsupported>,
    /// Qualified names of the tables dumped on the fast path, in dump order.
    pub critical_tables: Vec<String>,
    /// Only part of the database is in the archive (a table, schema or
    /// section selection): it cannot replace the whole database.
    #[serde(default)]
    pub partial: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DatabaseProps {
    pub encoding: String,
    pub collate: String,
    pub ctype: String,
    pub locale_provider: Option<String>,
    pub icu_locale: Option<String>,
    pub owner: String,
    pub size_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unsupported {
    pub kind: String,
    pub name: String,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Section {
    PreData,
    Data,
    PostData,
}

/// One object of the table of contents, like an entry of `pg_restore --list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TocEntry {
    /// Unique in the archive; data chunks refer to it.
    pub id: u32,
    /// Upper-case kind as pg_dump names it: "TABLE", "INDEX", "TABLE DATA", "SEQUENCE SET", ...
    pub kind: String,
    pub schema: Option<String>,
    pub name: String,
    pub owner: Option<String>,
    pub section: Section,
    pub create_sql: String,
    /// `ALTER ... OWNER TO ...`, kept apart so a restore can skip it (`--no-owner`).
    #[serde(default)]
    pub owner_sql: Option<String>,
    pub drop_sql: String,
    /// Ids of entries that must be restored before this one.
    pub deps: Vec<u32>,
    /// Present on "TABLE DATA" entries: what the COPY stream of its chunks holds.
    pub copy: Option<CopySpec>,
}

/// How a table's data was written: a COPY text stream of these columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CopySpec {
    /// Quoted, schema-qualified table name, e.g. `"public"."users"`.
    pub qualified_table: String,
    pub columns: Vec<CopyColumn>,
    /// "text" (the only format written so far).
    pub format: String,
    /// Dumped on the fast path (`--critical`).
    pub critical: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyColumn {
    pub name: String,
    /// As `format_type()` prints it, e.g. "timestamp without time zone".
    pub type_name: String,
    /// The built-in type whose binary form the column's values take, when it
    /// is not `type_name` itself: a domain's base type (through domains over
    /// domains), "text" for an enum, whose binary form is its label. Absent
    /// in archives made before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_type: Option<String>,
}

/// What is known only when the dump ends; the last block before the footer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Trailer {
    pub finished_at: Option<DateTime<Utc>>,
    pub tables: Vec<TableStats>,
    /// Every block of the archive except the trailer itself, in file order.
    pub index: Vec<BlockRef>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TableStats {
    pub entry_id: u32,
    pub rows: u64,
    pub raw_bytes: u64,
    pub stored_bytes: u64,
    pub chunks: u32,
    /// sha256 over the block hashes of the entry's chunks in sequence order, hex.
    pub sha256: String,
    /// Order-independent digest of the rows, hex (set by the exporter), so a
    /// restored table can be compared with the archive whatever the row order.
    pub row_digest: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRef {
    pub offset: u64,
    pub kind: BlockKind,
    pub entry_id: u32,
    pub seq: u32,
    pub rows: u64,
    pub raw_len: u32,
    pub stored_len: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BlockKind {
    Meta,
    Toc,
    Data,
    Trailer,
    /// The clear KEY block of an encrypted archive; never listed in the index.
    Key,
}

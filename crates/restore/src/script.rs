//! A plain SQL script of (a subset of) the archive that psql can run: the
//! same statements a restore would run, with the data as COPY blocks.

use crate::ddl::{describe, entry_sql};
use crate::load::{copy_sql, has_end_marker};
use crate::select::Selection;
use crate::source::Source;
use crate::{RestoreError, RestoreOptions};
use pgark_archive::{Section, TocEntry};
use std::io::Write;

const HEADER: &str = "SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;
SET DateStyle = ISO;
SET IntervalStyle = postgres;
";

/// Writes the script; with `single_transaction` it is wrapped in BEGIN/COMMIT.
pub fn write_script<W: Write>(
    source: &Source,
    out: &mut W,
    opts: &RestoreOptions,
) -> Result<(), RestoreError> {
    let sel = Selection::new(source, opts)?;
    source.verify_chunks(&sel.data_entries())?;
    let io = |e: std::io::Error| RestoreError::Io(format!("writing the script: {e}"));
    let meta = source.meta();
    writeln!(
        out,
        "--\n-- pgark script of database \"{}\", dumped {} from PostgreSQL {}\n--\n",
        comment_text(&meta.database),
        meta.started_at.to_rfc3339(),
        comment_text(&meta.server_version)
    )
    .map_err(io)?;
    out.write_all(HEADER.as_bytes()).map_err(io)?;
    if opts.single_transaction {
        writeln!(out, "BEGIN;").map_err(io)?;
    }
    for section in [Section::PreData, Section::Data, Section::PostData] {
        for e in sel.section(section) {
            write_entry(source, out, e, opts)?;
        }
    }
    if opts.single_transaction {
        writeln!(out, "COMMIT;").map_err(io)?;
    }
    out.flush().map_err(io)
}

/// Names can hold newlines: in a `--` comment one would end the comment
/// and let the rest of the name run as SQL.
fn comment_text(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

fn write_entry<W: Write>(
    source: &Source,
    out: &mut W,
    e: &TocEntry,
    opts: &RestoreOptions,
) -> Result<(), RestoreError> {
    let io = |err: std::io::Error| RestoreError::Io(format!("writing the script: {err}"));
    writeln!(
        out,
        "\n-- {} (entry {})\n",
        comment_text(&describe(e)),
        e.id
    )
    .map_err(io)?;
    let Some(spec) = &e.copy else {
        return writeln!(out, "{}", entry_sql(e, opts)).map_err(io);
    };
    writeln!(
        out,
        "{};",
        copy_sql(&spec.qualified_table, spec, false, false)
    )
    .map_err(io)?;
    let mut file = source.handle()?;
    for at in source.chunks_of(e.id) {
        let data = source
            .read(&mut file, &at)?
            .decompress()
            .map_err(|err| source.archive_error(err))?;
        if has_end_marker(&data) {
            return Err(RestoreError::Refused(format!(
                "archive chunk {} of entry {} holds a COPY end-of-data line, which COPY never writes: refusing a damaged or crafted archive",
                at.seq, e.id
            )));
        }
        out.write_all(&data).map_err(io)?;
    }
    writeln!(out, "\\.").map_err(io)
}

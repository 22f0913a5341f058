//! The report people otherwise write by hand next to a backup: what is in it,
//! how big, where, and the exact commands to verify it and to roll back.

use crate::dump::{human_bytes, DumpReport};
use std::fmt::Write;

/// A plain-text runbook for a finished backup. `conn` is how the user named
/// the database on the command line (it is repeated in the commands).
pub fn runbook(report: &DumpReport, conn: &str) -> String {
    let m = &report.meta;
    let mut s = String::new();
    let path = report
        .path
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "ARCHIVE".into());
    let _ = writeln!(
        s,
        "Backup of database \"{}\" on {}:{} (PostgreSQL {})",
        m.database, m.host, m.port, m.server_version
    );
    let _ = writeln!(
        s,
        "  taken        {} UTC, in {:.1} s",
        m.started_at.format("%Y-%m-%d %H:%M:%S"),
        report.elapsed.as_secs_f64()
    );
    if let Some(label) = &m.label {
        let _ = writeln!(s, "  purpose      {label}");
    }
    let raw: u64 = report.trailer.tables.iter().map(|t| t.raw_bytes).sum();
    let _ = writeln!(
        s,
        "  archive      {path} ({}, {} of table data)",
        human_bytes(report.archive_bytes),
        human_bytes(raw)
    );
    let _ = writeln!(
        s,
        "  rows         {} in {} tables",
        report.rows(),
        report.trailer.tables.len()
    );
    if !m.critical_tables.is_empty() {
        let _ = writeln!(s, "  critical     {}", m.critical_tables.join(", "));
    }
    let _ = writeln!(
        s,
        "\n  {:<48} {:>12} {:>10} {:>10}",
        "table", "rows", "data", "stored"
    );
    let names = table_names(report);
    for (t, name) in report.trailer.tables.iter().zip(&names) {
        let _ = writeln!(
            s,
            "  {:<48} {:>12} {:>10} {:>10}",
            name,
            t.rows,
            human_bytes(t.raw_bytes),
            human_bytes(t.stored_bytes)
        );
    }
    for w in &report.warnings {
        let _ = writeln!(s, "  WARNING: not backed up: {w}");
    }
    let _ = writeln!(s, "\nVerify:            pgark verify {path}");
    let _ = writeln!(
        s,
        "Test-restore:      pgark verify {path} --restore-test '{conn}'"
    );
    let _ = writeln!(s, "Full rollback:     pgark rollback -d '{conn}' {path}");
    if !m.critical_tables.is_empty() {
        let _ = writeln!(
            s,
            "Critical tables:   pgark rollback -d '{conn}' --critical {path}"
        );
    }
    s
}

/// The trailer knows tables by entry id only.
fn table_names(report: &DumpReport) -> Vec<String> {
    report
        .trailer
        .tables
        .iter()
        .map(|t| {
            report
                .table_names
                .get(&t.entry_id)
                .cloned()
                .unwrap_or_else(|| format!("entry {}", t.entry_id))
        })
        .collect()
}

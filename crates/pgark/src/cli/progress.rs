//! Progress bars and plain-text tables for a terminal.

use indicatif::{ProgressBar, ProgressStyle};

pub fn dump_bar() -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} dump [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar
}

pub fn update_dump(bar: &ProgressBar, p: &pgark::DumpProgress) {
    bar.set_length(p.estimated_bytes.max(p.raw_bytes));
    bar.set_position(p.raw_bytes);
    bar.set_message(format!(
        "{} rows, {}/{} tables",
        p.rows, p.tables_done, p.tables_total
    ));
}

pub fn restore_bar() -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(ProgressStyle::with_template("{spinner} restore {msg}").expect("valid template"));
    bar
}

pub fn update_restore(bar: &ProgressBar, p: &pgark::RestoreProgress) {
    bar.set_message(format!(
        "{} {}/{} ({} rows)",
        p.phase, p.done, p.total, p.rows
    ));
    bar.tick();
}

pub fn listing_text(l: &pgark::Listing) -> String {
    use std::fmt::Write;
    let m = &l.meta;
    let mut s = String::new();
    let _ = writeln!(
        s,
        ";\n; pgark archive of database \"{}\" on {}:{} as {}",
        m.database, m.host, m.port, m.user
    );
    let _ = writeln!(
        s,
        "; server {} ({}), {} {}",
        m.server_version, m.server_version_num, m.tool, m.tool_version
    );
    let _ = writeln!(
        s,
        "; started {}, finished {}",
        m.started_at.to_rfc3339(),
        l.trailer
            .finished_at
            .map(|t| t.to_rfc3339())
            .unwrap_or_else(|| "?".into())
    );
    if let Some(label) = &m.label {
        let _ = writeln!(s, "; label: {label}");
    }
    let _ = writeln!(
        s,
        "; archive size: {} bytes; database size: {} bytes",
        l.archive_bytes, m.database_props.size_bytes
    );
    for u in &m.unsupported {
        let _ = writeln!(s, "; NOT DUMPED: {} {}: {}", u.kind, u.name, u.reason);
    }
    let _ = writeln!(s, ";\n; tables: rows, data bytes, stored bytes");
    for t in &l.trailer.tables {
        let name = l
            .toc
            .iter()
            .find(|e| e.id == t.entry_id)
            .map(|e| format!("{}.{}", e.schema.as_deref().unwrap_or(""), e.name))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            ";   {name}: {} rows, {} bytes, {} stored",
            t.rows, t.raw_bytes, t.stored_bytes
        );
    }
    let _ = writeln!(s, ";");
    for e in &l.toc {
        let section = match e.section {
            pgark::Section::PreData => "pre-data",
            pgark::Section::Data => "data",
            pgark::Section::PostData => "post-data",
        };
        let critical = if e.copy.as_ref().is_some_and(|c| c.critical) {
            " [critical]"
        } else {
            ""
        };
        let _ = writeln!(
            s,
            "{}; {section} {} {} {} {}{critical}",
            e.id,
            e.kind,
            e.schema.as_deref().unwrap_or("-"),
            e.name,
            e.owner.as_deref().unwrap_or("-")
        );
    }
    s
}

pub fn estimate_text(e: &pgark::Estimate) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "database {}: {} bytes", e.database, e.database_bytes);
    for t in &e.tables {
        let _ = writeln!(
            s,
            "  {:<50} {:>14} bytes  ~{} rows",
            t.table, t.bytes, t.estimated_rows
        );
    }
    let _ = writeln!(
        s,
        "predicted archive size: {} bytes",
        e.predicted_archive_bytes
    );
    match e.free_bytes {
        Some(f) => {
            let _ = writeln!(
                s,
                "free space at the output: {f} bytes{}",
                if f < e.predicted_archive_bytes {
                    " (NOT ENOUGH)"
                } else {
                    ""
                }
            );
        }
        None => {
            let _ = writeln!(s, "free space at the output: unknown");
        }
    }
    s
}

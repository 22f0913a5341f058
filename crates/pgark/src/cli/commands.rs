//! One function per command; all the work is the library's.

use super::args::*;
use super::progress;
use pgark::{ConnParams, Error, Overrides};
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

pub async fn run(args: Args) -> Result<(), Error> {
    match args.command {
        Command::Dump(a) => dump(a).await,
        Command::Restore(a) => restore(a).await,
        Command::Rollback(a) => rollback(a).await,
        Command::List(a) => list(a),
        Command::Verify(a) => verify(a).await,
        Command::Estimate(a) => estimate(a).await,
        Command::Demo(a) => demo(a).await,
    }
}

/// Prints what a failed restore did and did not do, before the error line.
pub fn print_failures(e: &Error) {
    if let Some(report) = e.restore_report() {
        let rolled_back = if report.rolled_back {
            " (single transaction rolled back)"
        } else {
            ""
        };
        eprintln!(
            "pgark: {} entries restored{rolled_back}, {} failed, {} not attempted:",
            report.entries_restored,
            report.failed.len(),
            report.not_attempted
        );
        for f in &report.failed {
            eprintln!("  {}: {}", f.entry, f.error);
        }
    }
}

fn params(conn: &Conn, database: Option<&str>) -> Result<ConnParams, Error> {
    let overrides = Overrides {
        host: conn.host.clone(),
        port: conn.port,
        user: conn.user.clone(),
        dbname: database.map(str::to_string),
    };
    Ok(ConnParams::resolve(conn.dbname.as_deref(), &overrides)?)
}

fn key(k: &KeyArgs) -> Result<Option<pgark::Key>, Error> {
    let refused = |e: pgark::ArchiveError| Error::Refused(e.to_string());
    if let Some(path) = &k.key_file {
        return pgark::Key::from_key_file(path).map(Some).map_err(refused);
    }
    if let Some(var) = &k.passphrase_env {
        let text = std::env::var(var).map_err(|_| {
            Error::Refused(format!(
                "--passphrase-env: environment variable {var} is not set"
            ))
        })?;
        return pgark::Key::from_passphrase(&text)
            .map(Some)
            .map_err(refused);
    }
    Ok(None)
}

fn show_progress(quiet: bool) -> bool {
    !quiet && std::io::stderr().is_terminal()
}

async fn dump(a: DumpArgs) -> Result<(), Error> {
    let params = params(&a.conn, a.database.as_deref())?;
    // Commands in the runbook repeat the connection, never its password.
    let conn = params.conninfo_without_password();
    let mut dump = pgark::Dump::new(params)
        .jobs(a.jobs)
        .schema_only(a.schema_only)
        .data_only(a.data_only)
        .tables(a.tables)
        .exclude_tables(a.exclude_tables)
        .schemas(a.schemas)
        .exclude_schemas(a.exclude_schemas)
        .exclude_table_data(a.exclude_table_data)
        .critical(a.critical)
        .compression_level(a.compress)
        .lock_timeout(Duration::from_secs(a.lock_wait_timeout))
        .no_owner(a.no_owner)
        .no_privileges(a.no_privileges)
        .force(a.force);
    match (a.encrypt, key(&a.key)?) {
        (true, None) => {
            return Err(Error::Refused(
                "--encrypt needs --key-file or --passphrase-env".into(),
            ))
        }
        (false, Some(_)) => return Err(Error::Refused("a key was given without --encrypt".into())),
        (_, k) => dump = dump.encrypt(k),
    }
    if let Some(label) = a.label {
        dump = dump.label(label);
    }
    let bar = show_progress(a.out.quiet).then(progress::dump_bar);
    if let Some(bar) = &bar {
        let bar = bar.clone();
        dump = dump.progress(move |p| progress::update_dump(&bar, p));
    }
    let to_stdout = a.file == Path::new("-");
    let report = if to_stdout {
        let out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout());
        let (mut out, report) = dump.to_writer(out).await?;
        out.flush().map_err(|e| Error::Output {
            path: "stdout".into(),
            reason: e.to_string(),
        })?;
        report
    } else {
        dump.to_file(&a.file).await?
    };
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    for w in &report.warnings {
        eprintln!("pgark: WARNING: not dumped: {w}");
    }
    if a.out.json {
        let json = serde_json::json!({
            "archive": report.path, "archive_bytes": report.archive_bytes, "seconds": report.elapsed.as_secs_f64(),
            "rows": report.rows(), "meta": report.meta, "tables": report.trailer.tables, "warnings": report.warnings,
        });
        emit_json(&json, to_stdout);
    } else if !a.out.quiet {
        eprint!("{}", pgark::runbook(&report, &conn));
    }
    Ok(())
}

fn emit_json(value: &serde_json::Value, stdout_taken: bool) {
    let text = serde_json::to_string_pretty(value).expect("JSON values serialize");
    if stdout_taken {
        eprintln!("{text}");
    } else {
        println!("{text}");
    }
}

async fn restore(a: RestoreArgs) -> Result<(), Error> {
    let mut r = pgark::Restore::new(params(&a.conn, None)?, &a.archive)
        .jobs(a.jobs)
        .create(a.create)
        .clean(a.clean)
        .if_exists(a.if_exists)
        .schema_only(a.schema_only)
        .data_only(a.data_only)
        .tables(a.tables)
        .schemas(a.schemas)
        .single_transaction(a.single_transaction)
        .exit_on_error(a.exit_on_error)
        .no_owner(a.no_owner)
        .no_privileges(a.no_privileges)
        .role(a.role)
        .key(key(&a.key)?);
    if let Some(file) = a.file {
        return write_script(r, &file);
    }
    let bar = show_progress(a.out.quiet).then(progress::restore_bar);
    if let Some(bar) = &bar {
        let bar = bar.clone();
        r = r.progress(move |p| progress::update_restore(&bar, p));
    }
    let started = std::time::Instant::now();
    let report = r.run().await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let report = report?;
    if a.out.json {
        emit_json(
            &serde_json::json!({"entries": report.entries_restored, "rows": report.rows, "seconds": started.elapsed().as_secs_f64()}),
            false,
        );
    } else if !a.out.quiet {
        eprintln!(
            "pgark: restored {} entries, {} rows in {:.1} s",
            report.entries_restored,
            report.rows,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

fn write_script(r: pgark::Restore, file: &Path) -> Result<(), Error> {
    let fail = |e: std::io::Error| Error::Output {
        path: file.display().to_string(),
        reason: e.to_string(),
    };
    if file == Path::new("-") {
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        return r.write_script(&mut out);
    }
    let mut out = std::io::BufWriter::new(std::fs::File::create(file).map_err(fail)?);
    r.write_script(&mut out)
}

async fn rollback(a: RollbackArgs) -> Result<(), Error> {
    let params = params(&a.conn, None)?;
    let partial = a.critical || !a.tables.is_empty();
    let what = if partial {
        let mut names = a.tables.clone();
        if a.critical {
            names.insert(0, "the critical tables".into());
        }
        format!(
            "replace the rows of {} in database \"{}\"",
            names.join(", "),
            params.dbname
        )
    } else {
        format!(
            "replace database \"{}\" with the backup (other sessions are ended)",
            params.dbname
        )
    };
    confirm(&what, &params.dbname, a.yes)?;
    let rb = pgark::Rollback::new(params, &a.archive)
        .accept_loss(a.accept_loss)
        .key(key(&a.key)?)
        .jobs(a.jobs)
        .time_zone(a.time_zone);
    let started = std::time::Instant::now();
    if partial {
        let tables = if a.critical {
            rb.critical_and_tables(a.tables).await?
        } else {
            rb.tables(a.tables).await?
        };
        for t in &tables {
            eprintln!("pgark: {}: {} rows restored", t.table, t.rows);
            for c in &t.conversions {
                eprintln!("pgark:   column type changed since the backup, converted: {c}");
            }
        }
        if a.out.json {
            let list: Vec<_> = tables.iter().map(|t| serde_json::json!({"table": t.table, "rows": t.rows, "conversions": t.conversions})).collect();
            emit_json(
                &serde_json::json!({"tables": list, "seconds": started.elapsed().as_secs_f64()}),
                false,
            );
        }
    } else {
        let report = rb.full().await?;
        eprintln!(
            "pgark: database rolled back: {} entries, {} rows",
            report.entries_restored, report.rows
        );
    }
    eprintln!(
        "pgark: rollback finished in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// On a terminal, the user types the database name; elsewhere `--yes` is required.
fn confirm(what: &str, dbname: &str, yes: bool) -> Result<(), Error> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::Refused(format!(
            "this would {what}; pass --yes to confirm when not on a terminal"
        )));
    }
    eprint!("This will {what}.\nType the database name to confirm: ");
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| Error::Refused(e.to_string()))?;
    if line.trim() == dbname {
        Ok(())
    } else {
        Err(Error::Refused("not confirmed; nothing was changed".into()))
    }
}

fn list(a: ListArgs) -> Result<(), Error> {
    let l = pgark::list_with_key(&a.archive, key(&a.key)?.as_ref())?;
    if a.json {
        emit_json(
            &serde_json::to_value(&l).expect("listing serializes"),
            false,
        );
        return Ok(());
    }
    print!("{}", super::progress::listing_text(&l));
    Ok(())
}

async fn verify(a: VerifyArgs) -> Result<(), Error> {
    if a.restore_test.is_some() && a.archive == Path::new("-") {
        // The checksum pass reads the pipe; the test restore would need it again.
        return Err(Error::Refused(
            "--restore-test needs an archive file, not standard input (save it to a file first)"
                .into(),
        ));
    }
    let key = key(&a.key)?;
    let report = pgark::verify_with_key(&a.archive, key.as_ref())?;
    // Without its key an encrypted archive's structure and checksums are
    // checked, not what it holds: say which.
    let contents_checked = report.contents.is_some();
    let mut json = serde_json::json!({"archive": a.archive, "bytes": report.bytes, "chunks": report.chunks,
        "raw_bytes": report.raw_bytes, "checksums": "ok", "encrypted": report.encrypted, "contents_checked": contents_checked});
    if !a.json {
        let what = if contents_checked {
            "every checksum verified"
        } else {
            "every checksum verified; encrypted, contents not checked (give --key-file or --passphrase-env)"
        };
        println!(
            "{}: OK, {} bytes, {} data chunks, {what}",
            a.archive.display(),
            report.bytes,
            report.chunks
        );
    }
    if let Some(conn) = &a.restore_test {
        let server = ConnParams::resolve(Some(conn), &Overrides::default())?;
        let checks =
            pgark::restore_test_with_key(&server, &a.archive, a.jobs, key.as_ref()).await?;
        let failed = checks.iter().filter(|c| !c.ok()).count();
        if a.json {
            json["restore_test"] = serde_json::json!(checks.iter().map(|c| serde_json::json!({"table": c.table, "archive_rows": c.archive_rows, "restored_rows": c.database_rows, "ok": c.ok()})).collect::<Vec<_>>());
        } else {
            for c in &checks {
                println!(
                    "  {:<50} {:>10} rows  {}",
                    c.table,
                    c.database_rows,
                    if c.ok() { "PASS" } else { "FAIL" }
                );
            }
        }
        if failed > 0 {
            if a.json {
                emit_json(&json, false);
            }
            return Err(Error::Refused(format!(
                "restore test: {failed} of {} tables differ from the archive",
                checks.len()
            )));
        }
        if !a.json {
            println!(
                "restore test: all {} tables match the archive",
                checks.len()
            );
        }
    }
    if a.json {
        emit_json(&json, false);
    }
    Ok(())
}

async fn estimate(a: EstimateArgs) -> Result<(), Error> {
    let params = params(&a.conn, a.database.as_deref())?;
    let e = pgark::estimate(&params, &a.file).await?;
    if a.json {
        emit_json(
            &serde_json::to_value(&e).expect("estimate serializes"),
            false,
        );
        return Ok(());
    }
    print!("{}", super::progress::estimate_text(&e));
    Ok(())
}

async fn demo(a: DemoArgs) -> Result<(), Error> {
    let quiet = a.quiet;
    let bar = show_progress(quiet).then(progress::dump_bar);
    let dump_progress = bar.clone().map(|bar| {
        std::sync::Arc::new(move |p: &pgark::DumpProgress| progress::update_dump(&bar, p))
            as pgark::DumpProgressFn
    });
    let log_bar = bar.clone();
    let opts = pgark::DemoOptions {
        scale: a.scale,
        jobs: a.jobs,
        log: std::sync::Arc::new(move |m: &str| {
            if quiet {
                return;
            }
            match &log_bar {
                Some(b) => b.println(format!("pgark demo: {m}")),
                None => eprintln!("pgark demo: {m}"),
            }
        }),
        dump_progress,
    };
    let report = pgark::demo(opts).await?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    println!("{}", report.runbook);
    print!("{}", report.summary());
    Ok(())
}

//! Full rollback: the database is rebuilt from the archive under a new name
//! beside the old one, then the two are swapped. Until the swap the old
//! database is untouched, so a failed rebuild damages nothing; the swap itself
//! ends the other sessions and takes a moment.

use crate::select::Selection;
use crate::source::Source;
use crate::{ddl, RestoreError, RestoreOptions, RestoreReport};
use pgark_catalog::{quote_ident, quote_literal};
use pgark_conn::{ConnParams, Purpose};
use tokio_postgres::Client;

const MARK: &str = "pgark rollback in progress";

/// Replaces the database `params` names with the archive's copy of it.
pub async fn rollback_database(
    params: &ConnParams,
    source: &Source,
    opts: &RestoreOptions,
) -> Result<RestoreReport, RestoreError> {
    let target = params.dbname.clone();
    let meta = source.meta();
    if meta.database != target {
        return Err(RestoreError::Refused(format!(
            "the archive is a backup of database \"{}\", not \"{target}\"; a full rollback only replaces the database it was taken from",
            meta.database
        )));
    }
    if meta.partial {
        return Err(RestoreError::Refused(format!(
            "the archive holds only part of database \"{target}\" (dumped with {}); a full rollback would drop everything else: roll back tables (-t) or restore into another database",
            describe_selection(&meta.options)
        )));
    }
    refuse_losses(source, opts)?;
    let sel = Selection::new(
        source,
        &RestoreOptions {
            tables: vec![],
            schemas: vec![],
            ..opts.clone()
        },
    )?;
    // No checksum pass first, unlike a restore: every chunk is checked as it
    // is loaded, and a damaged archive fails the rebuild beside the old
    // database, which is then dropped; the old one is never touched.
    let admin = connect_admin(params).await?;
    check_rights(&admin, &target, source).await?;
    let fresh = side_name(&target, "new");
    create_fresh(&admin, &fresh, source).await?;
    let report = match ddl::run(&params.with_dbname(&fresh), source, &sel, opts).await {
        Ok(r) => r,
        Err(e) => {
            let _ = admin
                .batch_execute(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    quote_ident(&fresh)
                ))
                .await;
            return Err(e);
        }
    };
    swap(&admin, &target, &fresh).await?;
    Ok(report)
}

/// A connection to a database other than the target, to drop and rename it.
async fn connect_admin(params: &ConnParams) -> Result<Client, RestoreError> {
    let mut last = None;
    for db in ["postgres", "template1"] {
        if db == params.dbname {
            continue;
        }
        // Purpose::Restore: a role's statement_timeout must not cancel
        // CREATE DATABASE.
        match pgark_conn::connect_session(&params.with_dbname(db), Purpose::Restore).await {
            Ok(c) => return Ok(c),
            Err(e @ pgark_conn::ConnError::Session(_)) => return Err(e.into()),
            Err(e) => last = Some(e),
        }
    }
    Err(last
        .map(RestoreError::from)
        .unwrap_or_else(|| RestoreError::Refused("no maintenance database to connect to".into())))
}

/// Names what is missing before anything is changed.
async fn check_rights(admin: &Client, target: &str, source: &Source) -> Result<(), RestoreError> {
    let row = admin
        .query_opt(
            "SELECT r.rolsuper, r.rolcreatedb, pg_catalog.pg_has_role(current_user, d.datdba, 'MEMBER') \
             FROM pg_catalog.pg_roles r, pg_catalog.pg_database d \
             WHERE r.rolname = current_user AND d.datname = $1",
            &[&target],
        )
        .await
        .map_err(|e| RestoreError::server("checking privileges", &e))?
        .ok_or_else(|| RestoreError::Refused(format!("database \"{target}\" does not exist")))?;
    let (superuser, createdb, owner): (bool, bool, bool) = (row.get(0), row.get(1), row.get(2));
    if !superuser && !createdb {
        return Err(RestoreError::Refused("a full rollback needs the CREATEDB privilege (it rebuilds the database beside the old one)".into()));
    }
    if !superuser && !owner {
        return Err(RestoreError::Refused(format!(
            "a full rollback must be run by the owner of database \"{target}\""
        )));
    }
    if !superuser {
        let needs: Vec<String> = source
            .toc()
            .iter()
            .filter(|e| e.kind == "EXTENSION")
            .map(|e| e.name.clone())
            .collect();
        let rows = admin
            .query(
                "SELECT DISTINCT name FROM pg_catalog.pg_available_extension_versions \
                 WHERE name = ANY($1) AND superuser AND NOT trusted AND installed IS NOT TRUE",
                &[&needs],
            )
            .await
            .map_err(|e| RestoreError::server("checking extensions", &e))?;
        if !rows.is_empty() {
            let names: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
            return Err(RestoreError::Refused(format!(
                "creating extension(s) {} needs a superuser",
                names.join(", ")
            )));
        }
    }
    Ok(())
}

/// `name` with a suffix, within PostgreSQL's 63-byte limit.
fn side_name(name: &str, suffix: &str) -> String {
    let tail = format!("_pgark_{suffix}");
    let mut head = name.to_string();
    while head.len() + tail.len() > 63 {
        head.pop();
    }
    head + &tail
}

async fn create_fresh(admin: &Client, fresh: &str, source: &Source) -> Result<(), RestoreError> {
    // A leftover from an interrupted rollback carries the mark; anything else
    // with that name is not ours to drop.
    let leftover = admin
        .query_opt(
            "SELECT pg_catalog.shobj_description(oid, 'pg_database') = $2 FROM pg_catalog.pg_database WHERE datname = $1",
            &[&fresh, &MARK],
        )
        .await
        .map_err(|e| RestoreError::server("looking for a leftover database", &e))?;
    match leftover.map(|r| r.get::<_, Option<bool>>(0)) {
        Some(Some(true)) => {
            let drop = format!("DROP DATABASE {} WITH (FORCE)", quote_ident(fresh));
            admin
                .batch_execute(&drop)
                .await
                .map_err(|e| RestoreError::server("dropping a leftover database", &e))?;
        }
        Some(_) => {
            return Err(RestoreError::Refused(format!(
                "database \"{fresh}\" exists and was not made by pgark"
            )));
        }
        None => {}
    }
    // CREATE DATABASE cannot share a multi-statement query (an implicit transaction).
    let fail = |e| RestoreError::server(format!("creating database {fresh}"), &e);
    admin
        .batch_execute(&create_database_sql(fresh, source))
        .await
        .map_err(fail)?;
    let mark = format!(
        "COMMENT ON DATABASE {} IS {}",
        quote_ident(fresh),
        quote_literal(MARK)
    );
    admin
        .batch_execute(&mark)
        .await
        .map_err(|e| RestoreError::server(format!("creating database {fresh}"), &e))
}

/// CREATE DATABASE with the original encoding and locale; owned by the
/// original owner when the current role may give it away.
fn create_database_sql(name: &str, source: &Source) -> String {
    let p = &source.meta().database_props;
    let mut sql = format!(
        "CREATE DATABASE {} WITH TEMPLATE = template0",
        quote_ident(name)
    );
    if !p.encoding.is_empty() {
        sql.push_str(&format!(" ENCODING = {}", quote_literal(&p.encoding)));
    }
    if p.locale_provider.as_deref() == Some("i") {
        sql.push_str(" LOCALE_PROVIDER = icu");
        if let Some(l) = &p.icu_locale {
            let key = if source.meta().server_version_num >= 170000 {
                "LOCALE"
            } else {
                "ICU_LOCALE"
            };
            sql.push_str(&format!(" {key} = {}", quote_literal(l)));
        }
    }
    if !p.collate.is_empty() {
        sql.push_str(&format!(
            " LC_COLLATE = {} LC_CTYPE = {}",
            quote_literal(&p.collate),
            quote_literal(&p.ctype)
        ));
    }
    sql
}

/// Creates database `name` (the archive's own name when None) with the
/// archive's encoding and locale, connecting through `params`' database,
/// like `pg_restore --create`. Returns the name.
pub async fn create_database(
    params: &ConnParams,
    source: &Source,
    name: Option<&str>,
) -> Result<String, RestoreError> {
    let name = name.unwrap_or(&source.meta().database).to_string();
    let client = pgark_conn::connect_session(params, Purpose::Restore).await?;
    client
        .batch_execute(&create_database_sql(&name, source))
        .await
        .map_err(|e| RestoreError::server(format!("creating database {name}"), &e))?;
    Ok(name)
}

/// Moves the rebuilt database into place; the old one's database-level
/// settings, comment and connection limit carry over.
async fn swap(admin: &Client, target: &str, fresh: &str) -> Result<(), RestoreError> {
    let old = side_name(target, "old");
    let (t, f, o) = (quote_ident(target), quote_ident(fresh), quote_ident(&old));
    let (carry, comment) = carry_over_sql(admin, target, fresh).await?;
    admin
        .batch_execute(&carry)
        .await
        .map_err(|e| RestoreError::server("copying database settings", &e))?;
    let server = |what: &str| {
        let what = what.to_string();
        move |e: tokio_postgres::Error| RestoreError::server(what.clone(), &e)
    };
    // Connection pools reconnect at once: close the door, then end the
    // sessions, then rename (retrying for sessions that slipped in).
    admin
        .batch_execute(&format!("ALTER DATABASE {t} WITH ALLOW_CONNECTIONS false"))
        .await
        .map_err(server("refusing new connections to the database"))?;
    if let Err(e) = rename_away(admin, target, &t, &o).await {
        let _ = admin
            .batch_execute(&format!("ALTER DATABASE {t} WITH ALLOW_CONNECTIONS true"))
            .await;
        return Err(e);
    }
    if let Err(e) = admin
        .batch_execute(&format!("ALTER DATABASE {f} RENAME TO {t}"))
        .await
    {
        // Never leave nothing under the target's name: put the old one back.
        let _ = admin
            .batch_execute(&format!(
                "ALTER DATABASE {o} RENAME TO {t}; ALTER DATABASE {t} WITH ALLOW_CONNECTIONS true"
            ))
            .await;
        return Err(RestoreError::server(
            "moving the rebuilt database into place (the old one is back in place)",
            &e,
        ));
    }
    admin
        .batch_execute(&comment)
        .await
        .map_err(server("carrying the database's comment over"))?;
    admin
        .batch_execute(&format!("DROP DATABASE {o} WITH (FORCE)"))
        .await
        .map_err(server(
            "dropping the old database (the rollback itself is done)",
        ))
}

async fn rename_away(admin: &Client, target: &str, t: &str, o: &str) -> Result<(), RestoreError> {
    let mut attempt = 0;
    loop {
        admin
            .query(
                "SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity \
                 WHERE datname = $1 AND pid <> pg_catalog.pg_backend_pid()",
                &[&target],
            )
            .await
            .map_err(|e| RestoreError::server("ending the sessions on the database", &e))?;
        match admin
            .batch_execute(&format!("ALTER DATABASE {t} RENAME TO {o}"))
            .await
        {
            Ok(()) => return Ok(()),
            Err(_) if attempt < 50 => {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => {
                return Err(RestoreError::server(
                    format!("renaming {target} out of the way"),
                    &e,
                ))
            }
        }
    }
}

async fn carry_over_sql(
    admin: &Client,
    target: &str,
    fresh: &str,
) -> Result<(String, String), RestoreError> {
    let f = quote_ident(fresh);
    let row = admin
        .query_one(
            "SELECT d.datconnlimit, pg_catalog.shobj_description(d.oid, 'pg_database'), \
                    pg_catalog.pg_get_userbyid(d.datdba), \
                    (SELECT s.setconfig FROM pg_catalog.pg_db_role_setting s WHERE s.setdatabase = d.oid AND s.setrole = 0) \
             FROM pg_catalog.pg_database d WHERE d.datname = $1",
            &[&target],
        )
        .await
        .map_err(|e| RestoreError::server("reading the database's settings", &e))?;
    let (limit, comment, owner, settings): (i32, Option<String>, String, Option<Vec<String>>) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    let mut sql = format!("ALTER DATABASE {f} CONNECTION LIMIT {limit};");
    for s in settings.unwrap_or_default() {
        if let Some((k, v)) = s.split_once('=') {
            sql.push_str(&format!(
                "ALTER DATABASE {f} SET {} = {};",
                quote_ident(k),
                setting_value(k, v)
            ));
        }
    }
    sql.push_str(&acl_sql(admin, target, &f).await?);
    // Giving the database to its old owner needs membership in that role; a
    // superuser or the owner itself has it.
    sql.push_str(&format!(
        "DO $$BEGIN IF pg_catalog.pg_has_role(current_user, {o}, 'MEMBER') THEN EXECUTE 'ALTER DATABASE ' || {fq} || ' OWNER TO ' || {oq}; END IF; END$$;",
        o = quote_literal(&owner),
        fq = quote_literal(&f),
        oq = quote_literal(&quote_ident(&owner)),
    ));
    // The comment is carried after the swap: until then the rebuilt
    // database keeps the mark that lets a later attempt clean it up.
    let t = quote_ident(target);
    let comment = match comment {
        Some(c) => format!("COMMENT ON DATABASE {t} IS {};", quote_literal(&c)),
        None => format!("COMMENT ON DATABASE {t} IS NULL;"),
    };
    Ok((sql, comment))
}

/// A setting's value as SQL. List settings (search_path, ...) are stored
/// flattened ("a, b"): each element is quoted on its own, as pg_dump does,
/// or the list would come back as one strange name.
fn setting_value(name: &str, value: &str) -> String {
    const LISTS: [&str; 4] = [
        "search_path",
        "temp_tablespaces",
        "session_preload_libraries",
        "local_preload_libraries",
    ];
    if LISTS.contains(&name.to_ascii_lowercase().as_str()) {
        let items: Vec<String> = split_list(value).iter().map(|i| quote_literal(i)).collect();
        items.join(", ")
    } else {
        quote_literal(value)
    }
}

/// Splits a stored list setting like PostgreSQL's SplitGUCList: commas
/// separate elements outside double quotes; inside, `""` is one quote.
fn split_list(value: &str) -> Vec<String> {
    let (mut items, mut cur, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => items.push(std::mem::take(&mut cur).trim().to_string()),
            c => cur.push(c),
        }
    }
    items.push(cur.trim().to_string());
    items
}

/// GRANTs on the old database (CONNECT, TEMP, CREATE) repeated on the new one;
/// nothing when the old one had the defaults.
async fn acl_sql(admin: &Client, target: &str, f: &str) -> Result<String, RestoreError> {
    let rows = admin
        .query(
            "SELECT a.privilege_type, CASE WHEN a.grantee = 0 THEN 'PUBLIC' \
                    ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(a.grantee)) END, a.is_grantable \
             FROM pg_catalog.pg_database d, pg_catalog.aclexplode(d.datacl) a WHERE d.datname = $1",
            &[&target],
        )
        .await
        .map_err(|e| RestoreError::server("reading the database's privileges", &e))?;
    if rows.is_empty() {
        return Ok(String::new());
    }
    let mut sql = format!("REVOKE ALL ON DATABASE {f} FROM PUBLIC;");
    for r in &rows {
        let (privilege, grantee, grantable): (String, String, bool) =
            (r.get(0), r.get(1), r.get(2));
        let option = if grantable { " WITH GRANT OPTION" } else { "" };
        sql.push_str(&format!(
            "GRANT {privilege} ON DATABASE {f} TO {grantee}{option};"
        ));
    }
    Ok(sql)
}

fn describe_selection(options: &std::collections::BTreeMap<String, String>) -> String {
    const KEYS: [&str; 7] = [
        "tables",
        "exclude_tables",
        "schemas",
        "exclude_schemas",
        "exclude_table_data",
        "schema_only",
        "data_only",
    ];
    let used: Vec<String> = KEYS
        .iter()
        .filter_map(|k| {
            options
                .get(*k)
                .map(|v| format!("--{}={v}", k.replace('_', "-")))
        })
        .collect();
    if used.is_empty() {
        "a selection".into()
    } else {
        used.join(" ")
    }
}

/// The swap drops the old database, and with it whatever the archive could
/// not hold: say so before, unless the caller accepted it.
fn refuse_losses(source: &Source, opts: &RestoreOptions) -> Result<(), RestoreError> {
    let lost: Vec<String> = source
        .meta()
        .unsupported
        .iter()
        .filter(|u| u.kind != "TABLESPACE")
        .map(|u| format!("{} {}", u.kind, u.name))
        .collect();
    if lost.is_empty() || opts.accept_loss {
        return Ok(());
    }
    Err(RestoreError::Refused(format!(
        "the archive could not hold {}; a full rollback would destroy them (accept with --accept-loss)",
        lost.join(", ")
    )))
}

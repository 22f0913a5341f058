//! Schemas, extensions, collations, text search, event triggers,
//! publications, default privileges and comments.

use super::{post, pre, q, user_object, Ctx};
use crate::acl::{acl_sql, AclTarget};
use crate::graph::class::*;
use crate::graph::Obj;
use crate::{quote_ident, quote_literal, CatalogError, Section};

const INIT_PRIVS: &str = "(SELECT ip.initprivs FROM pg_catalog.pg_init_privs ip \
     WHERE ip.objoid = n.oid AND ip.classoid = 'pg_catalog.pg_namespace'::pg_catalog.regclass AND ip.objsubid = 0)";

impl Ctx<'_> {
    /// Objects that belong to no schema or table are dumped only without -n/-t, like pg_dump.
    pub fn everything(&self) -> bool {
        self.opts.schemas.is_empty() && self.opts.tables.is_empty()
    }
}

pub(crate) async fn read_schemas(ctx: &mut Ctx<'_>) -> Result<(), CatalogError> {
    let sql = format!(
        "SELECT n.oid, n.nspname::text, pg_catalog.pg_get_userbyid(n.nspowner)::text, n.nspacl::text[], \
         COALESCE({INIT_PRIVS}, pg_catalog.acldefault('n', n.nspowner))::text[], \
         ARRAY[pg_catalog.regexp_replace(pg_catalog.makeaclitem(n.nspowner, n.nspowner, 'USAGE', false)::text, '=U/', '=UC/'), \
               pg_catalog.makeaclitem(0, n.nspowner, 'USAGE', false)::text], \
         n.oid >= 16384 AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e WHERE e.classid = 'pg_catalog.pg_namespace'::pg_catalog.regclass \
              AND e.objid = n.oid AND e.deptype = 'e') \
         FROM pg_catalog.pg_namespace n \
         WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema' ORDER BY n.oid"
    );
    for r in ctx.query("schemas", &sql).await? {
        let oid: u32 = r.get(0);
        let name: String = r.get(1);
        let owner: String = r.get(2);
        let user_made: bool = r.get(6);
        let included = ctx.filter.schema_included(&name);
        let target = format!("SCHEMA {}", quote_ident(&name));
        if included && oid == 2200 {
            public_schema(ctx, &r, &target)?;
            continue;
        }
        if !included || !user_made {
            ctx.schemas.insert(oid, (None, name.clone()));
            continue;
        }
        let obj = pre("SCHEMA", None, &name).sql(
            format!("CREATE SCHEMA {};", quote_ident(&name)),
            format!("DROP SCHEMA IF EXISTS {};", quote_ident(&name)),
        );
        let id = ctx.add(obj, None, Some((&target, owner.clone())));
        ctx.g.claim((PG_NAMESPACE, oid), id);
        ctx.schemas.insert(oid, (Some(id), name));
        ctx.commentable((PG_NAMESPACE, oid), id, target.clone());
        ctx.acl(Some(id), &target, &owner, r.get(3), r.get(4))?;
    }
    Ok(())
}

/// "public" comes with every database, as PostgreSQL 15+ makes it: owned by
/// pg_database_owner, USAGE for PUBLIC. Like pg_dump, the owner and the
/// privileges are restored relative to that, whatever the source version.
fn public_schema(
    ctx: &mut Ctx<'_>,
    r: &tokio_postgres::Row,
    target: &str,
) -> Result<(), CatalogError> {
    let oid: u32 = r.get(0);
    let owner: String = r.get(2);
    let obj = pre("SCHEMA", None, "public").sql(
        "CREATE SCHEMA IF NOT EXISTS \"public\";".to_string(),
        String::new(),
    );
    let id = if owner == "pg_database_owner" {
        ctx.add(obj, None, None)
    } else {
        ctx.add(obj, None, Some((target, owner.clone())))
    };
    ctx.g.claim((PG_NAMESPACE, oid), id);
    ctx.schemas.insert(oid, (Some(id), "public".to_string()));
    ctx.commentable((PG_NAMESPACE, oid), id, target.to_string());
    ctx.acl(Some(id), target, &owner, r.get(3), r.get(5))
}

pub(crate) async fn read_extensions(ctx: &mut Ctx<'_>) -> Result<(), CatalogError> {
    let rows = ctx
        .query(
            "extensions",
            "SELECT x.oid, x.extname::text, x.extnamespace, n.nspname::text FROM pg_catalog.pg_extension x \
             JOIN pg_catalog.pg_namespace n ON n.oid = x.extnamespace WHERE x.oid >= 16384 ORDER BY x.oid",
        )
        .await?;
    for r in rows {
        let oid: u32 = r.get(0);
        let name: String = r.get(1);
        let nsp: u32 = r.get(2);
        let schema: String = r.get(3);
        if !ctx.everything() || !ctx.filter.schema_included(&schema) {
            continue;
        }
        let obj = pre("EXTENSION", None, &name).sql(
            format!(
                "CREATE EXTENSION IF NOT EXISTS {} WITH SCHEMA {};",
                quote_ident(&name),
                quote_ident(&schema)
            ),
            format!("DROP EXTENSION IF EXISTS {};", quote_ident(&name)),
        );
        let id = ctx.add(obj, Some(nsp), None);
        ctx.g.claim((PG_EXTENSION, oid), id);
        ctx.commentable(
            (PG_EXTENSION, oid),
            id,
            format!("EXTENSION {}", quote_ident(&name)),
        );
    }
    // Dependencies on an extension's member objects are dependencies on the extension.
    let members = ctx
        .query(
            "extension members",
            "SELECT d.classid, d.objid, d.refobjid FROM pg_catalog.pg_depend d \
             WHERE d.deptype = 'e' AND d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass",
        )
        .await?;
    for r in members {
        if let Some(id) = ctx.g.id_of((PG_EXTENSION, r.get(2))) {
            ctx.g.claim((r.get(0), r.get(1)), id);
        }
    }
    Ok(())
}

pub(crate) async fn read_collations(ctx: &mut Ctx<'_>) -> Result<(), CatalogError> {
    let locale = match ctx.v {
        v if v >= 170000 => "c.colllocale",
        v if v >= 150000 => "c.colliculocale",
        _ => "NULL::text",
    };
    let rules = if ctx.v >= 160000 {
        "c.collicurules"
    } else {
        "NULL::text"
    };
    let sql = format!(
        "SELECT c.oid, c.collnamespace, n.nspname::text, c.collname::text, \
         pg_catalog.pg_get_userbyid(c.collowner)::text, c.collprovider::text, c.collisdeterministic, \
         c.collcollate::text, c.collctype::text, {locale}::text, {rules}::text \
         FROM pg_catalog.pg_collation c JOIN pg_catalog.pg_namespace n ON n.oid = c.collnamespace \
         WHERE {}",
        user_object("pg_collation", "c")
    );
    for r in ctx.query("collations", &sql).await? {
        let (oid, nsp, schema, name): (u32, u32, String, String) =
            (r.get(0), r.get(1), r.get(2), r.get(3));
        if !ctx.in_schema(nsp, &schema) {
            continue;
        }
        let provider: String = r.get(5);
        let deterministic: bool = r.get(6);
        let collate: Option<String> = r.get(7);
        let ctype: Option<String> = r.get(8);
        let locale: Option<String> = r.get(9);
        let rules: Option<String> = r.get(10);
        let mut opts = Vec::new();
        match provider.as_str() {
            "i" => {
                opts.push("provider = icu".to_string());
                let loc = locale.or(collate).unwrap_or_default();
                opts.push(format!("locale = {}", quote_literal(&loc)));
                if let Some(rules) = rules {
                    opts.push(format!("rules = {}", quote_literal(&rules)));
                }
            }
            "b" => {
                opts.push("provider = builtin".to_string());
                opts.push(format!(
                    "locale = {}",
                    quote_literal(&locale.unwrap_or_default())
                ));
            }
            _ => {
                opts.push("provider = libc".to_string());
                opts.push(format!(
                    "lc_collate = {}",
                    quote_literal(&collate.unwrap_or_default())
                ));
                opts.push(format!(
                    "lc_ctype = {}",
                    quote_literal(&ctype.unwrap_or_default())
                ));
            }
        }
        if !deterministic {
            opts.push("deterministic = false".to_string());
        }
        let qn = q(&schema, &name);
        let target = format!("COLLATION {qn}");
        let obj = pre("COLLATION", Some(&schema), &name).sql(
            format!("CREATE COLLATION {qn} ({});", opts.join(", ")),
            format!("DROP COLLATION IF EXISTS {qn};"),
        );
        let id = ctx.add(obj, Some(nsp), Some((&target, r.get(4))));
        ctx.g.claim((PG_COLLATION, oid), id);
        ctx.commentable((PG_COLLATION, oid), id, target);
    }
    Ok(())
}

pub(crate) async fn read_text_search(ctx: &mut Ctx<'_>) -> Result<(), CatalogError> {
    let sql = format!(
        "SELECT d.oid, d.dictnamespace, n.nspname::text, d.dictname::text, \
         pg_catalog.pg_get_userbyid(d.dictowner)::text, tn.nspname::text, t.tmplname::text, d.dictinitoption \
         FROM pg_catalog.pg_ts_dict d JOIN pg_catalog.pg_namespace n ON n.oid = d.dictnamespace \
         JOIN pg_catalog.pg_ts_template t ON t.oid = d.dicttemplate \
         JOIN pg_catalog.pg_namespace tn ON tn.oid = t.tmplnamespace WHERE {}",
        user_object("pg_ts_dict", "d")
    );
    for r in ctx.query("text search dictionaries", &sql).await? {
        let (oid, nsp, schema, name): (u32, u32, String, String) =
            (r.get(0), r.get(1), r.get(2), r.get(3));
        if !ctx.in_schema(nsp, &schema) {
            continue;
        }
        let mut opts = format!(
            "TEMPLATE = {}",
            q(&r.get::<_, String>(5), &r.get::<_, String>(6))
        );
        if let Some(init) = r.get::<_, Option<String>>(7) {
            opts += ", ";
            opts += &init;
        }
        let qn = q(&schema, &name);
        let target = format!("TEXT SEARCH DICTIONARY {qn}");
        let obj = pre("TEXT SEARCH DICTIONARY", Some(&schema), &name).sql(
            format!("CREATE TEXT SEARCH DICTIONARY {qn} ({opts});"),
            format!("DROP TEXT SEARCH DICTIONARY IF EXISTS {qn};"),
        );
        let id = ctx.add(obj, Some(nsp), Some((&target, r.get(4))));
        ctx.g.claim((PG_TS_DICT, oid), id);
        ctx.commentable((PG_TS_DICT, oid), id, target);
    }
    let sql = format!(
        "SELECT c.oid, c.cfgnamespace, n.nspname::text, c.cfgname::text, \
         pg_catalog.pg_get_userbyid(c.cfgowner)::text, pn.nspname::text, p.prsname::text, \
         ARRAY(SELECT (SELECT t.alias FROM pg_catalog.ts_token_type(c.cfgparser) t WHERE t.tokid = m.maptokentype) \
               FROM pg_catalog.pg_ts_config_map m WHERE m.mapcfg = c.oid \
               GROUP BY m.maptokentype ORDER BY m.maptokentype), \
         ARRAY(SELECT pg_catalog.string_agg(m.mapdict::pg_catalog.regdictionary::text, ', ' ORDER BY m.mapseqno) \
               FROM pg_catalog.pg_ts_config_map m WHERE m.mapcfg = c.oid \
               GROUP BY m.maptokentype ORDER BY m.maptokentype) \
         FROM pg_catalog.pg_ts_config c JOIN pg_catalog.pg_namespace n ON n.oid = c.cfgnamespace \
         JOIN pg_catalog.pg_ts_parser p ON p.oid = c.cfgparser \
         JOIN pg_catalog.pg_namespace pn ON pn.oid = p.prsnamespace WHERE {}",
        user_object("pg_ts_config", "c")
    );
    for r in ctx.query("text search configurations", &sql).await? {
        let (oid, nsp, schema, name): (u32, u32, String, String) =
            (r.get(0), r.get(1), r.get(2), r.get(3));
        if !ctx.in_schema(nsp, &schema) {
            continue;
        }
        let qn = q(&schema, &name);
        let mut sql = format!(
            "CREATE TEXT SEARCH CONFIGURATION {qn} (PARSER = {});\n",
            q(&r.get::<_, String>(5), &r.get::<_, String>(6))
        );
        let tokens: Vec<String> = r.get(7);
        let dicts: Vec<String> = r.get(8);
        for (token, dicts) in tokens.iter().zip(&dicts) {
            sql += &format!(
                "ALTER TEXT SEARCH CONFIGURATION {qn} ADD MAPPING FOR {} WITH {dicts};\n",
                quote_ident(token)
            );
        }
        let target = format!("TEXT SEARCH CONFIGURATION {qn}");
        let obj = pre("TEXT SEARCH CONFIGURATION", Some(&schema), &name).sql(
            sql,
            format!("DROP TEXT SEARCH CONFIGURATION IF EXISTS {qn};"),
        );
        let id = ctx.add(obj, Some(nsp), Some((&target, r.get(4))));
        ctx.g.claim((PG_TS_CONFIG, oid), id);
        ctx.commentable((PG_TS_CONFIG, oid), id, target);
    }
    Ok(())
}

pub(crate) async fn read_event_triggers(ctx: &mut Ctx<'_>) -> Result<(), CatalogError> {
    if !ctx.everything() {
        return Ok(());
    }
    let sql = format!(
        "SELECT e.oid, e.evtname::text, e.evtevent::text, pg_catalog.pg_get_userbyid(e.evtowner)::text, \
         e.evtfoid::pg_catalog.regproc::text, e.evtenabled::text, e.evttags::text[] \
         FROM pg_catalog.pg_event_trigger e WHERE {}",
        user_object("pg_event_trigger", "e")
    );
    for r in ctx.query("event triggers", &sql).await? {
        let oid: u32 = r.get(0);
        let name: String = r.get(1);
        let qn = quote_ident(&name);
        let mut sql = format!(
            "CREATE EVENT TRIGGER {qn} ON {}",
            quote_ident(&r.get::<_, String>(2))
        );
        if let Some(tags) = r.get::<_, Option<Vec<String>>>(6) {
            let tags: Vec<String> = tags.iter().map(|t| quote_literal(t)).collect();
            sql += &format!("\n    WHEN TAG IN ({})", tags.join(", "));
        }
        sql += &format!("\n    EXECUTE FUNCTION {}();\n", r.get::<_, String>(4));
        match r.get::<_, String>(5).as_str() {
            "D" => sql += &format!("ALTER EVENT TRIGGER {qn} DISABLE;\n"),
            "R" => sql += &format!("ALTER EVENT TRIGGER {qn} ENABLE REPLICA;\n"),
            "A" => sql += &format!("ALTER EVENT TRIGGER {qn} ENABLE ALWAYS;\n"),
            _ => {}
        }
        let target = format!("EVENT TRIGGER {qn}");
        let obj = post("EVENT TRIGGER", None, &name)
            .sql(sql, format!("DROP EVENT TRIGGER IF EXISTS {qn};"));
        let id = ctx.add(obj, None, Some((&target, r.get(3))));
        ctx.g.claim((PG_EVENT_TRIGGER, oid), id);
        ctx.commentable((PG_EVENT_TRIGGER, oid), id, target);
    }
    Ok(())
}

/// Event triggers fire during a restore: they come after every other object.
pub(crate) fn order_event_triggers(ctx: &mut Ctx<'_>) {
    let ids: Vec<usize> = (0..ctx.g.len()).collect();
    let (triggers, others): (Vec<usize>, Vec<usize>) = ids
        .into_iter()
        .partition(|&i| ctx.g.get(i).kind == "EVENT TRIGGER");
    if triggers.is_empty() {
        return;
    }
    let others: Vec<usize> = others
        .into_iter()
        .filter(|&i| {
            let o = ctx.g.get(i);
            o.section == Section::PostData
                && !matches!(o.kind, "COMMENT" | "ACL")
                && !o.deps.iter().any(|d| triggers.contains(d))
        })
        .collect();
    for &t in &triggers {
        for &o in &others {
            ctx.g.depend(t, o);
        }
    }
}

pub(crate) async fn read_publications(ctx: &mut Ctx<'_>) -> Result<(), CatalogError> {
    if !ctx.everything() {
        return Ok(());
    }
    let gencols = if ctx.v >= 180000 {
        "p.pubgencols::text"
    } else {
        "NULL::text"
    };
    let sql = format!(
        "SELECT p.oid, p.pubname::text, pg_catalog.pg_get_userbyid(p.pubowner)::text, p.puballtables, \
         p.pubinsert, p.pubupdate, p.pubdelete, p.pubtruncate, p.pubviaroot, {gencols} \
         FROM pg_catalog.pg_publication p ORDER BY p.oid"
    );
    for r in ctx.query("publications", &sql).await? {
        let oid: u32 = r.get(0);
        let name: String = r.get(1);
        let qn = quote_ident(&name);
        let actions: Vec<&str> = [(4, "insert"), (5, "update"), (6, "delete"), (7, "truncate")]
            .iter()
            .filter(|(i, _)| r.get::<_, bool>(*i))
            .map(|(_, a)| *a)
            .collect();
        let mut with = format!("publish = '{}'", actions.join(", "));
        if r.get::<_, bool>(8) {
            with += ", publish_via_partition_root = true";
        }
        if r.get::<_, Option<String>>(9).as_deref() == Some("s") {
            with += ", publish_generated_columns = stored";
        }
        let all = if r.get::<_, bool>(3) {
            " FOR ALL TABLES"
        } else {
            ""
        };
        let target = format!("PUBLICATION {qn}");
        let obj = post("PUBLICATION", None, &name).sql(
            format!("CREATE PUBLICATION {qn}{all} WITH ({with});"),
            format!("DROP PUBLICATION IF EXISTS {qn};"),
        );
        let id = ctx.add(obj, None, Some((&target, r.get(2))));
        ctx.g.claim((PG_PUBLICATION, oid), id);
        ctx.commentable((PG_PUBLICATION, oid), id, target);
    }
    read_publication_members(ctx).await
}

async fn read_publication_members(ctx: &mut Ctx<'_>) -> Result<(), CatalogError> {
    let (qual, cols) = if ctx.v >= 150000 {
        (
            "pg_catalog.pg_get_expr(pr.prqual, pr.prrelid)",
            "ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a WHERE a.attrelid = pr.prrelid \
             AND a.attnum = ANY(pr.prattrs::int2[]) ORDER BY a.attnum)",
        )
    } else {
        ("NULL::text", "NULL::text[]")
    };
    let sql = format!(
        "SELECT pr.prpubid, pr.prrelid, p.pubname::text, {qual}, {cols} \
         FROM pg_catalog.pg_publication_rel pr JOIN pg_catalog.pg_publication p ON p.oid = pr.prpubid"
    );
    for r in ctx.query("publication tables", &sql).await? {
        let Some(pub_id) = ctx.g.id_of((PG_PUBLICATION, r.get(0))) else {
            continue;
        };
        let Some(rel) = ctx.rels.get(&r.get::<_, u32>(1)).cloned() else {
            continue;
        };
        let pubname: String = r.get(2);
        let mut sql = format!(
            "ALTER PUBLICATION {} ADD TABLE ONLY {}",
            quote_ident(&pubname),
            rel.qualified
        );
        if let Some(cols) = r.get::<_, Option<Vec<String>>>(4).filter(|c| !c.is_empty()) {
            let cols: Vec<String> = cols.iter().map(|c| quote_ident(c)).collect();
            sql += &format!(" ({})", cols.join(", "));
        }
        if let Some(qual) = r.get::<_, Option<String>>(3) {
            sql += &format!(" WHERE ({qual})");
        }
        sql += ";";
        let name = format!("{pubname} {}", rel.name);
        let obj = post("PUBLICATION TABLE", Some(&rel.schema), &name).sql(
            sql,
            format!(
                "ALTER PUBLICATION {} DROP TABLE {};",
                quote_ident(&pubname),
                rel.qualified
            ),
        );
        let id = ctx.g.add(obj);
        ctx.g.depend(id, pub_id);
        ctx.g.depend(id, rel.id);
    }
    if ctx.v < 150000 {
        return Ok(());
    }
    let sql = "SELECT pn.pnpubid, pn.pnnspid, p.pubname::text FROM pg_catalog.pg_publication_namespace pn \
               JOIN pg_catalog.pg_publication p ON p.oid = pn.pnpubid";
    for r in ctx.query("publication schemas", sql).await? {
        let Some(pub_id) = ctx.g.id_of((PG_PUBLICATION, r.get(0))) else {
            continue;
        };
        let Some((schema_id, schema)) = ctx.schemas.get(&r.get::<_, u32>(1)).cloned() else {
            continue;
        };
        let pubname: String = r.get(2);
        let obj = post(
            "PUBLICATION TABLES IN SCHEMA",
            None,
            &format!("{pubname} {schema}"),
        )
        .sql(
            format!(
                "ALTER PUBLICATION {} ADD TABLES IN SCHEMA {};",
                quote_ident(&pubname),
                quote_ident(&schema)
            ),
            format!(
                "ALTER PUBLICATION {} DROP TABLES IN SCHEMA {};",
                quote_ident(&pubname),
                quote_ident(&schema)
            ),
        );
        let id = ctx.g.add(obj);
        ctx.g.depend(id, pub_id);
        if let Some(s) = schema_id {
            ctx.g.depend(id, s);
        }
    }
    Ok(())
}

pub(crate) async fn read_default_acls(ctx: &mut Ctx<'_>) -> Result<(), CatalogError> {
    if ctx.opts.no_privileges {
        return Ok(());
    }
    let sql = "SELECT pg_catalog.pg_get_userbyid(d.defaclrole)::text, d.defaclnamespace, n.nspname::text, \
               d.defaclobjtype::text, d.defaclacl::text[], \
               CASE WHEN d.defaclnamespace = 0 THEN pg_catalog.acldefault( \
                   (CASE d.defaclobjtype WHEN 'S' THEN 's' ELSE d.defaclobjtype END)::\"char\", d.defaclrole)::text[] \
               ELSE '{}'::text[] END \
               FROM pg_catalog.pg_default_acl d LEFT JOIN pg_catalog.pg_namespace n ON n.oid = d.defaclnamespace \
               ORDER BY d.oid";
    for r in ctx.query("default privileges", sql).await? {
        let role: String = r.get(0);
        let nsp: u32 = r.get(1);
        let schema: Option<String> = r.get(2);
        match &schema {
            Some(s) if !ctx.in_schema(nsp, s) => continue,
            None if !ctx.everything() => continue,
            _ => {}
        }
        let on = match r.get::<_, String>(3).as_str() {
            "r" => "TABLES",
            "S" => "SEQUENCES",
            "f" => "FUNCTIONS",
            "T" => "TYPES",
            "n" => "SCHEMAS",
            "L" => "LARGE OBJECTS",
            other => {
                ctx.warn("DEFAULT ACL", other, "unknown kind of default privileges");
                continue;
            }
        };
        let mut prefix = format!("ALTER DEFAULT PRIVILEGES FOR ROLE {}", quote_ident(&role));
        if let Some(s) = &schema {
            prefix += &format!(" IN SCHEMA {}", quote_ident(s));
        }
        prefix += " ";
        let target = AclTarget {
            prefix: &prefix,
            on,
            column: None,
            owner: &role,
        };
        ctx.roles.push(role.clone());
        let sql = acl_sql(
            &target,
            &r.get::<_, Vec<String>>(4),
            &r.get::<_, Vec<String>>(5),
            &mut ctx.roles,
        )?;
        if sql.is_empty() {
            continue;
        }
        let obj = post(
            "DEFAULT ACL",
            schema.as_deref(),
            &format!("DEFAULT PRIVILEGES FOR {on}"),
        );
        let mut obj = obj.sql(sql, String::new());
        obj.owner = Some(role);
        ctx.add(obj, Some(nsp), None);
    }
    Ok(())
}

/// Changed privileges of objects created by initdb or by an extension:
/// restored relative to `pg_init_privs`, like pg_dump does.
pub(crate) async fn read_init_privs_changes(ctx: &mut Ctx<'_>) -> Result<(), CatalogError> {
    if !ctx.everything() || ctx.opts.no_privileges {
        return Ok(());
    }
    let current = [
        ("pg_class", "relacl", "relowner", "CASE WHEN x.relkind = 'S' THEN 's' ELSE 'r' END"),
        ("pg_proc", "proacl", "proowner", "'f'"),
        ("pg_namespace", "nspacl", "nspowner", "'n'"),
        ("pg_type", "typacl", "typowner", "'T'"),
        ("pg_language", "lanacl", "lanowner", "'l'"),
        ("pg_foreign_data_wrapper", "fdwacl", "fdwowner", "'F'"),
        ("pg_foreign_server", "srvacl", "srvowner", "'S'"),
    ]
    .iter()
    .map(|(cat, acl, owner, objtype)| {
        format!(
            "SELECT x.{acl} AS acl, x.{owner} AS owner, ({objtype})::\"char\" AS objtype FROM pg_catalog.{cat} x \
             WHERE k.classid = 'pg_catalog.{cat}'::pg_catalog.regclass AND x.oid = k.objid"
        )
    })
    .collect::<Vec<_>>()
    .join(" UNION ALL ");
    // Extension members without pg_init_privs rows started from the default ACL.
    let sql = format!(
        "WITH k AS (SELECT d.classid, d.objid FROM pg_catalog.pg_depend d WHERE d.deptype = 'e' \
                    AND d.objsubid = 0 AND d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass \
                    UNION SELECT ip.classoid, ip.objoid FROM pg_catalog.pg_init_privs ip WHERE ip.objsubid = 0) \
         SELECT o.type, o.identity, \
         COALESCE(ip.initprivs, pg_catalog.acldefault(cur.objtype, cur.owner))::text[], cur.acl::text[], \
         pg_catalog.pg_get_userbyid(cur.owner)::text, ext.refobjid \
         FROM k CROSS JOIN LATERAL pg_catalog.pg_identify_object(k.classid, k.objid, 0) o \
         CROSS JOIN LATERAL ({current}) cur \
         LEFT JOIN pg_catalog.pg_init_privs ip ON ip.classoid = k.classid AND ip.objoid = k.objid AND ip.objsubid = 0 \
         LEFT JOIN pg_catalog.pg_depend ext ON ext.classid = k.classid AND ext.objid = k.objid \
              AND ext.deptype = 'e' \
         WHERE cur.acl IS NOT NULL \
         AND cur.acl IS DISTINCT FROM COALESCE(ip.initprivs, pg_catalog.acldefault(cur.objtype, cur.owner)) \
         AND NOT (k.classid = 'pg_catalog.pg_namespace'::pg_catalog.regclass AND k.objid = 2200) \
         ORDER BY k.classid, k.objid"
    );
    for r in ctx
        .query("changed privileges of built-in objects", &sql)
        .await?
    {
        let keyword = match r.get::<_, String>(0).as_str() {
            "table" | "view" | "materialized view" | "foreign table" => "TABLE",
            "sequence" => "SEQUENCE",
            "function" | "aggregate" => "FUNCTION",
            "procedure" => "PROCEDURE",
            "schema" => "SCHEMA",
            "type" => "TYPE",
            "domain" => "DOMAIN",
            "language" => "LANGUAGE",
            "foreign-data wrapper" => "FOREIGN DATA WRAPPER",
            "server" => "FOREIGN SERVER",
            other => {
                let name: String = r.get(1);
                ctx.warn(
                    "ACL",
                    &name,
                    &format!("changed privileges on a {other} are not dumped"),
                );
                continue;
            }
        };
        let identity: String = r.get(1);
        let extension = r
            .get::<_, Option<u32>>(5)
            .map(|x| ctx.g.id_of((PG_EXTENSION, x)));
        if extension == Some(None) {
            continue; // the extension itself is not dumped
        }
        let on = format!("{keyword} {identity}");
        let owner: String = r.get(4);
        let target = AclTarget {
            prefix: "",
            on: &on,
            column: None,
            owner: &owner,
        };
        let sql = acl_sql(
            &target,
            &r.get::<_, Vec<String>>(3),
            &r.get::<_, Vec<String>>(2),
            &mut ctx.roles,
        )?;
        if sql.is_empty() {
            continue;
        }
        let id = ctx.g.add(pre("ACL", None, &on).sql(sql, String::new()));
        if let Some(Some(ext)) = extension {
            ctx.g.depend(id, ext);
        }
    }
    Ok(())
}

pub(crate) async fn read_comments(ctx: &mut Ctx<'_>) -> Result<(), CatalogError> {
    let sql = "SELECT d.classoid, d.objoid, d.objsubid, d.description FROM pg_catalog.pg_description d \
               WHERE d.objoid >= 16384 OR (d.classoid = 'pg_catalog.pg_namespace'::pg_catalog.regclass AND d.objoid = 2200)";
    for r in ctx.query("comments", sql).await? {
        let key = (r.get::<_, u32>(0), r.get::<_, u32>(1));
        let sub: i32 = r.get(2);
        let text: String = r.get(3);
        let found = if sub == 0 {
            ctx.comment_targets.get(&key).cloned()
        } else {
            ctx.columns.get(&(key.1, sub)).cloned()
        };
        let Some((of, target)) = found else { continue };
        if key == (PG_NAMESPACE, 2200) && text == "standard public schema" {
            continue;
        }
        let (schema, section) = match of {
            Some(of) => (ctx.g.get(of).schema.clone(), ctx.g.get(of).section),
            None => (None, Section::PreData),
        };
        let obj = Obj::new("COMMENT", schema.as_deref(), &target, section).sql(
            format!("COMMENT ON {target} IS {};", quote_literal(&text)),
            String::new(),
        );
        let id = ctx.g.add(obj);
        if let Some(of) = of {
            ctx.g.depend(id, of);
        }
    }
    Ok(())
}

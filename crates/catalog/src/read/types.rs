//! Enum, composite, domain and range types.

use super::{post, pre, q, user_object, Ctx};
use crate::graph::class::*;
use crate::{quote_ident, quote_literal, CatalogError};
use std::collections::HashMap;

/// SQL expression: the qualified, quoted name of collation `oid`.
pub(crate) fn collation_name(oid: &str) -> String {
    format!(
        "(SELECT pg_catalog.quote_ident(cn.nspname) || '.' || pg_catalog.quote_ident(co.collname) \
         FROM pg_catalog.pg_collation co JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace \
         WHERE co.oid = {oid})"
    )
}

pub(crate) async fn read_types(ctx: &mut Ctx<'_>) -> Result<(), CatalogError> {
    let multirange = "r.rngmultitypid";
    let sql = format!(
        "SELECT t.oid, t.typnamespace, n.nspname::text, t.typname::text, \
         pg_catalog.pg_get_userbyid(t.typowner)::text, t.typtype::text, t.typarray, \
         t.typacl::text[], pg_catalog.acldefault('T', t.typowner)::text[], \
         ARRAY(SELECT e.enumlabel::text FROM pg_catalog.pg_enum e WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder), \
         pg_catalog.format_type(t.typbasetype, t.typtypmod), t.typnotnull, pg_catalog.pg_get_expr(t.typdefaultbin, 0), \
         CASE WHEN t.typtype = 'd' AND t.typcollation <> bt.typcollation THEN {coll} END, \
         pg_catalog.format_type(r.rngsubtype, NULL), \
         (SELECT pg_catalog.quote_ident(ocn.nspname) || '.' || pg_catalog.quote_ident(oc.opcname) \
            FROM pg_catalog.pg_opclass oc JOIN pg_catalog.pg_namespace ocn ON ocn.oid = oc.opcnamespace \
            WHERE oc.oid = r.rngsubopc AND NOT oc.opcdefault), \
         CASE WHEN r.rngcollation <> st.typcollation THEN {rcoll} END, \
         NULLIF(r.rngcanonical::oid, 0)::pg_catalog.regproc::text, NULLIF(r.rngsubdiff::oid, 0)::pg_catalog.regproc::text, \
         {multirange}, (SELECT pg_catalog.quote_ident(mn.nspname) || '.' || pg_catalog.quote_ident(m.typname) \
            FROM pg_catalog.pg_type m JOIN pg_catalog.pg_namespace mn ON mn.oid = m.typnamespace WHERE m.oid = {multirange}), \
         (SELECT m.typarray FROM pg_catalog.pg_type m WHERE m.oid = {multirange}), t.typrelid \
         FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace \
         LEFT JOIN pg_catalog.pg_type bt ON bt.oid = t.typbasetype \
         LEFT JOIN pg_catalog.pg_range r ON r.rngtypid = t.oid \
         LEFT JOIN pg_catalog.pg_type st ON st.oid = r.rngsubtype \
         WHERE t.typtype IN ('e', 'c', 'd', 'r') \
         AND (t.typtype <> 'c' OR (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = t.typrelid) = 'c') \
         AND {} ORDER BY t.oid",
        user_object("pg_type", "t"),
        coll = collation_name("t.typcollation"),
        rcoll = collation_name("r.rngcollation"),
    );
    let rows = ctx.query("types", &sql).await?;
    let attrs = read_composite_attributes(ctx).await?;
    let checks = read_domain_constraints(ctx).await?;
    for r in rows {
        let (oid, nsp, schema, name): (u32, u32, String, String) =
            (r.get(0), r.get(1), r.get(2), r.get(3));
        if !ctx.in_schema(nsp, &schema) {
            continue;
        }
        let owner: String = r.get(4);
        let typtype: String = r.get(5);
        let qn = q(&schema, &name);
        let (kind, keyword, body) = match typtype.as_str() {
            "e" => {
                let labels: Vec<String> = r
                    .get::<_, Vec<String>>(9)
                    .iter()
                    .map(|l| quote_literal(l))
                    .collect();
                (
                    "TYPE",
                    "TYPE",
                    format!(
                        "CREATE TYPE {qn} AS ENUM (\n    {}\n);",
                        labels.join(",\n    ")
                    ),
                )
            }
            "c" => {
                let relid: u32 = r.get(22);
                let cols = attrs.get(&relid).cloned().unwrap_or_default();
                let mut lines = Vec::new();
                for (attnum, col, ty, coll) in cols {
                    let mut line = format!("{} {ty}", quote_ident(&col));
                    if let Some(c) = coll {
                        line += &format!(" COLLATE {c}");
                    }
                    lines.push(line);
                    ctx.columns.insert(
                        (relid, attnum),
                        (None, format!("COLUMN {qn}.{}", quote_ident(&col))),
                    );
                }
                (
                    "TYPE",
                    "TYPE",
                    format!("CREATE TYPE {qn} AS (\n    {}\n);", lines.join(",\n    ")),
                )
            }
            "d" => {
                let mut sql = format!("CREATE DOMAIN {qn} AS {}", r.get::<_, String>(10));
                if let Some(c) = r.get::<_, Option<String>>(13) {
                    sql += &format!(" COLLATE {c}");
                }
                if let Some(d) = r.get::<_, Option<String>>(12) {
                    sql += &format!(" DEFAULT {d}");
                }
                if r.get::<_, bool>(11) && ctx.v < 170000 {
                    sql += " NOT NULL";
                }
                for c in checks.get(&oid).map(Vec::as_slice).unwrap_or_default() {
                    if !c.separate && c.validated {
                        sql += &format!("\n    CONSTRAINT {} {}", quote_ident(&c.name), c.def);
                    }
                }
                sql += ";";
                ("DOMAIN", "DOMAIN", sql)
            }
            _ => {
                let mut opts = vec![format!("subtype = {}", r.get::<_, String>(14))];
                if let Some(m) = r.get::<_, Option<String>>(20) {
                    opts.push(format!("multirange_type_name = {m}"));
                }
                if let Some(o) = r.get::<_, Option<String>>(15) {
                    opts.push(format!("subtype_opclass = {o}"));
                }
                if let Some(c) = r.get::<_, Option<String>>(16) {
                    opts.push(format!("collation = {c}"));
                }
                if let Some(f) = r.get::<_, Option<String>>(17) {
                    opts.push(format!("canonical = {f}"));
                }
                if let Some(f) = r.get::<_, Option<String>>(18) {
                    opts.push(format!("subtype_diff = {f}"));
                }
                (
                    "TYPE",
                    "TYPE",
                    format!(
                        "CREATE TYPE {qn} AS RANGE (\n    {}\n);",
                        opts.join(",\n    ")
                    ),
                )
            }
        };
        let target = format!("{keyword} {qn}");
        let obj =
            pre(kind, Some(&schema), &name).sql(body, format!("DROP {keyword} IF EXISTS {qn};"));
        let id = ctx.add(obj, Some(nsp), Some((&target, owner.clone())));
        ctx.g.claim((PG_TYPE, oid), id);
        ctx.g.claim((PG_TYPE, r.get(6)), id);
        if typtype == "c" {
            let relid: u32 = r.get(22);
            ctx.g.claim((PG_CLASS, relid), id);
            for ((rel, _), col) in ctx.columns.iter_mut() {
                if *rel == relid {
                    col.0 = Some(id);
                }
            }
        }
        if typtype == "r" {
            // The multirange type and its array come with the range type.
            if let Some(m) = r.get::<_, Option<u32>>(19).filter(|&m| m != 0) {
                ctx.g.claim((PG_TYPE, m), id);
            }
            if let Some(a) = r.get::<_, Option<u32>>(21) {
                ctx.g.claim((PG_TYPE, a), id);
            }
        }
        for c in checks.get(&oid).map(Vec::as_slice).unwrap_or_default() {
            let cn = quote_ident(&c.name);
            // Like pg_dump: one calling a function that takes the domain comes
            // after both; a NOT VALID one after the data, which may break it.
            let of = if c.separate || !c.validated {
                let section = if c.validated { pre } else { post };
                let obj = section(
                    "CHECK CONSTRAINT",
                    Some(&schema),
                    &format!("{name} {}", c.name),
                )
                .sql(
                    format!("ALTER DOMAIN {qn} ADD CONSTRAINT {cn} {};", c.def),
                    format!("ALTER DOMAIN {qn} DROP CONSTRAINT IF EXISTS {cn};"),
                );
                let separate = ctx.g.add(obj);
                ctx.g.depend(separate, id);
                separate
            } else {
                id
            };
            ctx.g.claim((PG_CONSTRAINT, c.oid), of);
            ctx.commentable(
                (PG_CONSTRAINT, c.oid),
                of,
                format!("CONSTRAINT {cn} ON DOMAIN {qn}"),
            );
        }
        ctx.commentable((PG_TYPE, oid), id, target.clone());
        ctx.acl(Some(id), &target, &owner, r.get(7), r.get(8))?;
    }
    Ok(())
}

type Attr = (i32, String, String, Option<String>);

async fn read_composite_attributes(ctx: &Ctx<'_>) -> Result<HashMap<u32, Vec<Attr>>, CatalogError> {
    let sql = format!(
        "SELECT a.attrelid, a.attnum::int4, a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod), \
         CASE WHEN a.attcollation <> at.typcollation THEN {} END \
         FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
         JOIN pg_catalog.pg_type at ON at.oid = a.atttypid \
         WHERE c.relkind = 'c' AND c.oid >= 16384 AND a.attnum > 0 AND NOT a.attisdropped \
         ORDER BY a.attrelid, a.attnum",
        collation_name("a.attcollation")
    );
    let mut out: HashMap<u32, Vec<Attr>> = HashMap::new();
    for r in ctx.query("composite type attributes", &sql).await? {
        out.entry(r.get(0))
            .or_default()
            .push((r.get(1), r.get(2), r.get(3), r.get(4)));
    }
    Ok(out)
}

struct DomainConstraint {
    oid: u32,
    name: String,
    def: String,
    validated: bool,
    /// It calls a function taking the domain: added after both exist.
    separate: bool,
}

async fn read_domain_constraints(
    ctx: &Ctx<'_>,
) -> Result<HashMap<u32, Vec<DomainConstraint>>, CatalogError> {
    let sql = "SELECT c.contypid, c.oid, c.conname::text, pg_catalog.pg_get_constraintdef(c.oid), c.convalidated, \
               EXISTS (SELECT 1 FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_depend fd \
                   ON fd.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND fd.objid = d.refobjid \
                 WHERE d.classid = 'pg_catalog.pg_constraint'::pg_catalog.regclass AND d.objid = c.oid \
                 AND d.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND d.refobjid >= 16384 \
                 AND fd.refclassid = 'pg_catalog.pg_type'::pg_catalog.regclass AND fd.refobjid = c.contypid) \
               FROM pg_catalog.pg_constraint c WHERE c.contypid <> 0 ORDER BY c.contypid, c.conname";
    let mut out: HashMap<u32, Vec<DomainConstraint>> = HashMap::new();
    for r in ctx.query("domain constraints", sql).await? {
        let validated: bool = r.get(4);
        let mut def: String = r.get(3);
        if !validated {
            def = def.trim_end_matches(" NOT VALID").to_string() + " NOT VALID";
        }
        out.entry(r.get(0)).or_default().push(DomainConstraint {
            oid: r.get(1),
            name: r.get(2),
            def,
            validated,
            separate: r.get(5),
        });
    }
    Ok(out)
}

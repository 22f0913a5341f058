//! Post-data objects of tables: constraints, indexes, triggers, rules,
//! policies, extended statistics; and the order of matview refreshes.

use super::{post, q, Ctx, Rel};
use crate::graph::class::*;
use crate::{quote_ident, CatalogError};

/// What an index statement adds after itself: CLUSTER ON and REPLICA IDENTITY.
fn index_extras(rel: &Rel, index_name: &str, clustered: bool, replident: bool) -> String {
    let mut sql = String::new();
    if clustered {
        sql += &format!(
            "\nALTER TABLE {} CLUSTER ON {};",
            rel.qualified,
            quote_ident(index_name)
        );
    }
    if replident {
        sql += &format!(
            "\nALTER TABLE ONLY {} REPLICA IDENTITY USING INDEX {};",
            rel.qualified,
            quote_ident(index_name)
        );
    }
    sql
}

pub(crate) async fn read_constraints(ctx: &mut Ctx<'_>) -> Result<(), CatalogError> {
    let sql = "SELECT c.oid, c.conrelid, c.conname::text, c.contype::text, pg_catalog.pg_get_constraintdef(c.oid), \
               c.conindid, c.conparentid, COALESCE(i.indisclustered, false), COALESCE(i.indisreplident, false), \
               ic.relname::text, n.nspname::text \
               FROM pg_catalog.pg_constraint c \
               LEFT JOIN pg_catalog.pg_index i ON i.indexrelid = c.conindid AND c.contype <> 'f' \
               LEFT JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid \
               LEFT JOIN pg_catalog.pg_namespace n ON n.oid = ic.relnamespace \
               WHERE c.contype IN ('p', 'u', 'x', 'f') AND c.conrelid >= 16384 ORDER BY c.oid";
    for r in ctx.query("constraints", sql).await? {
        let oid: u32 = r.get(0);
        let Some(rel) = ctx.rels.get(&r.get::<_, u32>(1)).cloned() else {
            continue;
        };
        let name: String = r.get(2);
        let contype: String = r.get(3);
        let def: String = r.get(4);
        let parent: u32 = r.get(6);
        let fk = contype == "f";
        if fk && parent != 0 {
            // Cloned onto a partition by the parent's foreign key.
            continue;
        }
        let only = if fk && rel.kind == 'p' { "" } else { "ONLY " };
        let cn = quote_ident(&name);
        let mut sql = format!(
            "ALTER TABLE {only}{}\n    ADD CONSTRAINT {cn} {def};",
            rel.qualified
        );
        let index_name: Option<String> = r.get(9);
        if let Some(index) = &index_name {
            sql += &index_extras(&rel, index, r.get(7), r.get(8));
        }
        let kind = if fk { "FK CONSTRAINT" } else { "CONSTRAINT" };
        let obj = post(kind, Some(&rel.schema), &format!("{} {name}", rel.name)).sql(
            sql,
            format!(
                "ALTER TABLE IF EXISTS {only}{} DROP CONSTRAINT IF EXISTS {cn};",
                rel.qualified
            ),
        );
        let id = ctx.g.add(obj);
        ctx.g.depend(id, rel.id);
        ctx.g.claim((PG_CONSTRAINT, oid), id);
        ctx.commentable(
            (PG_CONSTRAINT, oid),
            id,
            format!("CONSTRAINT {cn} ON {}", rel.qualified),
        );
        if let (false, Some(index), Some(schema)) = (fk, index_name, r.get::<_, Option<String>>(10))
        {
            ctx.g.claim((PG_CLASS, r.get(5)), id);
            ctx.commentable(
                (PG_CLASS, r.get(5)),
                id,
                format!("INDEX {}", q(&schema, &index)),
            );
        }
    }
    Ok(())
}

/// Not TOAST tables' indexes (pg_get_indexdef of each would cost as much
/// as all the others on a database of small tables).
pub(crate) async fn read_indexes(ctx: &mut Ctx<'_>) -> Result<(), CatalogError> {
    let sql = "SELECT i.indexrelid, i.indrelid, ic.relname::text, n.nspname::text, \
               pg_catalog.pg_get_indexdef(i.indexrelid), i.indisclustered, i.indisreplident, \
               ARRAY(SELECT a.attnum::int4 FROM pg_catalog.pg_attribute a WHERE a.attrelid = i.indexrelid \
                     AND a.attstattarget >= 0 ORDER BY a.attnum), \
               ARRAY(SELECT a.attstattarget::int4 FROM pg_catalog.pg_attribute a WHERE a.attrelid = i.indexrelid \
                     AND a.attstattarget >= 0 ORDER BY a.attnum), \
               ic.reltablespace <> 0 \
               FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid \
               JOIN pg_catalog.pg_namespace n ON n.oid = ic.relnamespace \
               WHERE i.indrelid >= 16384 AND (i.indisvalid OR ic.relkind = 'I') \
               AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema' \
               AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint c WHERE c.conindid = i.indexrelid \
                   AND c.conrelid = i.indrelid AND c.contype IN ('p', 'u', 'x')) \
               ORDER BY i.indexrelid";
    for r in ctx.query("indexes", sql).await? {
        let oid: u32 = r.get(0);
        let Some(rel) = ctx.rels.get(&r.get::<_, u32>(1)).cloned() else {
            continue;
        };
        let name: String = r.get(2);
        let schema: String = r.get(3);
        let qn = q(&schema, &name);
        let mut sql = format!("{};", r.get::<_, String>(4));
        let cols: Vec<i32> = r.get(7);
        let targets: Vec<i32> = r.get(8);
        for (c, t) in cols.iter().zip(&targets) {
            sql += &format!("\nALTER INDEX {qn} ALTER COLUMN {c} SET STATISTICS {t};");
        }
        sql += &index_extras(&rel, &name, r.get(5), r.get(6));
        if r.get::<_, bool>(9) {
            ctx.warn(
                "TABLESPACE",
                &format!("{schema}.{name}"),
                "index created in the default tablespace: tablespaces are not dumped",
            );
        }
        let obj =
            post("INDEX", Some(&schema), &name).sql(sql, format!("DROP INDEX IF EXISTS {qn};"));
        let id = ctx.g.add(obj);
        ctx.g.depend(id, rel.id);
        ctx.g.claim((PG_CLASS, oid), id);
        ctx.commentable((PG_CLASS, oid), id, format!("INDEX {qn}"));
    }
    read_index_attachments(ctx).await
}

/// A partition's index joins its parent's partitioned index.
async fn read_index_attachments(ctx: &mut Ctx<'_>) -> Result<(), CatalogError> {
    let sql = "SELECT i.inhrelid, i.inhparent, pn.nspname::text, p.relname::text, cn.nspname::text, c.relname::text \
               FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid \
               JOIN pg_catalog.pg_namespace cn ON cn.oid = c.relnamespace \
               JOIN pg_catalog.pg_class p ON p.oid = i.inhparent JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace \
               WHERE c.relkind IN ('i', 'I') AND c.oid >= 16384";
    for r in ctx.query("index partitions", sql).await? {
        let (Some(child), Some(parent)) = (
            ctx.g.id_of((PG_CLASS, r.get(0))),
            ctx.g.id_of((PG_CLASS, r.get(1))),
        ) else {
            continue;
        };
        let parent_qn = q(&r.get::<_, String>(2), &r.get::<_, String>(3));
        let child_name: String = r.get(5);
        let child_qn = q(&r.get::<_, String>(4), &child_name);
        let obj = post("INDEX ATTACH", Some(&r.get::<_, String>(4)), &child_name).sql(
            format!("ALTER INDEX {parent_qn} ATTACH PARTITION {child_qn};"),
            String::new(),
        );
        let id = ctx.g.add(obj);
        ctx.g.depend(id, child);
        ctx.g.depend(id, parent);
        // An attached index (or its constraint) is dropped with its parent's.
        ctx.g.no_drop(child);
        ctx.index_attachments
            .entry(parent)
            .or_default()
            .push((id, child));
    }
    Ok(())
}

pub(crate) async fn read_triggers(ctx: &mut Ctx<'_>) -> Result<(), CatalogError> {
    let sql =
        "SELECT t.oid, t.tgrelid, t.tgname::text, pg_catalog.pg_get_triggerdef(t.oid, false), \
               t.tgenabled::text, t.tgconstraint, t.tgparentid, p.tgenabled::text \
               FROM pg_catalog.pg_trigger t LEFT JOIN pg_catalog.pg_trigger p ON p.oid = t.tgparentid \
               WHERE (NOT t.tgisinternal OR (t.tgparentid <> 0 AND t.tgconstraint = 0)) \
               AND t.tgrelid >= 16384 ORDER BY t.tgparentid <> 0, t.oid";
    for r in ctx.query("triggers", sql).await? {
        let oid: u32 = r.get(0);
        let Some(rel) = ctx.rels.get(&r.get::<_, u32>(1)).cloned() else {
            continue;
        };
        let name: String = r.get(2);
        let tn = quote_ident(&name);
        let enabled: String = r.get(4);
        let parent: u32 = r.get(6);
        if parent != 0 {
            cloned_trigger_state(ctx, &rel, &name, parent, &enabled, r.get(7));
            continue;
        }
        let mut sql = format!("{};", r.get::<_, String>(3));
        let state = trigger_state(&enabled);
        if enabled != "O" {
            sql += &format!("\nALTER TABLE {} {state} {tn};", rel.qualified);
        }
        let obj = post(
            "TRIGGER",
            Some(&rel.schema),
            &format!("{} {name}", rel.name),
        )
        .sql(
            sql,
            format!("DROP TRIGGER IF EXISTS {tn} ON {};", rel.qualified),
        );
        let id = ctx.g.add(obj);
        ctx.g.depend(id, rel.id);
        ctx.g.claim((PG_TRIGGER, oid), id);
        let constraint: u32 = r.get(5);
        if constraint != 0 {
            ctx.g.claim((PG_CONSTRAINT, constraint), id);
        }
        ctx.commentable(
            (PG_TRIGGER, oid),
            id,
            format!("TRIGGER {tn} ON {}", rel.qualified),
        );
    }
    Ok(())
}

fn trigger_state(enabled: &str) -> &'static str {
    match enabled {
        "D" => "DISABLE TRIGGER",
        "R" => "ENABLE REPLICA TRIGGER",
        "A" => "ENABLE ALWAYS TRIGGER",
        _ => "ENABLE TRIGGER",
    }
}

/// A partition's copy of its parent's trigger comes with the parent's; only
/// a different enabled state is its own. (Up to 14 such copies are marked
/// internal.)
fn cloned_trigger_state(
    ctx: &mut Ctx<'_>,
    rel: &Rel,
    name: &str,
    parent: u32,
    enabled: &str,
    parent_enabled: Option<String>,
) {
    if parent_enabled.as_deref() == Some(enabled) {
        return;
    }
    let Some(parent_id) = ctx.g.id_of((PG_TRIGGER, parent)) else {
        return;
    };
    let sql = format!(
        "ALTER TABLE {} {} {};",
        rel.qualified,
        trigger_state(enabled),
        quote_ident(name)
    );
    let obj = post(
        "TRIGGER",
        Some(&rel.schema),
        &format!("{} {name}", rel.name),
    )
    .sql(sql, String::new());
    let id = ctx.g.add(obj);
    ctx.g.depend(id, rel.id);
    ctx.g.depend(id, parent_id);
}

pub(crate) async fn read_rules(ctx: &mut Ctx<'_>) -> Result<(), CatalogError> {
    let sql = "SELECT r.oid, r.ev_class, r.rulename::text, pg_catalog.pg_get_ruledef(r.oid), r.ev_enabled::text \
               FROM pg_catalog.pg_rewrite r WHERE r.rulename <> '_RETURN' AND r.ev_class >= 16384 ORDER BY r.oid";
    for r in ctx.query("rules", sql).await? {
        let oid: u32 = r.get(0);
        let Some(rel) = ctx.rels.get(&r.get::<_, u32>(1)).cloned() else {
            continue;
        };
        let name: String = r.get(2);
        let rn = quote_ident(&name);
        let mut sql: String = r.get(3);
        let state = match r.get::<_, String>(4).as_str() {
            "D" => "DISABLE RULE",
            "R" => "ENABLE REPLICA RULE",
            "A" => "ENABLE ALWAYS RULE",
            _ => "",
        };
        if !state.is_empty() {
            sql += &format!("\nALTER TABLE {} {state} {rn};", rel.qualified);
        }
        let obj = post("RULE", Some(&rel.schema), &format!("{} {name}", rel.name)).sql(
            sql,
            format!("DROP RULE IF EXISTS {rn} ON {};", rel.qualified),
        );
        let id = ctx.g.add(obj);
        ctx.g.depend(id, rel.id);
        ctx.g.claim((PG_REWRITE, oid), id);
        ctx.commentable(
            (PG_REWRITE, oid),
            id,
            format!("RULE {rn} ON {}", rel.qualified),
        );
    }
    Ok(())
}

pub(crate) async fn read_policies(ctx: &mut Ctx<'_>) -> Result<(), CatalogError> {
    let sql = "SELECT p.oid, p.polrelid, p.polname::text, p.polcmd::text, p.polpermissive, \
               ARRAY(SELECT CASE WHEN x = 0 THEN NULL ELSE pg_catalog.pg_get_userbyid(x)::text END \
                     FROM pg_catalog.unnest(p.polroles) x), \
               pg_catalog.pg_get_expr(p.polqual, p.polrelid), pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) \
               FROM pg_catalog.pg_policy p ORDER BY p.oid";
    for r in ctx.query("policies", sql).await? {
        let oid: u32 = r.get(0);
        let Some(rel) = ctx.rels.get(&r.get::<_, u32>(1)).cloned() else {
            continue;
        };
        let name: String = r.get(2);
        let pn = quote_ident(&name);
        let cmd = match r.get::<_, String>(3).as_str() {
            "r" => "SELECT",
            "a" => "INSERT",
            "w" => "UPDATE",
            "d" => "DELETE",
            _ => "ALL",
        };
        let how = if r.get::<_, bool>(4) {
            "PERMISSIVE"
        } else {
            "RESTRICTIVE"
        };
        let roles: Vec<Option<String>> = r.get(5);
        let mut to = Vec::new();
        for role in roles {
            match role {
                Some(role) => {
                    ctx.roles.push(role.clone());
                    to.push(quote_ident(&role));
                }
                None => to.push("PUBLIC".to_string()),
            }
        }
        let mut sql = format!(
            "CREATE POLICY {pn} ON {} AS {how} FOR {cmd} TO {}",
            rel.qualified,
            to.join(", ")
        );
        if let Some(q) = r.get::<_, Option<String>>(6) {
            sql += &format!(" USING ({q})");
        }
        if let Some(c) = r.get::<_, Option<String>>(7) {
            sql += &format!(" WITH CHECK ({c})");
        }
        sql += ";";
        let obj = post("POLICY", Some(&rel.schema), &format!("{} {name}", rel.name)).sql(
            sql,
            format!("DROP POLICY IF EXISTS {pn} ON {};", rel.qualified),
        );
        let id = ctx.g.add(obj);
        ctx.g.depend(id, rel.id);
        ctx.g.claim((PG_POLICY, oid), id);
        ctx.commentable(
            (PG_POLICY, oid),
            id,
            format!("POLICY {pn} ON {}", rel.qualified),
        );
    }
    Ok(())
}

pub(crate) async fn read_statistics(ctx: &mut Ctx<'_>) -> Result<(), CatalogError> {
    let sql = "SELECT s.oid, s.stxrelid, n.nspname::text, s.stxname::text, \
               pg_catalog.pg_get_userbyid(s.stxowner)::text, pg_catalog.pg_get_statisticsobjdef(s.oid), \
               CASE WHEN s.stxstattarget >= 0 THEN s.stxstattarget::int4 END, s.stxnamespace \
               FROM pg_catalog.pg_statistic_ext s JOIN pg_catalog.pg_namespace n ON n.oid = s.stxnamespace \
               ORDER BY s.oid";
    for r in ctx.query("extended statistics", sql).await? {
        let oid: u32 = r.get(0);
        let Some(rel) = ctx.rels.get(&r.get::<_, u32>(1)).cloned() else {
            continue;
        };
        let schema: String = r.get(2);
        let name: String = r.get(3);
        let qn = q(&schema, &name);
        let mut sql = format!("{};", r.get::<_, String>(5));
        if let Some(t) = r.get::<_, Option<i32>>(6) {
            sql += &format!("\nALTER STATISTICS {qn} SET STATISTICS {t};");
        }
        let target = format!("STATISTICS {qn}");
        let obj = post("STATISTICS", Some(&schema), &name)
            .sql(sql, format!("DROP STATISTICS IF EXISTS {qn};"));
        let id = ctx.add(obj, Some(r.get(7)), Some((&target, r.get(4))));
        ctx.g.depend(id, rel.id);
        ctx.g.claim((PG_STATISTIC_EXT, oid), id);
        ctx.commentable((PG_STATISTIC_EXT, oid), id, target);
    }
    Ok(())
}

/// A materialized view reading another one is refreshed after it.
pub(crate) fn order_refreshes(ctx: &mut Ctx<'_>) {
    let pairs: Vec<(usize, usize)> = ctx.matview_data.iter().map(|(&v, &d)| (v, d)).collect();
    for (view, data) in pairs {
        let deps = ctx.g.get(view).deps.clone();
        for d in deps {
            if let Some(&other) = ctx.matview_data.get(&d) {
                ctx.g.depend(data, other);
            }
        }
    }
}

/// A partitioned index is valid only once every partition's index is
/// attached: a foreign key referencing it waits for all those attachments.
pub(crate) fn wait_for_index_attachments(ctx: &mut Ctx<'_>) {
    let fks: Vec<usize> = (0..ctx.g.len())
        .filter(|&i| ctx.g.get(i).kind == "FK CONSTRAINT")
        .collect();
    for fk in fks {
        let mut pending: Vec<usize> = ctx.g.get(fk).deps.clone();
        let mut extra = Vec::new();
        while let Some(index) = pending.pop() {
            for &(attach, child) in ctx
                .index_attachments
                .get(&index)
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                extra.push(attach);
                pending.push(child);
            }
        }
        for attach in extra {
            ctx.g.depend(fk, attach);
        }
    }
}

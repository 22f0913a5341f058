//! Functions, procedures, aggregates, operators and casts.

use super::{pre, q, user_object, Ctx};
use crate::graph::class::*;
use crate::{quote_ident, quote_literal, CatalogError};

pub(crate) async fn read_functions(ctx: &mut Ctx<'_>) -> Result<(), CatalogError> {
    let sql = format!(
        "SELECT p.oid, p.pronamespace, n.nspname::text, p.proname::text, \
         pg_catalog.pg_get_userbyid(p.proowner)::text, p.prokind::text, \
         pg_catalog.pg_get_function_identity_arguments(p.oid), p.proacl::text[], \
         pg_catalog.acldefault('f', p.proowner)::text[], pg_catalog.pg_get_functiondef(p.oid) \
         FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace \
         WHERE p.prokind <> 'a' AND {} ORDER BY p.oid",
        user_object("pg_proc", "p")
    );
    for r in ctx.query("functions", &sql).await? {
        let (oid, nsp, schema, name): (u32, u32, String, String) =
            (r.get(0), r.get(1), r.get(2), r.get(3));
        if !ctx.in_schema(nsp, &schema) {
            continue;
        }
        let owner: String = r.get(4);
        let (kind, keyword) = if r.get::<_, String>(5) == "p" {
            ("PROCEDURE", "PROCEDURE")
        } else {
            ("FUNCTION", "FUNCTION")
        };
        let args: String = r.get(6);
        let signature = format!("{}({args})", q(&schema, &name));
        let def: String = r.get(9);
        let target = format!("{keyword} {signature}");
        let obj = pre(kind, Some(&schema), &format!("{name}({args})")).sql(
            format!("{};", def.trim_end()),
            format!("DROP {keyword} IF EXISTS {signature};"),
        );
        let id = ctx.add(obj, Some(nsp), Some((&target, owner.clone())));
        ctx.g.claim((PG_PROC, oid), id);
        ctx.commentable((PG_PROC, oid), id, target.clone());
        ctx.acl(Some(id), &target, &owner, r.get(7), r.get(8))?;
    }
    Ok(())
}

/// SQL expression: `OPERATOR("schema".op)` for operator `oid`, or NULL.
fn operator_ref(oid: &str) -> String {
    format!(
        "(SELECT 'OPERATOR(' || pg_catalog.quote_ident(xn.nspname) || '.' || x.oprname || ')' \
         FROM pg_catalog.pg_operator x JOIN pg_catalog.pg_namespace xn ON xn.oid = x.oprnamespace WHERE x.oid = {oid})"
    )
}

fn proc_ref(col: &str) -> String {
    format!("NULLIF({col}::oid, 0)::pg_catalog.regproc::text")
}

pub(crate) async fn read_aggregates(ctx: &mut Ctx<'_>) -> Result<(), CatalogError> {
    let sql = format!(
        "SELECT p.oid, p.pronamespace, n.nspname::text, p.proname::text, \
         pg_catalog.pg_get_userbyid(p.proowner)::text, \
         pg_catalog.pg_get_function_identity_arguments(p.oid), pg_catalog.pg_get_function_arguments(p.oid), \
         p.proacl::text[], pg_catalog.acldefault('f', p.proowner)::text[], a.aggkind::text, \
         {transfn}, pg_catalog.format_type(a.aggtranstype, NULL), a.aggtransspace, \
         {finalfn}, a.aggfinalextra, a.aggfinalmodify::text, {combinefn}, {serialfn}, {deserialfn}, a.agginitval, \
         {mtransfn}, {minvtransfn}, CASE WHEN a.aggmtranstype <> 0 THEN pg_catalog.format_type(a.aggmtranstype, NULL) END, \
         a.aggmtransspace, {mfinalfn}, a.aggmfinalextra, a.aggmfinalmodify::text, a.aggminitval, {sortop}, \
         p.proparallel::text \
         FROM pg_catalog.pg_aggregate a JOIN pg_catalog.pg_proc p ON p.oid = a.aggfnoid \
         JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace WHERE {} ORDER BY p.oid",
        user_object("pg_proc", "p"),
        transfn = proc_ref("a.aggtransfn"),
        finalfn = proc_ref("a.aggfinalfn"),
        combinefn = proc_ref("a.aggcombinefn"),
        serialfn = proc_ref("a.aggserialfn"),
        deserialfn = proc_ref("a.aggdeserialfn"),
        mtransfn = proc_ref("a.aggmtransfn"),
        minvtransfn = proc_ref("a.aggminvtransfn"),
        mfinalfn = proc_ref("a.aggmfinalfn"),
        sortop = operator_ref("a.aggsortop"),
    );
    for r in ctx.query("aggregates", &sql).await? {
        let (oid, nsp, schema, name): (u32, u32, String, String) =
            (r.get(0), r.get(1), r.get(2), r.get(3));
        if !ctx.in_schema(nsp, &schema) {
            continue;
        }
        let owner: String = r.get(4);
        let ident_args: String = r.get(5);
        let mut args: String = r.get(6);
        if args.is_empty() {
            args = "*".to_string();
        }
        let mut opts = vec![
            format!("SFUNC = {}", r.get::<_, String>(10)),
            format!("STYPE = {}", r.get::<_, String>(11)),
        ];
        let mut opt = |label: &str, value: Option<String>| {
            if let Some(v) = value {
                opts.push(format!("{label} = {v}"));
            }
        };
        let space: i32 = r.get(12);
        opt("SSPACE", (space != 0).then(|| space.to_string()));
        let finalfn: Option<String> = r.get(13);
        let has_final = finalfn.is_some();
        opt("FINALFUNC", finalfn);
        opt(
            "FINALFUNC_MODIFY",
            has_final.then(|| modify(&r.get::<_, String>(15))),
        );
        opt("COMBINEFUNC", r.get(16));
        opt("SERIALFUNC", r.get(17));
        opt("DESERIALFUNC", r.get(18));
        opt(
            "INITCOND",
            r.get::<_, Option<String>>(19).map(|s| quote_literal(&s)),
        );
        opt("MSFUNC", r.get(20));
        opt("MINVFUNC", r.get(21));
        opt("MSTYPE", r.get(22));
        let mspace: i32 = r.get(23);
        opt("MSSPACE", (mspace != 0).then(|| mspace.to_string()));
        let mfinal: Option<String> = r.get(24);
        let has_mfinal = mfinal.is_some();
        opt("MFINALFUNC", mfinal);
        opt(
            "MFINALFUNC_MODIFY",
            has_mfinal.then(|| modify(&r.get::<_, String>(26))),
        );
        opt(
            "MINITCOND",
            r.get::<_, Option<String>>(27).map(|s| quote_literal(&s)),
        );
        opt("SORTOP", r.get(28));
        opt(
            "PARALLEL",
            match r.get::<_, String>(29).as_str() {
                "s" => Some("SAFE".to_string()),
                "r" => Some("RESTRICTED".to_string()),
                _ => None,
            },
        );
        if r.get::<_, bool>(14) {
            opts.push("FINALFUNC_EXTRA".to_string());
        }
        if r.get::<_, bool>(25) {
            opts.push("MFINALFUNC_EXTRA".to_string());
        }
        if r.get::<_, String>(9) == "h" {
            opts.push("HYPOTHETICAL".to_string());
        }
        let signature = format!("{}({ident_args})", q(&schema, &name));
        let target = format!("AGGREGATE {signature}");
        let obj = pre("AGGREGATE", Some(&schema), &format!("{name}({ident_args})")).sql(
            format!(
                "CREATE AGGREGATE {}({args}) (\n    {}\n);",
                q(&schema, &name),
                opts.join(",\n    ")
            ),
            format!("DROP AGGREGATE IF EXISTS {signature};"),
        );
        let id = ctx.add(obj, Some(nsp), Some((&target, owner.clone())));
        ctx.g.claim((PG_PROC, oid), id);
        ctx.commentable((PG_PROC, oid), id, target);
        ctx.acl(
            Some(id),
            &format!("FUNCTION {signature}"),
            &owner,
            r.get(7),
            r.get(8),
        )?;
    }
    Ok(())
}

fn modify(code: &str) -> String {
    match code {
        "s" => "SHAREABLE",
        "w" => "READ_WRITE",
        _ => "READ_ONLY",
    }
    .to_string()
}

pub(crate) async fn read_operators(ctx: &mut Ctx<'_>) -> Result<(), CatalogError> {
    let sql = format!(
        "SELECT o.oid, o.oprnamespace, n.nspname::text, o.oprname::text, \
         pg_catalog.pg_get_userbyid(o.oprowner)::text, \
         CASE WHEN o.oprleft <> 0 THEN pg_catalog.format_type(o.oprleft, NULL) END, \
         CASE WHEN o.oprright <> 0 THEN pg_catalog.format_type(o.oprright, NULL) END, \
         o.oprcode::pg_catalog.regproc::text, {com}, {neg}, {rest}, {join}, o.oprcanhash, o.oprcanmerge \
         FROM pg_catalog.pg_operator o JOIN pg_catalog.pg_namespace n ON n.oid = o.oprnamespace \
         WHERE {} ORDER BY o.oid",
        user_object("pg_operator", "o"),
        com = operator_ref("o.oprcom"),
        neg = operator_ref("o.oprnegate"),
        rest = proc_ref("o.oprrest"),
        join = proc_ref("o.oprjoin"),
    );
    for r in ctx.query("operators", &sql).await? {
        let (oid, nsp, schema, name): (u32, u32, String, String) =
            (r.get(0), r.get(1), r.get(2), r.get(3));
        if !ctx.in_schema(nsp, &schema) {
            continue;
        }
        let left: Option<String> = r.get(5);
        let right: Option<String> = r.get(6);
        let mut opts = vec![format!("FUNCTION = {}", r.get::<_, String>(7))];
        if let Some(l) = &left {
            opts.push(format!("LEFTARG = {l}"));
        }
        if let Some(rt) = &right {
            opts.push(format!("RIGHTARG = {rt}"));
        }
        for (i, label) in [
            (8, "COMMUTATOR"),
            (9, "NEGATOR"),
            (10, "RESTRICT"),
            (11, "JOIN"),
        ] {
            if let Some(v) = r.get::<_, Option<String>>(i) {
                opts.push(format!("{label} = {v}"));
            }
        }
        if r.get::<_, bool>(12) {
            opts.push("HASHES".to_string());
        }
        if r.get::<_, bool>(13) {
            opts.push("MERGES".to_string());
        }
        let qn = format!("{}.{name}", quote_ident(&schema));
        let argtypes = format!(
            "({}, {})",
            left.as_deref().unwrap_or("NONE"),
            right.as_deref().unwrap_or("NONE")
        );
        let target = format!("OPERATOR {qn} {argtypes}");
        let obj = pre("OPERATOR", Some(&schema), &format!("{name} {argtypes}")).sql(
            format!("CREATE OPERATOR {qn} (\n    {}\n);", opts.join(",\n    ")),
            format!("DROP OPERATOR IF EXISTS {qn} {argtypes};"),
        );
        let id = ctx.add(obj, Some(nsp), Some((&target, r.get(4))));
        ctx.g.claim((PG_OPERATOR, oid), id);
        ctx.commentable((PG_OPERATOR, oid), id, target);
    }
    Ok(())
}

pub(crate) async fn read_casts(ctx: &mut Ctx<'_>) -> Result<(), CatalogError> {
    if !ctx.everything() {
        return Ok(());
    }
    let sql = format!(
        "SELECT c.oid, pg_catalog.format_type(c.castsource, NULL), pg_catalog.format_type(c.casttarget, NULL), \
         CASE WHEN c.castfunc <> 0 THEN c.castfunc::pg_catalog.regprocedure::text END, \
         c.castcontext::text, c.castmethod::text FROM pg_catalog.pg_cast c WHERE {} ORDER BY c.oid",
        user_object("pg_cast", "c")
    );
    for r in ctx.query("casts", &sql).await? {
        let oid: u32 = r.get(0);
        let pair = format!("({} AS {})", r.get::<_, String>(1), r.get::<_, String>(2));
        let how = match (
            r.get::<_, String>(5).as_str(),
            r.get::<_, Option<String>>(3),
        ) {
            ("f", Some(f)) => format!("WITH FUNCTION {f}"),
            ("i", _) => "WITH INOUT".to_string(),
            _ => "WITHOUT FUNCTION".to_string(),
        };
        let context = match r.get::<_, String>(4).as_str() {
            "a" => " AS ASSIGNMENT",
            "i" => " AS IMPLICIT",
            _ => "",
        };
        let target = format!("CAST {pair}");
        let obj = pre("CAST", None, &pair).sql(
            format!("CREATE CAST {pair} {how}{context};"),
            format!("DROP CAST IF EXISTS {pair};"),
        );
        let id = ctx.add(obj, None, None);
        ctx.g.claim((PG_CAST, oid), id);
        ctx.commentable((PG_CAST, oid), id, target);
    }
    Ok(())
}

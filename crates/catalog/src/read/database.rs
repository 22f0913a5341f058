//! The database itself, and the objects this crate does not dump yet: each
//! becomes a named warning, never a silent omission.

use super::{user_object, Ctx};
use crate::acl::{acl_sql, AclTarget};
use crate::{quote_ident, CatalogError, DatabaseInfo};

pub(crate) async fn read_database(ctx: &mut Ctx<'_>) -> Result<DatabaseInfo, CatalogError> {
    let (provider, locale) = match ctx.v {
        v if v >= 170000 => ("d.datlocprovider::text", "d.datlocale"),
        v if v >= 150000 => ("d.datlocprovider::text", "d.daticulocale"),
        _ => ("NULL::text", "NULL::text"),
    };
    let sql = format!(
        "SELECT d.datname::text, pg_catalog.pg_encoding_to_char(d.encoding)::text, d.datcollate::text, \
         d.datctype::text, {provider}, {locale}, pg_catalog.pg_get_userbyid(d.datdba)::text, \
         pg_catalog.pg_database_size(d.oid), \
         pg_catalog.shobj_description(d.oid, 'pg_database'), \
         ARRAY(SELECT pg_catalog.unnest(s.setconfig) FROM pg_catalog.pg_db_role_setting s \
               WHERE s.setdatabase = d.oid AND s.setrole = 0), \
         d.datacl::text[], pg_catalog.acldefault('d', d.datdba)::text[] \
         FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database()"
    );
    let rows = ctx.query("database", &sql).await?;
    let r = rows.first().ok_or(CatalogError::Unexpected {
        what: "database",
        detail: "current database not in pg_database".into(),
    })?;
    let name: String = r.get(0);
    let owner: String = r.get(6);
    let privileges_sql = match r.get::<_, Option<Vec<String>>>(10) {
        Some(acl) if !ctx.opts.no_privileges => {
            let target = AclTarget {
                prefix: "",
                on: &format!("DATABASE {}", quote_ident(&name)),
                column: None,
                owner: &owner,
            };
            acl_sql(&target, &acl, &r.get::<_, Vec<String>>(11), &mut ctx.roles)?
        }
        _ => String::new(),
    };
    Ok(DatabaseInfo {
        name,
        encoding: r.get(1),
        collate: r.get(2),
        ctype: r.get(3),
        locale_provider: r.get(4),
        icu_locale: r.get(5),
        owner,
        size_bytes: r.get(7),
        comment: r.get(8),
        settings: r.get(9),
        privileges_sql,
    })
}

/// Kinds not dumped (yet). One query gathers them all.
pub(crate) async fn warn_unsupported(ctx: &mut Ctx<'_>) -> Result<(), CatalogError> {
    let mut parts = vec![
        format!(
            "SELECT 'FOREIGN DATA WRAPPER', x.fdwname::text FROM pg_catalog.pg_foreign_data_wrapper x WHERE {}",
            user_object("pg_foreign_data_wrapper", "x")
        ),
        format!(
            "SELECT 'SERVER', x.srvname::text FROM pg_catalog.pg_foreign_server x WHERE {}",
            user_object("pg_foreign_server", "x")
        ),
        // The view, not pg_user_mapping: that catalog is for superusers only.
        "SELECT 'USER MAPPING', COALESCE(x.usename::text, 'PUBLIC') || ' SERVER ' || x.srvname \
         FROM pg_catalog.pg_user_mappings x"
            .to_string(),
        format!(
            "SELECT 'OPERATOR CLASS', x.opcname::text FROM pg_catalog.pg_opclass x WHERE {}",
            user_object("pg_opclass", "x")
        ),
        format!(
            "SELECT 'OPERATOR FAMILY', x.opfname::text FROM pg_catalog.pg_opfamily x WHERE {}",
            user_object("pg_opfamily", "x")
        ),
        format!(
            "SELECT 'CONVERSION', x.conname::text FROM pg_catalog.pg_conversion x WHERE {}",
            user_object("pg_conversion", "x")
        ),
        format!(
            "SELECT 'TRANSFORM', x.trftype::regtype::text FROM pg_catalog.pg_transform x WHERE {}",
            user_object("pg_transform", "x")
        ),
        format!(
            "SELECT 'ACCESS METHOD', x.amname::text FROM pg_catalog.pg_am x WHERE {}",
            user_object("pg_am", "x")
        ),
        format!(
            "SELECT 'PROCEDURAL LANGUAGE', x.lanname::text FROM pg_catalog.pg_language x WHERE {}",
            user_object("pg_language", "x")
        ),
        format!(
            "SELECT 'TEXT SEARCH PARSER', x.prsname::text FROM pg_catalog.pg_ts_parser x WHERE {}",
            user_object("pg_ts_parser", "x")
        ),
        format!(
            "SELECT 'TEXT SEARCH TEMPLATE', x.tmplname::text FROM pg_catalog.pg_ts_template x WHERE {}",
            user_object("pg_ts_template", "x")
        ),
        "SELECT 'SUBSCRIPTION', x.subname::text FROM pg_catalog.pg_subscription x \
         WHERE x.subdbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())"
            .to_string(),
        "SELECT 'SECURITY LABEL', x.provider || ' on ' || \
         pg_catalog.pg_describe_object(x.classoid, x.objoid, x.objsubid) FROM pg_catalog.pg_seclabel x"
            .to_string(),
        "SELECT 'LARGE OBJECT', pg_catalog.count(*)::text || ' large objects' \
         FROM pg_catalog.pg_largeobject_metadata HAVING pg_catalog.count(*) > 0"
            .to_string(),
    ];
    parts.push(format!(
        "SELECT 'TYPE', x.typnamespace::regnamespace::text || '.' || x.typname \
         FROM pg_catalog.pg_type x WHERE x.typtype = 'b' AND x.typelem = 0 AND {}",
        user_object("pg_type", "x")
    ));
    let sql = parts.join(" UNION ALL ");
    for r in ctx.query("objects not dumped", &sql).await? {
        let kind: String = r.get(0);
        let name: String = r.get(1);
        let reason = match kind.as_str() {
            "LARGE OBJECT" => "large objects are not dumped: their contents are NOT in the archive",
            "SECURITY LABEL" => "security labels are not dumped",
            "SUBSCRIPTION" => "subscriptions are not dumped",
            "TYPE" => "base types (with C input/output functions) are not dumped",
            _ => "this kind of object is not dumped yet",
        };
        ctx.warn(&kind, &name, reason);
    }
    Ok(())
}

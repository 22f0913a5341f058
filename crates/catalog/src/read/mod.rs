//! Reading the catalog, one module per family of objects. Every reader adds
//! objects to the graph and claims the catalog keys they stand for; the
//! `pg_depend` pass at the end turns catalog dependencies into object ones.

mod database;
mod functions;
mod misc;
mod post;
mod relations;
pub(crate) mod session;
mod types;

use crate::acl::{acl_sql, AclTarget};
use crate::error::QueryContext;
use crate::filter::Filter;
use crate::graph::{Graph, Key, Obj};
use crate::ident::qualify;
use crate::{quote_ident, Catalog, CatalogError, CatalogOptions, Section, TableInfo, Warning};
use std::collections::HashMap;
use tokio_postgres::{Client, Row};

/// A relation that was dumped, for the readers of what belongs to it.
#[derive(Debug, Clone)]
pub(crate) struct Rel {
    pub id: usize,
    pub qualified: String,
    pub kind: char,
    pub schema: String,
    pub name: String,
}

pub(crate) struct Ctx<'a> {
    pub client: &'a Client,
    /// `server_version_num`.
    pub v: u32,
    pub opts: &'a CatalogOptions,
    pub filter: Filter,
    pub g: Graph,
    pub warnings: Vec<Warning>,
    pub roles: Vec<String>,
    pub tables: Vec<TableInfo>,
    pub rels: HashMap<u32, Rel>,
    /// What `COMMENT ON` names for a claimed key, and the object it belongs to.
    pub comment_targets: HashMap<Key, (Option<usize>, String)>,
    /// Column names by (table oid, attnum), for column comments.
    pub columns: HashMap<(u32, i32), (Option<usize>, String)>,
    /// Schemas dumped, by oid: (object id, name).
    pub schemas: HashMap<u32, (Option<usize>, String)>,
    /// Materialized view object -> its "MATERIALIZED VIEW DATA" object.
    pub matview_data: HashMap<usize, usize>,
    /// Sequences whose value is dumped: oid -> (object the value needs, qualified name).
    pub seq_objects: HashMap<u32, (usize, String)>,
    /// Partitioned index (or its constraint) -> its "INDEX ATTACH" objects and their child indexes.
    pub index_attachments: HashMap<usize, Vec<(usize, usize)>>,
}

impl<'a> Ctx<'a> {
    pub async fn query(&self, what: &'static str, sql: &str) -> Result<Vec<Row>, CatalogError> {
        self.client.query(sql, &[]).await.what(what)
    }

    pub fn warn(&mut self, kind: &str, name: &str, reason: &str) {
        self.warnings.push(Warning {
            kind: kind.to_string(),
            name: name.to_string(),
            reason: reason.to_string(),
        });
    }

    /// Objects in this schema are dumped (a known schema, selected by -n/-N,
    /// outside table mode).
    pub fn in_schema(&self, nsp_oid: u32, name: &str) -> bool {
        self.schemas.contains_key(&nsp_oid) && self.filter.schema_included(name)
    }

    /// Adds an object, makes it depend on its schema, and records its owner.
    pub fn add(
        &mut self,
        mut obj: Obj,
        nsp_oid: Option<u32>,
        owner: Option<(&str, String)>,
    ) -> usize {
        if let Some((kw_target, role)) = owner {
            self.roles.push(role.clone());
            if !self.opts.no_owner {
                obj.owner_sql = Some(format!(
                    "ALTER {kw_target} OWNER TO {};",
                    quote_ident(&role)
                ));
            }
            obj.owner = Some(role);
        }
        let id = self.g.add(obj);
        if let Some(schema_id) = nsp_oid.and_then(|n| self.schemas.get(&n)).and_then(|s| s.0) {
            self.g.depend(id, schema_id);
        }
        id
    }

    /// Records what `COMMENT ON` needs to name this key.
    pub fn commentable(&mut self, key: Key, id: usize, target: String) {
        self.comment_targets.insert(key, (Some(id), target));
    }

    /// Adds an "ACL" object for `of` when the privileges differ from the baseline.
    pub fn acl(
        &mut self,
        of: Option<usize>,
        on: &str,
        owner: &str,
        actual: Option<Vec<String>>,
        baseline: Vec<String>,
    ) -> Result<(), CatalogError> {
        let Some(actual) = actual else { return Ok(()) };
        let target = AclTarget {
            prefix: "",
            on,
            column: None,
            owner,
        };
        let sql = acl_sql(&target, &actual, &baseline, &mut self.roles)?;
        self.acl_object(of, on, sql);
        Ok(())
    }

    /// An "ACL" object, named like its object (or `label` when it has none).
    pub fn acl_object(&mut self, of: Option<usize>, label: &str, sql: String) {
        if sql.is_empty() || self.opts.no_privileges {
            return;
        }
        let obj = match of {
            Some(of) => {
                let o = self.g.get(of);
                Obj::new("ACL", o.schema.as_deref(), &o.name.clone(), o.section)
            }
            None => Obj::new("ACL", None, label, Section::PreData),
        };
        let acl = self.g.add(obj.sql(sql, String::new()));
        if let Some(of) = of {
            self.g.depend(acl, of);
        }
    }

    pub fn table_info(&mut self, info: TableInfo) {
        self.tables.push(info);
    }
}

/// Reads everything, in an order where each reader finds what it belongs to.
pub(crate) async fn read_all(
    client: &Client,
    opts: &CatalogOptions,
) -> Result<Catalog, CatalogError> {
    let v: u32 = client
        .query_one("SELECT current_setting('server_version_num')::int4", &[])
        .await
        .what("server version")?
        .get::<_, i32>(0) as u32;
    if !(140000..190000).contains(&v) {
        return Err(CatalogError::Version(v));
    }
    let mut ctx = Ctx {
        client,
        v,
        opts,
        filter: Filter::new(opts)?,
        g: Graph::default(),
        warnings: Vec::new(),
        roles: Vec::new(),
        tables: Vec::new(),
        rels: HashMap::new(),
        comment_targets: HashMap::new(),
        columns: HashMap::new(),
        schemas: HashMap::new(),
        matview_data: HashMap::new(),
        seq_objects: HashMap::new(),
        index_attachments: HashMap::new(),
    };
    let database = database::read_database(&mut ctx).await?;
    misc::read_schemas(&mut ctx).await?;
    misc::read_extensions(&mut ctx).await?;
    misc::read_collations(&mut ctx).await?;
    types::read_types(&mut ctx).await?;
    functions::read_functions(&mut ctx).await?;
    functions::read_aggregates(&mut ctx).await?;
    functions::read_operators(&mut ctx).await?;
    functions::read_casts(&mut ctx).await?;
    misc::read_text_search(&mut ctx).await?;
    relations::read_relations(&mut ctx).await?;
    post::read_constraints(&mut ctx).await?;
    post::read_indexes(&mut ctx).await?;
    post::read_triggers(&mut ctx).await?;
    post::read_rules(&mut ctx).await?;
    post::read_policies(&mut ctx).await?;
    post::read_statistics(&mut ctx).await?;
    misc::read_event_triggers(&mut ctx).await?;
    misc::read_publications(&mut ctx).await?;
    misc::read_default_acls(&mut ctx).await?;
    misc::read_init_privs_changes(&mut ctx).await?;
    misc::read_comments(&mut ctx).await?;
    read_depend(&mut ctx).await?;
    post::order_refreshes(&mut ctx);
    post::wait_for_index_attachments(&mut ctx);
    misc::order_event_triggers(&mut ctx);
    database::warn_unsupported(&mut ctx).await?;

    let Ctx {
        g,
        warnings,
        mut roles,
        tables,
        ..
    } = ctx;
    let (objects, position) = g.finish()?;
    let tables = tables
        .into_iter()
        .map(|t| TableInfo {
            object_id: position[t.object_id as usize],
            ..t
        })
        .collect();
    roles.sort();
    roles.dedup();
    Ok(Catalog {
        server_version_num: v,
        database,
        objects,
        tables,
        warnings,
        roles,
    })
}

/// Catalog dependencies between dumped objects. Owned sequences are left out:
/// their link to the table is the separate "SEQUENCE OWNED BY" object.
async fn read_depend(ctx: &mut Ctx<'_>) -> Result<(), CatalogError> {
    let rows = ctx
        .query(
            "dependencies",
            "SELECT d.classid, d.objid, d.refclassid, d.refobjid FROM pg_catalog.pg_depend d \
             WHERE d.deptype IN ('n', 'a') AND d.objid >= 16384 AND d.refobjid >= 16384 \
             AND NOT (d.deptype = 'a' AND d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass \
                  AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass \
                  AND EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = d.objid AND c.relkind = 'S'))",
        )
        .await?;
    for r in rows {
        ctx.g.pg_depend((r.get(0), r.get(1)), (r.get(2), r.get(3)));
    }
    Ok(())
}

/// `"schema"."name"` for a relation or type.
pub(crate) fn q(schema: &str, name: &str) -> String {
    qualify(schema, name)
}

/// SQL condition: the object `alias.oid` of catalog `cat` was created by a
/// user (not initdb), is not a member of an extension and was not made
/// internally along with another object (like a multirange's constructors).
pub(crate) fn user_object(cat: &str, alias: &str) -> String {
    format!(
        "{alias}.oid >= 16384 AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend ext_dep \
         WHERE ext_dep.classid = 'pg_catalog.{cat}'::pg_catalog.regclass AND ext_dep.objid = {alias}.oid \
         AND ext_dep.deptype IN ('e', 'i'))"
    )
}

pub(crate) fn pre(kind: &'static str, schema: Option<&str>, name: &str) -> Obj {
    Obj::new(kind, schema, name, Section::PreData)
}

pub(crate) fn post(kind: &'static str, schema: Option<&str>, name: &str) -> Obj {
    Obj::new(kind, schema, name, Section::PostData)
}

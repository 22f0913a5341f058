//! One focused test per kind of object: what is emitted, and that it restores
//! to the same schema (by pg_dump's account).

mod common;

use common::*;
use pgark_catalog::{Catalog, CatalogOptions, Section};
use pgark_testkit::{fresh_db, TestDb};

async fn db_with(sql: &str) -> TestDb {
    let db = fresh_db().await;
    db.exec(sql).await;
    db
}

async fn roundtrip(sql: &str) -> Catalog {
    let db = db_with(sql).await;
    assert_roundtrip(&db, &CatalogOptions::default()).await
}

fn one<'a>(c: &'a Catalog, kind: &str, name: &str) -> &'a pgark_catalog::DdlObject {
    c.objects
        .iter()
        .find(|o| o.kind == kind && o.name == name)
        .unwrap_or_else(|| {
            panic!(
                "no {kind} {name} in {:?}",
                c.objects.iter().map(label).collect::<Vec<_>>()
            )
        })
}

#[tokio::test]
async fn schemas_with_owner_comment_and_privileges() {
    let c = roundtrip(
        "CREATE ROLE \"kinds Schema Owner\"; \
         CREATE SCHEMA \"My Schema\" AUTHORIZATION \"kinds Schema Owner\"; \
         COMMENT ON SCHEMA \"My Schema\" IS 'mine'; GRANT USAGE ON SCHEMA \"My Schema\" TO PUBLIC;",
    )
    .await;
    let s = one(&c, "SCHEMA", "My Schema");
    assert_eq!(s.create_sql, "CREATE SCHEMA \"My Schema\";");
    assert_eq!(
        s.owner_sql.as_deref(),
        Some("ALTER SCHEMA \"My Schema\" OWNER TO \"kinds Schema Owner\";")
    );
    assert!(sql_of(&c, "COMMENT").contains("COMMENT ON SCHEMA \"My Schema\" IS 'mine';"));
    assert!(sql_of(&c, "ACL").contains("GRANT USAGE ON SCHEMA \"My Schema\" TO PUBLIC;"));
    assert!(c.roles.contains(&"kinds Schema Owner".to_string()));
}

#[tokio::test]
async fn extensions_without_their_members() {
    let c = roundtrip("CREATE SCHEMA ext; CREATE EXTENSION pg_trgm WITH SCHEMA ext;").await;
    let e = one(&c, "EXTENSION", "pg_trgm");
    assert_eq!(
        e.create_sql,
        "CREATE EXTENSION IF NOT EXISTS \"pg_trgm\" WITH SCHEMA \"ext\";"
    );
    assert!(
        objects_of(&c, "FUNCTION").is_empty(),
        "extension members are not dumped"
    );
    assert!(e.deps.contains(&one(&c, "SCHEMA", "ext").id));
}

#[tokio::test]
async fn enum_composite_domain_and_range_types() {
    let c = roundtrip(
        "CREATE TYPE \"E\" AS ENUM ('a', 'it''s'); ALTER TYPE \"E\" ADD VALUE 'first' BEFORE 'a'; \
         CREATE TYPE comp AS (x int, \"Y\" text COLLATE \"C\"); \
         CREATE DOMAIN dom AS int DEFAULT 3 NOT NULL CONSTRAINT pos CHECK (VALUE > 0); \
         ALTER DOMAIN dom ADD CONSTRAINT small CHECK (VALUE < 10) NOT VALID; \
         CREATE TYPE r AS RANGE (subtype = int8); \
         CREATE TABLE uses (e \"E\", c comp, d dom, r r, m r_multirange);",
    )
    .await;
    assert!(one(&c, "TYPE", "E")
        .create_sql
        .contains("'first',\n    'a',\n    'it''s'"));
    assert!(one(&c, "TYPE", "comp")
        .create_sql
        .contains("\"Y\" text COLLATE pg_catalog.\"C\""));
    let d = &one(&c, "DOMAIN", "dom").create_sql;
    assert!(d.contains("DEFAULT 3"), "{d}");
    assert!(d.contains("CONSTRAINT \"pos\" CHECK ((VALUE > 0))"), "{d}");
    // A NOT VALID check comes after the data, which may break it (pg_dump too).
    assert!(!d.contains("small"), "{d}");
    let small = one(&c, "CHECK CONSTRAINT", "dom small");
    assert_eq!(small.section, pgark_catalog::Section::PostData);
    assert!(
        small
            .create_sql
            .contains("ADD CONSTRAINT \"small\" CHECK ((VALUE < 10)) NOT VALID;"),
        "{}",
        small.create_sql
    );
    assert!(one(&c, "TYPE", "r")
        .create_sql
        .contains("multirange_type_name = public.r_multirange"));
    // The table needs every type first, the multirange through its range type.
    let table = one(&c, "TABLE", "uses");
    for t in ["E", "comp", "r"] {
        assert!(
            table.deps.contains(&one(&c, "TYPE", t).id),
            "table does not depend on {t}"
        );
    }
}

#[tokio::test]
async fn sequences_options_owner_and_value() {
    let c = roundtrip(
        "CREATE SEQUENCE \"Odd Seq\" AS smallint INCREMENT BY -3 MINVALUE -100 MAXVALUE 50 START 7 CACHE 2 CYCLE; \
         SELECT nextval('\"Odd Seq\"'); \
         CREATE TABLE t (id serial, g bigint GENERATED ALWAYS AS IDENTITY (START WITH 100)); \
         GRANT USAGE ON SEQUENCE t_g_seq TO PUBLIC; COMMENT ON SEQUENCE t_g_seq IS 'identity'; \
         SELECT setval('t_id_seq', 41); INSERT INTO t DEFAULT VALUES; \
         CREATE SEQUENCE fresh;",
    )
    .await;
    let s = &one(&c, "SEQUENCE", "Odd Seq").create_sql;
    assert!(
        s.contains("AS smallint") && s.contains("INCREMENT BY -3") && s.contains("CYCLE"),
        "{s}"
    );
    assert!(one(&c, "SEQUENCE OWNED BY", "t_id_seq")
        .create_sql
        .contains("OWNED BY \"public\".\"t\".\"id\""));
    let set = |name: &str| one(&c, "SEQUENCE SET", name).create_sql.clone();
    // With CACHE 2 the first nextval took 7 and 4: the next session starts at 1, as after a restore.
    assert_eq!(
        set("Odd Seq"),
        "SELECT pg_catalog.setval('\"public\".\"Odd Seq\"', 4, true);"
    );
    assert_eq!(
        set("t_id_seq"),
        "SELECT pg_catalog.setval('\"public\".\"t_id_seq\"', 42, true);"
    );
    assert_eq!(
        set("t_g_seq"),
        "SELECT pg_catalog.setval('\"public\".\"t_g_seq\"', 100, true);"
    );
    assert_eq!(
        set("fresh"),
        "SELECT pg_catalog.setval('\"public\".\"fresh\"', 1, false);"
    );
    assert_eq!(one(&c, "SEQUENCE SET", "fresh").section, Section::Data);
    // The identity sequence belongs to its column; the serial's default comes after the sequence.
    assert!(one(&c, "TABLE", "t")
        .create_sql
        .contains("GENERATED ALWAYS AS IDENTITY (\n    SEQUENCE NAME \"public\".\"t_g_seq\""));
    assert!(objects_of(&c, "SEQUENCE")
        .iter()
        .all(|o| o.name != "t_g_seq"));
    assert!(sql_of(&c, "ACL").contains("GRANT USAGE ON SEQUENCE \"public\".\"t_g_seq\" TO PUBLIC;"));
    assert!(
        sql_of(&c, "COMMENT").contains("COMMENT ON SEQUENCE \"public\".\"t_g_seq\" IS 'identity';")
    );
    assert!(one(&c, "DEFAULT", "t id")
        .create_sql
        .contains("nextval('public.t_id_seq'::regclass)"));
}

#[tokio::test]
async fn table_columns_and_storage() {
    let c = roundtrip(
        "CREATE TABLE \"T\" (\"Key\" int NOT NULL DEFAULT 1, price numeric(8,2), \
            total numeric GENERATED ALWAYS AS (price * 2) STORED, note text COLLATE \"C\", \
            big text) WITH (fillfactor = 70, toast.autovacuum_enabled = false); \
         ALTER TABLE \"T\" ALTER COLUMN big SET STORAGE EXTERNAL, ALTER COLUMN note SET STATISTICS 42, \
            ALTER COLUMN price SET (n_distinct = 5); \
         ALTER TABLE \"T\" DROP COLUMN big; ALTER TABLE \"T\" ADD COLUMN later int; \
         CREATE UNLOGGED TABLE u (x int);",
    )
    .await;
    let t = &one(&c, "TABLE", "T").create_sql;
    assert!(
        t.contains("\"Key\" integer DEFAULT 1 NOT NULL")
            || t.contains("\"Key\" integer DEFAULT 1 CONSTRAINT"),
        "{t}"
    );
    assert!(
        t.contains("GENERATED ALWAYS AS ((price * (2)::numeric)) STORED"),
        "{t}"
    );
    assert!(
        t.contains("WITH (fillfactor=70, toast.autovacuum_enabled=false)"),
        "{t}"
    );
    assert!(
        t.contains("SET STATISTICS 42") && t.contains("SET (n_distinct=5)"),
        "{t}"
    );
    let info = c.tables.iter().find(|t| t.name == "T").unwrap();
    let cols: Vec<&str> = info.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        cols,
        ["Key", "price", "note", "later"],
        "no generated or dropped columns in COPY"
    );
    assert_eq!(info.qualified, "\"public\".\"T\"");
    assert_eq!(c.objects[info.object_id as usize].name, "T");
    assert!(c.tables.iter().find(|t| t.name == "u").unwrap().unlogged);
    assert!(one(&c, "TABLE", "u")
        .create_sql
        .starts_with("CREATE UNLOGGED TABLE"));
}

#[tokio::test]
async fn typed_tables() {
    let c = roundtrip(
        "CREATE TYPE tt AS (a int, b text); \
         CREATE TABLE typed OF tt (a WITH OPTIONS NOT NULL, b WITH OPTIONS DEFAULT 'x', CHECK (a > 0));",
    )
    .await;
    let t = one(&c, "TABLE", "typed");
    assert!(
        t.create_sql
            .starts_with("CREATE TABLE \"public\".\"typed\" OF public.tt"),
        "{}",
        t.create_sql
    );
    assert!(t.deps.contains(&one(&c, "TYPE", "tt").id));
    assert!(one(&c, "DEFAULT", "typed b")
        .create_sql
        .contains("SET DEFAULT 'x'::text"));
}

#[tokio::test]
async fn partitions_are_attached() {
    let c = roundtrip(
        "CREATE TABLE p (id int NOT NULL, k text, CHECK (id > 0)) PARTITION BY LIST (k); \
         CREATE TABLE p_a PARTITION OF p FOR VALUES IN ('a'); \
         CREATE TABLE p_def PARTITION OF p DEFAULT; \
         ALTER TABLE p ADD PRIMARY KEY (id, k); CREATE INDEX p_k ON p (k); \
         CREATE TABLE refs (id int, k text, FOREIGN KEY (id, k) REFERENCES p);",
    )
    .await;
    let attach = one(&c, "TABLE ATTACH", "p_a");
    assert_eq!(attach.create_sql, "ALTER TABLE ONLY \"public\".\"p\" ATTACH PARTITION \"public\".\"p_a\" FOR VALUES IN ('a');");
    assert!(one(&c, "TABLE ATTACH", "p_def")
        .create_sql
        .ends_with("DEFAULT;"));
    assert_eq!(
        objects_of(&c, "INDEX ATTACH").len(),
        4,
        "two partitions, two partitioned indexes"
    );
    // The referenced key is valid only once every partition's index is attached.
    let fk = one(&c, "FK CONSTRAINT", "refs refs_id_k_fkey");
    for attach in ["p_a_pkey", "p_def_pkey"] {
        assert!(
            fk.deps.contains(&one(&c, "INDEX ATTACH", attach).id),
            "FK does not wait for {attach}"
        );
    }
    let names: Vec<&str> = c.tables.iter().map(|t| t.name.as_str()).collect();
    assert!(
        !names.contains(&"p"),
        "the partitioned parent has no rows of its own: {names:?}"
    );
    assert!(names.contains(&"p_a") && names.contains(&"p_def"));
}

#[tokio::test]
async fn inheritance_keeps_the_physical_column_order() {
    // pg_dump gets this wrong: the children come back as (a, c, b, d...).
    let db = db_with(
        "CREATE TABLE parent (a int); CREATE TABLE child (c int) INHERITS (parent); \
         ALTER TABLE parent ADD COLUMN b int NOT NULL DEFAULT 7, ADD CONSTRAINT b_pos CHECK (b > 0); \
         CREATE TABLE child2 (e text) INHERITS (parent); \
         ALTER TABLE parent ADD COLUMN d text; \
         CREATE TABLE other (z int, a int, b int NOT NULL CONSTRAINT b_pos CHECK (b > 0), d text, q int); \
         ALTER TABLE other INHERIT parent; \
         ALTER TABLE parent ADD COLUMN late int; \
         INSERT INTO child VALUES (1, 3, 2);",
    )
    .await;
    // Restored like the source: same physical order, same local columns.
    let c = assert_roundtrip(&db, &CatalogOptions::default()).await;
    assert_eq!(objects_of(&c, "TABLE COLUMNS").len(), 3);
    let target = fresh_db().await;
    replay(&c, &target).await;
    for table in ["child", "child2", "other"] {
        let order = format!(
            "SELECT string_agg(attname || ':' || attislocal, ',' ORDER BY attnum) FROM pg_attribute \
             WHERE attrelid = 'public.{table}'::regclass AND attnum > 0 AND NOT attisdropped"
        );
        assert_eq!(
            target.query_strings(&order).await,
            db.query_strings(&order).await,
            "{table}"
        );
    }
    let order = "SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute \
                 WHERE attrelid = 'public.child'::regclass AND attnum > 0 AND NOT attisdropped";
    assert_eq!(
        target.query_strings(order).await,
        [Some("a,c,b,d,late".to_string())]
    );
}

#[tokio::test]
async fn inheritance_roundtrip() {
    let c = roundtrip(
        "CREATE TABLE parent (a int DEFAULT 5, b text, CONSTRAINT ck CHECK (a > 0)); \
         CREATE TABLE child (c int) INHERITS (parent); \
         CREATE TABLE child2 (b text NOT NULL, d int) INHERITS (parent); \
         ALTER TABLE child ALTER COLUMN b SET DEFAULT 'x';",
    )
    .await;
    let child = &one(&c, "TABLE", "child").create_sql;
    assert!(
        child.contains("INHERITS (\"public\".\"parent\")"),
        "{child}"
    );
    assert!(
        !child.contains("\"a\" integer"),
        "inherited columns come from the parent: {child}"
    );
}

#[tokio::test]
async fn constraints() {
    let c = roundtrip(
        "CREATE TABLE a (id int PRIMARY KEY, code text, CONSTRAINT code_u UNIQUE (code) DEFERRABLE INITIALLY DEFERRED); \
         CREATE TABLE b (id int, a_id int REFERENCES a ON DELETE CASCADE ON UPDATE SET NULL, \
            r int4range, EXCLUDE USING gist (r WITH &&)); \
         ALTER TABLE b ADD CONSTRAINT fk_code FOREIGN KEY (id) REFERENCES a (id) NOT VALID; \
         ALTER TABLE b ADD CONSTRAINT later CHECK (id > 0) NOT VALID;",
    )
    .await;
    let fk = one(&c, "FK CONSTRAINT", "b b_a_id_fkey");
    assert!(
        fk.create_sql
            .contains("ON UPDATE SET NULL ON DELETE CASCADE"),
        "{}",
        fk.create_sql
    );
    assert_eq!(fk.section, Section::PostData);
    let pk = one(&c, "CONSTRAINT", "a a_pkey");
    for dep in [one(&c, "TABLE", "a").id, one(&c, "TABLE", "b").id, pk.id] {
        assert!(
            fk.deps.contains(&dep),
            "FK must wait for both tables and the key it references"
        );
    }
    assert!(one(&c, "CONSTRAINT", "a code_u")
        .create_sql
        .contains("DEFERRABLE INITIALLY DEFERRED"));
    assert!(one(&c, "FK CONSTRAINT", "b fk_code")
        .create_sql
        .contains("NOT VALID"));
    assert!(one(&c, "CHECK CONSTRAINT", "b later")
        .create_sql
        .contains("NOT VALID"));
    assert!(one(&c, "CONSTRAINT", "b b_r_excl")
        .create_sql
        .contains("EXCLUDE USING gist"));
}

#[tokio::test]
async fn indexes() {
    let c = roundtrip(
        "CREATE TABLE t (a int, b text, c int); \
         CREATE INDEX partial ON t (a) WHERE a > 10; CREATE INDEX expr ON t (lower(b) text_pattern_ops DESC); \
         CREATE UNIQUE INDEX incl ON t (a) INCLUDE (b, c); ALTER INDEX expr ALTER COLUMN 1 SET STATISTICS 100; \
         ALTER TABLE t CLUSTER ON incl;",
    )
    .await;
    assert!(one(&c, "INDEX", "partial")
        .create_sql
        .contains("WHERE (a > 10)"));
    let expr = &one(&c, "INDEX", "expr").create_sql;
    assert!(
        expr.contains("lower(b) text_pattern_ops DESC") && expr.contains("SET STATISTICS 100"),
        "{expr}"
    );
    let incl = &one(&c, "INDEX", "incl").create_sql;
    assert!(
        incl.contains("INCLUDE (b, c)") && incl.contains("CLUSTER ON \"incl\""),
        "{incl}"
    );
    assert!(one(&c, "INDEX", "incl")
        .deps
        .contains(&one(&c, "TABLE", "t").id));
}

#[tokio::test]
async fn views_and_materialized_views() {
    let c = roundtrip(
        "CREATE TABLE t (id int PRIMARY KEY, v text); \
         CREATE VIEW \"V\" WITH (security_barrier) AS SELECT id FROM t WITH CASCADED CHECK OPTION; \
         CREATE VIEW grouped AS SELECT id, v, count(*) FROM t GROUP BY id; \
         CREATE MATERIALIZED VIEW m AS SELECT * FROM t; \
         CREATE MATERIALIZED VIEW m2 AS SELECT * FROM m; \
         CREATE MATERIALIZED VIEW empty AS SELECT 1 AS x WITH NO DATA;",
    )
    .await;
    let v = &one(&c, "VIEW", "V").create_sql;
    assert!(
        v.contains("security_barrier") && v.contains("check_option=cascaded"),
        "{v}"
    );
    assert!(one(&c, "MATERIALIZED VIEW", "m")
        .create_sql
        .contains("WITH NO DATA;"));
    let data = one(&c, "MATERIALIZED VIEW DATA", "m2");
    assert_eq!(
        data.create_sql,
        "REFRESH MATERIALIZED VIEW \"public\".\"m2\";"
    );
    assert!(
        data.deps
            .contains(&one(&c, "MATERIALIZED VIEW DATA", "m").id),
        "m2 is refreshed after m"
    );
    assert!(!c
        .objects
        .iter()
        .any(|o| o.kind == "MATERIALIZED VIEW DATA" && o.name == "empty"));
    // GROUP BY relies on the primary key: the view can only come after it.
    let grouped = one(&c, "VIEW", "grouped");
    assert_eq!(grouped.section, Section::PostData);
    assert!(grouped.deps.contains(&one(&c, "CONSTRAINT", "t t_pkey").id));
}

#[tokio::test]
async fn functions_procedures_and_aggregates() {
    let c = roundtrip(
        "CREATE TABLE t (x int); \
         CREATE FUNCTION plain(a int) RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN a; END $$; \
         CREATE FUNCTION std(a int) RETURNS bigint LANGUAGE sql BEGIN ATOMIC SELECT count(*) + a FROM public.t; END; \
         CREATE FUNCTION ret(a int) RETURNS int LANGUAGE sql IMMUTABLE RETURN a * 2; \
         CREATE PROCEDURE \"Proc\"(x int) LANGUAGE sql AS $$ SELECT 1 $$; \
         CREATE AGGREGATE agg(int) (SFUNC = int4pl, STYPE = int, INITCOND = '0', COMBINEFUNC = int4pl, PARALLEL = SAFE); \
         CREATE AGGREGATE pct(float8 ORDER BY float8) (SFUNC = ordered_set_transition, STYPE = internal, \
            FINALFUNC = percentile_disc_final, FINALFUNC_EXTRA);",
    )
    .await;
    assert!(one(&c, "FUNCTION", "plain(a integer)")
        .create_sql
        .contains("LANGUAGE plpgsql"));
    let std = one(&c, "FUNCTION", "std(a integer)");
    assert!(
        std.create_sql.contains("BEGIN ATOMIC"),
        "{}",
        std.create_sql
    );
    assert!(
        std.deps.contains(&one(&c, "TABLE", "t").id),
        "a SQL-standard body depends on its table"
    );
    assert!(one(&c, "FUNCTION", "ret(a integer)")
        .create_sql
        .contains("RETURN (a * 2)"));
    assert!(one(&c, "PROCEDURE", "Proc(IN x integer)")
        .create_sql
        .starts_with("CREATE OR REPLACE PROCEDURE"));
    let agg = &one(&c, "AGGREGATE", "agg(integer)").create_sql;
    assert!(
        agg.contains("SFUNC = int4pl")
            && agg.contains("INITCOND = '0'")
            && agg.contains("PARALLEL = SAFE"),
        "{agg}"
    );
    assert!(one(
        &c,
        "AGGREGATE",
        "pct(double precision ORDER BY double precision)"
    )
    .create_sql
    .contains("ORDER BY"));
}

#[tokio::test]
async fn triggers_and_event_triggers() {
    let c = roundtrip(
        "CREATE TABLE t (x int); \
         CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$; \
         CREATE FUNCTION e() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN END $$; \
         CREATE TRIGGER on_t BEFORE INSERT ON t FOR EACH ROW WHEN (NEW.x > 0) EXECUTE FUNCTION f(); \
         CREATE TRIGGER off_t AFTER UPDATE ON t FOR EACH ROW EXECUTE FUNCTION f(); \
         ALTER TABLE t DISABLE TRIGGER off_t; \
         CREATE EVENT TRIGGER \"Evt\" ON ddl_command_start WHEN TAG IN ('CREATE TABLE') EXECUTE FUNCTION e(); \
         ALTER EVENT TRIGGER \"Evt\" ENABLE ALWAYS; \
         CREATE TABLE p (x int) PARTITION BY RANGE (x); \
         CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (0) TO (10); \
         CREATE TABLE p2 PARTITION OF p FOR VALUES FROM (10) TO (20); \
         CREATE TRIGGER on_p AFTER INSERT ON p FOR EACH ROW EXECUTE FUNCTION f(); \
         ALTER TABLE p1 DISABLE TRIGGER on_p;",
    )
    .await;
    let on = one(&c, "TRIGGER", "t on_t");
    assert!(
        on.create_sql.contains("WHEN ((new.x > 0))"),
        "{}",
        on.create_sql
    );
    assert!(on.deps.contains(&one(&c, "TABLE", "t").id));
    assert!(on.deps.contains(&one(&c, "FUNCTION", "f()").id));
    assert!(one(&c, "TRIGGER", "t off_t")
        .create_sql
        .contains("ALTER TABLE \"public\".\"t\" DISABLE TRIGGER \"off_t\";"));
    let clone = one(&c, "TRIGGER", "p1 on_p");
    assert_eq!(
        clone.create_sql,
        "ALTER TABLE \"public\".\"p1\" DISABLE TRIGGER \"on_p\";"
    );
    assert!(clone.deps.contains(&one(&c, "TRIGGER", "p on_p").id));
    assert!(
        !c.objects.iter().any(|o| o.name == "p2 on_p"),
        "an unchanged clone comes with its parent"
    );
    let evt = one(&c, "EVENT TRIGGER", "Evt");
    assert!(
        evt.create_sql.contains("WHEN TAG IN ('CREATE TABLE')")
            && evt.create_sql.contains("ENABLE ALWAYS")
    );
    assert_eq!(
        c.objects
            .iter()
            .rfind(|o| o.kind != "COMMENT" && o.kind != "ACL")
            .unwrap()
            .kind,
        "EVENT TRIGGER"
    );
}

#[tokio::test]
async fn rules() {
    let c = roundtrip(
        "CREATE TABLE t (x int); CREATE TABLE log (x int); \
         CREATE RULE keep AS ON DELETE TO t DO INSTEAD NOTHING; \
         CREATE RULE copy AS ON INSERT TO t DO ALSO INSERT INTO log VALUES (NEW.x); \
         ALTER TABLE t DISABLE RULE copy;",
    )
    .await;
    assert!(one(&c, "RULE", "t keep")
        .create_sql
        .contains("DO INSTEAD NOTHING"));
    let copy = one(&c, "RULE", "t copy");
    assert!(copy.create_sql.contains("DISABLE RULE \"copy\""));
    assert!(copy.deps.contains(&one(&c, "TABLE", "log").id));
}

#[tokio::test]
async fn row_level_security() {
    let c = roundtrip(
        "CREATE ROLE kinds_rls_reader; CREATE TABLE t (owner name, x int); \
         ALTER TABLE t ENABLE ROW LEVEL SECURITY; ALTER TABLE t FORCE ROW LEVEL SECURITY; \
         CREATE POLICY mine ON t FOR SELECT TO kinds_rls_reader USING (owner = current_user); \
         CREATE POLICY \"Strict\" ON t AS RESTRICTIVE FOR UPDATE USING (x > 0) WITH CHECK (x < 10);",
    )
    .await;
    let rs = &one(&c, "ROW SECURITY", "t").create_sql;
    assert!(
        rs.contains("ENABLE ROW LEVEL SECURITY") && rs.contains("FORCE ROW LEVEL SECURITY"),
        "{rs}"
    );
    assert!(one(&c, "POLICY", "t mine")
        .create_sql
        .contains("FOR SELECT TO \"kinds_rls_reader\" USING"));
    assert!(one(&c, "POLICY", "t Strict")
        .create_sql
        .contains("AS RESTRICTIVE FOR UPDATE TO PUBLIC"));
}

#[tokio::test]
async fn collations_and_text_search() {
    let c = roundtrip(
        "CREATE COLLATION \"My C\" (provider = libc, locale = 'C'); \
         CREATE TEXT SEARCH DICTIONARY dict (TEMPLATE = simple, STOPWORDS = english); \
         CREATE TEXT SEARCH CONFIGURATION cfg (COPY = english); \
         ALTER TEXT SEARCH CONFIGURATION cfg ALTER MAPPING FOR word WITH dict, simple;",
    )
    .await;
    assert!(one(&c, "COLLATION", "My C")
        .create_sql
        .contains("provider = libc, lc_collate = 'C', lc_ctype = 'C'"));
    assert!(one(&c, "TEXT SEARCH DICTIONARY", "dict")
        .create_sql
        .contains("TEMPLATE = \"pg_catalog\".\"simple\", stopwords = 'english'"));
    let cfg = &one(&c, "TEXT SEARCH CONFIGURATION", "cfg").create_sql;
    assert!(
        cfg.contains("ADD MAPPING FOR \"word\" WITH public.dict, simple;"),
        "{cfg}"
    );
}

#[tokio::test]
async fn casts_and_operators() {
    let c = roundtrip(
        "CREATE TYPE money2 AS (amount numeric); \
         CREATE FUNCTION m2t(money2) RETURNS text LANGUAGE sql AS 'SELECT $1.amount::text'; \
         CREATE CAST (money2 AS text) WITH FUNCTION m2t(money2) AS IMPLICIT; \
         CREATE FUNCTION m2eq(money2, money2) RETURNS bool LANGUAGE sql AS 'SELECT $1.amount = $2.amount'; \
         CREATE OPERATOR === (FUNCTION = m2eq, LEFTARG = money2, RIGHTARG = money2, COMMUTATOR = ===, HASHES);",
    )
    .await;
    let cast = one(&c, "CAST", "(public.money2 AS text)");
    assert!(
        cast.create_sql
            .contains("WITH FUNCTION public.m2t(public.money2) AS IMPLICIT"),
        "{}",
        cast.create_sql
    );
    let op = &one(&c, "OPERATOR", "=== (public.money2, public.money2)").create_sql;
    assert!(
        op.contains("COMMUTATOR = OPERATOR(public.===)") && op.contains("HASHES"),
        "{op}"
    );
}

#[tokio::test]
async fn publications() {
    let c = roundtrip(
        "SET client_min_messages = error; CREATE TABLE t (id int PRIMARY KEY, v text); \
         CREATE PUBLICATION \"P\" FOR TABLE t WITH (publish = 'insert'); CREATE PUBLICATION everything FOR ALL TABLES;",
    )
    .await;
    assert_eq!(
        one(&c, "PUBLICATION", "P").create_sql,
        "CREATE PUBLICATION \"P\" WITH (publish = 'insert');"
    );
    assert_eq!(
        one(&c, "PUBLICATION TABLE", "P t").create_sql,
        "ALTER PUBLICATION \"P\" ADD TABLE ONLY \"public\".\"t\";"
    );
    assert!(one(&c, "PUBLICATION", "everything")
        .create_sql
        .contains("FOR ALL TABLES"));
}

#[tokio::test]
async fn comments_on_everything() {
    let c = roundtrip(
        "CREATE TABLE t (\"Col\" int CONSTRAINT ck CHECK (\"Col\" > 0)); CREATE INDEX i ON t (\"Col\"); \
         COMMENT ON TABLE t IS 'table''s'; COMMENT ON COLUMN t.\"Col\" IS 'col'; \
         COMMENT ON CONSTRAINT ck ON t IS 'check'; COMMENT ON INDEX i IS 'index';",
    )
    .await;
    let comments = sql_of(&c, "COMMENT");
    for expected in [
        "COMMENT ON TABLE \"public\".\"t\" IS 'table''s';",
        "COMMENT ON COLUMN \"public\".\"t\".\"Col\" IS 'col';",
        "COMMENT ON CONSTRAINT \"ck\" ON \"public\".\"t\" IS 'check';",
        "COMMENT ON INDEX \"public\".\"i\" IS 'index';",
    ] {
        assert!(
            comments.contains(expected),
            "missing {expected} in {comments}"
        );
    }
    let idx_comment = c
        .objects
        .iter()
        .find(|o| o.kind == "COMMENT" && o.name.starts_with("INDEX"))
        .unwrap();
    assert!(idx_comment.deps.contains(&one(&c, "INDEX", "i").id));
    assert_eq!(idx_comment.section, Section::PostData);
}

#[tokio::test]
async fn owners_and_no_owner() {
    let sql = "CREATE ROLE \"kinds Owner\"; CREATE TABLE t (x int); ALTER TABLE t OWNER TO \"kinds Owner\"; \
               CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'; ALTER FUNCTION f() OWNER TO \"kinds Owner\";";
    let c = roundtrip(sql).await;
    assert_eq!(
        one(&c, "TABLE", "t").owner_sql.as_deref(),
        Some("ALTER TABLE \"public\".\"t\" OWNER TO \"kinds Owner\";")
    );
    assert_eq!(
        one(&c, "FUNCTION", "f()").owner.as_deref(),
        Some("kinds Owner")
    );
    let db = db_with("CREATE TABLE t (x int);").await;
    let opts = CatalogOptions {
        no_owner: true,
        ..Default::default()
    };
    let c = catalog_of(&db, &opts).await;
    assert!(c.objects.iter().all(|o| o.owner_sql.is_none()));
}

#[tokio::test]
async fn privileges_and_no_privileges() {
    let sql = "CREATE ROLE kinds_acl_reader; CREATE ROLE kinds_acl_writer; \
               CREATE TABLE t (x int, y int); REVOKE ALL ON t FROM PUBLIC; \
               GRANT SELECT ON t TO kinds_acl_reader; GRANT INSERT, UPDATE ON t TO kinds_acl_writer WITH GRANT OPTION; \
               GRANT SELECT (y) ON t TO kinds_acl_writer; REVOKE TRUNCATE ON t FROM postgres; \
               CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'; REVOKE EXECUTE ON FUNCTION f() FROM PUBLIC; \
               ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO kinds_acl_reader; \
               ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE ON SEQUENCES TO kinds_acl_writer;";
    let c = roundtrip(sql).await;
    let acl = sql_of(&c, "ACL");
    for expected in [
        "REVOKE TRUNCATE ON TABLE \"public\".\"t\" FROM \"postgres\";",
        "GRANT SELECT ON TABLE \"public\".\"t\" TO \"kinds_acl_reader\";",
        "GRANT INSERT,UPDATE ON TABLE \"public\".\"t\" TO \"kinds_acl_writer\" WITH GRANT OPTION;",
        "GRANT SELECT(\"y\") ON TABLE \"public\".\"t\" TO \"kinds_acl_writer\";",
        "REVOKE EXECUTE ON FUNCTION \"public\".\"f\"() FROM PUBLIC;",
    ] {
        assert!(acl.contains(expected), "missing {expected} in\n{acl}");
    }
    let defaults = sql_of(&c, "DEFAULT ACL");
    assert!(defaults.contains("ALTER DEFAULT PRIVILEGES FOR ROLE \"postgres\" GRANT SELECT ON TABLES TO \"kinds_acl_reader\";"), "{defaults}");
    assert!(
        defaults.contains("IN SCHEMA \"public\" GRANT USAGE ON SEQUENCES TO \"kinds_acl_writer\";"),
        "{defaults}"
    );
    let db = db_with(
        sql.replace(
            "CREATE ROLE kinds_acl_reader; CREATE ROLE kinds_acl_writer;",
            "",
        )
        .as_str(),
    )
    .await;
    let c = catalog_of(
        &db,
        &CatalogOptions {
            no_privileges: true,
            ..Default::default()
        },
    )
    .await;
    assert!(objects_of(&c, "ACL").is_empty() && objects_of(&c, "DEFAULT ACL").is_empty());
}

#[tokio::test]
async fn schema_and_table_filters() {
    let db = db_with(
        "CREATE SCHEMA app; CREATE SCHEMA \"Other\"; CREATE TABLE app.users (id serial PRIMARY KEY); \
         CREATE TABLE app.logs (x int); CREATE INDEX logs_x ON app.logs (x); CREATE TABLE \"Other\".t (x int); \
         CREATE FUNCTION app.f() RETURNS int LANGUAGE sql AS 'SELECT 1'; COMMENT ON TABLE app.users IS 'u';",
    )
    .await;
    let names = |c: &Catalog, kind: &str| -> Vec<String> {
        let mut v: Vec<String> = objects_of(c, kind)
            .iter()
            .map(|o| format!("{}.{}", o.schema.clone().unwrap_or_default(), o.name))
            .collect();
        v.sort();
        v
    };
    let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let c = catalog_of(
        &db,
        &CatalogOptions {
            schemas: v(&["APP"]),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(names(&c, "TABLE"), ["app.logs", "app.users"]);
    assert_eq!(names(&c, "SCHEMA"), [".app"]);
    let c = catalog_of(
        &db,
        &CatalogOptions {
            exclude_schemas: v(&["app"]),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(names(&c, "TABLE"), ["Other.t"]);
    let c = catalog_of(
        &db,
        &CatalogOptions {
            tables: v(&["app.user*"]),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(names(&c, "TABLE"), ["app.users"]);
    assert!(objects_of(&c, "SCHEMA").is_empty() && objects_of(&c, "FUNCTION").is_empty());
    assert_eq!(
        names(&c, "SEQUENCE"),
        ["app.users_id_seq"],
        "owned sequences come with their table"
    );
    assert_eq!(objects_of(&c, "CONSTRAINT").len(), 1);
    assert_eq!(objects_of(&c, "COMMENT").len(), 1);
    let c = catalog_of(
        &db,
        &CatalogOptions {
            exclude_tables: v(&["app.logs", "\"Other\".*"]),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(names(&c, "TABLE"), ["app.users"]);
    assert!(
        objects_of(&c, "INDEX").is_empty(),
        "the index of an excluded table goes with it"
    );
    let client = db.client().await;
    let err = pgark_catalog::read_catalog(
        &client,
        &CatalogOptions {
            tables: v(&["a.b.c.d"]),
            ..Default::default()
        },
    )
    .await;
    assert!(err.unwrap_err().to_string().contains("a.b.c.d"));
}

#[tokio::test]
async fn unsupported_kinds_are_named_warnings() {
    let db = db_with(
        "SELECT lo_create(0); SELECT lo_create(0); \
         CREATE FOREIGN DATA WRAPPER \"kinds fdw\"; CREATE SERVER kinds_srv FOREIGN DATA WRAPPER \"kinds fdw\"; \
         CREATE FOREIGN TABLE ft (x int) SERVER kinds_srv;",
    )
    .await;
    let c = catalog_of(&db, &CatalogOptions::default()).await;
    let find = |kind: &str| {
        c.warnings
            .iter()
            .find(|w| w.kind == kind)
            .unwrap_or_else(|| panic!("no {kind} warning in {:?}", c.warnings))
    };
    assert_eq!(find("LARGE OBJECT").name, "2 large objects");
    assert!(find("LARGE OBJECT").reason.contains("NOT in the archive"));
    assert_eq!(find("FOREIGN DATA WRAPPER").name, "kinds fdw");
    assert_eq!(find("SERVER").name, "kinds_srv");
    assert_eq!(find("FOREIGN TABLE").name, "public.ft");
}

#[tokio::test]
async fn reads_inside_the_callers_transaction_and_restores_search_path() {
    let db = db_with("CREATE TABLE t (x int);").await;
    db.exec(&format!(
        "REVOKE TEMPORARY ON DATABASE {0} FROM PUBLIC; ALTER DATABASE {0} SET work_mem = '5MB'; \
         COMMENT ON DATABASE {0} IS 'the db';",
        db.name
    ))
    .await;
    let client = db.client().await;
    client
        .batch_execute(
            "SET search_path = public, pg_temp; BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
        )
        .await
        .unwrap();
    let c = pgark_catalog::read_catalog(&client, &CatalogOptions::default())
        .await
        .unwrap();
    let path: String = client
        .query_one("SHOW search_path", &[])
        .await
        .unwrap()
        .get(0);
    client.batch_execute("COMMIT").await.unwrap();
    assert_eq!(path, "public, pg_temp");
    assert_eq!(c.database.name, db.name);
    assert_eq!(c.database.encoding, "UTF8");
    assert_eq!(c.database.settings, ["work_mem=5MB"]);
    assert_eq!(c.database.comment.as_deref(), Some("the db"));
    assert_eq!(
        c.database.privileges_sql,
        format!(
            "REVOKE TEMPORARY ON DATABASE \"{}\" FROM PUBLIC;\n",
            db.name
        )
    );
    assert!(c.server_version_num >= 140000);
    assert_eq!(one(&c, "TABLE", "t").kind, "TABLE");
}

#[tokio::test]
async fn check_and_default_calling_a_function_of_their_table() {
    // Inside CREATE TABLE these would need the function, which needs the table.
    let c = roundtrip(
        "CREATE TABLE t (a int, b int); \
         CREATE FUNCTION ok(t) RETURNS bool LANGUAGE sql IMMUTABLE AS 'SELECT $1.a > 0'; \
         CREATE FUNCTION n() RETURNS bigint LANGUAGE sql BEGIN ATOMIC SELECT count(*) FROM public.t; END; \
         ALTER TABLE t ADD CONSTRAINT t_ok CHECK (ok(t)); ALTER TABLE t ALTER COLUMN b SET DEFAULT n();",
    )
    .await;
    assert!(!one(&c, "TABLE", "t").create_sql.contains("t_ok"));
    assert!(one(&c, "CHECK CONSTRAINT", "t t_ok")
        .deps
        .contains(&one(&c, "FUNCTION", "ok(public.t)").id));
    assert!(one(&c, "DEFAULT", "t b")
        .deps
        .contains(&one(&c, "FUNCTION", "n()").id));
}

#[tokio::test]
async fn extension_configuration_tables_have_their_rows_dumped() {
    // Only an extension script can call pg_extension_config_dump(); a
    // superuser can set the same catalog fields directly.
    let db = db_with(
        "CREATE EXTENSION pg_trgm; CREATE TABLE cfg (x int, g int GENERATED ALWAYS AS (x * 2) STORED); \
         CREATE SEQUENCE cfg_seq; SELECT setval('cfg_seq', 9); \
         ALTER EXTENSION pg_trgm ADD TABLE cfg; ALTER EXTENSION pg_trgm ADD SEQUENCE cfg_seq; \
         UPDATE pg_extension SET extconfig = ARRAY['cfg'::regclass::oid, 'cfg_seq'::regclass::oid], \
             extcondition = ARRAY['WHERE x > 0', ''] WHERE extname = 'pg_trgm';",
    )
    .await;
    let c = catalog_of(&db, &CatalogOptions::default()).await;
    assert!(
        objects_of(&c, "TABLE").is_empty(),
        "the table itself is the extension's"
    );
    let t = c
        .tables
        .iter()
        .find(|t| t.name == "cfg")
        .expect("config table listed for its rows");
    assert_eq!(t.copy_filter.as_deref(), Some("WHERE x > 0"));
    assert_eq!(t.columns.len(), 1);
    assert_eq!(c.objects[t.object_id as usize].kind, "EXTENSION");
    let set = one(&c, "SEQUENCE SET", "cfg_seq");
    assert!(set.create_sql.contains(", 9, true);"));
    assert!(set.deps.contains(&t.object_id));
}

#[tokio::test]
async fn domain_check_calling_a_function_of_the_domain() {
    let c = roundtrip(
        "CREATE DOMAIN d AS int; \
         CREATE FUNCTION d_ok(d) RETURNS bool LANGUAGE sql IMMUTABLE AS 'SELECT $1 > 0'; \
         ALTER DOMAIN d ADD CONSTRAINT d_check CHECK (d_ok(VALUE)); CREATE TABLE t (x d);",
    )
    .await;
    let check = one(&c, "CHECK CONSTRAINT", "d d_check");
    assert!(check
        .deps
        .contains(&one(&c, "FUNCTION", "d_ok(public.d)").id));
    assert!(!one(&c, "DOMAIN", "d").create_sql.contains("d_ok"));
}

#[tokio::test]
async fn view_calling_a_function_of_the_view() {
    let c = roundtrip(
        "CREATE VIEW v AS SELECT 1 AS a, 'x'::text COLLATE \"C\" AS b; \
         CREATE FUNCTION n() RETURNS bigint LANGUAGE sql BEGIN ATOMIC SELECT count(*) FROM public.v; END; \
         CREATE OR REPLACE VIEW v AS SELECT 1 AS a, 'x'::text COLLATE \"C\" AS b, n() AS n; \
         CREATE VIEW over_v AS SELECT a, n FROM v;",
    )
    .await;
    let placeholder = one(&c, "VIEW", "v");
    assert!(
        placeholder.create_sql.contains("NULL::bigint AS \"n\""),
        "{}",
        placeholder.create_sql
    );
    let real = one(&c, "RULE", "v _RETURN");
    assert!(real
        .create_sql
        .starts_with("CREATE OR REPLACE VIEW \"public\".\"v\""));
    let n = one(&c, "FUNCTION", "n()");
    assert!(n.deps.contains(&placeholder.id) && real.deps.contains(&n.id));
}

#[tokio::test]
async fn an_ordinary_role_can_read_the_catalog() {
    let db = db_with(
        "DO $$ BEGIN CREATE ROLE kinds_plain; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$; \
         CREATE TABLE t (id serial PRIMARY KEY); ALTER TABLE t OWNER TO kinds_plain; \
         CREATE FOREIGN DATA WRAPPER kinds_plain_fdw; CREATE SERVER kinds_plain_srv FOREIGN DATA WRAPPER kinds_plain_fdw; \
         CREATE USER MAPPING FOR kinds_plain SERVER kinds_plain_srv;",
    )
    .await;
    let client = db.client().await;
    client.batch_execute("SET ROLE kinds_plain").await.unwrap();
    let c = pgark_catalog::read_catalog(&client, &CatalogOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(one(&c, "TABLE", "t").owner.as_deref(), Some("kinds_plain"));
    assert!(
        c.warnings
            .iter()
            .any(|w| w.kind == "USER MAPPING" && w.name == "kinds_plain SERVER kinds_plain_srv"),
        "{:?}",
        c.warnings
    );
}

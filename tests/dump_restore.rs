//! Dump a real database, restore it elsewhere, and prove the copy identical.

use pgark::{Dump, Restore};
use pgark_e2e::{archive_path, assert_same_database, params};
use pgark_testkit::{fresh_db, fresh_learnapp_db};

#[tokio::test]
async fn learnapp_full_dump_restores_identically() {
    let src = fresh_learnapp_db(2).await;
    let (_dir, path) = archive_path();
    let report = Dump::new(params(&src))
        .jobs(2)
        .to_file(&path)
        .await
        .unwrap();
    assert!(report.rows() > 1000, "{} rows", report.rows());
    let dst = fresh_db().await;
    let restored = Restore::new(params(&dst), &path)
        .jobs(2)
        .run()
        .await
        .unwrap();
    assert!(restored.ok());
    assert_eq!(restored.rows, report.rows());
    assert_same_database(&src, &dst).await;
    let checks = pgark_restore_compare(&dst, &path).await;
    assert!(checks.iter().all(|c| c.ok()), "{checks:?}");
}

async fn pgark_restore_compare(
    db: &pgark_testkit::TestDb,
    path: &std::path::Path,
) -> Vec<pgark::TableCheck> {
    // restore_test restores into its own temporary database and compares.
    let server = params(db).with_dbname("postgres");
    pgark::restore_test(&server, path, 2).await.unwrap()
}

#[tokio::test]
async fn single_transaction_and_one_job_give_the_same_result() {
    let src = fresh_learnapp_db(1).await;
    let (_dir, path) = archive_path();
    Dump::new(params(&src))
        .jobs(1)
        .to_file(&path)
        .await
        .unwrap();
    let dst = fresh_db().await;
    Restore::new(params(&dst), &path)
        .jobs(1)
        .single_transaction(true)
        .run()
        .await
        .unwrap();
    assert_same_database(&src, &dst).await;
}

#[tokio::test]
async fn a_big_table_is_split_into_page_ranges_without_losing_rows() {
    let src = fresh_db().await;
    src.exec(
        "CREATE TABLE big (id bigint PRIMARY KEY, payload text);
         INSERT INTO big SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 60000) g;
         ANALYZE big;",
    )
    .await;
    // Rows added after ANALYZE sit beyond relpages: the open last range must catch them.
    src.exec("INSERT INTO big SELECT g, 'late' FROM generate_series(60001, 61000) g")
        .await;
    let (_dir, path) = archive_path();
    let report = Dump::new(params(&src))
        .jobs(2)
        .split_bytes(256 << 10)
        .to_file(&path)
        .await
        .unwrap();
    assert_eq!(report.rows(), 61000);
    let chunks = report.trailer.tables[0].chunks;
    assert!(chunks > 4, "expected several ranges, got {chunks} chunks");
    let dst = fresh_db().await;
    Restore::new(params(&dst), &path).run().await.unwrap();
    assert_same_database(&src, &dst).await;
}

#[tokio::test]
async fn streamed_archive_has_the_same_content_as_a_file() {
    let src = fresh_learnapp_db(1).await;
    let (_dir, path) = archive_path();
    let file = Dump::new(params(&src))
        .jobs(1)
        .to_file(&path)
        .await
        .unwrap();
    let (bytes, streamed) = Dump::new(params(&src))
        .jobs(1)
        .to_writer(Vec::new())
        .await
        .unwrap();
    assert_eq!(bytes.len() as u64, streamed.archive_bytes);
    let piped = path.with_extension("piped");
    std::fs::write(&piped, &bytes).unwrap();
    let (a, b) = (pgark::list(&path).unwrap(), pgark::list(&piped).unwrap());
    assert_eq!(a.toc, b.toc);
    let stats = |l: &pgark::Listing| {
        l.trailer
            .tables
            .iter()
            .map(|t| (t.entry_id, t.rows, t.raw_bytes, t.row_digest.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(stats(&a), stats(&b));
    assert_eq!(file.rows(), streamed.rows());
}

#[tokio::test]
async fn critical_tables_come_first_and_contiguous() {
    let src = fresh_learnapp_db(1).await;
    let (_dir, path) = archive_path();
    let critical = ["public.users", "public.spaced_repetition_cards"];
    Dump::new(params(&src))
        .jobs(2)
        .critical(critical)
        .to_file(&path)
        .await
        .unwrap();
    let l = pgark::list(&path).unwrap();
    let critical_ids: Vec<u32> = l
        .toc
        .iter()
        .filter(|e| e.copy.as_ref().is_some_and(|c| c.critical))
        .map(|e| e.id)
        .collect();
    assert_eq!(critical_ids.len(), 2);
    assert_eq!(l.meta.critical_tables.len(), 2);
    let data_blocks: Vec<u32> = l
        .trailer
        .index
        .iter()
        .filter(|b| b.kind == pgark::BlockKind::Data)
        .map(|b| b.entry_id)
        .collect();
    let first_other = data_blocks
        .iter()
        .position(|id| !critical_ids.contains(id))
        .unwrap();
    assert!(data_blocks[..first_other]
        .iter()
        .all(|id| critical_ids.contains(id)));
    assert!(
        data_blocks[first_other..]
            .iter()
            .all(|id| !critical_ids.contains(id)),
        "critical chunks are not contiguous"
    );
}

#[tokio::test]
async fn unknown_critical_table_is_an_error() {
    let src = fresh_db().await;
    src.exec("CREATE TABLE t (id int)").await;
    let (_dir, path) = archive_path();
    let err = Dump::new(params(&src))
        .critical(["nope"])
        .to_file(&path)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("no table matches \"nope\""),
        "{err}"
    );
    assert!(!path.exists());
}

#[tokio::test]
async fn selection_options_pick_what_pg_dump_would() {
    let src = fresh_db().await;
    src.exec(
        "CREATE SCHEMA keep; CREATE SCHEMA skip;
         CREATE TABLE keep.a (id int PRIMARY KEY); INSERT INTO keep.a VALUES (1), (2);
         CREATE TABLE keep.logs (id int); INSERT INTO keep.logs VALUES (1);
         CREATE TABLE skip.b (id int); INSERT INTO skip.b VALUES (3);",
    )
    .await;
    let (_dir, path) = archive_path();
    let tables_of = |path: &std::path::Path| {
        let l = pgark::list(path).unwrap();
        let mut t: Vec<String> = l
            .toc
            .iter()
            .filter(|e| e.kind == "TABLE")
            .map(|e| format!("{}.{}", e.schema.clone().unwrap(), e.name))
            .collect();
        t.sort();
        let data: Vec<String> = l
            .toc
            .iter()
            .filter(|e| e.kind == "TABLE DATA")
            .map(|e| e.name.clone())
            .collect();
        (t, data)
    };
    Dump::new(params(&src))
        .schemas(["keep"])
        .exclude_table_data(["keep.logs"])
        .to_file(&path)
        .await
        .unwrap();
    let (tables, data) = tables_of(&path);
    assert_eq!(tables, ["keep.a", "keep.logs"]);
    assert_eq!(data, ["a"]);
    Dump::new(params(&src))
        .tables(["keep.a", "skip.*"])
        .exclude_tables(["skip.b"])
        .to_file(&path)
        .await
        .unwrap();
    assert_eq!(tables_of(&path).0, ["keep.a"]);
    Dump::new(params(&src))
        .schema_only(true)
        .to_file(&path)
        .await
        .unwrap();
    let (tables, data) = tables_of(&path);
    assert_eq!(tables.len(), 3);
    assert!(data.is_empty());
    Dump::new(params(&src))
        .data_only(true)
        .to_file(&path)
        .await
        .unwrap();
    let (tables, data) = tables_of(&path);
    assert!(tables.is_empty());
    assert_eq!(data.len(), 3);
}

#[tokio::test]
async fn restore_subsets_schema_only_data_only_and_one_table() {
    let src = fresh_learnapp_db(1).await;
    let (_dir, path) = archive_path();
    Dump::new(params(&src)).to_file(&path).await.unwrap();
    let dst = fresh_db().await;
    Restore::new(params(&dst), &path)
        .schema_only(true)
        .run()
        .await
        .unwrap();
    assert_eq!(dst.pg_dump_schema(), src.pg_dump_schema());
    assert_eq!(
        dst.query_strings("SELECT count(*) FROM public.users").await,
        [Some("0".into())]
    );
    Restore::new(params(&dst), &path)
        .data_only(true)
        .run()
        .await
        .unwrap();
    pgark_e2e::assert_same_database(&src, &dst).await;

    let one = fresh_db().await;
    Restore::new(params(&one), &path)
        .tables(["users"])
        .run()
        .await
        .unwrap();
    assert_eq!(one.all_tables().await, ["public.users"]);
    assert_eq!(
        one.table_rows("public.users").await,
        src.table_rows("public.users").await
    );
}

#[tokio::test]
async fn clean_restore_over_an_existing_copy() {
    let src = fresh_learnapp_db(1).await;
    let (_dir, path) = archive_path();
    Dump::new(params(&src)).to_file(&path).await.unwrap();
    let dst = fresh_db().await;
    Restore::new(params(&dst), &path).run().await.unwrap();
    dst.exec("DELETE FROM public.review_logs; INSERT INTO public.tags (name) VALUES ('extra')")
        .await;
    Restore::new(params(&dst), &path)
        .clean(true)
        .if_exists(true)
        .run()
        .await
        .unwrap();
    assert_same_database(&src, &dst).await;
}

#[tokio::test]
async fn a_damaged_archive_is_refused_before_the_target_changes() {
    let src = fresh_learnapp_db(1).await;
    let (_dir, path) = archive_path();
    Dump::new(params(&src)).to_file(&path).await.unwrap();
    let listing = pgark::list(&path).unwrap();
    let last_chunk = listing
        .trailer
        .index
        .iter()
        .rfind(|b| b.kind == pgark::BlockKind::Data)
        .unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[last_chunk.offset as usize + 100] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let dst = fresh_db().await;
    let err = Restore::new(params(&dst), &path).run().await.unwrap_err();
    assert!(err.to_string().contains("chunk"), "{err}");
    assert!(dst.all_tables().await.is_empty(), "the target was changed");
    let truncated = path.with_extension("cut");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let err = Restore::new(params(&dst), &truncated)
        .run()
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("cut"),
        "error names the file: {err}"
    );
    assert!(dst.all_tables().await.is_empty());
}

#[tokio::test]
async fn script_output_recreates_the_database_through_psql() {
    let src = fresh_learnapp_db(1).await;
    let (dir, path) = archive_path();
    Dump::new(params(&src)).to_file(&path).await.unwrap();
    let script = dir.path().join("backup.sql");
    let mut out = std::fs::File::create(&script).unwrap();
    Restore::new(params(&src), &path)
        .write_script(&mut out)
        .unwrap();
    drop(out);
    let dst = fresh_db().await;
    let c = dst.cluster();
    let status = std::process::Command::new(c.bin("psql"))
        .args([
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            c.host(),
            "-p",
            &c.port().to_string(),
            "-U",
            c.superuser(),
            "-d",
            &dst.name,
            "-f",
        ])
        .arg(&script)
        .status()
        .unwrap();
    assert!(status.success());
    assert_same_database(&src, &dst).await;
}

#[tokio::test]
async fn owners_and_privileges_are_restored_unless_skipped() {
    let src = fresh_db().await;
    src.exec(
        "DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'e2e_owner') THEN CREATE ROLE e2e_owner; END IF;
                    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'e2e_reader') THEN CREATE ROLE e2e_reader; END IF; END$$;
         CREATE TABLE owned (id int); ALTER TABLE owned OWNER TO e2e_owner;
         GRANT SELECT ON owned TO e2e_reader;",
    )
    .await;
    let (_dir, path) = archive_path();
    Dump::new(params(&src)).to_file(&path).await.unwrap();
    let owner_and_acl = "SELECT pg_get_userbyid(relowner) || ' ' || coalesce(relacl::text, '-') FROM pg_class WHERE relname = 'owned'";

    let full = fresh_db().await;
    Restore::new(params(&full), &path).run().await.unwrap();
    assert_eq!(
        full.query_strings(owner_and_acl).await,
        src.query_strings(owner_and_acl).await
    );

    let bare = fresh_db().await;
    Restore::new(params(&bare), &path)
        .no_owner(true)
        .no_privileges(true)
        .run()
        .await
        .unwrap();
    assert_eq!(
        bare.query_strings(owner_and_acl).await,
        [Some("postgres -".to_string())]
    );

    let as_role = fresh_db().await;
    as_role
        .exec(&format!(
            "GRANT CREATE ON SCHEMA public TO e2e_owner; GRANT CREATE ON DATABASE {} TO e2e_owner",
            as_role.name
        ))
        .await;
    Restore::new(params(&as_role), &path)
        .no_owner(true)
        .no_privileges(true)
        .role(Some("e2e_owner".into()))
        .run()
        .await
        .unwrap();
    assert_eq!(
        as_role.query_strings(owner_and_acl).await,
        [Some("e2e_owner -".to_string())]
    );
}

#[tokio::test]
async fn create_makes_the_archives_database_with_its_encoding() {
    let src = fresh_learnapp_db(1).await;
    let (_dir, path) = archive_path();
    Dump::new(params(&src)).to_file(&path).await.unwrap();
    let expected = pgark_e2e::all_rows(&src).await;
    let schema = src.pg_dump_schema();
    let admin = src.cluster().connect("postgres").await.unwrap();
    admin
        .batch_execute(&format!("DROP DATABASE {}", src.name))
        .await
        .unwrap();
    let via = params(&src).with_dbname("postgres");
    Restore::new(via, &path).create(true).run().await.unwrap();
    assert_eq!(src.pg_dump_schema(), schema);
    assert!(pgark_e2e::all_rows(&src).await == expected);
}

#[tokio::test]
async fn a_crafted_table_name_in_the_toc_is_refused() {
    use pgark_archive::{
        ArchiveMeta, ArchiveWriter, CopyColumn, CopySpec, Section, TocEntry, WriterOptions,
    };
    let db = fresh_db().await;
    db.exec("CREATE TABLE t (id int); CREATE TABLE victim (id int)")
        .await;
    let entry = TocEntry {
        id: 0,
        kind: "TABLE DATA".into(),
        schema: Some("public".into()),
        name: "t".into(),
        owner: None,
        section: Section::Data,
        create_sql: String::new(),
        owner_sql: None,
        drop_sql: String::new(),
        deps: vec![],
        copy: Some(CopySpec {
            qualified_table:
                "\"public\".\"t\" FROM STDIN; DROP TABLE victim; COPY \"public\".\"t\"".into(),
            columns: vec![CopyColumn {
                name: "id".into(),
                type_name: "integer".into(),
                base_type: None,
            }],
            format: "text".into(),
            critical: false,
        }),
    };
    let (_dir, path) = archive_path();
    let file = std::fs::File::create(&path).unwrap();
    let w = ArchiveWriter::new(
        file,
        &ArchiveMeta::default(),
        &[entry],
        WriterOptions::default(),
    )
    .unwrap();
    w.chunk_sender().send(0, 1, b"1\n".to_vec()).unwrap();
    w.finish(chrono::Utc::now(), Default::default()).unwrap();
    let err = Restore::new(params(&db), &path)
        .data_only(true)
        .run()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("crafted"), "{err}");
    assert_eq!(db.all_tables().await, ["public.t", "public.victim"]);
}

#[tokio::test]
async fn a_conflicting_lock_fails_the_dump_after_the_lock_timeout() {
    let src = fresh_learnapp_db(1).await;
    let holder = src.client().await;
    holder
        .batch_execute("BEGIN; LOCK TABLE public.users IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let (_dir, path) = archive_path();
    let started = std::time::Instant::now();
    let err = Dump::new(params(&src))
        .lock_timeout(std::time::Duration::from_secs(1))
        .to_file(&path)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("could not lock"), "{err}");
    assert!(
        err.to_string()
            .contains("public.users is locked by session"),
        "{err}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert!(!path.exists());
    holder.batch_execute("ROLLBACK").await.unwrap();
}

#[tokio::test]
async fn compare_finds_a_changed_value_with_the_same_row_count() {
    let db = fresh_learnapp_db(1).await;
    let (_dir, path) = archive_path();
    Dump::new(params(&db)).to_file(&path).await.unwrap();
    let same = pgark::compare(&params(&db), &path).await.unwrap();
    assert!(same.iter().all(|c| c.ok()), "{same:?}");
    db.exec(
        "UPDATE public.tags SET name = name || 'x' WHERE id = (SELECT min(id) FROM public.tags)",
    )
    .await;
    let changed = pgark::compare(&params(&db), &path).await.unwrap();
    let bad: Vec<&pgark::TableCheck> = changed.iter().filter(|c| !c.ok()).collect();
    assert_eq!(bad.len(), 1, "{changed:?}");
    assert_eq!(bad[0].table, "\"public\".\"tags\"");
    assert_eq!(bad[0].archive_rows, bad[0].database_rows);
}

#[tokio::test]
async fn a_failing_statement_is_pinned_on_its_entry_and_the_rest_goes_on() {
    let src = fresh_db().await;
    src.exec("CREATE TABLE a (id int); CREATE TABLE b (id int); CREATE TABLE c (id int); INSERT INTO c VALUES (1)").await;
    let (_dir, path) = archive_path();
    Dump::new(params(&src)).to_file(&path).await.unwrap();
    let dst = fresh_db().await;
    dst.exec("CREATE TABLE b (other text)").await;
    let err = Restore::new(params(&dst), &path).run().await.unwrap_err();
    let report = err.restore_report().expect("a restore report");
    let failed: Vec<&str> = report.failed.iter().map(|f| f.entry.as_str()).collect();
    assert!(
        failed.iter().any(|f| f.contains("TABLE public.b")),
        "{failed:?}"
    );
    assert!(
        !failed
            .iter()
            .any(|f| f.contains("public.a") || f.contains("public.c")),
        "{failed:?}"
    );
    assert_eq!(dst.table_rows("public.c").await, ["(1)"]);
    assert!(dst.all_tables().await.contains(&"public.a".to_string()));
}

#[tokio::test]
async fn an_encrypted_backup_needs_its_key_and_restores_identically() {
    let src = fresh_learnapp_db(1).await;
    let (dir, path) = archive_path();
    let key = || Some(pgark::Key::from_passphrase("correct horse battery staple").unwrap());
    Dump::new(params(&src))
        .encrypt(key())
        .to_file(&path)
        .await
        .unwrap();
    let plain = std::fs::read(&path).unwrap();
    assert!(
        !plain.windows(11).any(|w| w == b"spaced_repe"),
        "table names visible in an encrypted archive"
    );

    let missing = pgark::list(&path).unwrap_err().to_string();
    assert!(missing.contains("encrypted"), "{missing}");
    let wrong = Some(pgark::Key::from_passphrase("wrong").unwrap());
    let err = pgark::list_with_key(&path, wrong.as_ref())
        .unwrap_err()
        .to_string();
    assert!(
        err.to_lowercase().contains("key") || err.to_lowercase().contains("passphrase"),
        "{err}"
    );
    pgark::verify(&path).unwrap();
    pgark::verify_with_key(&path, key().as_ref()).unwrap();

    let dst = fresh_db().await;
    let err = Restore::new(params(&dst), &path).run().await.unwrap_err();
    assert!(err.to_string().contains("encrypted"), "{err}");
    assert!(dst.all_tables().await.is_empty());
    Restore::new(params(&dst), &path)
        .key(key())
        .run()
        .await
        .unwrap();
    assert_same_database(&src, &dst).await;

    src.exec("UPDATE public.users SET created_at = now() WHERE id % 2 = 0")
        .await;
    pgark::Rollback::new(params(&src), &path)
        .key(key())
        .tables(["public.users"])
        .await
        .unwrap();
    assert_eq!(
        src.table_rows("public.users").await,
        dst.table_rows("public.users").await
    );
    drop(dir);
}

/// Rows of the types a restore sends in binary, at every edge their text
/// form has (infinities, BC, years past 9999, -0, NaN, escapes, padding,
/// typmods), plus random bulk: the copy holds exactly the same values.
#[tokio::test]
async fn values_sent_in_binary_come_back_exactly() {
    let src = fresh_db().await;
    src.exec(
        r#"SET TimeZone = 'America/St_Johns';
        CREATE TABLE public.edge (
            i2 smallint, i4 integer, i8 bigint, f4 real, f8 double precision, b boolean,
            t text, vc varchar(7), ch char(5), nm name, js json, jb jsonb, by bytea, u uuid,
            d date, tm time, tm0 time(0), ts timestamp, ts3 timestamp(3), tz timestamptz,
            n numeric, n4 numeric(14,4));
        INSERT INTO public.edge VALUES
          (-32768, -2147483648, -9223372036854775808, '-Infinity', '-Infinity', false,
           E'tab\there\nnew\\line \\N', 'ab', 'ab', 'n', '{"a" :  [1, 2]}', '{"b": {"c": null}}', '\x', '00000000-0000-0000-0000-000000000000',
           '-infinity', '00:00:00', '12:34:56', '-infinity', '4713-01-01 00:00:00 BC', '-infinity',
           'NaN', '-9999999999.9999'),
          (32767, 2147483647, 9223372036854775807, 'Infinity', 'Infinity', true,
           '', 'seven77', 'five5', repeat('x', 63), '[]', '[]', '\x00ff5c0a09', 'ffffffff-ffff-ffff-ffff-ffffffffffff',
           'infinity', '24:00:00', '23:59:59', 'infinity', '294276-12-31 23:59:59.999', 'infinity',
           'Infinity', '9999999999.9999'),
          (0, 0, 0, '-0', '-0', NULL, 'é€𝄞 \\ back', NULL, '', NULL, 'null', '"s"', '\x5c', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
           '0001-01-01 BC', '23:59:59.999999', NULL, '0001-01-01 00:00:00 BC', '1999-12-31 23:59:59.999', '1883-11-18 12:00:00-03:30',
           '-0.000000000000000000000000000001', '-0.00005'),
          (NULL, 1, 1, 'NaN', 'NaN', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
           '5874897-12-31', NULL, NULL, '10000-01-01 00:00:00', NULL, '2000-01-01 00:00:00.000001+00',
           '123456789012345678901234567890.123456789', '0.00005'),
          (1, 1, 1, 1.17549435e-38, 5e-324, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
           '2000-02-29', NULL, NULL, '1582-10-10 10:10:10.5', NULL, '0044-03-15 12:00:00+00 BC',
           power(10::numeric, 200), 0),
          (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
           NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
        INSERT INTO public.edge (i8, f4, f8, d, ts, ts3, tz, n, n4)
        SELECT (random() * 2e18)::bigint - 1e18::bigint, (random() - 0.5)::real * 1e6, (random() - 0.5) * 10 ^ (g % 40 - 20),
               date '0100-01-01' + (random() * 1000000)::int,
               timestamp '1900-01-01' + random() * interval '200 years',
               timestamp '1900-01-01' + random() * interval '200 years',
               timestamptz '0500-01-01 00:00+00' + random() * interval '2000 years',
               round(((random() - 0.5) * 10 ^ (g % 30 - 10))::numeric, g % 12),
               round((random() * 1e9)::numeric, 4)
        FROM generate_series(1, 20000) g;
        CREATE TABLE public.spans (iv interval, iv3 interval(3), ym interval year to month, ip inet, net cidr);
        INSERT INTO public.spans VALUES
          ('0', '1.23456 s', '1 year 2 mons', '0.0.0.0', '0.0.0.0/0'),
          ('-1 years -2 mons +3 days -04:05:06.789', '-0.0005 s', '-13 mons', '255.255.255.255', '10.0.0.0/8'),
          ('2562047788:00:54.775807', '-2562047788:00:54.775807', '178000000 years', '10.1.2.3/8', '::/0'),
          ('1 day -00:00:00.000001', '100000 days 25:00:00', '-178000000 years', '::1', '2001:db8::/32'),
          ('-00:00:00.000001', NULL, NULL, '::ffff:1.2.3.4/120', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128'),
          (NULL, NULL, NULL, '2001:db8::1/64', NULL);
        INSERT INTO public.spans (iv, ip)
        SELECT make_interval(g % 7 - 3, g % 13 - 6, 0, g % 40 - 20, g % 50 - 25, g % 60, (g % 1000) / 7.0),
               ('10.0.' || g % 256 || '.' || g % 7 || '/' || (g % 33))::inet
        FROM generate_series(1, 5000) g;
        CREATE TABLE public.more_arrays (b boolean[], f4 real[], f8 double precision[], n numeric(8,3)[],
            u uuid[], d date[], tm time[], ts timestamp[], tz timestamptz[], iv interval[],
            ip inet[], net cidr[], jb jsonb[], by bytea[]);
        INSERT INTO public.more_arrays VALUES
          ('{t,f,NULL}', '{-Infinity,NaN,1.17549435e-38,-0}', '{5e-324,Infinity,0.1}', '{1.5,-99999.999,NULL,NaN}',
           '{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11,NULL}', '{infinity,2000-02-29,"0044-03-15 BC"}', '{00:00:00,"23:59:59.999999"}',
           '{"2024-02-29 12:34:56.789",-infinity,"0001-01-01 00:00:00 BC"}', '[0:1]={"2000-01-01 00:00:00.000001+00",NULL}',
           '{"1 year 2 mons -3 days +04:05:06.5","-00:00:00.000001",NULL}', '{10.1.2.3/8,::1,"::ffff:1.2.3.4"}',
           '{10.0.0.0/8,2001:db8::/32}', E'{"{\\"a\\": [1, \\"x,y\\"]}",null,"[]"}', E'{"\\\\x","\\\\x00ff5c22",NULL}'),
          ('{}', '{{1,2},{3,4}}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}'),
          (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
        INSERT INTO public.more_arrays (f8, n, tz, iv)
        SELECT ARRAY[random() * 1e6, g], ARRAY[round((random() * 1e4)::numeric, 3)],
               ARRAY[timestamptz '2000-01-01 00:00+00' + g * interval '1 hour 1.5 s'], ARRAY[g * interval '1 day 1 s']
        FROM generate_series(1, 3000) g;
        CREATE TABLE public.arrays (a2 smallint[], a4 integer[], a8 bigint[], t text[], v varchar(5)[]);
        INSERT INTO public.arrays VALUES
          ('{}', '{}', '{}', '{}', '{}'),
          ('{NULL}', '{NULL,1,NULL}', '[0:2]={1,2,3}', '{NULL,"NULL",null,""," "}', '{"a,b","{}"}'),
          ('{-32768,32767}', '{{1,2},{3,4}}', '[-3:-2][5:5]={{-9223372036854775808},{9223372036854775807}}',
           E'{"q\\"uote","back\\\\slash","tab\there","new\nline","é€𝄞",x}', '[2:3]={"  ",ab}'),
          (NULL, NULL, NULL, '{{a,b},{"c d",NULL}}', NULL);
        INSERT INTO public.arrays (a4, a8, t)
        SELECT ARRAY(SELECT (random() * 2e9 - 1e9)::int FROM generate_series(1, g % 7)),
               ARRAY[g::bigint * 1000003, NULL],
               ARRAY(SELECT md5(i::text) || CASE WHEN i % 3 = 0 THEN ', "x"' ELSE '' END FROM generate_series(1, g % 5) i)
        FROM generate_series(1, 5000) g;"#,
    )
    .await;
    let (_dir, path) = archive_path();
    Dump::new(params(&src)).to_file(&path).await.unwrap();
    restores_the_same_with_one_and_two_jobs(&src, &path).await;
}

async fn restores_the_same_with_one_and_two_jobs(
    src: &pgark_testkit::TestDb,
    path: &std::path::Path,
) {
    for jobs in [1, 2] {
        let dst = fresh_db().await;
        Restore::new(params(&dst), path)
            .jobs(jobs)
            .run()
            .await
            .unwrap();
        assert_same_database(src, &dst).await;
    }
}

/// Enums and domains load in binary as the types their values are sent as
/// (the label; the domain's base type), and still come back exactly, with
/// the domains' constraints checked by the server.
#[tokio::test]
async fn enums_and_domains_go_by_their_base_types() {
    let src = fresh_db().await;
    src.exec(
        r#"CREATE SCHEMA "Odd Schema";
        CREATE TYPE "Odd Schema"."Mood" AS ENUM ('sad', E'tab\there', 'back\slash', 'é€𝄞', 'quo"te');
        CREATE DOMAIN public.posint AS integer CHECK (VALUE > 0);
        CREATE DOMAIN public.small_posint AS public.posint CHECK (VALUE < 1000);
        CREATE DOMAIN public.code AS varchar(10) NOT NULL;
        CREATE DOMAIN public.happy AS "Odd Schema"."Mood" CHECK (VALUE <> 'sad');
        CREATE DOMAIN public.ids AS bigint[];
        CREATE DOMAIN public.stamp AS timestamp(3);
        CREATE TABLE public.typed (m "Odd Schema"."Mood", p public.posint, s public.small_posint,
            c public.code, h public.happy, i public.ids, st public.stamp, ms "Odd Schema"."Mood"[]);
        INSERT INTO public.typed VALUES
          ('sad', 1, 999, '', E'tab\there', '{1,NULL,-3}', '2024-02-29 12:34:56.789', '{sad,"quo\"te"}'),
          ('back\slash', 2147483647, 1, 'ten chars!', 'é€𝄞', '{}', 'infinity', NULL),
          (NULL, NULL, NULL, 'x', NULL, NULL, NULL, '{}');
        INSERT INTO public.typed (m, p, c, h, st)
        SELECT (enum_range(NULL::"Odd Schema"."Mood"))[g % 5 + 1], g, md5(g::text)::varchar(10),
               (enum_range(NULL::"Odd Schema"."Mood"))[g % 4 + 2], timestamp '2000-01-01' + g * interval '1.001 s'
        FROM generate_series(1, 3000) g;"#,
    )
    .await;
    let (_dir, path) = archive_path();
    Dump::new(params(&src)).to_file(&path).await.unwrap();
    let listed = pgark::list(&path).unwrap();
    let columns = &listed
        .toc
        .iter()
        .find_map(|e| {
            e.copy
                .as_ref()
                .filter(|c| c.qualified_table.contains("typed"))
        })
        .unwrap()
        .columns;
    let bases: Vec<Option<&str>> = columns.iter().map(|c| c.base_type.as_deref()).collect();
    assert_eq!(
        bases,
        [
            Some("text"),
            Some("integer"),
            Some("integer"),
            Some("character varying(10)"),
            Some("text"),
            Some("bigint[]"),
            Some("timestamp(3) without time zone"),
            None
        ]
    );
    restores_the_same_with_one_and_two_jobs(&src, &path).await;
}

/// A data-only restore into tables whose column types changed since the
/// backup (int to bigint, timestamp to timestamptz) reads the rows as text,
/// as the server would parse them: never as the archive's binary forms.
#[tokio::test]
async fn data_only_into_changed_column_types_parses_text() {
    let src = fresh_db().await;
    src.exec(
        "CREATE TABLE public.t (id int, at timestamp, n numeric(6,2));
         INSERT INTO public.t VALUES (1, '2024-01-02 03:04:05', 1.5), (2147483647, 'infinity', NULL);",
    )
    .await;
    let (_dir, path) = archive_path();
    Dump::new(params(&src)).to_file(&path).await.unwrap();
    let dst = fresh_db().await;
    dst.exec(&format!(
        "ALTER DATABASE {} SET TimeZone = 'UTC';
         CREATE TABLE public.t (id bigint, at timestamptz, n float8);",
        dst.name
    ))
    .await;
    for jobs in [1, 2] {
        dst.exec("TRUNCATE public.t").await;
        Restore::new(params(&dst), &path)
            .data_only(true)
            .jobs(jobs)
            .run()
            .await
            .unwrap();
        assert_eq!(
            dst.query_strings(
                "SET TimeZone = 'UTC'; SELECT string_agg(format('%s|%s|%s', id, at, n), ',' ORDER BY id) FROM public.t"
            )
            .await,
            [Some(
                "1|2024-01-02 03:04:05+00|1.5,2147483647|infinity|".to_string()
            )]
        );
    }
}

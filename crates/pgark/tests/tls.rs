//! TLS with libpq's sslmode meanings, against a private cluster that accepts
//! TCP connections only over TLS and holds a certificate for 127.0.0.1
//! signed by a test CA.

mod common;

use common::*;
use pgark_testkit::{Cluster, ClusterOptions};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

const DB: &str = "tlsdb";
const PASSWORD: &str = "tls-Pa55word-91";
const ROLE: &str = "pw_tls_user";

struct TlsServer {
    cluster: Cluster,
    _certs: tempfile::TempDir,
    ca: PathBuf,
    other_ca: PathBuf,
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("CA key")).expect("CA cert")
}

/// The server, started on first use and destroyed when the test process exits.
fn server() -> &'static TlsServer {
    static SERVER: OnceLock<TlsServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        // Its own thread: the setup uses a runtime, and tests already run in one.
        let server = std::thread::spawn(start_tls_server)
            .join()
            .expect("TLS server starts");
        extern "C" fn destroy() {
            if let Some(s) = SERVER.get() {
                s.cluster.destroy();
            }
        }
        // SAFETY: registers a plain function with no preconditions.
        unsafe { libc::atexit(destroy) };
        server
    })
}

fn start_tls_server() -> TlsServer {
    let certs = tempfile::tempdir().expect("temp dir");
    let ca_issuer = ca("pgark test CA");
    let other = ca("some other CA");
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("params");
    params
        .distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    let key = KeyPair::generate().expect("server key");
    let cert = params.signed_by(&key, &ca_issuer).expect("server cert");
    let ca = certs.path().join("ca.crt");
    let other_ca = certs.path().join("other-ca.crt");
    std::fs::write(&ca, ca_issuer.pem()).unwrap();
    std::fs::write(&other_ca, other.pem()).unwrap();

    let cluster = Cluster::start(ClusterOptions::default()).expect("start cluster");
    // Objects first, while plain TCP still works for the harness.
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        cluster.create_database(DB).await.expect("create db");
        cluster
            .create_password_role(ROLE, PASSWORD)
            .await
            .expect("password role");
        let client = cluster.connect(DB).await.expect("connect");
        client.batch_execute(SMALL_SCHEMA).await.expect("schema");
        client
            .batch_execute(&format!(
                "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {ROLE}"
            ))
            .await
            .expect("grant");
    });
    cluster
        .write_server_file("server.crt", cert.pem().as_bytes())
        .unwrap();
    cluster
        .write_server_file("server.key", key.serialize_pem().as_bytes())
        .unwrap();
    // TCP without TLS is rejected, so a success proves the connection was encrypted.
    let hba = "hostssl all +pgark_password_users 127.0.0.1/32 scram-sha-256\n\
               hostssl all all 127.0.0.1/32 trust\n\
               host all all 127.0.0.1/32 reject\n\
               local all all trust\n";
    cluster
        .write_server_file("pg_hba.conf", hba.as_bytes())
        .unwrap();
    cluster
        .append_conf(&[
            ("ssl", "on"),
            ("ssl_cert_file", "server.crt"),
            ("ssl_key_file", "server.key"),
        ])
        .unwrap();
    cluster.restart().expect("restart with ssl=on");
    TlsServer {
        cluster,
        _certs: certs,
        ca,
        other_ca,
    }
}

fn conninfo(host: &str, extra: &str) -> String {
    format!(
        "host={host} port={} user=postgres dbname={DB} {extra}",
        server().cluster.port()
    )
}

fn estimate(conninfo: &str) -> Command {
    let mut cmd = pgark(["estimate", "--json", "-f", "/tmp", "-d"]);
    cmd.arg(conninfo);
    cmd
}

async fn connects(cmd: Command) {
    let out = run(cmd).await;
    assert_eq!(out.expect_ok().json()["database"], DB);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_tcp_is_rejected_and_require_and_prefer_encrypt() {
    let s = server();
    run(estimate(&conninfo("127.0.0.1", "sslmode=disable")))
        .await
        .expect_error(&["rejects connection", "no encryption"]);
    connects(estimate(&conninfo("127.0.0.1", "sslmode=require"))).await;
    connects(estimate(&conninfo("127.0.0.1", "sslmode=prefer"))).await;
    connects(estimate(&conninfo("127.0.0.1", ""))).await;
    // require checks no certificate: the wrong CA does not matter.
    let other = format!("sslmode=require sslrootcert={}", s.other_ca.display());
    connects(estimate(&conninfo("127.0.0.1", &other))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_ca_checks_the_issuer() {
    let s = server();
    let right = format!("sslmode=verify-ca sslrootcert={}", s.ca.display());
    connects(estimate(&conninfo("127.0.0.1", &right))).await;

    let wrong = format!("sslmode=verify-ca sslrootcert={}", s.other_ca.display());
    let line = run(estimate(&conninfo("127.0.0.1", &wrong))).await;
    let line = line.expect_error(&["127.0.0.1"]);
    assert!(
        line.to_lowercase().contains("certificate") || line.contains("UnknownIssuer"),
        "{line}"
    );

    // A root certificate without a mode means verify-ca, as in libpq.
    let implied = format!("sslrootcert={}", s.other_ca.display());
    run(estimate(&conninfo("127.0.0.1", &implied)))
        .await
        .expect_code(1);

    let missing = "sslmode=verify-ca sslrootcert=/nonexistent/ca.crt";
    run(estimate(&conninfo("127.0.0.1", missing)))
        .await
        .expect_error(&["/nonexistent/ca.crt"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_also_checks_the_host_name() {
    let s = server();
    let full = format!("sslmode=verify-full sslrootcert={}", s.ca.display());
    connects(estimate(&conninfo("127.0.0.1", &full))).await;
    // localhost reaches the same server, but the certificate names only 127.0.0.1.
    let line = run(estimate(&conninfo("localhost", &full))).await;
    let line = line.expect_error(&["localhost"]);
    assert!(
        line.to_lowercase().contains("name") || line.contains("NotValidFor"),
        "{line}"
    );
    let ca_only = format!("sslmode=verify-ca sslrootcert={}", s.ca.display());
    connects(estimate(&conninfo("localhost", &ca_only))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslmode_and_root_certificate_from_the_environment_and_home() {
    let s = server();
    let mut env = estimate(&conninfo("127.0.0.1", ""));
    env.env("PGSSLMODE", "verify-full")
        .env("PGSSLROOTCERT", &s.ca);
    connects(env).await;
    let mut env_wrong = estimate(&conninfo("127.0.0.1", ""));
    env_wrong
        .env("PGSSLMODE", "verify-ca")
        .env("PGSSLROOTCERT", &s.other_ca);
    run(env_wrong).await.expect_code(1);

    // Without sslrootcert, verify-* reads ~/.postgresql/root.crt.
    let home = tempfile::tempdir().unwrap();
    let mut no_root = estimate(&conninfo("127.0.0.1", "sslmode=verify-ca"));
    no_root.env("HOME", home.path());
    run(no_root).await.expect_error(&["root.crt"]);
    std::fs::create_dir(home.path().join(".postgresql")).unwrap();
    std::fs::copy(&s.ca, home.path().join(".postgresql/root.crt")).unwrap();
    let mut home_root = estimate(&conninfo("127.0.0.1", "sslmode=verify-ca"));
    home_root.env("HOME", home.path());
    connects(home_root).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_role_dumps_and_verifies_over_verify_full() {
    let s = server();
    let (_dir, file) = archive_path();
    let info = format!(
        "host=127.0.0.1 port={} user={ROLE} dbname={DB} sslmode=verify-full sslrootcert={}",
        s.cluster.port(),
        s.ca.display()
    );
    let mut dump = pgark([
        "dump",
        "--json",
        "-O",
        "-x",
        "-f",
        common::s(&file),
        "-d",
        &info,
    ]);
    dump.env("PGPASSWORD", PASSWORD);
    let out = run(dump).await;
    assert_eq!(out.expect_ok().json()["rows"], SMALL_ROWS);
    for channel in [&out.stdout_text(), &out.stderr] {
        assert!(!channel.contains(PASSWORD));
    }
    assert!(!file_contains(&file, PASSWORD));
    run(pgark(["verify", common::s(&file)])).await.expect_ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_binding_require_is_honoured_not_ignored() {
    let s = server();
    // Trust authentication has no SCRAM exchange to bind: libpq refuses.
    let trust = format!(
        "host=127.0.0.1 port={} user=postgres dbname={DB} sslmode=require channel_binding=require",
        s.cluster.port()
    );
    run(estimate(&trust))
        .await
        .expect_error(&["channel binding"]);
    // SCRAM over TLS can bind to the server certificate (SCRAM-SHA-256-PLUS).
    let scram = format!(
        "host=127.0.0.1 port={} user={ROLE} dbname={DB} sslmode=require channel_binding=require",
        s.cluster.port()
    );
    let mut cmd = estimate(&scram);
    cmd.env("PGPASSWORD", PASSWORD);
    connects(cmd).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_output_is_read_in_bulk_above_tls_with_channel_binding() {
    let s = server();
    let info = format!(
        "host=127.0.0.1 port={} user={ROLE} password={PASSWORD} dbname={DB} \
         sslmode=verify-full sslrootcert={} channel_binding=require",
        s.cluster.port(),
        s.ca.display()
    );
    let params = pgark_conn::ConnParams::resolve(Some(&info), &Default::default()).unwrap();
    let (client, reader) = pgark_conn::connect_for_copy_out(&params, pgark_conn::Purpose::Dump)
        .await
        .unwrap();
    let sql = "COPY (SELECT g, repeat('x', g % 300) FROM generate_series(1, 30000) g) TO STDOUT";
    let expected = pgark_testkit::copy_out_plain(&client, sql).await;
    let mut copy = reader.copy_out(&client, sql, 64 * 1024).await.unwrap();
    let mut got = Vec::new();
    while let Some(rows) = copy.next().await.unwrap() {
        got.extend_from_slice(&rows);
    }
    assert!(copy.tapped(), "the tap sits above TLS");
    assert!(
        got == expected,
        "same bytes as tokio-postgres's own COPY stream"
    );
}

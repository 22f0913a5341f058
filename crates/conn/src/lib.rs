//! Connecting to PostgreSQL the way libpq users expect, pinning the session
//! settings that make dumps exact and restores predictable, and reading
//! `COPY ... TO STDOUT` in bulk ([`connect_for_copy_out`]).
//!
//! ```no_run
//! # async fn f() -> Result<(), pgark_conn::ConnError> {
//! let params = pgark_conn::ConnParams::resolve(Some("postgres://app@db/prod"), &Default::default())?;
//! let client = pgark_conn::connect_session(&params, pgark_conn::Purpose::Dump).await?;
//! # Ok(()) }
//! ```

mod params;
mod pgpass;
mod tap;
mod tls;

pub use params::{ChannelBinding, ConnParams, Overrides, SslMode};
use std::pin::Pin;
use std::task::{Context, Poll};
pub use tap::{CopyOut, CopyReader};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    #[error("{0}")]
    Invalid(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("connection to {target} failed: {reason}")]
    Connect { target: String, reason: String },
    #[error("setting up the session failed: {0}")]
    Session(String),
}

/// Opens a connection and drives it on the current tokio runtime.
pub async fn connect(p: &ConnParams) -> Result<Client, ConnError> {
    let cfg = config(p);
    let tls = tls::RustlsConnect::new(p)?;
    let (client, connection) = bounded(p, async {
        cfg.connect(tls)
            .await
            .map_err(|e| connect_error(p, describe(&e)))
    })
    .await?;
    // Errors of the connection itself surface on the client's next call.
    tokio::spawn(connection);
    Ok(client)
}

/// [`connect`], then [`prepare_session`]: what every session of pgark's
/// starts with, so that none runs under a role's timeouts or styles.
pub async fn connect_session(p: &ConnParams, purpose: Purpose) -> Result<Client, ConnError> {
    let client = connect(p).await?;
    prepare_session(&client, purpose).await?;
    Ok(client)
}

/// Like [`connect_session`], plus a [`CopyReader`] that reads the output of
/// `COPY ... TO STDOUT` on this connection in bulk rather than row by row.
pub async fn connect_for_copy_out(
    p: &ConnParams,
    purpose: Purpose,
) -> Result<(Client, CopyReader), ConnError> {
    let cfg = config(p);
    let sink = tap::SharedSink::default();
    // No TLS happens on a Unix socket, so its path need not be a server name.
    let name = if p.is_socket() { "" } else { p.host.as_str() };
    let tls = tls::RustlsConnect::new(p)?.handshake(name, Some(sink.clone()))?;
    let (client, connection) = bounded(p, async {
        let socket = open_socket(p)
            .await
            .map_err(|e| connect_error(p, e.to_string()))?;
        cfg.connect_raw(tap::Tapped::socket(socket, Some(sink.clone())), tls)
            .await
            .map_err(|e| connect_error(p, describe(&e)))
    })
    .await?;
    tokio::spawn(connection);
    prepare_session(&client, purpose).await?;
    Ok((client, CopyReader::new(sink)))
}

fn config(p: &ConnParams) -> tokio_postgres::Config {
    let mut cfg = tokio_postgres::Config::new();
    if p.is_socket() {
        cfg.host_path(&p.host);
    } else {
        cfg.host(&p.host);
    }
    cfg.port(p.port)
        .user(&p.user)
        .dbname(&p.dbname)
        .application_name(&p.application_name)
        .ssl_mode(match p.sslmode {
            // As in libpq, a Unix socket never uses TLS, whatever sslmode says.
            _ if p.is_socket() => tokio_postgres::config::SslMode::Disable,
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Allow | SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            _ => tokio_postgres::config::SslMode::Require,
        });
    if let Some(t) = p.connect_timeout {
        cfg.connect_timeout(t);
    }
    if let Some(ip) = p.hostaddr {
        // Connect there; `host` stays the name for TLS and .pgpass, as in libpq.
        cfg.hostaddr(ip);
    }
    cfg.channel_binding(match p.channel_binding {
        ChannelBinding::Disable => tokio_postgres::config::ChannelBinding::Disable,
        ChannelBinding::Prefer => tokio_postgres::config::ChannelBinding::Prefer,
        ChannelBinding::Require => tokio_postgres::config::ChannelBinding::Require,
    });
    if let Some(pw) = p.effective_password() {
        cfg.password(pw);
    }
    cfg
}

fn connect_error(p: &ConnParams, reason: String) -> ConnError {
    ConnError::Connect {
        target: p.to_string(),
        reason,
    }
}

/// libpq's connect_timeout bounds the whole attempt (TLS, startup,
/// authentication), not only the TCP connect that tokio-postgres times.
async fn bounded<T>(
    p: &ConnParams,
    attempt: impl std::future::Future<Output = Result<T, ConnError>>,
) -> Result<T, ConnError> {
    match p.connect_timeout {
        Some(t) => tokio::time::timeout(t, attempt).await.map_err(|_| {
            connect_error(
                p,
                format!("timeout expired after {} s (connect_timeout)", t.as_secs()),
            )
        })?,
        None => attempt.await,
    }
}

/// The socket tokio-postgres would open for `p` (one host, as ConnParams has).
async fn open_socket(p: &ConnParams) -> std::io::Result<Socket> {
    if p.is_socket() {
        let path = std::path::Path::new(&p.host).join(format!(".s.PGSQL.{}", p.port));
        return Ok(Socket::Unix(tokio::net::UnixStream::connect(path).await?));
    }
    let tcp = match p.hostaddr {
        Some(ip) => tokio::net::TcpStream::connect((ip, p.port)).await?,
        None => tokio::net::TcpStream::connect((p.host.as_str(), p.port)).await?,
    };
    tcp.set_nodelay(true)?;
    // As tokio-postgres does: a worker may sit idle in its transaction while
    // others copy big tables, and a NAT or firewall must not forget it.
    let keepalive =
        socket2::TcpKeepalive::new().with_time(std::time::Duration::from_secs(2 * 3600));
    socket2::SockRef::from(&tcp).set_tcp_keepalive(&keepalive)?;
    Ok(Socket::Tcp(tcp))
}

enum Socket {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

impl AsyncRead for Socket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Socket::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Socket::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Socket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Socket::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Socket::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Socket::Tcp(s) => Pin::new(s).poll_flush(cx),
            Socket::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Socket::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Socket::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// One line for a server or network error, without tokio-postgres's "db error:" noise.
pub fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return match db.detail() {
            Some(d) => format!("{} ({d})", db.message()),
            None => db.message().to_string(),
        };
    }
    let mut text = e.to_string();
    if let Some(src) = std::error::Error::source(e) {
        text = format!("{text}: {src}");
    }
    if text.contains("password missing") {
        return "the server asks for a password and none was given (use PGPASSWORD or ~/.pgpass)"
            .into();
    }
    text
}

/// Which settings a session gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Output that is exact and independent of the server's defaults, and no
    /// policy that could hide rows.
    Dump,
    /// The fixed state a restore script assumes (pg_dump's header), plus
    /// asynchronous commit (a failed restore is redone anyway) and at least
    /// 256 MB of maintenance_work_mem, so index builds sort in memory.
    Restore,
}

pub async fn prepare_session(client: &Client, purpose: Purpose) -> Result<(), ConnError> {
    let fail = |e: tokio_postgres::Error| ConnError::Session(describe(&e));
    // A role or database may set a statement_timeout of a millisecond, which
    // can cancel even this SET on a busy machine: it goes first, alone, and
    // is tried again when cancelled (each try succeeds unless the backend
    // stalls for that millisecond).
    for attempt in 1.. {
        match client.batch_execute("SET statement_timeout = 0").await {
            Ok(()) => break,
            Err(e) if attempt < 5 && e.code() == Some(&SqlState::QUERY_CANCELED) => continue,
            Err(e) => return Err(fail(e)),
        }
    }
    let messages = client
        .simple_query("SELECT current_setting('server_version_num')")
        .await
        .map_err(fail)?;
    let version: i32 = messages
        .iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).and_then(|v| v.parse().ok()),
            _ => None,
        })
        .ok_or_else(|| ConnError::Session("the server did not report its version".into()))?;
    client
        .batch_execute(&session_sql(purpose, version))
        .await
        .map_err(fail)
}

fn session_sql(purpose: Purpose, server_version_num: i32) -> String {
    let mut sql = String::from(
        "SET statement_timeout = 0; SET lock_timeout = 0; \
         SET idle_in_transaction_session_timeout = 0; SET client_encoding = 'UTF8'; \
         SET DateStyle = ISO; SET IntervalStyle = postgres; SET extra_float_digits = 3; \
         SET row_security = off; ",
    );
    if server_version_num >= 170000 {
        sql.push_str("SET transaction_timeout = 0; ");
    }
    match purpose {
        // TimeZone and bytea_output shape COPY text (both forms are exact):
        // pinned, so the same rows give the same bytes on any server.
        Purpose::Dump => sql.push_str("SET synchronize_seqscans = off; SET TimeZone = 'UTC'; SET bytea_output = 'hex'; "),
        Purpose::Restore => sql.push_str(
            "SET standard_conforming_strings = on; SELECT pg_catalog.set_config('search_path', '', false); \
             SET check_function_bodies = false; SET xmloption = content; \
             SET client_min_messages = warning; SET synchronous_commit = off; \
             SELECT pg_catalog.set_config('maintenance_work_mem', '256MB', false) \
             WHERE pg_catalog.pg_size_bytes(pg_catalog.current_setting('maintenance_work_mem')) < 268435456; ",
        ),
    }
    sql
}
/// Library users spawn dumps: these futures must be Send for any lifetime
/// (a `Box<dyn AsyncRead + ...>` socket was not). Checked when tests build.
#[cfg(test)]
#[allow(dead_code)]
fn futures_are_send(
    p: &'static ConnParams,
    r: &'static CopyReader,
    c: &'static Client,
    o: &'static mut CopyOut,
) {
    fn is_send<T: Send>(_: T) {}
    is_send(connect_for_copy_out(p, Purpose::Dump));
    is_send(r.copy_out(c, "x", 1));
    is_send(o.next());
}

//! Connection parameters resolved the way libpq does: built-in defaults, then
//! the `PG*` environment, then the connection string, then explicit flags.

use crate::ConnError;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// `sslmode` as libpq spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(s: &str) -> Result<Self, ConnError> {
        Ok(match s {
            "disable" => Self::Disable,
            "allow" => Self::Allow,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            other => return Err(ConnError::Invalid(format!("invalid sslmode \"{other}\""))),
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Allow => "allow",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }
}

/// Where and as whom to connect. The password is private and never printed:
/// `Display` and `Debug` leave it out.
/// `channel_binding` as libpq spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelBinding {
    Disable,
    Prefer,
    Require,
}

#[derive(Clone)]
pub struct ConnParams {
    pub host: String,
    /// Numeric address to connect to instead of resolving `host`.
    pub hostaddr: Option<std::net::IpAddr>,
    pub channel_binding: ChannelBinding,
    pub port: u16,
    pub user: String,
    pub dbname: String,
    password: Option<String>,
    pub sslmode: SslMode,
    pub sslrootcert: Option<PathBuf>,
    pub passfile: Option<PathBuf>,
    pub application_name: String,
    pub connect_timeout: Option<Duration>,
}

/// Values given as separate command-line flags (`-h -p -U`); they win over
/// the connection string, as in pg_dump.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub dbname: Option<String>,
}

impl fmt::Debug for ConnParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnParams({self})")
    }
}

impl fmt::Display for ConnParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = if self.is_socket() {
            format!("socket {}/.s.PGSQL.{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        };
        write!(
            f,
            "{host}, database \"{}\", user \"{}\"",
            self.dbname, self.user
        )
    }
}

impl ConnParams {
    /// Resolves a connection from a URL, a keyword string or a bare database
    /// name (`conninfo`), the environment, and flags. Without `conninfo`,
    /// `DATABASE_URL` is used when set.
    pub fn resolve(conninfo: Option<&str>, overrides: &Overrides) -> Result<Self, ConnError> {
        Self::resolve_with_env(conninfo, overrides, |k| std::env::var(k).ok())
    }

    fn resolve_with_env(
        conninfo: Option<&str>,
        overrides: &Overrides,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConnError> {
        let mut kv = env_keywords(&env);
        let database_url = env("DATABASE_URL");
        if let Some(info) = conninfo.or(database_url.as_deref()) {
            kv.extend(parse_conninfo(info)?);
        }
        let o = overrides;
        let flags = [
            ("host", o.host.clone()),
            ("port", o.port.map(|p| p.to_string())),
            ("user", o.user.clone()),
            ("dbname", o.dbname.clone()),
        ];
        for (k, v) in flags {
            if let Some(v) = v {
                kv.insert(k.to_string(), v);
            }
        }
        Self::from_keywords(kv, &env)
    }

    fn from_keywords(
        mut kv: BTreeMap<String, String>,
        env: &impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConnError> {
        let mut take = |k: &str| kv.remove(k).filter(|v| !v.is_empty());
        let user = take("user")
            .or_else(|| env("USER"))
            .unwrap_or_else(|| "postgres".into());
        let port = match take("port") {
            Some(p) => p
                .parse()
                .map_err(|_| ConnError::Invalid(format!("invalid port \"{p}\"")))?,
            None => 5432,
        };
        let sslrootcert = take("sslrootcert").map(PathBuf::from);
        let sslmode = match take("sslmode") {
            Some(m) => SslMode::parse(&m)?,
            // libpq: a root certificate given with no mode means verify-ca.
            None if sslrootcert.is_some() => SslMode::VerifyCa,
            None => SslMode::Prefer,
        };
        let connect_timeout = match take("connect_timeout") {
            Some(t) => Some(Duration::from_secs(t.parse().map_err(|_| {
                ConnError::Invalid(format!("invalid connect_timeout \"{t}\""))
            })?)),
            None => None,
        };
        let hostaddr = match take("hostaddr") {
            Some(a) => Some(
                a.parse()
                    .map_err(|_| ConnError::Invalid(format!("invalid hostaddr \"{a}\"")))?,
            ),
            None => None,
        };
        let channel_binding = match take("channel_binding").as_deref() {
            None | Some("prefer") => ChannelBinding::Prefer,
            Some("disable") => ChannelBinding::Disable,
            Some("require") => ChannelBinding::Require,
            Some(other) => {
                return Err(ConnError::Invalid(format!(
                    "invalid channel_binding \"{other}\""
                )))
            }
        };
        if take("gssencmode").as_deref() == Some("require") {
            return Err(ConnError::Invalid(
                "gssencmode=require: GSSAPI encryption is not supported".into(),
            ));
        }
        let params = ConnParams {
            hostaddr,
            channel_binding,
            host: take("host").unwrap_or_else(default_host),
            port,
            dbname: take("dbname").unwrap_or_else(|| user.clone()),
            user,
            password: take("password"),
            sslmode,
            sslrootcert,
            passfile: take("passfile").map(PathBuf::from),
            application_name: take("application_name").unwrap_or_else(|| "pgark".into()),
            connect_timeout,
        };
        if let Some(unknown) = kv.keys().find(|k| !IGNORED_KEYWORDS.contains(&k.as_str())) {
            return Err(ConnError::Invalid(format!(
                "invalid connection option \"{unknown}\""
            )));
        }
        Ok(params)
    }

    /// A libpq keyword string for this connection without the password, to
    /// print in commands a user can copy (the password comes from
    /// PGPASSWORD or ~/.pgpass then).
    pub fn conninfo_without_password(&self) -> String {
        let quote = |v: &str| {
            let plain = !v.is_empty()
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-/:".contains(c));
            if plain {
                v.to_string()
            } else {
                format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
            }
        };
        let mut parts = vec![
            format!("host={}", quote(&self.host)),
            format!("port={}", self.port),
            format!("user={}", quote(&self.user)),
            format!("dbname={}", quote(&self.dbname)),
        ];
        if self.sslmode != SslMode::Prefer {
            parts.push(format!("sslmode={}", self.sslmode.as_str()));
        }
        if let Some(cert) = &self.sslrootcert {
            parts.push(format!("sslrootcert={}", quote(&cert.to_string_lossy())));
        }
        parts.join(" ")
    }

    /// The same server and credentials, another database.
    pub fn with_dbname(&self, dbname: &str) -> Self {
        let mut p = self.clone();
        p.dbname = dbname.to_string();
        p
    }

    pub fn is_socket(&self) -> bool {
        self.host.starts_with('/')
    }

    pub fn has_password(&self) -> bool {
        self.password.is_some()
    }

    pub fn set_password(&mut self, password: Option<String>) {
        self.password = password;
    }

    /// The password given explicitly, else the matching `.pgpass` line.
    pub(crate) fn effective_password(&self) -> Option<String> {
        self.password.clone().or_else(|| {
            let file = self.passfile.clone().or_else(crate::pgpass::default_path)?;
            crate::pgpass::lookup(&file, self)
        })
    }
}

/// Keywords libpq accepts that pgark has no use for; they are not errors.
const IGNORED_KEYWORDS: &[&str] = &[
    "options",
    "fallback_application_name",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "target_session_attrs",
    "sslcompression",
    "client_encoding",
];

fn default_host() -> String {
    // Debian's libpq looks for the socket here; elsewhere TCP is the safe default.
    let debian = "/var/run/postgresql";
    if std::path::Path::new(debian).is_dir() {
        debian.into()
    } else {
        "localhost".into()
    }
}

fn env_keywords(env: &impl Fn(&str) -> Option<String>) -> BTreeMap<String, String> {
    const MAP: &[(&str, &str)] = &[
        ("PGHOST", "host"),
        ("PGHOSTADDR", "hostaddr"),
        ("PGCHANNELBINDING", "channel_binding"),
        ("PGGSSENCMODE", "gssencmode"),
        ("PGPORT", "port"),
        ("PGUSER", "user"),
        ("PGDATABASE", "dbname"),
        ("PGPASSWORD", "password"),
        ("PGPASSFILE", "passfile"),
        ("PGSSLMODE", "sslmode"),
        ("PGSSLROOTCERT", "sslrootcert"),
        ("PGAPPNAME", "application_name"),
        ("PGCONNECT_TIMEOUT", "connect_timeout"),
    ];
    MAP.iter()
        .filter_map(|(var, key)| env(var).map(|v| (key.to_string(), v)))
        .collect()
}

/// Parses a URL, a `key=value` string, or a bare database name.
pub(crate) fn parse_conninfo(info: &str) -> Result<BTreeMap<String, String>, ConnError> {
    let info = info.trim();
    if let Some(rest) = info
        .strip_prefix("postgresql://")
        .or_else(|| info.strip_prefix("postgres://"))
    {
        parse_url(rest)
    } else if info.contains('=') {
        parse_keywords(info)
    } else {
        Ok(BTreeMap::from([("dbname".to_string(), info.to_string())]))
    }
}

fn parse_url(rest: &str) -> Result<BTreeMap<String, String>, ConnError> {
    let mut kv = BTreeMap::new();
    let (main, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = main.split_once('/').unwrap_or((main, ""));
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    if let Some(userinfo) = userinfo {
        let (user, password) = match userinfo.split_once(':') {
            Some((u, p)) => (u, Some(p)),
            None => (userinfo, None),
        };
        put(&mut kv, "user", &percent_decode(user)?);
        if let Some(p) = password {
            put(&mut kv, "password", &percent_decode(p)?);
        }
    }
    let (host, port) = split_host_port(hostport);
    put(&mut kv, "host", &percent_decode(host)?);
    if let Some(port) = port {
        put(&mut kv, "port", port);
    }
    put(&mut kv, "dbname", &percent_decode(path)?);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| ConnError::Invalid(format!("invalid URL query parameter \"{pair}\"")))?;
        put(&mut kv, &percent_decode(k)?, &percent_decode(v)?);
    }
    Ok(kv)
}

fn put(kv: &mut BTreeMap<String, String>, key: &str, value: &str) {
    if !value.is_empty() {
        kv.insert(key.to_string(), value.to_string());
    }
}

fn split_host_port(hostport: &str) -> (&str, Option<&str>) {
    if let Some(rest) = hostport.strip_prefix('[') {
        // [::1]:5432
        let (host, tail) = rest.split_once(']').unwrap_or((rest, ""));
        return (host, tail.strip_prefix(':'));
    }
    match hostport.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (hostport, None),
    }
}

fn percent_decode(s: &str) -> Result<String, ConnError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| ConnError::Invalid("invalid percent-encoding in URL".into()))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ConnError::Invalid("URL is not valid UTF-8".into()))
}

fn parse_keywords(info: &str) -> Result<BTreeMap<String, String>, ConnError> {
    let mut kv = BTreeMap::new();
    let mut chars = info.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(kv);
        }
        let key: String =
            std::iter::from_fn(|| chars.next_if(|c| *c != '=' && !c.is_whitespace())).collect();
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(ConnError::Invalid(format!(
                "missing \"=\" after \"{key}\" in connection string"
            )));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let value = keyword_value(&mut chars, &key)?;
        kv.insert(key, value);
    }
}

fn keyword_value(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    key: &str,
) -> Result<String, ConnError> {
    let quoted = chars.next_if_eq(&'\'').is_some();
    let mut value = String::new();
    loop {
        match chars.next() {
            None if quoted => {
                return Err(ConnError::Invalid(format!(
                    "unterminated quoted value for \"{key}\" in connection string"
                )))
            }
            None => return Ok(value),
            Some('\'') if quoted => return Ok(value),
            Some(c) if c.is_whitespace() && !quoted => return Ok(value),
            Some('\\') => value.extend(chars.next()),
            Some(c) => value.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(info: Option<&str>, env: &[(&str, &str)], o: Overrides) -> ConnParams {
        let env: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ConnParams::resolve_with_env(info, &o, |k| env.get(k).cloned()).unwrap()
    }

    #[test]
    fn url_with_everything() {
        let p = resolve(
            Some("postgresql://al%40ice:s%3Acret@db.example:6543/my%20db?sslmode=require&application_name=x"),
            &[],
            Overrides::default(),
        );
        assert_eq!(
            (p.host.as_str(), p.port, p.user.as_str(), p.dbname.as_str()),
            ("db.example", 6543, "al@ice", "my db")
        );
        assert_eq!(p.password.as_deref(), Some("s:cret"));
        assert_eq!(p.sslmode, SslMode::Require);
        assert_eq!(p.application_name, "x");
    }

    #[test]
    fn ipv6_url() {
        let p = resolve(Some("postgres://[::1]:5433/d"), &[], Overrides::default());
        assert_eq!((p.host.as_str(), p.port), ("::1", 5433));
    }

    #[test]
    fn keyword_string_with_quotes() {
        let p = resolve(
            Some("host=h port = 7 dbname='my db' password='a b\\'c' user=u"),
            &[],
            Overrides::default(),
        );
        assert_eq!((p.host.as_str(), p.port, p.user.as_str()), ("h", 7, "u"));
        assert_eq!(p.dbname, "my db");
        assert_eq!(p.password.as_deref(), Some("a b'c"));
    }

    #[test]
    fn precedence_env_then_conninfo_then_flags() {
        let env = [
            ("PGHOST", "envhost"),
            ("PGPORT", "1111"),
            ("PGUSER", "envuser"),
            ("PGDATABASE", "envdb"),
        ];
        let p = resolve(
            Some("port=2222"),
            &env,
            Overrides {
                user: Some("flag".into()),
                ..Default::default()
            },
        );
        assert_eq!(
            (p.host.as_str(), p.port, p.user.as_str(), p.dbname.as_str()),
            ("envhost", 2222, "flag", "envdb")
        );
    }

    #[test]
    fn bare_name_is_a_database_and_database_url_is_a_fallback() {
        let env = [("DATABASE_URL", "postgres://u@h/fromurl")];
        assert_eq!(
            resolve(Some("plain"), &env, Overrides::default()).dbname,
            "plain"
        );
        let p = resolve(None, &env, Overrides::default());
        assert_eq!((p.host.as_str(), p.dbname.as_str()), ("h", "fromurl"));
    }

    #[test]
    fn dbname_defaults_to_user_and_rootcert_implies_verify_ca() {
        let p = resolve(
            Some("user=bob sslrootcert=/ca.pem"),
            &[],
            Overrides::default(),
        );
        assert_eq!(p.dbname, "bob");
        assert_eq!(p.sslmode, SslMode::VerifyCa);
    }

    #[test]
    fn bad_input_is_a_clear_error() {
        let env = |_: &str| None;
        let o = Overrides::default();
        for (info, want) in [
            ("sslmode=sometimes", "invalid sslmode"),
            ("port=abc", "invalid port"),
            ("bogus=1", "invalid connection option \"bogus\""),
            ("host dbname=x", "missing \"=\""),
            ("password='open", "unterminated"),
        ] {
            let err = ConnParams::resolve_with_env(Some(info), &o, env)
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{info}: {err}");
        }
    }

    #[test]
    fn printable_conninfo_round_trips_without_the_password() {
        let p = resolve(
            Some("postgres://u:hunter2@h:7/my%20db%27s?sslmode=require"),
            &[],
            Overrides::default(),
        );
        let text = p.conninfo_without_password();
        assert!(!text.contains("hunter2"), "{text}");
        let again = resolve(Some(&text), &[], Overrides::default());
        assert_eq!(
            (again.host.as_str(), again.port, again.dbname.as_str()),
            ("h", 7, "my db's")
        );
        assert_eq!(again.sslmode, SslMode::Require);
        assert_eq!(again.password, None);
    }

    #[test]
    fn display_never_shows_the_password() {
        let p = resolve(Some("postgres://u:hunter2@h/d"), &[], Overrides::default());
        assert!(!format!("{p} {p:?}").contains("hunter2"));
    }
}

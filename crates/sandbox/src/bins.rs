//! Locating the PostgreSQL server binaries and their version.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::SandboxError;

/// The programs a cluster cannot run without.
const REQUIRED: [&str; 2] = ["initdb", "postgres"];

/// Finds a directory holding `initdb` and `postgres`.
///
/// Order: `explicit`, `$PGARK_PG_BIN`, `$PGARK_PG_VERSION` (looked up in
/// the repository's `.pg/<major>/bin`, then `/usr/lib/postgresql/<major>/bin`),
/// `pg_config --bindir`, the newest `/usr/lib/postgresql/*/bin`, then `PATH`.
pub fn find_bin_dir(explicit: Option<&Path>) -> Result<PathBuf, SandboxError> {
    if let Some(dir) = explicit {
        return checked(dir.to_path_buf(), "ClusterOptions::bin_dir");
    }
    if let Some(dir) = std::env::var_os("PGARK_PG_BIN").filter(|v| !v.is_empty()) {
        return checked(PathBuf::from(dir), "PGARK_PG_BIN");
    }
    if let Some(major) = std::env::var("PGARK_PG_VERSION")
        .ok()
        .filter(|v| !v.is_empty())
    {
        return versioned_dir(&major, "PGARK_PG_VERSION");
    }
    pg_config_bindir()
        .into_iter()
        .chain(debian_bindirs())
        .chain(path_bindir())
        .find(|dir| has_server(dir))
        .ok_or_else(|| SandboxError::NotInstalled(install_hint()))
}

/// The repository's `.pg/` folder, where `scripts/get-postgres.sh` puts
/// downloaded versions. Resolved at compile time so tests find it whatever
/// their working directory; `./.pg` covers a `pgark` binary run from a checkout.
fn local_install_roots() -> Vec<PathBuf> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let repo = repo.canonicalize().unwrap_or(repo).join(".pg");
    vec![repo, PathBuf::from(".pg")]
}

/// Finds the server binaries of one major version (14, 18, …) in the
/// repository's `.pg/<major>/bin` (see `scripts/get-postgres.sh`), then in
/// `/usr/lib/postgresql/<major>/bin`.
pub fn find_bin_dir_for_major(major: u32) -> Result<PathBuf, SandboxError> {
    versioned_dir(&major.to_string(), "a request for that major")
}

fn versioned_dir(major: &str, source: &str) -> Result<PathBuf, SandboxError> {
    let mut candidates: Vec<PathBuf> = local_install_roots()
        .into_iter()
        .map(|root| root.join(major).join("bin"))
        .collect();
    candidates.push(Path::new("/usr/lib/postgresql").join(major).join("bin"));
    if let Some(dir) = candidates.iter().find(|dir| has_server(dir)) {
        return Ok(dir.canonicalize().unwrap_or_else(|_| dir.clone()));
    }
    let looked: Vec<String> = candidates.iter().map(|d| d.display().to_string()).collect();
    Err(SandboxError::NotInstalled(format!(
        "PostgreSQL {major} (from {source}) not found in {}; fetch it with `scripts/get-postgres.sh {major}`",
        looked.join(", ")
    )))
}

fn checked(dir: PathBuf, source: &str) -> Result<PathBuf, SandboxError> {
    if has_server(&dir) {
        Ok(dir)
    } else {
        Err(SandboxError::NotInstalled(format!(
            "{source} is {}, which lacks one of {}",
            dir.display(),
            REQUIRED.join(", ")
        )))
    }
}

fn has_server(dir: &Path) -> bool {
    REQUIRED.iter().all(|name| dir.join(name).is_file())
}

fn pg_config_bindir() -> Option<PathBuf> {
    let out = Command::new("pg_config").arg("--bindir").output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    out.status.success().then(|| PathBuf::from(text.trim()))
}

/// Debian's `/usr/lib/postgresql/<major>/bin`, newest major first.
fn debian_bindirs() -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") else {
        return Vec::new();
    };
    let mut majors: Vec<(u32, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse().ok()?;
            Some((major, e.path().join("bin")))
        })
        .collect();
    majors.sort_by_key(|m| std::cmp::Reverse(m.0));
    majors.into_iter().map(|(_, dir)| dir).collect()
}

fn path_bindir() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).find(|dir| has_server(dir))
}

fn install_hint() -> String {
    "PostgreSQL server binaries (initdb, postgres) not found: looked at $PGARK_PG_BIN, \
     $PGARK_PG_VERSION, `pg_config --bindir`, /usr/lib/postgresql/*/bin and PATH. \
     Install them with `apt-get install postgresql` (Debian/Ubuntu) or `dnf install postgresql-server`, \
     or run `scripts/get-postgres.sh 18` and set PGARK_PG_VERSION=18, \
     or point PGARK_PG_BIN at a directory holding them"
        .to_string()
}

/// `server_version_num` of the binaries in `bin_dir`, from `postgres --version`
/// (for example "postgres (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)" → 150014).
pub(crate) fn version_num(bin_dir: &Path) -> Result<u32, SandboxError> {
    let program = bin_dir.join("postgres");
    let out = Command::new(&program)
        .arg("--version")
        .output()
        .map_err(|source| SandboxError::Spawn {
            program: program.display().to_string(),
            source,
        })?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    parse_version(&text).ok_or_else(|| SandboxError::Command {
        program: program.display().to_string(),
        status: out.status.to_string(),
        output: format!("unrecognised version output {text:?}"),
    })
}

fn parse_version(text: &str) -> Option<u32> {
    let version = text.split_whitespace().nth(2)?;
    let mut parts = version.split('.');
    let major: u32 = leading_number(parts.next()?)?;
    let minor: u32 = parts.next().and_then(leading_number).unwrap_or(0);
    Some(major * 10000 + minor)
}

fn leading_number(s: &str) -> Option<u32> {
    let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::parse_version;

    #[test]
    fn parses_release_and_prerelease_versions() {
        assert_eq!(
            parse_version("postgres (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)\n"),
            Some(150014)
        );
        assert_eq!(parse_version("postgres (PostgreSQL) 18.1\n"), Some(180001));
        assert_eq!(
            parse_version("postgres (PostgreSQL) 19beta1\n"),
            Some(190000)
        );
        assert_eq!(parse_version("garbage"), None);
    }
}

//! `~/.pgpass`: `hostname:port:database:username:password`, `*` matches
//! anything, `\` escapes `:` and `\`. Like libpq, a file readable by group or
//! others is ignored.

use crate::ConnParams;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

pub(crate) fn default_path() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|h| Path::new(&h).join(".pgpass"))
}

pub(crate) fn lookup(file: &Path, p: &ConnParams) -> Option<String> {
    let meta = std::fs::metadata(file).ok()?;
    if meta.permissions().mode() & 0o077 != 0 {
        eprintln!(
            "warning: password file \"{}\" has group or world access; permissions should be u=rw (0600) or less",
            file.display()
        );
        return None;
    }
    let text = std::fs::read_to_string(file).ok()?;
    // A socket connection matches "localhost", as in libpq.
    let host = if p.is_socket() {
        "localhost"
    } else {
        p.host.as_str()
    };
    let port = p.port.to_string();
    let wanted = [host, port.as_str(), p.dbname.as_str(), p.user.as_str()];
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .map(split_fields)
        .find(|f| f.len() == 5 && f[..4].iter().zip(wanted).all(|(f, w)| f == "*" || f == w))
        .map(|mut f| f.remove(4))
}

fn split_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => fields.last_mut().unwrap().extend(chars.next()),
            // The password is the rest of the line, colons and all.
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => fields.last_mut().unwrap().push(c),
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Overrides;

    fn params(info: &str) -> ConnParams {
        ConnParams::resolve(Some(info), &Overrides::default()).unwrap()
    }

    fn write(text: &str, mode: u32) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        std::fs::set_permissions(f.path(), std::fs::Permissions::from_mode(mode)).unwrap();
        f
    }

    #[test]
    fn first_matching_line_wins_with_wildcards_and_escapes() {
        let f = write(
            "# comment\nother:5432:*:*:nope\nh:5432:d\\:b:*:pa\\:ss:word\nh:*:*:*:fallback\n",
            0o600,
        );
        let p = params("host=h port=5432 dbname=d:b user=u");
        assert_eq!(lookup(f.path(), &p).as_deref(), Some("pa:ss:word"));
        let p = params("host=h port=1 dbname=x user=u");
        assert_eq!(lookup(f.path(), &p).as_deref(), Some("fallback"));
        let p = params("host=nomatch port=1 dbname=x user=u");
        assert_eq!(lookup(f.path(), &p), None);
    }

    #[test]
    fn world_readable_file_is_ignored() {
        let f = write("*:*:*:*:secret\n", 0o644);
        assert_eq!(lookup(f.path(), &params("host=h user=u")), None);
    }
}

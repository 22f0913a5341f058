//! The configuration a sandbox cluster runs with.

use std::path::Path;

/// Our settings live in their own file, included from postgresql.conf.
pub(crate) const FILE_NAME: &str = "pgark.conf";

/// Role whose members must log in with a password on every server version;
/// on 16+ roles named `pw_*` must too (role regexes in pg_hba need 16).
pub const PASSWORD_GROUP: &str = "pgark_password_users";

pub(crate) fn include_line() -> String {
    format!("\ninclude '{FILE_NAME}'\n")
}

/// Passwords (scram-sha-256) are required for members of [`PASSWORD_GROUP`]
/// and, on 16+, roles named `pw_*`, so tests can exercise password handling;
/// everyone else is trusted. The first matching line wins, so these go first.
pub(crate) fn hba(version_num: u32) -> String {
    let mut hba = String::from("# written by pgark-sandbox\n");
    let mut password_roles = vec![format!("+{PASSWORD_GROUP}")];
    if version_num >= 160000 {
        password_roles.push("\"/^pw_\"".to_string());
    }
    for role in &password_roles {
        hba.push_str(&format!("local all {role} scram-sha-256\n"));
        hba.push_str(&format!("host all {role} 127.0.0.1/32 scram-sha-256\n"));
    }
    hba.push_str("local all all trust\n");
    hba.push_str("host all all 127.0.0.1/32 trust\n");
    hba.push_str("local replication all trust\n");
    hba.push_str("host replication all 127.0.0.1/32 trust\n");
    hba
}

/// The contents of [`FILE_NAME`]: settings for a fast throwaway server,
/// then `extra` (later lines win).
pub(crate) fn settings(
    host: &str,
    port: u16,
    socket_dir: &Path,
    extra: &[(String, String)],
) -> String {
    let socket_dir = socket_dir.to_string_lossy();
    let port = port.to_string();
    // Durability is pointless for a throwaway cluster; speed matters.
    // synchronous_commit stays on: with it off, an immediate stop loses
    // recent commits, which would confuse crash tests.
    let base: [(&str, &str); 11] = [
        ("listen_addresses", host),
        ("port", &port),
        ("unix_socket_directories", &socket_dir),
        ("fsync", "off"),
        ("full_page_writes", "off"),
        ("max_connections", "200"),
        ("shared_buffers", "32MB"),
        ("max_wal_size", "1GB"),
        ("log_min_messages", "warning"),
        // Fixed so results do not depend on the machine's zone; tests of
        // zone handling set their own per session.
        ("timezone", "UTC"),
        ("log_timezone", "UTC"),
    ];
    let mut text = String::from("# written by pgark-sandbox\n");
    let extra = extra.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    for (name, value) in base.into_iter().chain(extra) {
        text.push_str(&format!("{name} = '{}'\n", value.replace('\'', "''")));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::{hba, settings};
    use std::path::Path;

    #[test]
    fn password_rules_come_first_and_regex_only_from_16() {
        let old = hba(150000);
        assert!(!old.contains("/^pw_"));
        assert!(old.find("+pgark_password_users").unwrap() < old.find("trust").unwrap());
        let new = hba(160000);
        assert!(new.find("\"/^pw_\"").unwrap() < new.find("trust").unwrap());
    }

    #[test]
    fn extra_settings_follow_and_are_quoted() {
        let extra = [("search_path".to_string(), "a, 'b'".to_string())];
        let text = settings("127.0.0.1", 5555, Path::new("/tmp/x"), &extra);
        assert!(text.contains("port = '5555'\n"));
        assert!(text.ends_with("search_path = 'a, ''b'''\n"), "{text}");
    }
}

//! Privileges as GRANT/REVOKE statements: the difference between the
//! object's ACL and its baseline (`acldefault()` for a new object, or
//! `pg_init_privs` for objects created by initdb or an extension).
//!
//! Statements are emitted in the order of the ACL's items because a GRANT to
//! a new grantee appends an item: the same order gives the same ACL, which
//! keeps `pg_dump` output of the restored database identical.

use crate::{quote_ident, CatalogError};

#[derive(Debug, Clone, PartialEq, Eq)]
struct Item {
    grantee: Option<String>, // None = PUBLIC
    grantor: String,
    privs: Vec<(char, bool)>, // letter, grant option
}

/// Where the statements go, e.g. `ON TABLE "s"."t"` with an empty prefix, or
/// prefix `ALTER DEFAULT PRIVILEGES FOR ROLE "r" ` and `ON TABLES`.
pub(crate) struct AclTarget<'a> {
    pub prefix: &'a str,
    pub on: &'a str,
    pub column: Option<&'a str>,
    pub owner: &'a str,
}

pub(crate) fn acl_sql(
    target: &AclTarget,
    actual: &[String],
    baseline: &[String],
    roles: &mut Vec<String>,
) -> Result<String, CatalogError> {
    let actual = parse_all(actual)?;
    let baseline = parse_all(baseline)?;
    let mut out = String::new();
    for b in &baseline {
        let now = find(&actual, b);
        let mut lost = Vec::new();
        let mut lost_option = Vec::new();
        for &(p, opt) in &b.privs {
            match now.and_then(|a| a.privs.iter().find(|x| x.0 == p)) {
                None => lost.push(p),
                Some(&(_, false)) if opt => lost_option.push(p),
                _ => {}
            }
        }
        if !lost_option.is_empty() {
            out += &statement(
                target,
                b,
                &lost_option,
                "REVOKE GRANT OPTION FOR",
                "FROM",
                "",
            );
        }
        if !lost.is_empty() {
            out += &statement(target, b, &lost, "REVOKE", "FROM", "");
        }
    }
    for a in &actual {
        let before = find(&baseline, a);
        let mut plain = Vec::new();
        let mut with_option = Vec::new();
        for &(p, opt) in &a.privs {
            let had = before.and_then(|b| b.privs.iter().find(|x| x.0 == p));
            match (had, opt) {
                (Some(&(_, true)), _) | (Some(&(_, false)), false) => {}
                (_, true) => with_option.push(p),
                (None, false) => plain.push(p),
            }
        }
        if plain.is_empty() && with_option.is_empty() {
            continue;
        }
        if let Some(g) = &a.grantee {
            roles.push(g.clone());
        }
        roles.push(a.grantor.clone());
        let by_other = a.grantor != target.owner;
        if by_other {
            out += &format!("SET SESSION AUTHORIZATION {};\n", quote_ident(&a.grantor));
        }
        if !plain.is_empty() {
            out += &statement(target, a, &plain, "GRANT", "TO", "");
        }
        if !with_option.is_empty() {
            out += &statement(target, a, &with_option, "GRANT", "TO", " WITH GRANT OPTION");
        }
        if by_other {
            out += "RESET SESSION AUTHORIZATION;\n";
        }
    }
    Ok(out)
}

fn find<'a>(items: &'a [Item], like: &Item) -> Option<&'a Item> {
    items
        .iter()
        .find(|i| i.grantee == like.grantee && i.grantor == like.grantor)
}

fn statement(
    t: &AclTarget,
    item: &Item,
    privs: &[char],
    verb: &str,
    prep: &str,
    tail: &str,
) -> String {
    let list: Vec<String> = privs
        .iter()
        .map(|&p| match t.column {
            Some(c) => format!("{}({})", privilege_name(p), quote_ident(c)),
            None => privilege_name(p).to_string(),
        })
        .collect();
    let who = match &item.grantee {
        Some(g) => quote_ident(g),
        None => "PUBLIC".to_string(),
    };
    format!(
        "{}{verb} {} ON {} {prep} {who}{tail};\n",
        t.prefix,
        list.join(","),
        t.on
    )
}

fn privilege_name(p: char) -> &'static str {
    match p {
        'a' => "INSERT",
        'r' => "SELECT",
        'w' => "UPDATE",
        'd' => "DELETE",
        'D' => "TRUNCATE",
        'x' => "REFERENCES",
        't' => "TRIGGER",
        'X' => "EXECUTE",
        'U' => "USAGE",
        'C' => "CREATE",
        'T' => "TEMPORARY",
        'c' => "CONNECT",
        's' => "SET",
        'A' => "ALTER SYSTEM",
        'm' => "MAINTAIN",
        _ => "ALL",
    }
}

fn parse_all(items: &[String]) -> Result<Vec<Item>, CatalogError> {
    items.iter().map(|s| parse_item(s)).collect()
}

/// Parses the text form of an aclitem: `grantee=privs/grantor`, an empty
/// grantee meaning PUBLIC, names double-quoted when needed.
fn parse_item(s: &str) -> Result<Item, CatalogError> {
    let bad = || CatalogError::Unexpected {
        what: "privileges",
        detail: format!("cannot parse aclitem {s:?}"),
    };
    let chars: Vec<char> = s.chars().collect();
    let mut pos = 0;
    let grantee = read_name(&chars, &mut pos);
    if chars.get(pos) != Some(&'=') {
        return Err(bad());
    }
    pos += 1;
    let mut privs = Vec::new();
    while pos < chars.len() && chars[pos] != '/' {
        let p = chars[pos];
        if privilege_name(p) == "ALL" {
            return Err(bad());
        }
        let opt = chars.get(pos + 1) == Some(&'*');
        privs.push((p, opt));
        pos += if opt { 2 } else { 1 };
    }
    if chars.get(pos) != Some(&'/') {
        return Err(bad());
    }
    pos += 1;
    let grantor = read_name(&chars, &mut pos);
    if pos != chars.len() || grantor.is_empty() {
        return Err(bad());
    }
    Ok(Item {
        grantee: (!grantee.is_empty()).then_some(grantee),
        grantor,
        privs,
    })
}

fn read_name(chars: &[char], pos: &mut usize) -> String {
    let mut out = String::new();
    let mut quoted = false;
    while *pos < chars.len() {
        let c = chars[*pos];
        if quoted {
            if c == '"' {
                if chars.get(*pos + 1) == Some(&'"') {
                    out.push('"');
                    *pos += 1;
                } else {
                    quoted = false;
                }
            } else {
                out.push(c);
            }
        } else if c == '"' {
            quoted = true;
        } else if c == '=' || c == '/' {
            break;
        } else {
            out.push(c);
        }
        *pos += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_quoted_names() {
        let i = parse_item("\"odd \"\"r\"\"\"=r*w/\"own er\"").unwrap();
        assert_eq!(i.grantee.as_deref(), Some("odd \"r\""));
        assert_eq!(i.grantor, "own er");
        assert_eq!(i.privs, vec![('r', true), ('w', false)]);
        assert!(parse_item("=U/o").unwrap().grantee.is_none());
        assert!(parse_item("garbage").is_err());
    }

    #[test]
    fn emits_the_difference_from_the_baseline() {
        let t = AclTarget {
            prefix: "",
            on: "TABLE \"s\".\"t\"",
            column: None,
            owner: "o",
        };
        let mut roles = Vec::new();
        let sql = acl_sql(
            &t,
            &v(&["o=r/o", "bob=r*w/o", "=r/o"]),
            &v(&["o=arwdDxt/o"]),
            &mut roles,
        )
        .unwrap();
        assert_eq!(
            sql,
            "REVOKE INSERT,UPDATE,DELETE,TRUNCATE,REFERENCES,TRIGGER ON TABLE \"s\".\"t\" FROM \"o\";\n\
             GRANT UPDATE ON TABLE \"s\".\"t\" TO \"bob\";\n\
             GRANT SELECT ON TABLE \"s\".\"t\" TO \"bob\" WITH GRANT OPTION;\n\
             GRANT SELECT ON TABLE \"s\".\"t\" TO PUBLIC;\n"
        );
        assert!(roles.contains(&"bob".to_string()));
    }
}

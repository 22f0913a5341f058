//! `-n`/`-N`/`-t`/`-T` patterns with psql's rules: `*` any string, `?` any
//! character, unquoted letters folded to lower case, `"..."` taken literally,
//! an unquoted `.` separating schema and name.

use crate::{CatalogError, CatalogOptions};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Tok {
    Lit(char),
    Any,
    One,
}

type Pat = Vec<Tok>;

/// `[schema.]table` patterns (`-t`, `--critical`, `--exclude-table-data`),
/// for callers that match names they already have. An empty list matches nothing.
#[derive(Debug, Default, Clone)]
pub struct TableMatcher {
    patterns: Vec<(Option<Pat>, Pat)>,
}

impl TableMatcher {
    pub fn new(patterns: &[String]) -> Result<TableMatcher, CatalogError> {
        Ok(TableMatcher {
            patterns: table_patterns(patterns)?,
        })
    }

    /// True when some pattern matches (never for an empty list).
    pub fn matches(&self, schema: &str, name: &str) -> bool {
        self.patterns
            .iter()
            .any(|(s, n)| s.as_ref().is_none_or(|s| matches(s, schema)) && matches(n, name))
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }
}

#[derive(Debug, Default)]
pub(crate) struct Filter {
    schemas: Vec<Pat>,
    exclude_schemas: Vec<Pat>,
    tables: TableMatcher,
    exclude_tables: TableMatcher,
}

impl Filter {
    pub fn new(opts: &CatalogOptions) -> Result<Filter, CatalogError> {
        Ok(Filter {
            schemas: schema_patterns(&opts.schemas)?,
            exclude_schemas: schema_patterns(&opts.exclude_schemas)?,
            tables: TableMatcher::new(&opts.tables)?,
            exclude_tables: TableMatcher::new(&opts.exclude_tables)?,
        })
    }

    /// With `-t`, only the selected relations and what belongs to them are dumped.
    pub fn table_mode(&self) -> bool {
        !self.tables.is_empty()
    }

    /// Objects in this schema are dumped (outside table mode).
    pub fn schema_included(&self, schema: &str) -> bool {
        if self.table_mode() {
            return false;
        }
        (self.schemas.is_empty() || self.schemas.iter().any(|p| matches(p, schema)))
            && !self.exclude_schemas.iter().any(|p| matches(p, schema))
    }

    /// A relation (table, view, sequence, ...) is dumped.
    pub fn relation_included(&self, schema: &str, name: &str) -> bool {
        if self.exclude_tables.matches(schema, name) {
            return false;
        }
        if self.table_mode() {
            self.tables.matches(schema, name)
        } else {
            self.schema_included(schema)
        }
    }
}

fn schema_patterns(list: &[String]) -> Result<Vec<Pat>, CatalogError> {
    list.iter()
        .map(|p| {
            let mut parts = parse(p)?;
            if parts.len() != 1 {
                return Err(bad(p, "a schema pattern cannot contain an unquoted '.'"));
            }
            Ok(parts.remove(0))
        })
        .collect()
}

fn table_patterns(list: &[String]) -> Result<Vec<(Option<Pat>, Pat)>, CatalogError> {
    list.iter()
        .map(|p| {
            let mut parts = parse(p)?;
            match parts.len() {
                1 => Ok((None, parts.remove(0))),
                2 => {
                    let name = parts.remove(1);
                    Ok((Some(parts.remove(0)), name))
                }
                _ => Err(bad(p, "expected [schema.]table")),
            }
        })
        .collect()
}

fn bad(pattern: &str, reason: &str) -> CatalogError {
    CatalogError::Pattern {
        pattern: pattern.to_string(),
        reason: reason.to_string(),
    }
}

fn parse(pattern: &str) -> Result<Vec<Pat>, CatalogError> {
    let mut parts = vec![Vec::new()];
    let mut quoted = false;
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        let cur = parts.last_mut().expect("never empty");
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    cur.push(Tok::Lit('"'));
                } else {
                    quoted = false;
                }
            } else {
                cur.push(Tok::Lit(c));
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            '*' => cur.push(Tok::Any),
            '?' => cur.push(Tok::One),
            '.' => parts.push(Vec::new()),
            c => cur.extend(c.to_lowercase().map(Tok::Lit)),
        }
    }
    if quoted {
        return Err(bad(pattern, "unterminated quote"));
    }
    if parts.iter().any(|p| p.is_empty()) {
        return Err(bad(pattern, "empty name part"));
    }
    Ok(parts)
}

fn matches(pat: &[Tok], s: &str) -> bool {
    let s: Vec<char> = s.chars().collect();
    glob(pat, &s)
}

fn glob(pat: &[Tok], s: &[char]) -> bool {
    match pat.first() {
        None => s.is_empty(),
        Some(Tok::Any) => (0..=s.len()).any(|i| glob(&pat[1..], &s[i..])),
        Some(Tok::One) => !s.is_empty() && glob(&pat[1..], &s[1..]),
        Some(Tok::Lit(c)) => s.first() == Some(c) && glob(&pat[1..], &s[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(schemas: &[&str], tables: &[&str], exclude_tables: &[&str]) -> CatalogOptions {
        let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
        CatalogOptions {
            schemas: v(schemas),
            tables: v(tables),
            exclude_tables: v(exclude_tables),
            ..Default::default()
        }
    }

    #[test]
    fn psql_pattern_rules() {
        let f = Filter::new(&opts(&["App*", "\"Odd.S\""], &[], &["app1.log?"])).unwrap();
        assert!(f.schema_included("app1"));
        assert!(!f.schema_included("App1"));
        assert!(f.schema_included("Odd.S"));
        assert!(!f.schema_included("public"));
        assert!(f.relation_included("app1", "users"));
        assert!(!f.relation_included("app1", "logs"));
        let t = Filter::new(&opts(&[], &["\"My Table\"", "s.t*"], &[])).unwrap();
        assert!(t.table_mode());
        assert!(t.relation_included("public", "My Table"));
        assert!(t.relation_included("s", "tx"));
        assert!(!t.relation_included("public", "tx"));
        assert!(!t.schema_included("s"));
        assert!(Filter::new(&opts(&["a.b"], &[], &[])).is_err());
        assert!(Filter::new(&opts(&[], &["\"unterminated"], &[])).is_err());
    }

    #[test]
    fn table_matcher() {
        let m =
            TableMatcher::new(&["public.Users".to_string(), "\"Big Table\"".to_string()]).unwrap();
        assert!(m.matches("public", "users"));
        assert!(m.matches("any", "Big Table"));
        assert!(!m.matches("other", "users"));
        let none = TableMatcher::new(&[]).unwrap();
        assert!(none.is_empty() && !none.matches("public", "users"));
    }
}

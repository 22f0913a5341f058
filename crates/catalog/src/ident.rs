/// Quotes an identifier. Always quoting is simpler and cannot be wrong on a
/// newer server whose keyword list we do not know.
pub fn quote_ident(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Quotes a string literal for a session with `standard_conforming_strings = on`.
pub fn quote_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push('\'');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// `"schema"."name"`.
pub(crate) fn qualify(schema: &str, name: &str) -> String {
    format!("{}.{}", quote_ident(schema), quote_ident(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_odd_names() {
        assert_eq!(quote_ident("a"), "\"a\"");
        assert_eq!(quote_ident("Odd \"name\""), "\"Odd \"\"name\"\"\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(quote_literal("a\\b"), "'a\\b'");
        assert_eq!(qualify("s", "é t"), "\"s\".\"é t\"");
    }
}

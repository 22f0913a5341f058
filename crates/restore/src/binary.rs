//! COPY text (as pgark dumps it) turned into COPY binary on the client.
//!
//! The server spends most of a text COPY FROM parsing: splitting lines,
//! `timestamp_in`, `numeric_in`, `int8in`. In binary form the same rows load
//! about twice as fast (measured: 2.5× for a table of timestamps and
//! integers), and the client converts them for a fraction of that. Only
//! types whose text the dump pins down exactly (DateStyle ISO, TimeZone UTC,
//! bytea hex, shortest-exact floats) and whose binary form is plain are
//! converted; a table with any other column type loads as text. Text that
//! does not parse is an error naming the column: never a guess.

use pgark_archive::CopyColumn;

/// The binary COPY header: signature, flags, header extension length.
pub(crate) const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// The binary COPY trailer: a field count of -1.
pub(crate) const TRAILER: &[u8] = &[0xff, 0xff];

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Kind {
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Bool,
    /// text, varchar, bpchar, name, json: the bytes themselves.
    Text,
    Jsonb,
    Bytea,
    Uuid,
    Date,
    Time,
    Timestamp,
    Timestamptz,
    Numeric,
    Interval,
    /// inet, or cidr (true).
    Inet(bool),
    /// An array of one of these, any number of dimensions.
    Array(Element),
}

/// An array's element type: its OID, which binary arrays carry and the
/// server checks, and how one element is encoded.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Element {
    oid: u32,
    kind: &'static Kind,
}

/// The built-in types converted, by `format_type` name, with their OIDs
/// (built-in OIDs never change).
static TYPES: &[(&str, u32, Kind)] = &[
    ("smallint", 21, Kind::Int2),
    ("integer", 23, Kind::Int4),
    ("bigint", 20, Kind::Int8),
    ("real", 700, Kind::Float4),
    ("double precision", 701, Kind::Float8),
    ("boolean", 16, Kind::Bool),
    ("text", 25, Kind::Text),
    ("character varying", 1043, Kind::Text),
    ("character", 1042, Kind::Text),
    ("name", 19, Kind::Text),
    ("json", 114, Kind::Text),
    ("jsonb", 3802, Kind::Jsonb),
    ("bytea", 17, Kind::Bytea),
    ("uuid", 2950, Kind::Uuid),
    ("date", 1082, Kind::Date),
    ("time without time zone", 1083, Kind::Time),
    ("timestamp without time zone", 1114, Kind::Timestamp),
    ("timestamp with time zone", 1184, Kind::Timestamptz),
    ("numeric", 1700, Kind::Numeric),
    ("interval", 1186, Kind::Interval),
    ("inet", 869, Kind::Inet(false)),
    ("cidr", 650, Kind::Inet(true)),
];

/// The columns' conversions, or None when a column's type is not converted.
/// A domain or an enum goes by the type its values are sent as: the server
/// receives a domain with its base type's function (then checks the
/// domain's constraints), an enum as its label.
pub(crate) fn plan(columns: &[CopyColumn]) -> Option<Vec<Kind>> {
    columns
        .iter()
        .map(|c| kind(c.base_type.as_deref().unwrap_or(&c.type_name)))
        .collect()
}

fn kind(type_name: &str) -> Option<Kind> {
    // "numeric(14,4)", "timestamp(3) without time zone": the typmod is
    // applied by the server either way.
    let base = match (type_name.find('('), type_name.find(')')) {
        (Some(a), Some(b)) if a < b => format!("{}{}", &type_name[..a], &type_name[b + 1..]),
        _ => type_name.to_string(),
    };
    let (name, array) = match base.strip_suffix("[]") {
        Some(element) => (element, true),
        None => (base.as_str(), false),
    };
    // "interval day to second": the server applies the field restriction to
    // the received value, as to parsed text.
    let name = if name.starts_with("interval ") {
        "interval"
    } else {
        name
    };
    let (_, oid, kind) = TYPES.iter().find(|(n, _, _)| *n == name)?;
    Some(if array {
        Kind::Array(Element { oid: *oid, kind })
    } else {
        *kind
    })
}

/// Converts whole rows of COPY text into binary tuples (no header or trailer).
/// One pass over the tabs and newlines; this runs for every byte restored.
pub(crate) fn convert(
    text: &[u8],
    kinds: &[Kind],
    columns: &[CopyColumn],
) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len() + text.len() / 4);
    if text.is_empty() {
        return Ok(out);
    }
    if text.last() != Some(&b'\n') {
        return Err("a chunk does not end with a whole row".into());
    }
    let shape = |fields: usize| {
        format!(
            "a row has {fields} fields where the table has {} columns",
            kinds.len()
        )
    };
    if kinds.is_empty() {
        if text.iter().any(|&b| b != b'\n') {
            return Err(shape(1));
        }
        out.resize(text.len() * 2, 0);
        return Ok(out);
    }
    let count = (kinds.len() as i16).to_be_bytes();
    let mut unescaped = Vec::new();
    let (mut start, mut col) = (0, 0);
    for end in memchr::memchr2_iter(b'\t', b'\n', text) {
        if col == kinds.len() {
            return Err(shape(col + 1));
        }
        if col == 0 {
            out.extend_from_slice(&count);
        }
        field(
            &text[start..end],
            kinds[col],
            &columns[col],
            &mut out,
            &mut unescaped,
        )?;
        col += 1;
        start = end + 1;
        if text[end] == b'\n' {
            if col != kinds.len() {
                return Err(shape(col));
            }
            col = 0;
        }
    }
    Ok(out)
}

/// One field: its length, then its binary form (a length of -1 for NULL).
fn field(
    raw: &[u8],
    kind: Kind,
    col: &CopyColumn,
    out: &mut Vec<u8>,
    unescaped: &mut Vec<u8>,
) -> Result<(), String> {
    if raw == b"\\N" {
        out.extend_from_slice(&(-1i32).to_be_bytes());
        return Ok(());
    }
    let value: &[u8] = if memchr::memchr(b'\\', raw).is_none() {
        raw
    } else {
        unescaped.clear();
        unescape(raw, unescaped);
        unescaped
    };
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    encode(value, kind, out).map_err(|why| {
        format!(
            "column \"{}\" ({}): {why}: {:?}",
            col.name,
            col.type_name,
            String::from_utf8_lossy(value)
        )
    })?;
    let len = (out.len() - at - 4) as i32;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// COPY text escapes: `\b \f \n \r \t \v \\`, octal `\ooo`, hex `\xhh`,
/// and a backslash before any other byte stands for that byte.
fn unescape(raw: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b != b'\\' || i + 1 == raw.len() {
            out.push(b);
            i += 1;
            continue;
        }
        let c = raw[i + 1];
        i += 2;
        match c {
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let mut v = u32::from(c - b'0');
                for _ in 0..2 {
                    match raw.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push(v as u8);
            }
            b'x' if raw.get(i).is_some_and(u8::is_ascii_hexdigit) => {
                let mut v = 0u32;
                for _ in 0..2 {
                    match raw.get(i).and_then(|d| (*d as char).to_digit(16)) {
                        Some(d) => {
                            v = v * 16 + d;
                            i += 1;
                        }
                        None => break,
                    }
                }
                out.push(v as u8);
            }
            other => out.push(other),
        }
    }
}

fn encode(s: &[u8], kind: Kind, out: &mut Vec<u8>) -> Result<(), &'static str> {
    match kind {
        Kind::Int2 => out.extend_from_slice(
            &int(s)?
                .try_into()
                .map(i16::to_be_bytes)
                .map_err(|_| "out of range")?,
        ),
        Kind::Int4 => out.extend_from_slice(
            &i32::try_from(int(s)?)
                .map_err(|_| "out of range")?
                .to_be_bytes(),
        ),
        Kind::Int8 => out.extend_from_slice(&int(s)?.to_be_bytes()),
        Kind::Float4 => out.extend_from_slice(&float::<f32>(s)?.to_bits().to_be_bytes()),
        Kind::Float8 => out.extend_from_slice(&float::<f64>(s)?.to_bits().to_be_bytes()),
        Kind::Bool => out.push(match s {
            b"t" => 1,
            b"f" => 0,
            _ => return Err("not t or f"),
        }),
        Kind::Text => out.extend_from_slice(s),
        Kind::Jsonb => {
            out.push(1);
            out.extend_from_slice(s);
        }
        Kind::Bytea => bytea(s, out)?,
        Kind::Uuid => uuid(s, out)?,
        Kind::Date => out.extend_from_slice(&date(s)?.to_be_bytes()),
        Kind::Time => out.extend_from_slice(&time(s)?.to_be_bytes()),
        Kind::Timestamp => out.extend_from_slice(&timestamp(s, false)?.to_be_bytes()),
        Kind::Timestamptz => out.extend_from_slice(&timestamp(s, true)?.to_be_bytes()),
        Kind::Numeric => numeric(s, out)?,
        Kind::Interval => interval(s, out)?,
        Kind::Inet(cidr) => inet(s, cidr, out)?,
        Kind::Array(e) => array(s, e, out)?,
    }
    Ok(())
}

/// IntervalStyle postgres, which the dump sets: "1 year 2 mons -3 days
/// +04:05:06.5", "-00:00:00.000001", "00:00:00", "infinity" (17+). Binary:
/// microseconds, days, months.
fn interval(s: &[u8], out: &mut Vec<u8>) -> Result<(), &'static str> {
    let bad = "not an interval";
    let (micros, days, months) = match s {
        b"infinity" => (i64::MAX, i32::MAX, i32::MAX),
        b"-infinity" => (i64::MIN, i32::MIN, i32::MIN),
        _ => {
            let text = std::str::from_utf8(s).map_err(|_| bad)?;
            if text.is_empty() {
                return Err(bad);
            }
            let (mut months, mut days, mut micros) = (0i64, 0i64, None);
            let mut words = text.split(' ');
            while let Some(w) = words.next() {
                if w.contains(':') {
                    if micros.replace(interval_time(w)?).is_some() {
                        return Err(bad);
                    }
                    continue;
                }
                let n = int(w.strip_prefix('+').unwrap_or(w).as_bytes())?;
                match words.next().ok_or(bad)? {
                    "year" | "years" => months += n.checked_mul(12).ok_or(bad)?,
                    "mon" | "mons" => months += n,
                    "day" | "days" => days += n,
                    _ => return Err(bad),
                }
            }
            let range = |_| "interval out of range";
            (
                micros.unwrap_or(0),
                i32::try_from(days).map_err(range)?,
                i32::try_from(months).map_err(range)?,
            )
        }
    };
    out.extend_from_slice(&micros.to_be_bytes());
    out.extend_from_slice(&days.to_be_bytes());
    out.extend_from_slice(&months.to_be_bytes());
    Ok(())
}

/// "[+-]H:MM:SS[.ffffff]" with any number of hour digits, in microseconds.
fn interval_time(w: &str) -> Result<i64, &'static str> {
    let bad = "not an interval time";
    let (neg, w) = match w.as_bytes().first() {
        Some(b'-') => (true, &w[1..]),
        Some(b'+') => (false, &w[1..]),
        _ => (false, w),
    };
    let mut parts = w.splitn(3, ':');
    let (h, m, sec) = (
        parts.next().ok_or(bad)?,
        parts.next().ok_or(bad)?,
        parts.next().ok_or(bad)?,
    );
    let (sec, frac) = sec.split_once('.').unwrap_or((sec, ""));
    if !digits_only(h) || m.len() != 2 || !digits_only(m) || sec.len() != 2 || !digits_only(sec) {
        return Err(bad);
    }
    if frac.len() > 6 || (!frac.is_empty() && !digits_only(frac)) {
        return Err(bad);
    }
    let num = |t: &str| t.parse::<i128>().map_err(|_| bad);
    let frac_us = format!("{frac:0<6}");
    let total = (num(h)? * 3600 + num(m)? * 60 + num(sec)?) * 1_000_000 + num(&frac_us)?;
    i64::try_from(if neg { -total } else { total }).map_err(|_| "interval out of range")
}

/// "10.1.2.3", "10.0.0.0/8", "2001:db8::/32", "::ffff:1.2.3.4/120". Binary:
/// family (PGSQL_AF_INET 2, PGSQL_AF_INET6 3), bits, is_cidr, length, bytes.
fn inet(s: &[u8], cidr: bool, out: &mut Vec<u8>) -> Result<(), &'static str> {
    let bad = "not an inet address";
    let text = std::str::from_utf8(s).map_err(|_| bad)?;
    let (addr, bits) = match text.split_once('/') {
        Some((a, b)) if digits_only(b) => (a, Some(b.parse::<u8>().map_err(|_| bad)?)),
        Some(_) => return Err(bad),
        None => (text, None),
    };
    let (family, bytes): (u8, Vec<u8>) = if let Ok(v4) = addr.parse::<std::net::Ipv4Addr>() {
        (2, v4.octets().to_vec())
    } else {
        let v6 = addr.parse::<std::net::Ipv6Addr>().map_err(|_| bad)?;
        (3, v6.octets().to_vec())
    };
    let max = (bytes.len() * 8) as u8;
    let bits = bits.unwrap_or(max);
    if bits > max {
        return Err(bad);
    }
    out.extend_from_slice(&[family, bits, u8::from(cidr), bytes.len() as u8]);
    out.extend_from_slice(&bytes);
    Ok(())
}

fn digits_only(t: &str) -> bool {
    !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit())
}

/// Digits with an optional minus, summed negatively so i64::MIN fits.
fn int(s: &[u8]) -> Result<i64, &'static str> {
    let bad = "not an integer";
    let (neg, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    if digits.is_empty() {
        return Err(bad);
    }
    let mut v: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return Err(bad);
        }
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_sub(i64::from(d - b'0')))
            .ok_or("out of range")?;
    }
    if neg {
        Ok(v)
    } else {
        v.checked_neg().ok_or("out of range")
    }
}

/// Rust's float parsing rounds correctly, as strtod does; the dump wrote
/// the shortest text that reads back exactly.
fn float<F: std::str::FromStr>(s: &[u8]) -> Result<F, &'static str> {
    let t = std::str::from_utf8(s).map_err(|_| "not a number")?;
    let t = match t {
        "NaN" => "NaN",
        "Infinity" => "inf",
        "-Infinity" => "-inf",
        t if t
            .bytes()
            .all(|b| b.is_ascii_digit() || b"+-.e".contains(&b)) =>
        {
            t
        }
        _ => return Err("not a number"),
    };
    t.parse().map_err(|_| "not a number")
}

fn bytea(s: &[u8], out: &mut Vec<u8>) -> Result<(), &'static str> {
    let hex = s.strip_prefix(b"\\x").ok_or("not hex bytea")?;
    if hex.len() % 2 != 0 {
        return Err("odd hex length");
    }
    for pair in hex.chunks(2) {
        out.push(hex_byte(pair[0], pair[1]).ok_or("not hex")?);
    }
    Ok(())
}

fn hex_byte(hi: u8, lo: u8) -> Option<u8> {
    let d = |b: u8| (b as char).to_digit(16);
    Some((d(hi)? * 16 + d(lo)?) as u8)
}

fn uuid(s: &[u8], out: &mut Vec<u8>) -> Result<(), &'static str> {
    let digits: Vec<u8> = s.iter().copied().filter(|&b| b != b'-').collect();
    if s.len() != 36 || digits.len() != 32 {
        return Err("not a uuid");
    }
    for pair in digits.chunks(2) {
        out.push(hex_byte(pair[0], pair[1]).ok_or("not a uuid")?);
    }
    Ok(())
}

/// PostgreSQL's dates count days from 2000-01-01.
const EPOCH_JDATE: i64 = 2_451_545;
const USECS_PER_DAY: i64 = 86_400_000_000;

/// PostgreSQL's date2j, for its proleptic Gregorian calendar with year 0 = 1 BC.
fn date2j(year: i64, month: i64, day: i64) -> i64 {
    let (m, y) = if month > 2 {
        (month + 1, year + 4800)
    } else {
        (month + 13, year + 4799)
    };
    let century = y / 100;
    y * 365 - 32167 + y / 4 - century + century / 4 + 7834 * m / 256 + day
}

/// "YYYY-MM-DD" (more year digits allowed); returns days since 2000-01-01.
fn ymd(s: &[u8], bc: bool) -> Result<i64, &'static str> {
    let bad = "not an ISO date";
    // The common shape first, without splitting.
    if let [y0, y1, y2, y3, b'-', m0, m1, b'-', d0, d1] = *s {
        let digits = [y0, y1, y2, y3, m0, m1, d0, d1];
        if digits.iter().all(u8::is_ascii_digit) {
            let n = |a: &[u8]| a.iter().fold(0, |v, d| v * 10 + i64::from(d - b'0'));
            let (y, m, d) = (n(&digits[..4]), n(&digits[4..6]), n(&digits[6..]));
            if y > 0 && (1..=12).contains(&m) && (1..=31).contains(&d) {
                let year = if bc { 1 - y } else { y };
                return Ok(date2j(year, m, d) - EPOCH_JDATE);
            }
        }
        return Err(bad);
    }
    let mut parts = s.splitn(3, |&b| b == b'-');
    let mut num = |max_len: usize| -> Result<i64, &'static str> {
        let p = parts.next().ok_or(bad)?;
        if p.is_empty() || p.len() > max_len || !p.iter().all(u8::is_ascii_digit) {
            return Err(bad);
        }
        Ok(p.iter().fold(0, |v, d| v * 10 + i64::from(d - b'0')))
    };
    let (y, m, d) = (num(7)?, num(2)?, num(2)?);
    if y == 0 || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(bad);
    }
    let year = if bc { 1 - y } else { y };
    Ok(date2j(year, m, d) - EPOCH_JDATE)
}

fn date(s: &[u8]) -> Result<i32, &'static str> {
    match s {
        b"infinity" => return Ok(i32::MAX),
        b"-infinity" => return Ok(i32::MIN),
        _ => {}
    }
    let (s, bc) = strip_bc(s);
    i32::try_from(ymd(s, bc)?).map_err(|_| "date out of range")
}

fn strip_bc(s: &[u8]) -> (&[u8], bool) {
    match s.strip_suffix(b" BC") {
        Some(rest) => (rest, true),
        None => (s, false),
    }
}

/// "HH:MM:SS[.ffffff]" in microseconds.
fn time(s: &[u8]) -> Result<i64, &'static str> {
    let bad = "not an ISO time";
    if s.len() < 8 || s[2] != b':' || s[5] != b':' {
        return Err(bad);
    }
    let two = |at: usize| -> Result<i64, &'static str> {
        match (s[at], s[at + 1]) {
            (a @ b'0'..=b'9', b @ b'0'..=b'9') => {
                Ok(i64::from(a - b'0') * 10 + i64::from(b - b'0'))
            }
            _ => Err(bad),
        }
    };
    let (h, m, sec) = (two(0)?, two(3)?, two(6)?);
    let mut micros = 0;
    match &s[8..] {
        [] => {}
        [b'.', frac @ ..]
            if (1..=6).contains(&frac.len()) && frac.iter().all(u8::is_ascii_digit) =>
        {
            for i in 0..6 {
                micros = micros * 10 + frac.get(i).map_or(0, |d| i64::from(d - b'0'));
            }
        }
        _ => return Err(bad),
    }
    if m > 59 || sec > 60 || h > 24 {
        return Err(bad);
    }
    Ok(((h * 60 + m) * 60 + sec) * 1_000_000 + micros)
}

/// "YYYY-MM-DD HH:MM:SS[.ffffff][+HH[:MM[:SS]]][ BC]", in microseconds
/// since 2000-01-01 00:00 (UTC for timestamptz).
fn timestamp(s: &[u8], tz: bool) -> Result<i64, &'static str> {
    match s {
        b"infinity" => return Ok(i64::MAX),
        b"-infinity" => return Ok(i64::MIN),
        _ => {}
    }
    let bad = "not an ISO timestamp";
    let (s, bc) = strip_bc(s);
    let space = s.iter().position(|&b| b == b' ').ok_or(bad)?;
    let (day, rest) = (&s[..space], &s[space + 1..]);
    let (clock, offset) = if tz {
        let at = rest
            .iter()
            .rposition(|&b| b == b'+' || b == b'-')
            .ok_or(bad)?;
        (&rest[..at], offset_seconds(&rest[at..]).ok_or(bad)?)
    } else {
        (rest, 0)
    };
    let (days, clock) = (ymd(day, bc)?, time(clock)?);
    days.checked_mul(USECS_PER_DAY)
        .and_then(|d| d.checked_add(clock - offset * 1_000_000))
        .ok_or("timestamp out of range")
}

/// "+HH", "-HH:MM", "+HH:MM:SS" in seconds east of UTC.
fn offset_seconds(s: &[u8]) -> Option<i64> {
    let sign = match s.first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let mut total = 0;
    let mut parts = 0;
    for p in s[1..].split(|&b| b == b':') {
        if p.len() != 2 || !p.iter().all(u8::is_ascii_digit) || parts == 3 {
            return None;
        }
        total = total * 60 + i64::from(p[0] - b'0') * 10 + i64::from(p[1] - b'0');
        parts += 1;
    }
    for _ in parts..3 {
        total *= 60;
    }
    Some(sign * total)
}

/// numeric's binary form: digit count, weight, sign, display scale, then
/// base-10000 digits. The server normalizes and applies the typmod, as for text.
fn numeric(s: &[u8], out: &mut Vec<u8>) -> Result<(), &'static str> {
    let head = |out: &mut Vec<u8>, ndigits: i16, weight: i16, sign: u16, dscale: i16| {
        out.extend_from_slice(&ndigits.to_be_bytes());
        out.extend_from_slice(&weight.to_be_bytes());
        out.extend_from_slice(&sign.to_be_bytes());
        out.extend_from_slice(&dscale.to_be_bytes());
    };
    let special = match s {
        b"NaN" => Some(0xC000),
        b"Infinity" => Some(0xD000),
        b"-Infinity" => Some(0xF000),
        _ => None,
    };
    if let Some(sign) = special {
        head(out, 0, 0, sign, 0);
        return Ok(());
    }
    let (neg, s) = match s.strip_prefix(b"-") {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (int_part, frac) = match memchr::memchr(b'.', s) {
        Some(p) => (&s[..p], &s[p + 1..]),
        None => (s, &s[s.len()..]),
    };
    let digits_ok = |p: &[u8]| p.iter().all(u8::is_ascii_digit);
    if int_part.is_empty() || !digits_ok(int_part) || !digits_ok(frac) {
        return Err("not a plain decimal");
    }
    let int_groups = int_part.len().div_ceil(4);
    let frac_groups = frac.len().div_ceil(4);
    let (Ok(n), Ok(weight), Ok(dscale)) = (
        i16::try_from(int_groups + frac_groups),
        i16::try_from(int_groups as i64 - 1),
        i16::try_from(frac.len()),
    ) else {
        return Err("too many digits");
    };
    head(out, n, weight, if neg { 0x4000 } else { 0 }, dscale);
    // Integer digits are grouped from the decimal point leftwards, fraction
    // digits rightwards: the first integer group and the last fraction group
    // may be short (zero-padded at the outer end).
    let group = |g: &[u8]| g.iter().fold(0u16, |v, d| v * 10 + u16::from(d - b'0'));
    let first = int_part.len() - (int_groups - 1) * 4;
    out.extend_from_slice(&group(&int_part[..first]).to_be_bytes());
    for g in int_part[first..].chunks(4) {
        out.extend_from_slice(&group(g).to_be_bytes());
    }
    for g in frac.chunks(4) {
        let short = 4 - g.len() as u32;
        out.extend_from_slice(&(group(g) * 10u16.pow(short)).to_be_bytes());
    }
    Ok(())
}

/// An array as `array_out` prints it: optional bounds (`[0:2]=`), nested
/// braces, elements unquoted or in double quotes with backslash escapes,
/// unquoted NULL for a null. In binary: dimension count, null flag, element
/// type, (length, lower bound) per dimension, then the elements.
fn array(s: &[u8], elem: Element, out: &mut Vec<u8>) -> Result<(), &'static str> {
    let bad = "not an array";
    let (bounds, body) = array_bounds(s).ok_or(bad)?;
    let mut p = ArrayParser {
        s: body,
        at: 0,
        dims: Vec::new(),
        leaf_depth: None,
        elements: Vec::new(),
    };
    p.level(0).ok_or(bad)?;
    let complete = p.leaf_depth.is_none_or(|d| d + 1 == p.dims.len());
    if p.at != body.len() || !complete || (!bounds.is_empty() && bounds.len() != p.dims.len()) {
        return Err(bad);
    }
    let ndim = if p.elements.is_empty() {
        0
    } else {
        p.dims.len()
    };
    let has_null = p.elements.iter().any(Option::is_none);
    out.extend_from_slice(&(ndim as i32).to_be_bytes());
    out.extend_from_slice(&i32::from(has_null).to_be_bytes());
    out.extend_from_slice(&elem.oid.to_be_bytes());
    for d in 0..ndim {
        out.extend_from_slice(&(p.dims[d] as i32).to_be_bytes());
        out.extend_from_slice(&bounds.get(d).copied().unwrap_or(1).to_be_bytes());
    }
    for e in &p.elements {
        let Some(v) = e else {
            out.extend_from_slice(&(-1i32).to_be_bytes());
            continue;
        };
        let at = out.len();
        out.extend_from_slice(&[0; 4]);
        encode(v, *elem.kind, out)?;
        let len = (out.len() - at - 4) as i32;
        out[at..at + 4].copy_from_slice(&len.to_be_bytes());
    }
    Ok(())
}

/// "[1:3][0:1]={...}" -> ([1, 0], "{...}"); no prefix -> ([], s).
fn array_bounds(s: &[u8]) -> Option<(Vec<i32>, &[u8])> {
    if s.first() != Some(&b'[') {
        return Some((Vec::new(), s));
    }
    let eq = memchr::memchr(b'=', s)?;
    let mut lower = Vec::new();
    for dim in s[..eq].split(|&b| b == b']').filter(|d| !d.is_empty()) {
        let dim = std::str::from_utf8(dim.strip_prefix(b"[")?).ok()?;
        let (lb, _) = dim.split_once(':')?;
        lower.push(lb.parse().ok()?);
    }
    Some((lower, &s[eq + 1..]))
}

struct ArrayParser<'a> {
    s: &'a [u8],
    at: usize,
    /// Length of each dimension, as first seen; every sub-array must agree.
    dims: Vec<usize>,
    /// The depth at which elements were found.
    leaf_depth: Option<usize>,
    elements: Vec<Option<Vec<u8>>>,
}

impl ArrayParser<'_> {
    fn level(&mut self, depth: usize) -> Option<()> {
        self.eat(b'{')?;
        if self.s.get(self.at) == Some(&b'}') {
            self.at += 1;
            // Only the whole array can be empty: "{}".
            return (depth == 0).then_some(());
        }
        let mut n = 0;
        loop {
            if self.s.get(self.at) == Some(&b'{') {
                self.level(depth + 1)?;
            } else {
                let e = self.element()?;
                self.elements.push(e);
                // Elements sit at the innermost level, all at the same one.
                if *self.leaf_depth.get_or_insert(depth) != depth {
                    return None;
                }
            }
            n += 1;
            match self.s.get(self.at)? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    break;
                }
                _ => return None,
            }
        }
        if self.dims.len() <= depth {
            self.dims.resize(depth + 1, 0);
        }
        match self.dims[depth] {
            0 => self.dims[depth] = n,
            d if d != n => return None,
            _ => {}
        }
        Some(())
    }

    fn element(&mut self) -> Option<Option<Vec<u8>>> {
        let mut v = Vec::new();
        if self.s.get(self.at) == Some(&b'"') {
            self.at += 1;
            loop {
                match *self.s.get(self.at)? {
                    b'"' => {
                        self.at += 1;
                        return Some(Some(v));
                    }
                    b'\\' => {
                        v.push(*self.s.get(self.at + 1)?);
                        self.at += 2;
                    }
                    b => {
                        v.push(b);
                        self.at += 1;
                    }
                }
            }
        }
        let start = self.at;
        while !matches!(
            self.s.get(self.at),
            None | Some(b',' | b'}' | b'{' | b'"' | b'\\')
        ) {
            self.at += 1;
        }
        let raw = &self.s[start..self.at];
        match raw {
            [] => None,
            b"NULL" => Some(None),
            _ => Some(Some(raw.to_vec())),
        }
    }

    fn eat(&mut self, b: u8) -> Option<()> {
        (self.s.get(self.at) == Some(&b)).then(|| self.at += 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(types: &[&str]) -> Vec<CopyColumn> {
        types
            .iter()
            .enumerate()
            .map(|(i, t)| CopyColumn {
                name: format!("c{i}"),
                type_name: t.to_string(),
                base_type: None,
            })
            .collect()
    }

    #[test]
    fn intervals_as_microseconds_days_months() {
        let iv = |t: &str| {
            let b = one("interval", t)?;
            let n =
                |r: std::ops::Range<usize>| b[r].iter().fold(0i64, |v, &x| v << 8 | i64::from(x));
            Ok::<_, String>((n(0..8), n(8..12) as i32, n(12..16) as i32))
        };
        assert_eq!(iv("00:00:00").unwrap(), (0, 0, 0));
        assert_eq!(
            iv("1 year 2 mons -3 days +04:05:06.5").unwrap(),
            (14_706_500_000, -3, 14)
        );
        assert_eq!(iv("-1 years -2 mons").unwrap(), (0, 0, -14));
        assert_eq!(iv("1 day -00:00:00.000001").unwrap(), (-1, 1, 0));
        assert_eq!(iv("2562047788:00:54.775807").unwrap().0, i64::MAX);
        assert_eq!(iv("-2562047788:00:54.775808").unwrap().0, i64::MIN);
        assert_eq!(iv("infinity").unwrap(), (i64::MAX, i32::MAX, i32::MAX));
        assert_eq!(iv("-infinity").unwrap(), (i64::MIN, i32::MIN, i32::MIN));
        for bad in [
            "",
            "1 fortnight",
            "1:02:3",
            "1",
            "00:00:00 00:00:00",
            "P1D",
            "2562047788:00:54.775808",
        ] {
            assert!(iv(bad).is_err(), "{bad:?}");
        }
        assert_eq!(kind("interval day to second(3)"), Some(Kind::Interval));
        assert_eq!(kind("interval(2)"), Some(Kind::Interval));
    }

    #[test]
    fn inet_and_cidr_with_family_bits_and_bytes() {
        assert_eq!(one("inet", "10.1.2.3").unwrap(), [2, 32, 0, 4, 10, 1, 2, 3]);
        assert_eq!(
            one("cidr", "10.0.0.0/8").unwrap(),
            [2, 8, 1, 4, 10, 0, 0, 0]
        );
        let v6 = one("inet", "::ffff:1.2.3.4/120").unwrap();
        assert_eq!(v6[..4], [3, 120, 0, 16]);
        assert_eq!(
            v6[4..],
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 1, 2, 3, 4]
        );
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "x",
            "10.0.0.0/8/8",
            "::1/-1",
        ] {
            assert!(one("inet", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn domains_and_enums_are_planned_by_their_base_type() {
        let mut c = cols(&["public.mood", "public.posint", "public.odd"]);
        assert_eq!(plan(&c), None, "unknown types load as text");
        c[0].base_type = Some("text".into());
        c[1].base_type = Some("integer".into());
        c[2].base_type = Some("character varying(3)".into());
        assert_eq!(plan(&c), Some(vec![Kind::Text, Kind::Int4, Kind::Text]));
        c[2].base_type = Some("point".into());
        assert_eq!(plan(&c), None, "a domain over an unconverted type too");
    }

    fn one(type_name: &str, text: &str) -> Result<Vec<u8>, String> {
        let c = cols(&[type_name]);
        let kinds = plan(&c).expect("converted type");
        let out = convert(format!("{text}\n").as_bytes(), &kinds, &c)?;
        assert_eq!(&out[..2], &[0, 1]);
        let len = i32::from_be_bytes(out[2..6].try_into().unwrap());
        if len < 0 {
            return Ok(Vec::new());
        }
        assert_eq!(out.len(), 6 + len as usize);
        Ok(out[6..].to_vec())
    }

    fn i64_of(b: &[u8]) -> i64 {
        i64::from_be_bytes(b.try_into().unwrap())
    }

    #[test]
    fn which_types_convert() {
        assert!(plan(&cols(&["numeric(14,4)", "timestamp(3) without time zone"])).is_some());
        assert!(plan(&cols(&["point[]"])).is_none());
        assert_eq!(
            kind("interval year to month[]"),
            Some(Kind::Array(Element {
                oid: 1186,
                kind: &Kind::Interval
            })),
            "an array, not an interval"
        );
        assert!(matches!(
            kind("numeric(10,2)[]"),
            Some(Kind::Array(Element { oid: 1700, .. }))
        ));
        assert!(plan(&cols(&["tsvector"])).is_none());
        assert!(plan(&cols(&["public.mood"])).is_none());
        assert!(plan(&cols(&["bigint", "macaddr"])).is_none());
        let every = [
            "smallint",
            "integer",
            "bigint",
            "real",
            "double precision",
            "boolean",
            "text",
            "character varying(7)",
            "character(5)",
            "name",
            "json",
            "jsonb",
            "bytea",
            "uuid",
            "date",
            "time without time zone",
            "time(0) without time zone",
            "timestamp without time zone",
            "timestamp(3) without time zone",
            "timestamp with time zone",
            "numeric",
            "numeric(14,4)",
            "interval",
            "interval(3)",
            "interval year to month",
            "inet",
            "cidr",
        ];
        assert!(
            plan(&cols(&every)).is_some(),
            "the types of the e2e edge-value test"
        );
    }

    #[test]
    fn timestamps_count_microseconds_from_2000() {
        let ts = |t: &str| i64_of(&one("timestamp without time zone", t).unwrap());
        let tz = |t: &str| i64_of(&one("timestamp with time zone", t).unwrap());
        assert_eq!(ts("2000-01-01 00:00:00"), 0);
        assert_eq!(ts("2000-01-02 00:00:00.5"), USECS_PER_DAY + 500_000);
        assert_eq!(ts("1999-12-31 23:59:59.999999"), -1);
        assert_eq!(ts("1970-01-01 00:00:00"), -946_684_800_000_000);
        assert_eq!(tz("1970-01-01 00:00:00+00"), -946_684_800_000_000);
        assert_eq!(tz("2000-01-01 01:00:00+01"), 0);
        assert_eq!(tz("2000-01-01 00:00:00-00:30"), 1_800_000_000);
        assert_eq!(ts("infinity"), i64::MAX);
        assert_eq!(ts("-infinity"), i64::MIN);
        // 1 BC is year 0 of the proleptic calendar: 2000 years and one leap
        // day per 4 years (minus three per 400) before 2000-01-01.
        assert_eq!(ts("0001-01-01 00:00:00 BC") / USECS_PER_DAY, -730_485);
        assert_eq!(ts("10000-01-01 00:00:00") / USECS_PER_DAY, 2_921_940);
        assert!(one("timestamp without time zone", "2000-13-01 00:00:00").is_err());
        assert!(one("timestamp with time zone", "2000-01-01 00:00:00").is_err());
    }

    #[test]
    fn dates_and_times() {
        let d = |t: &str| i32::from_be_bytes(one("date", t).unwrap().try_into().unwrap());
        assert_eq!(d("2000-01-01"), 0);
        assert_eq!(d("2024-02-29"), 8825);
        assert_eq!(d("infinity"), i32::MAX);
        let t = |s: &str| i64_of(&one("time without time zone", s).unwrap());
        assert_eq!(t("24:00:00"), USECS_PER_DAY);
        assert_eq!(t("00:00:01.000001"), 1_000_001);
    }

    #[test]
    fn numerics_group_four_digits_from_the_point() {
        let n = |t: &str| one("numeric", t).unwrap();
        let words = |b: Vec<u8>| -> Vec<i16> {
            b.chunks(2)
                .map(|w| i16::from_be_bytes([w[0], w[1]]))
                .collect()
        };
        assert_eq!(words(n("12345.678")), [3, 1, 0, 3, 1, 2345, 6780]);
        assert_eq!(words(n("-0.5")), [2, 0, 0x4000, 1, 0, 5000]);
        assert_eq!(words(n("0")), [1, 0, 0, 0, 0]);
        assert_eq!(words(n("NaN")), [0, 0, 0xC000u16 as i16, 0]);
        assert!(one("numeric", "1e5").is_err());
    }

    #[test]
    fn escapes_nulls_and_plain_types() {
        assert_eq!(
            one("text", "a\\tb\\\\c\\nd\\101\\x42").unwrap(),
            b"a\tb\\c\ndAB"
        );
        assert_eq!(one("text", "\\N").unwrap(), b"");
        assert_eq!(one("bytea", "\\\\x00ff").unwrap(), [0, 255]);
        assert_eq!(one("jsonb", "{\"a\": 1}").unwrap(), b"\x01{\"a\": 1}");
        assert_eq!(one("boolean", "t").unwrap(), [1]);
        assert_eq!(
            one("smallint", "-32768").unwrap(),
            (-32768i16).to_be_bytes()
        );
        assert!(one("smallint", "32768").is_err());
        assert_eq!(
            one("bigint", "-9223372036854775808").unwrap(),
            i64::MIN.to_be_bytes()
        );
        assert!(one("bigint", "9223372036854775808").is_err());
        assert!(one("integer", "").is_err());
        assert!(one("integer", "1.0").is_err());
        assert_eq!(
            one("double precision", "-Infinity").unwrap(),
            f64::NEG_INFINITY.to_bits().to_be_bytes()
        );
        assert_eq!(one("real", "1.1").unwrap(), 1.1f32.to_bits().to_be_bytes());
        assert_eq!(
            one("uuid", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11").unwrap()[..2],
            [0xa0, 0xee]
        );
    }

    #[test]
    fn arrays_carry_dimensions_bounds_nulls_and_quoted_text() {
        let words = |b: Vec<u8>| -> Vec<i32> {
            b.chunks(4)
                .map(|w| i32::from_be_bytes(w.try_into().unwrap()))
                .collect()
        };
        assert_eq!(words(one("integer[]", "{}").unwrap()), [0, 0, 23]);
        assert_eq!(
            words(one("integer[]", "{1,NULL,-3}").unwrap()),
            [1, 1, 23, 3, 1, 4, 1, -1, 4, -3]
        );
        assert_eq!(
            words(one("integer[]", "[0:1][-1:-1]={{7},{8}}").unwrap()),
            [2, 0, 23, 2, 0, 1, -1, 4, 7, 4, 8]
        );
        // As array_out prints it, then escaped once more by COPY.
        let printed = r#"{plain,"with, comma","q\"\\",NULL,"NULL",""}"#;
        let t = one("text[]", &printed.replace('\\', "\\\\")).unwrap();
        assert_eq!(&t[..12], [0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 25]);
        let rest = &t[20..];
        let mut items = Vec::new();
        let mut at = 0;
        while at < rest.len() {
            let len = i32::from_be_bytes(rest[at..at + 4].try_into().unwrap());
            at += 4;
            if len < 0 {
                items.push(None);
            } else {
                items.push(Some(
                    String::from_utf8(rest[at..at + len as usize].to_vec()).unwrap(),
                ));
                at += len as usize;
            }
        }
        let want = [
            Some("plain"),
            Some("with, comma"),
            Some("q\"\\"),
            None,
            Some("NULL"),
            Some(""),
        ];
        assert_eq!(items, want.map(|w| w.map(String::from)));
        for bad in ["{1,{2}}", "{{1},{2,3}}", "{1", "{1}}", "1", "{{}}"] {
            assert!(one("integer[]", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rows_keep_their_shape() {
        let c = cols(&["integer", "text"]);
        let kinds = plan(&c).unwrap();
        let out = convert(b"1\tx\n2\t\\N\n", &kinds, &c).unwrap();
        assert_eq!(out.len(), 2 * (2 + 4 + 4 + 4) + 1);
        assert!(convert(b"1\n", &kinds, &c).is_err());
        assert!(convert(b"1\tx\ty\n", &kinds, &c).is_err());
        assert!(convert(b"1\tx", &kinds, &c).is_err());
        let none: Vec<CopyColumn> = Vec::new();
        assert_eq!(convert(b"\n\n", &[], &none).unwrap(), [0, 0, 0, 0]);
    }
}

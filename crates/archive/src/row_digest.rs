//! The `row_digest` of a table (docs/FORMAT.md): an order-independent digest
//! of the rows of a COPY text stream, so a restored table can be compared with
//! the archive whatever its row order.

use xxhash_rust::xxh3::xxh3_128;

/// The wrapping sum of the xxh3-128 hashes of every row (a row is one line of
/// COPY text without its newline). Sums commute, so chunks and split ranges
/// can be digested separately and merged.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RowDigest(u128);

impl RowDigest {
    /// Adds every complete line of `data` and returns how many there were.
    pub fn add_rows(&mut self, data: &[u8]) -> u64 {
        let mut start = 0;
        let mut rows = 0;
        for end in memchr::memchr_iter(b'\n', data) {
            self.0 = self.0.wrapping_add(xxh3_128(&data[start..end]));
            start = end + 1;
            rows += 1;
        }
        rows
    }

    pub fn merge(&mut self, other: RowDigest) {
        self.0 = self.0.wrapping_add(other.0);
    }

    pub fn hex(&self) -> String {
        format!("{:032x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_order_does_not_matter_but_content_does() {
        let mut a = RowDigest::default();
        assert_eq!(a.add_rows(b"1\tx\n2\ty\n3\tz\n"), 3);
        let mut b = RowDigest::default();
        b.add_rows(b"3\tz\n");
        let mut c = RowDigest::default();
        c.add_rows(b"2\ty\n1\tx\n");
        b.merge(c);
        assert_eq!(a, b);
        let mut d = RowDigest::default();
        d.add_rows(b"1\tx\n2\ty\n3\tZ\n");
        assert_ne!(a.hex(), d.hex());
    }

    #[test]
    fn a_partial_line_is_not_counted() {
        let mut a = RowDigest::default();
        assert_eq!(a.add_rows(b"1\n2"), 1);
    }
}

//! Stable binary form of a [`Mutation`] (format version 1), used by the
//! commitlog (and later by internode messages and hints).
//!
//! All integers are big-endian. Layout (see `docs/commitlog-format.md`):
//!
//! ```text
//! mutation   := u8 version(=1) | table_id[16] | i64 token | bytes key
//!               | u8 flags (bit0: partition tombstone, bit1: static row)
//!               | [deletion] | [row]
//!               | u32 n_range_tombstones | (bound start | bound end | deletion)*
//!               | u32 n_rows | (clustering | row)*
//! bytes      := u32 len | len bytes
//! clustering := u16 n | bytes*n
//! bound      := u8 kind (0 unbounded, 1 inclusive, 2 exclusive) | [clustering]
//! deletion   := i64 timestamp | i32 local_deletion_time
//! row        := u8 flags (bit0 liveness, bit1 deletion)
//!               | [i64 ts | i32 ttl | i32 expiry] | [deletion]
//!               | u32 n_columns | column*
//! column     := u32 id | u8 kind (0 simple, 1 complex)
//!               | simple: cell
//!               | complex: u8 has_tombstone | [deletion] | u32 n | (bytes path | cell)*
//! cell       := u8 flags (bit0 has value) | i64 ts | i32 ttl | i32 expiry | [bytes value]
//! ```
//!
//! Decoding never panics and never allocates more than the input can
//! justify: every count is checked against the bytes that remain.

use std::fmt;

use bytes::Bytes;

use crate::mutation::{
    Bound, Cell, Clustering, ClusteringRange, ColumnData, DeletionTime, LivenessInfo, Mutation,
    PartitionKey, PartitionUpdate, RangeTombstone, Row,
};

/// The mutation format version written by this build.
pub const MUTATION_FORMAT_VERSION: u8 = 1;

/// Why bytes could not be decoded into a mutation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ended inside a field.
    Truncated,
    /// A format version this build does not know.
    UnknownVersion(u8),
    /// A field holds an impossible value.
    Invalid(&'static str),
    /// Bytes left over after the mutation.
    TrailingBytes(usize),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated => write!(f, "truncated mutation"),
            DecodeError::UnknownVersion(v) => write!(f, "unknown mutation format version {v}"),
            DecodeError::Invalid(what) => write!(f, "invalid mutation: {what}"),
            DecodeError::TrailingBytes(n) => write!(f, "{n} trailing bytes after mutation"),
        }
    }
}

impl std::error::Error for DecodeError {}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

fn put_deletion(out: &mut Vec<u8>, d: &DeletionTime) {
    out.extend_from_slice(&d.timestamp.to_be_bytes());
    out.extend_from_slice(&d.local_deletion_time.to_be_bytes());
}

fn put_clustering(out: &mut Vec<u8>, c: &[Bytes]) {
    out.extend_from_slice(&(c.len() as u16).to_be_bytes());
    for b in c {
        put_bytes(out, b);
    }
}

fn put_bound(out: &mut Vec<u8>, b: &Bound) {
    match b {
        Bound::Unbounded => out.push(0),
        Bound::Inclusive(c) => {
            out.push(1);
            put_clustering(out, c);
        }
        Bound::Exclusive(c) => {
            out.push(2);
            put_clustering(out, c);
        }
    }
}

fn put_cell(out: &mut Vec<u8>, c: &Cell) {
    out.push(c.value.is_some() as u8);
    out.extend_from_slice(&c.timestamp.to_be_bytes());
    out.extend_from_slice(&c.ttl.to_be_bytes());
    out.extend_from_slice(&c.expiry.to_be_bytes());
    if let Some(v) = &c.value {
        put_bytes(out, v);
    }
}

fn put_row(out: &mut Vec<u8>, r: &Row) {
    out.push(r.liveness.is_some() as u8 | (r.deletion.is_some() as u8) << 1);
    if let Some(l) = &r.liveness {
        out.extend_from_slice(&l.timestamp.to_be_bytes());
        out.extend_from_slice(&l.ttl.to_be_bytes());
        out.extend_from_slice(&l.expiry.to_be_bytes());
    }
    if let Some(d) = &r.deletion {
        put_deletion(out, d);
    }
    out.extend_from_slice(&(r.columns.len() as u32).to_be_bytes());
    for (id, data) in &r.columns {
        out.extend_from_slice(&id.to_be_bytes());
        match data {
            ColumnData::Simple(c) => {
                out.push(0);
                put_cell(out, c);
            }
            ColumnData::Complex { tombstone, cells } => {
                out.push(1);
                out.push(tombstone.is_some() as u8);
                if let Some(t) = tombstone {
                    put_deletion(out, t);
                }
                out.extend_from_slice(&(cells.len() as u32).to_be_bytes());
                for (path, cell) in cells {
                    put_bytes(out, path);
                    put_cell(out, cell);
                }
            }
        }
    }
}

/// Appends the serialised form of `m` to `out`.
pub fn encode_mutation(m: &Mutation, out: &mut Vec<u8>) {
    out.push(MUTATION_FORMAT_VERSION);
    out.extend_from_slice(&m.table);
    encode_partition(&m.update, out);
}

/// Appends the serialised form of one partition (the part of a mutation
/// after its table id: `i64 token | bytes key | flags | ...`). SSTable data
/// blocks hold partitions in this form.
pub fn encode_partition(u: &PartitionUpdate, out: &mut Vec<u8>) {
    out.extend_from_slice(&u.key.token.to_be_bytes());
    put_bytes(out, &u.key.key);
    out.push(u.tombstone.is_some() as u8 | (u.static_row.is_some() as u8) << 1);
    if let Some(t) = &u.tombstone {
        put_deletion(out, t);
    }
    if let Some(s) = &u.static_row {
        put_row(out, s);
    }
    out.extend_from_slice(&(u.range_tombstones.len() as u32).to_be_bytes());
    for rt in &u.range_tombstones {
        put_bound(out, &rt.range.start);
        put_bound(out, &rt.range.end);
        put_deletion(out, &rt.deletion);
    }
    out.extend_from_slice(&(u.rows.len() as u32).to_be_bytes());
    for (c, r) in &u.rows {
        put_clustering(out, c);
        put_row(out, r);
    }
}

/// The serialised size of `m` (what [`encode_mutation`] appends).
pub fn encoded_len(m: &Mutation) -> usize {
    let mut v = Vec::new();
    encode_mutation(m, &mut v);
    v.len()
}

/// A bounds-checked reader over the input.
struct Reader<'a> {
    buf: &'a Bytes,
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::Truncated);
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(self.u32()? as i32)
    }
    fn i64(&mut self) -> Result<i64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }
    /// A length-prefixed byte string, sharing the input buffer.
    fn bytes(&mut self) -> Result<Bytes, DecodeError> {
        let len = self.u32()? as usize;
        if self.remaining() < len {
            return Err(DecodeError::Truncated);
        }
        let b = self.buf.slice(self.pos..self.pos + len);
        self.pos += len;
        Ok(b)
    }
    /// A count of items each at least `min_size` bytes long, checked
    /// against the remaining input.
    fn count(&mut self, min_size: usize) -> Result<usize, DecodeError> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_size) > self.remaining() {
            return Err(DecodeError::Truncated);
        }
        Ok(n)
    }
    fn deletion(&mut self) -> Result<DeletionTime, DecodeError> {
        Ok(DeletionTime {
            timestamp: self.i64()?,
            local_deletion_time: self.i32()?,
        })
    }
    fn clustering(&mut self) -> Result<Clustering, DecodeError> {
        let n = self.u16()? as usize;
        if n.saturating_mul(4) > self.remaining() {
            return Err(DecodeError::Truncated);
        }
        (0..n).map(|_| self.bytes()).collect()
    }
    fn bound(&mut self) -> Result<Bound, DecodeError> {
        match self.u8()? {
            0 => Ok(Bound::Unbounded),
            1 => Ok(Bound::Inclusive(self.clustering()?)),
            2 => Ok(Bound::Exclusive(self.clustering()?)),
            _ => Err(DecodeError::Invalid("bound kind")),
        }
    }
    fn cell(&mut self) -> Result<Cell, DecodeError> {
        let flags = self.u8()?;
        if flags > 1 {
            return Err(DecodeError::Invalid("cell flags"));
        }
        let timestamp = self.i64()?;
        let ttl = self.i32()?;
        let expiry = self.i32()?;
        let value = if flags & 1 != 0 {
            Some(self.bytes()?)
        } else {
            None
        };
        Ok(Cell {
            timestamp,
            ttl,
            expiry,
            value,
        })
    }
    fn row(&mut self) -> Result<Row, DecodeError> {
        let flags = self.u8()?;
        if flags > 3 {
            return Err(DecodeError::Invalid("row flags"));
        }
        let liveness = if flags & 1 != 0 {
            Some(LivenessInfo {
                timestamp: self.i64()?,
                ttl: self.i32()?,
                expiry: self.i32()?,
            })
        } else {
            None
        };
        let deletion = if flags & 2 != 0 {
            Some(self.deletion()?)
        } else {
            None
        };
        let n = self.count(5)?;
        let mut columns = Vec::with_capacity(n);
        for _ in 0..n {
            let id = self.u32()?;
            let data = match self.u8()? {
                0 => ColumnData::Simple(self.cell()?),
                1 => {
                    let tombstone = match self.u8()? {
                        0 => None,
                        1 => Some(self.deletion()?),
                        _ => return Err(DecodeError::Invalid("complex tombstone flag")),
                    };
                    let n = self.count(21)?;
                    let mut cells = Vec::with_capacity(n);
                    for _ in 0..n {
                        let path = self.bytes()?;
                        cells.push((path, self.cell()?));
                    }
                    ColumnData::Complex { tombstone, cells }
                }
                _ => return Err(DecodeError::Invalid("column kind")),
            };
            columns.push((id, data));
        }
        Ok(Row {
            liveness,
            deletion,
            columns,
        })
    }
}

/// Decodes one mutation occupying all of `buf`. Byte fields share `buf`'s
/// storage.
pub fn decode_mutation(buf: &Bytes) -> Result<Mutation, DecodeError> {
    let mut r = Reader { buf, pos: 0 };
    let version = r.u8()?;
    if version != MUTATION_FORMAT_VERSION {
        return Err(DecodeError::UnknownVersion(version));
    }
    let mut table = [0u8; 16];
    table.copy_from_slice(r.take(16)?);
    let update = r.partition()?;
    if r.remaining() != 0 {
        return Err(DecodeError::TrailingBytes(r.remaining()));
    }
    Ok(Mutation { table, update })
}

/// Decodes one partition written by [`encode_partition`] starting at
/// `*pos` of `buf`, advancing `*pos` past it. Byte fields share `buf`'s
/// storage. Never panics on malformed input.
pub fn decode_partition_at(buf: &Bytes, pos: &mut usize) -> Result<PartitionUpdate, DecodeError> {
    if *pos > buf.len() {
        return Err(DecodeError::Truncated);
    }
    let mut r = Reader { buf, pos: *pos };
    let u = r.partition()?;
    *pos = r.pos;
    Ok(u)
}

impl Reader<'_> {
    fn partition(&mut self) -> Result<PartitionUpdate, DecodeError> {
        let r = self;
        let token = r.i64()?;
        let key = r.bytes()?;
        let flags = r.u8()?;
        if flags > 3 {
            return Err(DecodeError::Invalid("partition flags"));
        }
        let mut u = PartitionUpdate::new(PartitionKey { token, key });
        if flags & 1 != 0 {
            u.tombstone = Some(r.deletion()?);
        }
        if flags & 2 != 0 {
            u.static_row = Some(r.row()?);
        }
        let n = r.count(2 + 12)?;
        u.range_tombstones.reserve(n);
        for _ in 0..n {
            let start = r.bound()?;
            let end = r.bound()?;
            let deletion = r.deletion()?;
            u.range_tombstones.push(RangeTombstone {
                range: ClusteringRange { start, end },
                deletion,
            });
        }
        let n = r.count(2 + 5)?;
        u.rows.reserve(n);
        for _ in 0..n {
            let c = r.clustering()?;
            let row = r.row()?;
            u.rows.push((c, row));
        }
        Ok(u)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Mutation {
        let cell = |ts, v: Option<&'static [u8]>| Cell {
            timestamp: ts,
            ttl: if ts % 2 == 0 { 10 } else { 0 },
            expiry: 77,
            value: v.map(Bytes::from_static),
        };
        let mut u = PartitionUpdate::new(PartitionKey {
            token: -42,
            key: Bytes::from_static(b"pk"),
        });
        u.tombstone = Some(DeletionTime {
            timestamp: 3,
            local_deletion_time: 9,
        });
        u.static_row = Some(Row {
            liveness: None,
            deletion: None,
            columns: vec![(0, ColumnData::Simple(cell(5, Some(b"s"))))],
        });
        u.range_tombstones.push(RangeTombstone {
            range: ClusteringRange {
                start: Bound::Inclusive(vec![Bytes::from_static(b"a")]),
                end: Bound::Unbounded,
            },
            deletion: DeletionTime {
                timestamp: 4,
                local_deletion_time: 10,
            },
        });
        u.rows.push((
            vec![Bytes::from_static(b"a"), Bytes::new()],
            Row {
                liveness: Some(LivenessInfo {
                    timestamp: 8,
                    ttl: 5,
                    expiry: 99,
                }),
                deletion: Some(DeletionTime {
                    timestamp: 1,
                    local_deletion_time: 2,
                }),
                columns: vec![
                    (1, ColumnData::Simple(cell(6, None))),
                    (
                        2,
                        ColumnData::Complex {
                            tombstone: Some(DeletionTime {
                                timestamp: 7,
                                local_deletion_time: 8,
                            }),
                            cells: vec![(Bytes::from_static(b"p"), cell(9, Some(b"")))],
                        },
                    ),
                ],
            },
        ));
        Mutation {
            table: [9; 16],
            update: u,
        }
    }

    #[test]
    fn round_trip() {
        let m = sample();
        let mut buf = Vec::new();
        encode_mutation(&m, &mut buf);
        assert_eq!(buf.len(), encoded_len(&m));
        let back = decode_mutation(&Bytes::from(buf)).expect("decodes");
        assert_eq!(back, m);
    }

    #[test]
    fn every_truncation_and_bit_flip_is_an_error_or_valid() {
        let mut buf = Vec::new();
        encode_mutation(&sample(), &mut buf);
        for cut in 0..buf.len() {
            assert!(decode_mutation(&Bytes::copy_from_slice(&buf[..cut])).is_err());
        }
        let mut extra = buf.clone();
        extra.push(0);
        assert_eq!(
            decode_mutation(&Bytes::from(extra)),
            Err(DecodeError::TrailingBytes(1))
        );
        for i in 0..buf.len() {
            for bit in 0..8 {
                let mut b = buf.clone();
                b[i] ^= 1 << bit;
                let _ = decode_mutation(&Bytes::from(b)); // must not panic
            }
        }
        // Huge counts do not allocate.
        let mut b = buf.clone();
        let rows_at = b.len() - 4; // not the row count, but any u32 works
        b[rows_at..].copy_from_slice(&u32::MAX.to_be_bytes());
        let _ = decode_mutation(&Bytes::from(b));
    }
}

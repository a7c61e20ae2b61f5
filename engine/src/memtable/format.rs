//! How rows, clustering keys and range tombstones are laid out in the
//! memtable arena. In-memory only (never written to disk, no version):
//! little-endian, lengths before bytes.
//!
//! ```text
//! clustering := u32 n | (u32 len | bytes)*n
//! row        := u8 flags (bit0 liveness, bit1 deletion)
//!               | [i64 ts | i32 ttl | i32 expiry] | [deletion]
//!               | u32 n_columns | column*
//! column     := u32 id | u8 kind (0 simple, 1 complex)
//!               | simple: cell
//!               | complex: u8 has_tombstone | [deletion] | u32 n | (u32 len | path | cell)*
//! cell       := u8 has_value | i64 ts | i32 ttl | i32 expiry | [u32 len | value]
//! deletion   := i64 timestamp | i32 local_deletion_time
//! bound      := u8 kind (0 unbounded, 1 inclusive, 2 exclusive) | [clustering]
//! range tombstone := bound start | bound end | deletion
//! ```
//!
//! Encoders first compute the exact size (`*_len`), the caller reserves it
//! in the arena and the encoder writes straight into it: no intermediate
//! buffer. Decoders trust their input (only this module writes it).

use std::cmp::Ordering;

use bytes::Bytes;

use crate::mutation::{
    Bound, Cell, Clustering, ClusteringRange, ColumnData, DeletionTime, LivenessInfo,
    RangeTombstone, Row,
};
use crate::schema::TableSchema;

const CELL_FIXED: usize = 1 + 8 + 4 + 4;
const DELETION_LEN: usize = 12;

/// Writes into a slice sized by the matching `*_len` function.
pub(super) struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    pub(super) fn new(buf: &'a mut [u8]) -> Self {
        Writer { buf, pos: 0 }
    }

    fn put(&mut self, b: &[u8]) {
        self.buf[self.pos..self.pos + b.len()].copy_from_slice(b);
        self.pos += b.len();
    }

    fn u8(&mut self, v: u8) {
        self.put(&[v]);
    }

    fn u32(&mut self, v: u32) {
        self.put(&v.to_le_bytes());
    }

    fn i32(&mut self, v: i32) {
        self.put(&v.to_le_bytes());
    }

    fn i64(&mut self, v: i64) {
        self.put(&v.to_le_bytes());
    }

    fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.put(b);
    }

    fn deletion(&mut self, d: &DeletionTime) {
        self.i64(d.timestamp);
        self.i32(d.local_deletion_time);
    }

    /// Bytes written so far.
    pub(super) fn position(&self) -> usize {
        self.pos
    }
}

/// Reads what a [`Writer`] wrote.
pub(super) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        s
    }

    fn u8(&mut self) -> u8 {
        self.take(1)[0]
    }

    fn u32(&mut self) -> u32 {
        let b = self.take(4);
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }

    fn i32(&mut self) -> i32 {
        self.u32() as i32
    }

    fn i64(&mut self) -> i64 {
        let b = self.take(8);
        i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
    }

    fn bytes(&mut self) -> &'a [u8] {
        let n = self.u32() as usize;
        self.take(n)
    }

    fn deletion(&mut self) -> DeletionTime {
        DeletionTime {
            timestamp: self.i64(),
            local_deletion_time: self.i32(),
        }
    }
}

// ------------------------------------------------------------ clustering

pub(super) fn clustering_len(c: &[Bytes]) -> usize {
    4 + c.iter().map(|b| 4 + b.len()).sum::<usize>()
}

pub(super) fn write_clustering(w: &mut Writer<'_>, c: &[Bytes]) {
    w.u32(c.len() as u32);
    for b in c {
        w.bytes(b);
    }
}

pub(super) fn read_clustering(r: &mut Reader<'_>) -> Clustering {
    let n = r.u32() as usize;
    (0..n).map(|_| Bytes::copy_from_slice(r.bytes())).collect()
}

/// Compares an encoded full clustering (a stored row's) with the position
/// `probe` at `side` (-1 before every clustering with that prefix, 0 the
/// clustering itself, +1 after them) — `TableSchema::compare_positions`
/// for `Position::At(stored, 0)` against `Position::At(probe, side)`,
/// without decoding.
pub(super) fn compare_clustering(
    schema: &TableSchema,
    encoded: &[u8],
    probe: &[Bytes],
    side: i8,
) -> Ordering {
    let mut r = Reader::new(encoded);
    let n = r.u32() as usize;
    for (i, p) in probe.iter().enumerate().take(n) {
        let c = schema.compare_component(i, r.bytes(), p);
        if c != Ordering::Equal {
            return c;
        }
    }
    match n.cmp(&probe.len()) {
        Ordering::Equal => 0.cmp(&side),
        // The stored clustering is a proper prefix of the probe.
        Ordering::Less => Ordering::Less,
        Ordering::Greater => {
            if side > 0 {
                Ordering::Less
            } else {
                Ordering::Greater
            }
        }
    }
}

// ------------------------------------------------------------------ rows

fn cell_len(c: &Cell) -> usize {
    CELL_FIXED + c.value.as_ref().map_or(0, |v| 4 + v.len())
}

/// Exact encoded size of `row`.
pub(super) fn row_len(row: &Row) -> usize {
    let mut n = 1 + 4;
    if row.liveness.is_some() {
        n += 16;
    }
    if row.deletion.is_some() {
        n += DELETION_LEN;
    }
    for (_, data) in &row.columns {
        n += 4 + 1;
        match data {
            ColumnData::Simple(c) => n += cell_len(c),
            ColumnData::Complex { tombstone, cells } => {
                n += 1 + 4;
                if tombstone.is_some() {
                    n += DELETION_LEN;
                }
                for (path, c) in cells {
                    n += 4 + path.len() + cell_len(c);
                }
            }
        }
    }
    n
}

fn write_cell(w: &mut Writer<'_>, c: &Cell) {
    w.u8(c.value.is_some() as u8);
    w.i64(c.timestamp);
    w.i32(c.ttl);
    w.i32(c.expiry);
    if let Some(v) = &c.value {
        w.bytes(v);
    }
}

fn read_cell(r: &mut Reader<'_>) -> Cell {
    let has_value = r.u8() != 0;
    let timestamp = r.i64();
    let ttl = r.i32();
    let expiry = r.i32();
    let value = has_value.then(|| Bytes::copy_from_slice(r.bytes()));
    Cell {
        timestamp,
        ttl,
        expiry,
        value,
    }
}

/// Writes `row` (normalised: columns and paths sorted, no duplicates).
pub(super) fn write_row(w: &mut Writer<'_>, row: &Row) {
    w.u8(row.liveness.is_some() as u8 | (row.deletion.is_some() as u8) << 1);
    if let Some(l) = &row.liveness {
        w.i64(l.timestamp);
        w.i32(l.ttl);
        w.i32(l.expiry);
    }
    if let Some(d) = &row.deletion {
        w.deletion(d);
    }
    w.u32(row.columns.len() as u32);
    for (id, data) in &row.columns {
        w.u32(*id);
        match data {
            ColumnData::Simple(c) => {
                w.u8(0);
                write_cell(w, c);
            }
            ColumnData::Complex { tombstone, cells } => {
                w.u8(1);
                w.u8(tombstone.is_some() as u8);
                if let Some(t) = tombstone {
                    w.deletion(t);
                }
                w.u32(cells.len() as u32);
                for (path, c) in cells {
                    w.bytes(path);
                    write_cell(w, c);
                }
            }
        }
    }
}

/// Decodes a row written by [`write_row`].
pub(super) fn read_row(buf: &[u8]) -> Row {
    let mut r = Reader::new(buf);
    let flags = r.u8();
    let liveness = (flags & 1 != 0).then(|| LivenessInfo {
        timestamp: r.i64(),
        ttl: r.i32(),
        expiry: r.i32(),
    });
    let deletion = (flags & 2 != 0).then(|| r.deletion());
    let n = r.u32() as usize;
    let mut columns = Vec::with_capacity(n);
    for _ in 0..n {
        let id = r.u32();
        let data = if r.u8() == 0 {
            ColumnData::Simple(read_cell(&mut r))
        } else {
            let tombstone = (r.u8() != 0).then(|| r.deletion());
            let m = r.u32() as usize;
            let cells = (0..m)
                .map(|_| {
                    let path = Bytes::copy_from_slice(r.bytes());
                    (path, read_cell(&mut r))
                })
                .collect();
            ColumnData::Complex { tombstone, cells }
        };
        columns.push((id, data));
    }
    Row {
        liveness,
        deletion,
        columns,
    }
}

// ------------------------------------------------------ range tombstones

fn bound_len(b: &Bound) -> usize {
    match b {
        Bound::Unbounded => 1,
        Bound::Inclusive(c) | Bound::Exclusive(c) => 1 + clustering_len(c),
    }
}

fn write_bound(w: &mut Writer<'_>, b: &Bound) {
    match b {
        Bound::Unbounded => w.u8(0),
        Bound::Inclusive(c) => {
            w.u8(1);
            write_clustering(w, c);
        }
        Bound::Exclusive(c) => {
            w.u8(2);
            write_clustering(w, c);
        }
    }
}

fn read_bound(r: &mut Reader<'_>) -> Bound {
    match r.u8() {
        0 => Bound::Unbounded,
        1 => Bound::Inclusive(read_clustering(r)),
        _ => Bound::Exclusive(read_clustering(r)),
    }
}

pub(super) fn range_tombstone_len(rt: &RangeTombstone) -> usize {
    bound_len(&rt.range.start) + bound_len(&rt.range.end) + DELETION_LEN
}

pub(super) fn write_range_tombstone(w: &mut Writer<'_>, rt: &RangeTombstone) {
    write_bound(w, &rt.range.start);
    write_bound(w, &rt.range.end);
    w.deletion(&rt.deletion);
}

pub(super) fn read_range_tombstone(buf: &[u8]) -> RangeTombstone {
    let mut r = Reader::new(buf);
    let start = read_bound(&mut r);
    let end = read_bound(&mut r);
    RangeTombstone {
        range: ClusteringRange { start, end },
        deletion: r.deletion(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip_row(row: &Row) -> Row {
        let mut buf = vec![0u8; row_len(row)];
        let mut w = Writer::new(&mut buf);
        write_row(&mut w, row);
        assert_eq!(w.position(), buf.len(), "row_len is exact");
        read_row(&buf)
    }

    #[test]
    fn rows_roundtrip_with_every_kind_of_cell() {
        let cell = |ts, ttl, expiry, v: Option<&'static [u8]>| Cell {
            timestamp: ts,
            ttl,
            expiry,
            value: v.map(Bytes::from_static),
        };
        let row = Row {
            liveness: Some(LivenessInfo {
                timestamp: -5,
                ttl: 60,
                expiry: 1_700_000_060,
            }),
            deletion: Some(DeletionTime {
                timestamp: -9,
                local_deletion_time: 42,
            }),
            columns: vec![
                (0, ColumnData::Simple(cell(1, 0, 0, Some(b"")))),
                (1, ColumnData::Simple(cell(2, 0, 77, None))),
                (
                    7,
                    ColumnData::Complex {
                        tombstone: Some(DeletionTime {
                            timestamp: 3,
                            local_deletion_time: 4,
                        }),
                        cells: vec![
                            (Bytes::from_static(b"a"), cell(5, 10, 99, Some(b"x"))),
                            (Bytes::from_static(b"bb"), cell(6, 0, 0, None)),
                        ],
                    },
                ),
                (
                    9,
                    ColumnData::Complex {
                        tombstone: None,
                        cells: Vec::new(),
                    },
                ),
            ],
        };
        assert_eq!(roundtrip_row(&row), row);
        assert_eq!(roundtrip_row(&Row::default()), Row::default());
    }

    #[test]
    fn range_tombstones_roundtrip() {
        let rt = RangeTombstone {
            range: ClusteringRange {
                start: Bound::Exclusive(vec![Bytes::from_static(b"k"), Bytes::new()]),
                end: Bound::Unbounded,
            },
            deletion: DeletionTime {
                timestamp: 11,
                local_deletion_time: 12,
            },
        };
        let mut buf = vec![0u8; range_tombstone_len(&rt)];
        let mut w = Writer::new(&mut buf);
        write_range_tombstone(&mut w, &rt);
        assert_eq!(w.position(), buf.len());
        assert_eq!(read_range_tombstone(&buf), rt);
    }
}

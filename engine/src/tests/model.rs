//! Model-based property test: random mutations go to a reader and to a
//! naive model that keeps every version of everything and decides each
//! read by brute force; reads must agree exactly.
//!
//! The model shares no code with the engine's reconciliation or bound
//! logic: clustering order, bound containment and winners are recomputed
//! here from first principles, on a small domain that forces collisions
//! (timestamp ties, tokens shared by several keys, overlapping tombstones).

use std::cmp::Ordering;
use std::sync::Arc;

use bytes::Bytes;

use super::{
    int, DatabaseFactory, FlushingDatabaseFactory, MemtableAndSSTablesFactory,
    MergedMemtablesFactory, ReaderFactory, SSTableFactory,
};
use crate::compaction::CompactionStrategy;
use crate::mutation::{
    Bound, Cell, ClusteringRange, ColumnData, DeletionTime, LivenessInfo, PartitionKey,
    PartitionUpdate, RangeTombstone, Row,
};
use crate::read::{ReadCommand, TokenRange};
use crate::schema::{ClusteringColumn, TableSchema};
use crate::types::KeyType;

const NOW: i32 = 10_000;
const COMPLEX: u32 = 3;
const STATIC: u32 = 0;

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Clustering component values: the empty value and four ints.
fn component(r: &mut Rng) -> Bytes {
    match r.below(5) {
        0 => Bytes::new(),
        n => int(n as i32 - 2),
    }
}

fn key(k: u64) -> PartitionKey {
    PartitionKey {
        // Several keys share a token.
        token: (k % 2) as i64 - 1,
        key: Bytes::copy_from_slice(&[k as u8]),
    }
}

fn gen_cell(r: &mut Rng) -> Cell {
    let timestamp = 1 + r.below(6) as i64;
    if r.chance(20) {
        return Cell {
            timestamp,
            ttl: 0,
            expiry: NOW - r.below(5) as i32,
            value: None,
        };
    }
    let value = Some(Bytes::from(["", "a", "b", "c"][r.below(4) as usize]));
    if r.chance(25) {
        Cell {
            timestamp,
            ttl: 60,
            expiry: NOW - 2 + r.below(6) as i32,
            value,
        }
    } else {
        Cell {
            timestamp,
            ttl: 0,
            expiry: 0,
            value,
        }
    }
}

fn gen_deletion(r: &mut Rng) -> DeletionTime {
    DeletionTime {
        timestamp: 1 + r.below(6) as i64,
        local_deletion_time: NOW - r.below(5) as i32,
    }
}

fn gen_bound(r: &mut Rng) -> Bound {
    let len = r.below(3) as usize;
    let prefix: Vec<Bytes> = (0..len).map(|_| component(r)).collect();
    match r.below(3) {
        0 => Bound::Unbounded,
        1 => Bound::Inclusive(prefix),
        _ => Bound::Exclusive(prefix),
    }
}

fn gen_row(r: &mut Rng) -> Row {
    let mut row = Row::default();
    match r.below(5) {
        0 | 1 => {
            let ts = 1 + r.below(6) as i64;
            row.liveness = Some(if r.chance(25) {
                LivenessInfo {
                    timestamp: ts,
                    ttl: 60,
                    expiry: NOW - 2 + r.below(6) as i32,
                }
            } else {
                LivenessInfo {
                    timestamp: ts,
                    ttl: 0,
                    expiry: 0,
                }
            });
        }
        2 => row.deletion = Some(gen_deletion(r)),
        _ => {}
    }
    for id in [1u32, 2] {
        if r.chance(50) {
            row.columns.push((id, ColumnData::Simple(gen_cell(r))));
        }
    }
    if r.chance(40) {
        let tombstone = r.chance(30).then(|| gen_deletion(r));
        let mut cells = Vec::new();
        for path in [&b"a"[..], b"b", b"c"] {
            if r.chance(50) {
                cells.push((Bytes::from_static(path), gen_cell(r)));
            }
        }
        row.columns
            .push((COMPLEX, ColumnData::Complex { tombstone, cells }));
    }
    row
}

fn gen_update(r: &mut Rng, schema: &TableSchema) -> PartitionUpdate {
    let mut u = PartitionUpdate::new(key(r.below(4)));
    match r.below(10) {
        0 => u.tombstone = Some(gen_deletion(r)),
        1 | 2 => u.range_tombstones.push(RangeTombstone {
            range: ClusteringRange {
                start: gen_bound(r),
                end: gen_bound(r),
            },
            deletion: gen_deletion(r),
        }),
        3 => {
            u.static_row = Some(Row {
                liveness: None,
                deletion: None,
                columns: vec![(STATIC, ColumnData::Simple(gen_cell(r)))],
            })
        }
        _ => {
            for _ in 0..1 + r.below(2) {
                let c = vec![component(r), component(r)];
                u.rows.push((c, gen_row(r)));
            }
            u.rows.sort_by(|a, b| schema.compare_clustering(&a.0, &b.0));
            u.rows
                .dedup_by(|a, b| schema.compare_clustering(&a.0, &b.0) == Ordering::Equal);
        }
    }
    u
}

/// The naive model.
struct Model {
    desc: bool,
    updates: Vec<PartitionUpdate>,
}

impl Model {
    /// Order key of one component: empty first, then ints; DESC flips it.
    fn component_key(&self, i: usize, b: &Bytes) -> i64 {
        let v = if b.is_empty() {
            -1000
        } else {
            i32::from_be_bytes(b[..].try_into().expect("4-byte int")) as i64
        };
        if i == 1 && self.desc {
            -v
        } else {
            v
        }
    }

    fn cmp_prefix(&self, c: &[Bytes], p: &[Bytes]) -> Ordering {
        for (i, x) in p.iter().enumerate() {
            let o = self.component_key(i, &c[i]).cmp(&self.component_key(i, x));
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    }

    fn contains(&self, r: &ClusteringRange, c: &[Bytes]) -> bool {
        let after_start = match &r.start {
            Bound::Unbounded => true,
            Bound::Inclusive(p) => self.cmp_prefix(c, p) != Ordering::Less,
            Bound::Exclusive(p) => self.cmp_prefix(c, p) == Ordering::Greater,
        };
        let before_end = match &r.end {
            Bound::Unbounded => true,
            Bound::Inclusive(p) => self.cmp_prefix(c, p) != Ordering::Greater,
            Bound::Exclusive(p) => self.cmp_prefix(c, p) == Ordering::Less,
        };
        after_start && before_end
    }

    fn order(&self, a: &[Bytes], b: &[Bytes]) -> Ordering {
        let ka: Vec<i64> = a
            .iter()
            .enumerate()
            .map(|(i, x)| self.component_key(i, x))
            .collect();
        let kb: Vec<i64> = b
            .iter()
            .enumerate()
            .map(|(i, x)| self.component_key(i, x))
            .collect();
        ka.cmp(&kb)
    }

    /// Cassandra 4.x cell winner as one lexicographic key.
    fn cell_rank(c: &Cell) -> (i64, u8, i32, Vec<u8>) {
        let class = match (&c.value, c.ttl > 0) {
            (None, _) => 2,
            (Some(_), true) => 1,
            (Some(_), false) => 0,
        };
        let ldt = if class > 0 { c.expiry } else { 0 };
        (
            c.timestamp,
            class,
            ldt,
            c.value.as_deref().unwrap_or(&[]).to_vec(),
        )
    }

    fn winner<'a>(cells: impl Iterator<Item = &'a Cell>) -> Option<&'a Cell> {
        cells.max_by(|a, b| Self::cell_rank(a).cmp(&Self::cell_rank(b)))
    }

    fn live_cell(c: &Cell, shadow_ts: i64, now: i32) -> bool {
        c.timestamp > shadow_ts && c.value.is_some() && (c.ttl == 0 || now < c.expiry)
    }

    /// The live row at clustering `c` (or the static row when `c` is None).
    fn row_at(&self, pk: &PartitionKey, c: Option<&[Bytes]>, now: i32) -> Option<Row> {
        let parts: Vec<&PartitionUpdate> = self.updates.iter().filter(|u| &u.key == pk).collect();
        let mut del_ts = i64::MIN;
        for p in &parts {
            if let Some(t) = p.tombstone {
                del_ts = del_ts.max(t.timestamp);
            }
            if let Some(c) = c {
                for rt in &p.range_tombstones {
                    if self.contains(&rt.range, c) {
                        del_ts = del_ts.max(rt.deletion.timestamp);
                    }
                }
            }
        }
        let rows: Vec<&Row> = parts
            .iter()
            .flat_map(|p| match c {
                None => p.static_row.iter().collect::<Vec<_>>(),
                Some(c) => p
                    .rows
                    .iter()
                    .filter(|(rc, _)| self.order(rc, c) == Ordering::Equal)
                    .map(|(_, r)| r)
                    .collect(),
            })
            .collect();
        for r in &rows {
            if let Some(d) = r.deletion {
                del_ts = del_ts.max(d.timestamp);
            }
        }
        let liveness = rows
            .iter()
            .filter_map(|r| r.liveness)
            .max_by_key(|l| (l.timestamp, l.ttl > 0, l.expiry))
            .filter(|l| l.timestamp > del_ts && (l.ttl == 0 || now < l.expiry));
        let mut columns = Vec::new();
        for id in 0..=COMPLEX {
            if id == COMPLEX {
                let mut tomb_ts = del_ts;
                let mut all: Vec<(&Bytes, &Cell)> = Vec::new();
                for r in &rows {
                    for (cid, d) in &r.columns {
                        if let (true, ColumnData::Complex { tombstone, cells }) = (*cid == id, d) {
                            if let Some(t) = tombstone {
                                tomb_ts = tomb_ts.max(t.timestamp);
                            }
                            all.extend(cells.iter().map(|(p, c)| (p, c)));
                        }
                    }
                }
                let mut live = Vec::new();
                for path in [&b"a"[..], b"b", b"c"] {
                    let w =
                        Self::winner(all.iter().filter(|(p, _)| &p[..] == path).map(|(_, c)| *c));
                    if let Some(w) = w.filter(|w| Self::live_cell(w, tomb_ts, now)) {
                        live.push((Bytes::from_static(path), w.clone()));
                    }
                }
                if !live.is_empty() {
                    columns.push((
                        id,
                        ColumnData::Complex {
                            tombstone: None,
                            cells: live,
                        },
                    ));
                }
            } else {
                let versions = rows.iter().flat_map(|r| {
                    r.columns.iter().filter_map(move |(cid, d)| match d {
                        ColumnData::Simple(c) if *cid == id => Some(c),
                        _ => None,
                    })
                });
                if let Some(w) = Self::winner(versions).filter(|w| Self::live_cell(w, del_ts, now))
                {
                    columns.push((id, ColumnData::Simple(w.clone())));
                }
            }
        }
        let liveness = if c.is_none() { None } else { liveness };
        (liveness.is_some() || !columns.is_empty()).then_some(Row {
            liveness,
            deletion: None,
            columns,
        })
    }

    fn read(&self, pk: &PartitionKey, cmd: &ReadCommand) -> Option<PartitionUpdate> {
        let static_row = self.row_at(pk, None, cmd.now);
        let mut clusterings: Vec<Vec<Bytes>> = self
            .updates
            .iter()
            .filter(|u| &u.key == pk)
            .flat_map(|u| u.rows.iter().map(|(c, _)| c.clone()))
            .collect();
        clusterings.sort_by(|a, b| self.order(a, b));
        clusterings.dedup_by(|a, b| self.order(a, b) == Ordering::Equal);
        if cmd.reversed {
            clusterings.reverse();
        }
        let mut rows = Vec::new();
        for c in clusterings {
            if rows.len() >= cmd.row_limit.unwrap_or(usize::MAX) {
                break;
            }
            if !cmd.ranges.iter().any(|r| self.contains(r, &c)) {
                continue;
            }
            if let Some(row) = self.row_at(pk, Some(&c), cmd.now) {
                rows.push((c, row));
            }
        }
        if rows.is_empty() && static_row.is_none() {
            return None;
        }
        Some(PartitionUpdate {
            key: pk.clone(),
            tombstone: None,
            static_row,
            range_tombstones: vec![],
            rows,
        })
    }
}

fn gen_command(r: &mut Rng) -> ReadCommand {
    let ranges = match r.below(5) {
        0 => vec![],
        1 => vec![ClusteringRange::full()],
        2 => {
            let x = r.below(4) as i32 - 1;
            let y = x + 1 + r.below(2) as i32;
            vec![
                ClusteringRange {
                    start: Bound::Unbounded,
                    end: if r.chance(50) {
                        Bound::Inclusive(vec![int(x)])
                    } else {
                        Bound::Exclusive(vec![int(x)])
                    },
                },
                ClusteringRange {
                    start: if r.chance(50) {
                        Bound::Inclusive(vec![int(y)])
                    } else {
                        Bound::Exclusive(vec![int(y)])
                    },
                    end: Bound::Unbounded,
                },
            ]
        }
        _ => vec![ClusteringRange {
            start: gen_bound(r),
            end: gen_bound(r),
        }],
    };
    ReadCommand {
        ranges,
        reversed: r.chance(30),
        row_limit: r.chance(30).then(|| 1 + r.below(4) as usize),
        now: NOW - 3 + r.below(8) as i32,
    }
}

fn run(factory: &dyn ReaderFactory, seed: u64) {
    run_rounds(factory, seed, 150);
}

fn run_rounds(factory: &dyn ReaderFactory, seed: u64, rounds: usize) {
    let mut r = Rng(seed);
    for round in 0..rounds {
        let desc = r.chance(50);
        let schema = Arc::new(TableSchema::new(
            [1; 16],
            vec![
                ClusteringColumn {
                    ty: KeyType::Int,
                    reversed: false,
                },
                ClusteringColumn {
                    ty: KeyType::Int,
                    reversed: desc,
                },
            ],
            0,
        ));
        let n = 1 + r.below(40);
        let updates: Vec<PartitionUpdate> = (0..n).map(|_| gen_update(&mut r, &schema)).collect();
        let model = Model {
            desc,
            updates: updates.clone(),
        };
        let reader = factory.build(schema.clone(), &updates);
        for _ in 0..20 {
            let cmd = gen_command(&mut r);
            let k = key(r.below(4));
            let got = reader.read(&k, &cmd);
            let want = model.read(&k, &cmd);
            assert_eq!(
                got, want,
                "seed {seed} round {round}: read {k:?} with {cmd:?}\nupdates: {updates:#?}"
            );
        }
        let cmd = gen_command(&mut r);
        let limit = 1 + r.below(4) as usize;
        let got = reader.scan(&TokenRange::full(), &cmd, limit);
        let mut want = Vec::new();
        let mut keys: Vec<PartitionKey> = (0..4).map(key).collect();
        keys.sort_by(|a, b| (a.token, &a.key).cmp(&(b.token, &b.key)));
        for k in keys {
            if want.len() < limit {
                want.extend(model.read(&k, &cmd));
            }
        }
        assert_eq!(got, want, "seed {seed} round {round}: scan with {cmd:?}");
    }
}

#[test]
fn database_matches_model() {
    for seed in 1u64..=8 {
        run(&DatabaseFactory, seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    }
}

#[test]
fn merged_memtables_match_model() {
    for seed in 1u64..=8 {
        run(
            &MergedMemtablesFactory,
            seed.wrapping_mul(0xc2b2_ae3d_27d4_eb4f),
        );
    }
}

#[test]
fn sstable_matches_model() {
    for seed in 1u64..=3 {
        run(&SSTableFactory, seed.wrapping_mul(0x1656_67b1_9e37_79f9));
    }
}

#[test]
fn memtable_and_sstables_match_model() {
    for seed in 1u64..=3 {
        run(
            &MemtableAndSSTablesFactory,
            seed.wrapping_mul(0x27d4_eb2f_1656_67c5),
        );
    }
}

/// Random flush / compaction interleavings (size-tiered with a low
/// threshold, and leveled with tiny SSTables so outputs split) against the
/// model. Compactions run at a "now" before any TTL expires and before any
/// tombstone is purgeable.
#[test]
fn flushes_and_compactions_match_model() {
    let strategies = [
        CompactionStrategy::SizeTiered {
            min_threshold: 2,
            max_threshold: 4,
        },
        CompactionStrategy::Leveled {
            sstable_size_bytes: 200,
            fanout: 2,
        },
    ];
    // Every build fsyncs real files: fewer, still varied, rounds.
    for seed in 1u64..=3 {
        for s in &strategies {
            let f = FlushingDatabaseFactory {
                seed,
                compaction: s.clone(),
                compact_now: NOW - 100,
            };
            run_rounds(&f, seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x55, 40);
        }
    }
}

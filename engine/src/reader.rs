//! Readers: anything that holds partitions (memtables now, SSTables later)
//! is a [`MutationSource`] returning *raw* content — data and tombstones —
//! for a partition slice. [`read_merged`] and [`scan_merged`] reconcile raw
//! content from several sources and turn it into live results, so every
//! source only has to answer "what do you hold for this slice".

use std::cmp::Ordering;
use std::iter::Peekable;

use crate::error::EngineError;
use crate::mutation::{ClusteringRange, PartitionKey, PartitionUpdate};
use crate::read::{to_live, ReadCommand, TokenRange};
use crate::reconcile::apply_update;
use crate::schema::TableSchema;

/// A source of partition content (Scylla's `mutation_source`).
pub trait MutationSource {
    /// Raw content of one partition restricted to `ranges`: the partition
    /// tombstone, the static row, every range tombstone intersecting the
    /// ranges and the rows inside them, in clustering order. `None` if the
    /// source holds nothing for the partition. Errors are storage failures
    /// (e.g. a corrupt SSTable block), never "not found".
    fn read_raw(
        &self,
        key: &PartitionKey,
        ranges: &[ClusteringRange],
    ) -> Result<Option<PartitionUpdate>, EngineError>;

    /// Raw content of every partition in `range`, in (token, key) order,
    /// each restricted to `ranges` as in [`MutationSource::read_raw`]. An
    /// error item ends the scan.
    fn scan_raw<'a>(
        &'a self,
        range: &'a TokenRange,
        ranges: &'a [ClusteringRange],
    ) -> Box<dyn Iterator<Item = Result<PartitionUpdate, EngineError>> + 'a>;
}

/// Merges several raw versions of one partition.
fn merge_raw(
    schema: &TableSchema,
    parts: impl IntoIterator<Item = PartitionUpdate>,
) -> Option<PartitionUpdate> {
    let mut merged: Option<PartitionUpdate> = None;
    for p in parts {
        match &mut merged {
            None => merged = Some(p),
            Some(m) => apply_update(schema, m, &p),
        }
    }
    merged
}

/// Reads one partition from all `sources`, reconciled, live data only.
pub fn read_merged(
    schema: &TableSchema,
    sources: &[&dyn MutationSource],
    key: &PartitionKey,
    cmd: &ReadCommand,
) -> Result<Option<PartitionUpdate>, EngineError> {
    let mut parts = Vec::with_capacity(sources.len());
    for s in sources {
        parts.extend(s.read_raw(key, &cmd.ranges)?);
    }
    Ok(merge_raw(schema, parts).and_then(|raw| to_live(schema, &raw, cmd)))
}

/// Reads one partition's raw content (tombstones kept) merged from all
/// `sources`.
pub fn read_merged_raw(
    schema: &TableSchema,
    sources: &[&dyn MutationSource],
    key: &PartitionKey,
    ranges: &[ClusteringRange],
) -> Result<Option<PartitionUpdate>, EngineError> {
    let mut parts = Vec::with_capacity(sources.len());
    for s in sources {
        parts.extend(s.read_raw(key, ranges)?);
    }
    Ok(merge_raw(schema, parts))
}

fn position(p: &PartitionUpdate) -> (i64, &[u8]) {
    (p.key.token, &p.key.key[..])
}

/// Scans `range` across all `sources` in (token, key) order, reconciled,
/// live data only, skipping partitions with nothing live; stops after
/// `partition_limit` partitions.
pub fn scan_merged(
    schema: &TableSchema,
    sources: &[&dyn MutationSource],
    range: &TokenRange,
    cmd: &ReadCommand,
    partition_limit: usize,
) -> Result<Vec<PartitionUpdate>, EngineError> {
    let mut merger = RawMerger::new(sources, range, &cmd.ranges);
    let mut out = Vec::new();
    while out.len() < partition_limit {
        let Some(raw) = merger.next_partition(schema)? else {
            break;
        };
        if let Some(live) = to_live(schema, &raw, cmd) {
            out.push(live);
        }
    }
    Ok(out)
}

type RawIter<'a> = Box<dyn Iterator<Item = Result<PartitionUpdate, EngineError>> + 'a>;

/// A k-way merge of several sources' raw scans: yields each partition
/// once, with the raw content of all sources reconciled (tombstones kept).
pub struct RawMerger<'a> {
    iters: Vec<Peekable<RawIter<'a>>>,
}

impl<'a> RawMerger<'a> {
    /// Starts scans of `range` over every source.
    pub fn new(
        sources: &[&'a dyn MutationSource],
        range: &'a TokenRange,
        ranges: &'a [ClusteringRange],
    ) -> Self {
        RawMerger {
            iters: sources
                .iter()
                .map(|s| s.scan_raw(range, ranges).peekable())
                .collect(),
        }
    }

    /// The next partition in (token, key) order, merged; `None` at the end.
    pub fn next_partition(
        &mut self,
        schema: &TableSchema,
    ) -> Result<Option<PartitionUpdate>, EngineError> {
        let iters = &mut self.iters;
        // The smallest head position across sources.
        let mut min: Option<(i64, Vec<u8>)> = None;
        for it in iters.iter_mut() {
            if let Some(Err(_)) = it.peek() {
                return Err(it.next().expect("peeked").expect_err("peeked an error"));
            }
            if let Some(Ok(p)) = it.peek() {
                let pos = position(p);
                let smaller = match &min {
                    None => true,
                    Some((t, k)) => pos.cmp(&(*t, &k[..])) == Ordering::Less,
                };
                if smaller {
                    min = Some((pos.0, pos.1.to_vec()));
                }
            }
        }
        let Some((token, key)) = min else {
            return Ok(None);
        };
        let mut parts = Vec::new();
        for it in iters.iter_mut() {
            if it
                .peek()
                .is_some_and(|p| p.as_ref().is_ok_and(|p| position(p) == (token, &key[..])))
            {
                parts.push(it.next().expect("peeked")?);
            }
        }
        Ok(merge_raw(schema, parts))
    }
}

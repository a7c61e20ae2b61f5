//! Readers: anything that holds partitions (memtables now, SSTables later)
//! is a [`MutationSource`] returning *raw* content — data and tombstones —
//! for a partition slice. [`read_merged`] and [`scan_merged`] reconcile raw
//! content from several sources and turn it into live results, so every
//! source only has to answer "what do you hold for this slice".

use std::cmp::Ordering;
use std::iter::Peekable;

use crate::mutation::{ClusteringRange, PartitionKey, PartitionUpdate};
use crate::read::{to_live, ReadCommand, TokenRange};
use crate::reconcile::apply_update;
use crate::schema::TableSchema;

/// A source of partition content (Scylla's `mutation_source`).
pub trait MutationSource {
    /// Raw content of one partition restricted to `ranges`: the partition
    /// tombstone, the static row, every range tombstone intersecting the
    /// ranges and the rows inside them, in clustering order. `None` if the
    /// source holds nothing for the partition.
    fn read_raw(&self, key: &PartitionKey, ranges: &[ClusteringRange]) -> Option<PartitionUpdate>;

    /// Raw content of every partition in `range`, in (token, key) order,
    /// each restricted to `ranges` as in [`MutationSource::read_raw`].
    fn scan_raw<'a>(
        &'a self,
        range: &'a TokenRange,
        ranges: &'a [ClusteringRange],
    ) -> Box<dyn Iterator<Item = PartitionUpdate> + 'a>;
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
) -> Option<PartitionUpdate> {
    let raw = merge_raw(
        schema,
        sources.iter().filter_map(|s| s.read_raw(key, &cmd.ranges)),
    )?;
    to_live(schema, &raw, cmd)
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
) -> Vec<PartitionUpdate> {
    let mut iters: Vec<Peekable<Box<dyn Iterator<Item = PartitionUpdate> + '_>>> = sources
        .iter()
        .map(|s| s.scan_raw(range, &cmd.ranges).peekable())
        .collect();
    let mut out = Vec::new();
    while out.len() < partition_limit {
        // The smallest head position across sources.
        let mut min: Option<(i64, Vec<u8>)> = None;
        for it in iters.iter_mut() {
            if let Some(p) = it.peek() {
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
        let Some((token, key)) = min else { break };
        let mut parts = Vec::new();
        for it in iters.iter_mut() {
            if it.peek().is_some_and(|p| position(p) == (token, &key[..])) {
                parts.extend(it.next());
            }
        }
        if let Some(live) = merge_raw(schema, parts).and_then(|raw| to_live(schema, &raw, cmd)) {
            out.push(live);
        }
    }
    out
}

//! Index lookups across the shards of this node.

use std::rc::Rc;

use bytes::Bytes;
use engine::mutation::{Clustering, PartitionKey, PartitionUpdate, Row};
use engine::read::{ReadCommand, TokenRange};
use proto::consistency::Consistency;
use proto::error::ErrorResponse;

use super::{IndexLookup, IndexPage, IndexPosition, LocalIndex};
use crate::schema::KeyspaceMetadata;
use crate::service::storage_proxy::StorageProxy;

/// A merged answer of every shard.
#[derive(Debug, Default)]
pub struct IndexScan {
    /// Matching base rows in (token, key, clustering) order.
    pub parts: Vec<PartitionUpdate>,
    /// No shard has anything after these rows.
    pub exhausted: bool,
}

impl StorageProxy {
    /// Replica path: an index lookup on this shard.
    #[allow(clippy::too_many_arguments)]
    pub fn replica_index_lookup(
        &self,
        idx: &LocalIndex,
        value: &Bytes,
        range: &TokenRange,
        after: Option<&IndexPosition>,
        cmd: &ReadCommand,
        limit: usize,
    ) -> Result<IndexPage, ErrorResponse> {
        self.stats.replica_ops.set(self.stats.replica_ops.get() + 1);
        let mut db = self.db.borrow_mut();
        let Some(base_schema) = db.table(&idx.base).map(|cf| cf.schema().clone()) else {
            return Err(ErrorResponse::server(format!(
                "index {}: base table missing on this shard",
                idx.name
            )));
        };
        if !db.has_table(&idx.table_id) {
            return Err(ErrorResponse::server(format!(
                "index {}: index table missing on this shard",
                idx.name
            )));
        }
        let q = IndexLookup {
            idx,
            base_schema: &base_schema,
            value,
            range,
            after,
            cmd,
            limit,
        };
        super::lookup(&mut db, &self.indexes, &q)
            .map_err(|e| ErrorResponse::server(format!("index {} lookup: {e}", idx.name)))
    }

    /// Index lookup on every shard of this node, merged in ring order: up to
    /// `limit` base rows after `after` whose indexed column holds `value`.
    #[allow(clippy::too_many_arguments)]
    pub async fn index_scan(
        &self,
        ks: &KeyspaceMetadata,
        idx: &LocalIndex,
        base_schema: &engine::schema::TableSchema,
        value: &Bytes,
        range: &TokenRange,
        after: Option<&IndexPosition>,
        cmd: &ReadCommand,
        limit: usize,
        cl: Consistency,
    ) -> Result<IndexScan, ErrorResponse> {
        self.check_read(ks, cl)?;
        let shards = self
            .router
            .as_ref()
            .map(|r| (r.shard_id(), r.shard_count()))
            .filter(|(_, n)| *n > 1);
        let mut pages = Vec::new();
        match shards {
            None => pages.push(self.replica_index_lookup(idx, value, range, after, cmd, limit)?),
            Some((me, n)) => {
                for shard in 0..n {
                    if shard == me {
                        pages
                            .push(self.replica_index_lookup(idx, value, range, after, cmd, limit)?);
                        continue;
                    }
                    let (i, v, r, a, c) = (
                        idx.clone(),
                        value.clone(),
                        range.clone(),
                        after.cloned(),
                        cmd.clone(),
                    );
                    let page = self
                        .on_shard(shard, move |p: Rc<StorageProxy>| {
                            Box::pin(async move {
                                p.replica_index_lookup(&i, &v, &r, a.as_ref(), &c, limit)
                            })
                        })
                        .await?;
                    pages.push(page);
                }
            }
        }
        Ok(merge_pages(base_schema, pages))
    }
}

/// Merges shards' pages: rows are safe to return up to the smallest last
/// row of a shard that has more (rows past it are fetched again later).
pub fn merge_pages(schema: &engine::schema::TableSchema, pages: Vec<IndexPage>) -> IndexScan {
    type Flat = (PartitionKey, Option<Row>, Clustering, Row);
    let mut bound: Option<IndexPosition> = None;
    let mut exhausted = true;
    let mut rows: Vec<Flat> = Vec::new();
    for page in pages {
        if !page.exhausted {
            exhausted = false;
            if let Some(last) = page.parts.last() {
                if let Some((ck, _)) = last.rows.last() {
                    let pos = IndexPosition {
                        key: last.key.clone(),
                        clustering: Some(ck.clone()),
                    };
                    let smaller = match &bound {
                        None => true,
                        Some(b) => b.cmp_row(schema, &last.key, ck).is_gt(),
                    };
                    if smaller {
                        bound = Some(pos);
                    }
                }
            }
        }
        for p in page.parts {
            for (ck, row) in p.rows {
                rows.push((p.key.clone(), p.static_row.clone(), ck, row));
            }
        }
    }
    rows.sort_by(|a, b| {
        (a.0.token, &a.0.key)
            .cmp(&(b.0.token, &b.0.key))
            .then_with(|| schema.compare_clustering(&a.2, &b.2))
    });
    if let Some(b) = &bound {
        rows.retain(|(k, _, ck, _)| !b.cmp_row(schema, k, ck).is_lt());
    }
    let mut parts: Vec<PartitionUpdate> = Vec::new();
    for (key, static_row, ck, row) in rows {
        match parts.last_mut() {
            Some(p) if p.key == key => p.rows.push((ck, row)),
            _ => {
                let mut p = PartitionUpdate::new(key);
                p.static_row = static_row;
                p.rows.push((ck, row));
                parts.push(p);
            }
        }
    }
    IndexScan { parts, exhausted }
}

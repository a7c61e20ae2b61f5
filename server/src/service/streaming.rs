//! Streaming: moving the data of token ranges between nodes when a node
//! joins (bootstrap) or leaves (decommission), is rebuilt (a new
//! datacenter), is removed (`removenode`: [`relay_range`] from a surviving
//! replica to a new one) and when repair synchronises replicas
//! (`fetch_page`, `send_page`). Cassandra's `streaming` package,
//! reduced to what these need.
//!
//! Everything travels as `Verb::StreamReq` requests answered by
//! `Verb::StreamRsp`; the first payload byte names the message
//! (`docs/internode-protocol.md`):
//!
//! - `FETCH` (a joining node pulls): `table id, start, end, limit` — the
//!   source answers with up to `limit` raw partitions (tombstones kept) of
//!   that token range from all of its shards, in ring order. The caller
//!   pages on by restarting after the last key it got.
//! - `APPLY` (a leaving node pushes): `table id, partitions` — the receiver
//!   applies each partition as a mutation through its normal replica write
//!   path (commitlog, then memtable, on the owning shard).
//!
//! Both directions move at most [`PAGE_PARTITIONS`] partitions per message
//! and wait for the answer before the next one, so a stream holds one page
//! in memory on each side. Streamed data keeps its write timestamps:
//! applying it twice, or after a newer write, changes nothing.

use std::net::IpAddr;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use engine::mutation::{Mutation, PartitionUpdate, TableId};
use engine::read::{ReadCommand, ScanBound, TokenRange};

use super::cluster::{
    decode_partitions, encode_partitions, get_scan_bound, handler, put_scan_bound, table_id,
    unstatus, ClusterServices, Cur,
};
use crate::net::{MessagingService, Verb};
use crate::node::services;
use crate::shard::ShardContext;

/// Partitions per streamed page.
pub const PAGE_PARTITIONS: usize = 128;
/// How long one page may take to be served or applied.
pub const PAGE_TIMEOUT: Duration = Duration::from_secs(60);

const FETCH: u8 = 0;
const APPLY: u8 = 1;

/// Registers the streaming verbs (called from the cluster's verb setup).
pub fn register_verbs(ms: &Rc<MessagingService>, ctx: &ShardContext) {
    let c = ctx.clone();
    ms.register(
        Verb::StreamReq,
        handler(move |from, payload| {
            let ctx = c.clone();
            async move {
                let mut cur = Cur {
                    b: &payload,
                    pos: 0,
                };
                match cur.u8()? {
                    FETCH => {
                        let table = table_id(&mut cur)?;
                        let start = get_scan_bound(&mut cur)?;
                        let end = get_scan_bound(&mut cur)?;
                        let limit = (cur.u32()? as usize).clamp(1, 4 * PAGE_PARTITIONS);
                        let parts =
                            read_page(&ctx, table, &TokenRange { start, end }, limit).await?;
                        Ok(encode_partitions(&parts))
                    }
                    APPLY => {
                        let table = table_id(&mut cur)?;
                        let parts = decode_partitions(payload.slice(cur.pos..))?;
                        log::debug!("applying {} streamed partitions from {from}", parts.len());
                        apply_page(&ctx, table, parts).await?;
                        Ok(Bytes::new())
                    }
                    k => Err(format!("unknown stream message {k}")),
                }
            }
        }),
    );
}

/// Up to `limit` raw partitions of `range` held by this node.
pub(crate) async fn read_page(
    ctx: &ShardContext,
    table: TableId,
    range: &TokenRange,
    limit: usize,
) -> Result<Vec<PartitionUpdate>, String> {
    let s = services(ctx).map_err(|e| e.message)?;
    let cmd = ReadCommand {
        ranges: vec![engine::mutation::ClusteringRange::full()],
        reversed: false,
        row_limit: None,
        now: (super::client_state::now_micros() / 1_000_000) as i32,
    };
    s.proxy
        .scan_raw_all_shards(table, range, &cmd, limit)
        .await
        .map_err(|e| e.message)
}

/// Applies streamed partitions through the replica write path.
pub(crate) async fn apply_page(
    ctx: &ShardContext,
    table: TableId,
    parts: Vec<PartitionUpdate>,
) -> Result<(), String> {
    let s = services(ctx).map_err(|e| e.message)?;
    if s.migrations.schema().table_by_id(&table).is_none() {
        return Err("unknown table".into());
    }
    for update in parts {
        s.proxy
            .apply_routed(Mutation { table, update })
            .await
            .map_err(|e| e.message)?;
    }
    Ok(())
}

/// The token ranges `(start, end]` covers (two when it wraps; the whole
/// ring when `start == end`).
pub fn token_ranges(start: i64, end: i64) -> Vec<TokenRange> {
    let after = ScanBound::Token {
        token: start,
        inclusive: false,
    };
    let upto = ScanBound::Token {
        token: end,
        inclusive: true,
    };
    if start < end {
        vec![TokenRange {
            start: after,
            end: upto,
        }]
    } else {
        vec![
            TokenRange {
                start: after,
                end: ScanBound::Unbounded,
            },
            TokenRange {
                start: ScanBound::Unbounded,
                end: upto,
            },
        ]
    }
}

pub(crate) fn resume_after(range: &mut TokenRange, last: &PartitionUpdate) {
    range.start = ScanBound::Key {
        token: last.key.token,
        key: last.key.key.clone(),
        inclusive: false,
    };
}

/// Pulls every partition of `table` in `range` from `from` and applies it
/// here. Returns the number of partitions received.
pub async fn fetch_range(
    c: &ClusterServices,
    from: IpAddr,
    table: TableId,
    mut range: TokenRange,
) -> Result<u64, String> {
    let mut total = 0;
    loop {
        let parts = fetch_page(c, from, table, &range, PAGE_PARTITIONS).await?;
        let n = parts.len();
        if let Some(last) = parts.last() {
            resume_after(&mut range, last);
        }
        total += n as u64;
        apply_page(&c.ctx, table, parts).await?;
        if n < PAGE_PARTITIONS {
            return Ok(total);
        }
    }
}

/// Pushes every partition of `table` in `range` held here to `to`.
/// Returns the number of partitions sent.
pub async fn push_range(
    c: &ClusterServices,
    to: IpAddr,
    table: TableId,
    mut range: TokenRange,
) -> Result<u64, String> {
    let mut total = 0;
    loop {
        let parts = read_page(&c.ctx, table, &range, PAGE_PARTITIONS).await?;
        let n = parts.len();
        if let Some(last) = parts.last() {
            resume_after(&mut range, last);
        }
        if n > 0 {
            let mut out = vec![APPLY];
            out.extend_from_slice(&table);
            out.extend_from_slice(&encode_partitions(&parts));
            let reply =
                c.ms.send_request(to, Verb::StreamReq, Bytes::from(out), PAGE_TIMEOUT)
                    .await
                    .map_err(|e| format!("streaming to {to}: {e}"))?;
            unstatus(reply).map_err(|e| format!("{to}: {e}"))?;
            total += n as u64;
        }
        if n < PAGE_PARTITIONS {
            return Ok(total);
        }
    }
}

/// Up to `limit` raw partitions of `table` in `range` held by `from`
/// (this node when `from` is its own address), in ring order.
pub(crate) async fn fetch_page(
    c: &ClusterServices,
    from: IpAddr,
    table: TableId,
    range: &TokenRange,
    limit: usize,
) -> Result<Vec<PartitionUpdate>, String> {
    if from == c.local.broadcast_address {
        return read_page(&c.ctx, table, range, limit).await;
    }
    let mut out = vec![FETCH];
    out.extend_from_slice(&table);
    put_scan_bound(&mut out, &range.start);
    put_scan_bound(&mut out, &range.end);
    out.extend_from_slice(&(limit as u32).to_be_bytes());
    let reply =
        c.ms.send_request(from, Verb::StreamReq, Bytes::from(out), PAGE_TIMEOUT)
            .await
            .map_err(|e| format!("streaming from {from}: {e}"))?;
    decode_partitions(unstatus(reply).map_err(|e| format!("{from}: {e}"))?)
}

/// Applies partitions on `to` (this node when it is its own address)
/// through its replica write path.
pub(crate) async fn send_page(
    c: &ClusterServices,
    to: IpAddr,
    table: TableId,
    parts: Vec<PartitionUpdate>,
) -> Result<(), String> {
    if parts.is_empty() {
        return Ok(());
    }
    if to == c.local.broadcast_address {
        return apply_page(&c.ctx, table, parts).await;
    }
    let mut out = vec![APPLY];
    out.extend_from_slice(&table);
    out.extend_from_slice(&encode_partitions(&parts));
    let reply =
        c.ms.send_request(to, Verb::StreamReq, Bytes::from(out), PAGE_TIMEOUT)
            .await
            .map_err(|e| format!("streaming to {to}: {e}"))?;
    unstatus(reply).map_err(|e| format!("{to}: {e}"))?;
    Ok(())
}

/// Streams every partition of `table` in `range` from `from` to `to`,
/// page by page through this node (either may be this node): how
/// `removenode` restores the replicas of a dead node's ranges. Returns the
/// number of partitions moved.
pub async fn relay_range(
    c: &ClusterServices,
    from: IpAddr,
    to: IpAddr,
    table: TableId,
    mut range: TokenRange,
) -> Result<u64, String> {
    let mut total = 0;
    loop {
        let parts = fetch_page(c, from, table, &range, PAGE_PARTITIONS).await?;
        let n = parts.len();
        if let Some(last) = parts.last() {
            resume_after(&mut range, last);
        }
        total += n as u64;
        send_page(c, to, table, parts).await?;
        if n < PAGE_PARTITIONS {
            return Ok(total);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_wrap_around_the_ring() {
        assert_eq!(token_ranges(-5, 10).len(), 1);
        let r = &token_ranges(-5, 10)[0];
        assert!(r.admits_start(-4, b"") && !r.admits_start(-5, b""));
        let w = token_ranges(10, -5);
        assert_eq!(w.len(), 2);
        assert!(w[0].admits_start(i64::MAX, b"") && !w[0].admits_start(10, b""));
        assert_eq!(w[1].start, ScanBound::Unbounded);
        assert_eq!(token_ranges(7, 7).len(), 2);
    }
}

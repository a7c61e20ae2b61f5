//! Scylla's extensions to the native protocol (Scylla's
//! `docs/dev/protocol-extensions.md`): SUPPORTED keys through which
//! shard-aware drivers learn the node's sharding, and the sharding
//! algorithm they apply.

/// SUPPORTED key: the zero-based shard serving this connection.
pub const SCYLLA_SHARD: &str = "SCYLLA_SHARD";
/// SUPPORTED key: number of shards on the node.
pub const SCYLLA_NR_SHARDS: &str = "SCYLLA_NR_SHARDS";
/// SUPPORTED key: the partitioner's class name.
pub const SCYLLA_PARTITIONER: &str = "SCYLLA_PARTITIONER";
/// SUPPORTED key: the token-to-shard algorithm's name.
pub const SCYLLA_SHARDING_ALGORITHM: &str = "SCYLLA_SHARDING_ALGORITHM";
/// SUPPORTED key: the algorithm's `ignore_msb` parameter.
pub const SCYLLA_SHARDING_IGNORE_MSB: &str = "SCYLLA_SHARDING_IGNORE_MSB";
/// SUPPORTED key: the shard-aware port (client port % shards = shard).
pub const SCYLLA_SHARD_AWARE_PORT: &str = "SCYLLA_SHARD_AWARE_PORT";
/// SUPPORTED key: the shard-aware TLS port.
pub const SCYLLA_SHARD_AWARE_PORT_SSL: &str = "SCYLLA_SHARD_AWARE_PORT_SSL";
/// SUPPORTED key: prepared metadata flags mark LWT statements.
pub const SCYLLA_LWT_ADD_METADATA_MARK: &str = "SCYLLA_LWT_ADD_METADATA_MARK";
/// Parameter of [`SCYLLA_LWT_ADD_METADATA_MARK`]: the flag bit mask.
pub const LWT_OPTIMIZATION_META_BIT_MASK: &str = "LWT_OPTIMIZATION_META_BIT_MASK";
/// SUPPORTED key: the rate-limit error extension.
pub const SCYLLA_RATE_LIMIT_ERROR: &str = "SCYLLA_RATE_LIMIT_ERROR";
/// SUPPORTED key: the node's host id, as a UUID string.
pub const SCYLLA_HOST_ID: &str = "SCYLLA_HOST_ID";
/// SUPPORTED key: the tablets routing extension.
pub const TABLETS_ROUTING_V1: &str = "TABLETS_ROUTING_V1";

/// The only sharding algorithm defined.
pub const BIASED_TOKEN_ROUND_ROBIN: &str = "biased-token-round-robin";
/// Cassandra's Murmur3 partitioner class.
pub const MURMUR3_PARTITIONER: &str = "org.apache.cassandra.dht.Murmur3Partitioner";
/// Scylla's default `murmur3_partitioner_ignore_msb_bits`.
pub const DEFAULT_IGNORE_MSB: u32 = 12;
/// Scylla's default shard-aware port.
pub const DEFAULT_SHARD_AWARE_PORT: u16 = 19042;

/// The node's sharding, as advertised in SUPPORTED.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardingInfo {
    /// The shard serving the connection.
    pub shard: u32,
    /// Shards on the node (at least 1).
    pub nr_shards: u32,
    /// The algorithm's `ignore_msb`.
    pub ignore_msb: u32,
    /// The shard-aware port, if listening.
    pub shard_aware_port: Option<u16>,
}

impl ShardingInfo {
    /// The SUPPORTED entries for this sharding, to append to the server's
    /// other options (`CQL_VERSION`, `COMPRESSION`...).
    pub fn supported_options(&self) -> Vec<(String, Vec<String>)> {
        let mut v = vec![
            (SCYLLA_SHARD.to_string(), vec![self.shard.to_string()]),
            (
                SCYLLA_NR_SHARDS.to_string(),
                vec![self.nr_shards.to_string()],
            ),
            (
                SCYLLA_PARTITIONER.to_string(),
                vec![MURMUR3_PARTITIONER.to_string()],
            ),
            (
                SCYLLA_SHARDING_ALGORITHM.to_string(),
                vec![BIASED_TOKEN_ROUND_ROBIN.to_string()],
            ),
            (
                SCYLLA_SHARDING_IGNORE_MSB.to_string(),
                vec![self.ignore_msb.to_string()],
            ),
        ];
        if let Some(port) = self.shard_aware_port {
            v.push((SCYLLA_SHARD_AWARE_PORT.to_string(), vec![port.to_string()]));
        }
        v
    }

    /// The shard owning `token` (see [`shard_of_token`]).
    pub fn shard_of(&self, token: i64) -> u32 {
        shard_of_token(token, self.nr_shards, self.ignore_msb)
    }
}

/// `biased-token-round-robin`: bias the token to unsigned, drop the
/// `ignore_msb` top bits, and scale into `[0, nr_shards)` by a 64x64->128
/// multiplication.
pub fn shard_of_token(token: i64, nr_shards: u32, ignore_msb: u32) -> u32 {
    if nr_shards <= 1 {
        return 0;
    }
    let biased = (token as u64).wrapping_add(1 << 63);
    let shifted = biased.checked_shl(ignore_msb).unwrap_or(0);
    ((u128::from(shifted) * u128::from(nr_shards)) >> 64) as u32
}

/// The shard a connection to the shard-aware port belongs to.
pub fn shard_for_client_port(client_port: u16, nr_shards: u32) -> u32 {
    if nr_shards == 0 {
        return 0;
    }
    u32::from(client_port) % nr_shards
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Java reference from Scylla's document, transliterated.
    fn java_reference(token: i64, nr_shards: u32, ignore_msb: u32) -> u32 {
        let mut token = token.wrapping_add(i64::MIN);
        token = token.wrapping_shl(ignore_msb);
        let tok_lo = (token as u64) & 0xffff_ffff;
        let tok_hi = ((token as u64) >> 32) & 0xffff_ffff;
        let mul1 = tok_lo.wrapping_mul(u64::from(nr_shards));
        let mul2 = tok_hi.wrapping_mul(u64::from(nr_shards));
        let sum = (mul1 >> 32).wrapping_add(mul2);
        (sum >> 32) as u32
    }

    #[test]
    fn matches_the_documented_algorithm() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let token = x as i64;
            for (n, msb) in [(2u32, 12u32), (7, 12), (12, 0), (64, 12), (3, 20)] {
                let s = shard_of_token(token, n, msb);
                assert_eq!(s, java_reference(token, n, msb));
                assert!(s < n);
            }
        }
        assert_eq!(shard_of_token(i64::MIN, 8, 12), 0);
        assert_eq!(shard_of_token(i64::MAX, 8, 0), 7);
        assert_eq!(shard_of_token(12345, 1, 12), 0);
    }

    #[test]
    fn supported_options_and_ports() {
        let info = ShardingInfo {
            shard: 1,
            nr_shards: 2,
            ignore_msb: DEFAULT_IGNORE_MSB,
            shard_aware_port: Some(DEFAULT_SHARD_AWARE_PORT),
        };
        let opts = info.supported_options();
        let get = |k: &str| {
            opts.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v[0].clone())
        };
        assert_eq!(get(SCYLLA_SHARD).as_deref(), Some("1"));
        assert_eq!(get(SCYLLA_NR_SHARDS).as_deref(), Some("2"));
        assert_eq!(
            get(SCYLLA_SHARDING_ALGORITHM).as_deref(),
            Some("biased-token-round-robin")
        );
        assert_eq!(get(SCYLLA_SHARDING_IGNORE_MSB).as_deref(), Some("12"));
        assert_eq!(get(SCYLLA_SHARD_AWARE_PORT).as_deref(), Some("19042"));
        assert_eq!(shard_for_client_port(50001, 2), 1);
        assert_eq!(shard_for_client_port(50001, 0), 0);
    }
}

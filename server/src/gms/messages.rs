//! Encoding of the gossip messages: `GossipDigestSyn`, `GossipDigestAck`,
//! `GossipDigestAck2` (big-endian; see `docs/internode-protocol.md`).
//!
//! ```text
//! address      = [u8 family 4|6][4|16 bytes]
//! string       = [u16 len][UTF-8]
//! digest       = address [i32 generation][i32 max_version]
//! state        = [i32 generation][i32 heartbeat_version][u16 n] n × ([u8 key][i32 version] string)
//! Syn          = string cluster_name, string partitioner, [u32 n] n × digest
//! Ack          = [u32 n] n × digest, [u32 m] m × (address state)
//! Ack2         = [u32 m] m × (address state)
//! ```
//!
//! Decoding never panics and never allocates more than the input could
//! hold; application states with unknown keys are skipped.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::Bytes;

use super::state::{ApplicationState, EndpointState, HeartBeatState, VersionedValue};

/// Malformed gossip message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub &'static str);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed gossip message: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

/// Cassandra's `GossipDigest`: what a node knows of one endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GossipDigest {
    /// The endpoint.
    pub endpoint: IpAddr,
    /// Its heartbeat generation.
    pub generation: i32,
    /// The largest version known.
    pub max_version: i32,
}

/// `GossipDigestSyn`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GossipDigestSyn {
    /// The sender's cluster name (mismatches are ignored).
    pub cluster_name: String,
    /// The sender's partitioner.
    pub partitioner: String,
    /// The sender's digests.
    pub digests: Vec<GossipDigest>,
}

/// `GossipDigestAck`: states the SYN's sender lacks, and digests of states
/// the receiver wants.
#[derive(Debug, Clone, Default)]
pub struct GossipDigestAck {
    /// Requested: send states newer than `max_version`.
    pub digests: Vec<GossipDigest>,
    /// States for the SYN's sender.
    pub states: Vec<(IpAddr, EndpointState)>,
}

/// `GossipDigestAck2`: the states an ACK asked for.
#[derive(Debug, Clone, Default)]
pub struct GossipDigestAck2 {
    /// The states.
    pub states: Vec<(IpAddr, EndpointState)>,
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.0.len() < n {
            return Err(DecodeError("truncated"));
        }
        let (h, t) = self.0.split_at(n);
        self.0 = t;
        Ok(h)
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
    fn string(&mut self) -> Result<String, DecodeError> {
        let n = self.u16()? as usize;
        let b = self.take(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| DecodeError("invalid UTF-8"))
    }
    fn addr(&mut self) -> Result<IpAddr, DecodeError> {
        match self.u8()? {
            4 => {
                let b: [u8; 4] = self
                    .take(4)?
                    .try_into()
                    .map_err(|_| DecodeError("address"))?;
                Ok(IpAddr::V4(Ipv4Addr::from(b)))
            }
            6 => {
                let b: [u8; 16] = self
                    .take(16)?
                    .try_into()
                    .map_err(|_| DecodeError("address"))?;
                Ok(IpAddr::V6(Ipv6Addr::from(b)))
            }
            _ => Err(DecodeError("bad address family")),
        }
    }
    /// A count of elements each at least `min_size` bytes long.
    fn count(&mut self, min_size: usize) -> Result<usize, DecodeError> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_size) > self.0.len() {
            return Err(DecodeError("count exceeds message"));
        }
        Ok(n)
    }
    fn digest(&mut self) -> Result<GossipDigest, DecodeError> {
        Ok(GossipDigest {
            endpoint: self.addr()?,
            generation: self.i32()?,
            max_version: self.i32()?,
        })
    }
    fn state(&mut self) -> Result<EndpointState, DecodeError> {
        let heartbeat = HeartBeatState {
            generation: self.i32()?,
            version: self.i32()?,
        };
        let n = self.u16()? as usize;
        let mut states = BTreeMap::new();
        for _ in 0..n {
            let key = self.u8()?;
            let version = self.i32()?;
            let value = self.string()?;
            if let Some(k) = ApplicationState::from_u8(key) {
                states.insert(k, VersionedValue { value, version });
            }
        }
        let mut s = EndpointState::new(heartbeat);
        s.states = states;
        Ok(s)
    }
    fn states(&mut self) -> Result<Vec<(IpAddr, EndpointState)>, DecodeError> {
        let n = self.count(5 + 10)?;
        (0..n).map(|_| Ok((self.addr()?, self.state()?))).collect()
    }
    fn digests(&mut self) -> Result<Vec<GossipDigest>, DecodeError> {
        let n = self.count(5 + 8)?;
        (0..n).map(|_| self.digest()).collect()
    }
    fn finish(&self) -> Result<(), DecodeError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(DecodeError("trailing bytes"))
        }
    }
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    // Gossip strings are short; longer ones are cut at a char boundary.
    let mut end = s.len().min(u16::MAX as usize);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    out.extend_from_slice(&(end as u16).to_be_bytes());
    out.extend_from_slice(&s.as_bytes()[..end]);
}

fn put_addr(out: &mut Vec<u8>, a: IpAddr) {
    match a {
        IpAddr::V4(a) => {
            out.push(4);
            out.extend_from_slice(&a.octets());
        }
        IpAddr::V6(a) => {
            out.push(6);
            out.extend_from_slice(&a.octets());
        }
    }
}

fn put_digests(out: &mut Vec<u8>, digests: &[GossipDigest]) {
    out.extend_from_slice(&(digests.len() as u32).to_be_bytes());
    for d in digests {
        put_addr(out, d.endpoint);
        out.extend_from_slice(&d.generation.to_be_bytes());
        out.extend_from_slice(&d.max_version.to_be_bytes());
    }
}

fn put_states(out: &mut Vec<u8>, states: &[(IpAddr, EndpointState)]) {
    out.extend_from_slice(&(states.len() as u32).to_be_bytes());
    for (ip, s) in states {
        put_addr(out, *ip);
        out.extend_from_slice(&s.heartbeat.generation.to_be_bytes());
        out.extend_from_slice(&s.heartbeat.version.to_be_bytes());
        let n = s.states.len().min(u16::MAX as usize);
        out.extend_from_slice(&(n as u16).to_be_bytes());
        for (k, v) in s.states.iter().take(n) {
            out.push(*k as u8);
            out.extend_from_slice(&v.version.to_be_bytes());
            put_string(out, &v.value);
        }
    }
}

impl GossipDigestSyn {
    /// Wire bytes.
    pub fn encode(&self) -> Bytes {
        let mut out = Vec::new();
        put_string(&mut out, &self.cluster_name);
        put_string(&mut out, &self.partitioner);
        put_digests(&mut out, &self.digests);
        out.into()
    }

    /// Parses wire bytes.
    pub fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader(b);
        let m = GossipDigestSyn {
            cluster_name: r.string()?,
            partitioner: r.string()?,
            digests: r.digests()?,
        };
        r.finish()?;
        Ok(m)
    }
}

impl GossipDigestAck {
    /// Wire bytes.
    pub fn encode(&self) -> Bytes {
        let mut out = Vec::new();
        put_digests(&mut out, &self.digests);
        put_states(&mut out, &self.states);
        out.into()
    }

    /// Parses wire bytes.
    pub fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader(b);
        let m = GossipDigestAck {
            digests: r.digests()?,
            states: r.states()?,
        };
        r.finish()?;
        Ok(m)
    }
}

impl GossipDigestAck2 {
    /// Wire bytes.
    pub fn encode(&self) -> Bytes {
        let mut out = Vec::new();
        put_states(&mut out, &self.states);
        out.into()
    }

    /// Parses wire bytes.
    pub fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader(b);
        let m = GossipDigestAck2 {
            states: r.states()?,
        };
        r.finish()?;
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> EndpointState {
        let mut s = EndpointState::new(HeartBeatState {
            generation: 7,
            version: 3,
        });
        s.states.insert(
            ApplicationState::Dc,
            VersionedValue {
                value: "dc1".into(),
                version: 2,
            },
        );
        s
    }

    #[test]
    fn round_trips() {
        let d = GossipDigest {
            endpoint: "127.0.0.1".parse().unwrap(),
            generation: 5,
            max_version: 9,
        };
        let syn = GossipDigestSyn {
            cluster_name: "Test Cluster".into(),
            partitioner: "p".into(),
            digests: vec![d],
        };
        assert_eq!(GossipDigestSyn::decode(&syn.encode()).unwrap(), syn);
        let ack = GossipDigestAck {
            digests: vec![d],
            states: vec![("::1".parse().unwrap(), state())],
        };
        let back = GossipDigestAck::decode(&ack.encode()).unwrap();
        assert_eq!(back.digests, ack.digests);
        assert_eq!(back.states[0].1.snapshot(), state().snapshot());
        let ack2 = GossipDigestAck2 {
            states: ack.states.clone(),
        };
        let back = GossipDigestAck2::decode(&ack2.encode()).unwrap();
        assert_eq!(back.states[0].0, ack.states[0].0);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let syn = GossipDigestSyn {
            cluster_name: "c".into(),
            partitioner: "p".into(),
            digests: vec![],
        }
        .encode();
        for cut in 0..syn.len() {
            assert!(GossipDigestSyn::decode(&syn[..cut]).is_err());
        }
        assert!(GossipDigestAck::decode(&[0xff; 64]).is_err());
        assert!(GossipDigestAck2::decode(&[0, 0, 0, 1, 9]).is_err());
        let mut x = 0u32;
        for len in 0..200 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    (x >> 24) as u8
                })
                .collect();
            let _ = GossipDigestSyn::decode(&bytes);
            let _ = GossipDigestAck::decode(&bytes);
            let _ = GossipDigestAck2::decode(&bytes);
        }
    }
}

//! Replica placement: the replication strategy classes Cassandra 4.0 has
//! (`SimpleStrategy`, `NetworkTopologyStrategy`, `LocalStrategy`) and the
//! validation of their options, as `CREATE/ALTER KEYSPACE` apply it.
//!
//! Names, messages and rules follow Cassandra's `AbstractReplicationStrategy`,
//! `SimpleStrategy`, `NetworkTopologyStrategy`, `ReplicationFactor` and
//! `ReplicationParams`: short class names resolve to
//! `org.apache.cassandra.locator.<Name>`; `NetworkTopologyStrategy` accepts
//! only known datacenter names as options, and a `replication_factor`
//! shorthand that expands to every known datacenter; a datacenter with
//! replication factor `0` is dropped from the options.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

pub mod snitch;

/// `org.apache.cassandra.locator.SimpleStrategy`.
pub const SIMPLE_STRATEGY: &str = "org.apache.cassandra.locator.SimpleStrategy";
/// `org.apache.cassandra.locator.NetworkTopologyStrategy`.
pub const NETWORK_TOPOLOGY_STRATEGY: &str = "org.apache.cassandra.locator.NetworkTopologyStrategy";
/// `org.apache.cassandra.locator.LocalStrategy` (system keyspaces only).
pub const LOCAL_STRATEGY: &str = "org.apache.cassandra.locator.LocalStrategy";
/// The option naming a replication factor (SimpleStrategy, and the
/// NetworkTopologyStrategy shorthand).
pub const REPLICATION_FACTOR: &str = "replication_factor";

/// A Cassandra `ConfigurationException` (protocol error 0x2300).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigurationError(pub String);

impl fmt::Display for ConfigurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigurationError {}

/// The replication strategy classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StrategyClass {
    /// `SimpleStrategy`: `replication_factor` replicas walking the ring.
    Simple,
    /// `NetworkTopologyStrategy`: a replication factor per datacenter,
    /// rack-aware.
    NetworkTopology,
    /// `LocalStrategy`: the data stays on this node (system keyspaces).
    Local,
}

impl StrategyClass {
    /// Resolves a class name as Cassandra does: names without a `.` are
    /// in `org.apache.cassandra.locator`; lookup is case-sensitive.
    pub fn from_name(name: &str) -> Result<StrategyClass, ConfigurationError> {
        let full = if name.contains('.') {
            name.to_string()
        } else {
            format!("org.apache.cassandra.locator.{name}")
        };
        match full.as_str() {
            SIMPLE_STRATEGY => Ok(StrategyClass::Simple),
            NETWORK_TOPOLOGY_STRATEGY => Ok(StrategyClass::NetworkTopology),
            LOCAL_STRATEGY => Ok(StrategyClass::Local),
            _ => Err(ConfigurationError(format!(
                "Unable to find replication strategy class '{full}'"
            ))),
        }
    }

    /// The full Java class name.
    pub fn class_name(&self) -> &'static str {
        match self {
            StrategyClass::Simple => SIMPLE_STRATEGY,
            StrategyClass::NetworkTopology => NETWORK_TOPOLOGY_STRATEGY,
            StrategyClass::Local => LOCAL_STRATEGY,
        }
    }

    /// The class name without its package.
    pub fn simple_name(&self) -> &'static str {
        match self {
            StrategyClass::Simple => "SimpleStrategy",
            StrategyClass::NetworkTopology => "NetworkTopologyStrategy",
            StrategyClass::Local => "LocalStrategy",
        }
    }
}

/// A replication factor: `all` replicas of which `transient` are
/// transient (written `3` or `3/1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReplicationFactor {
    /// All replicas.
    pub all: usize,
    /// Transient replicas among them (always 0: transient replication is
    /// disabled, as by default in Cassandra 4.0).
    pub transient: usize,
}

impl ReplicationFactor {
    /// Full replicas.
    pub fn full(&self) -> usize {
        self.all - self.transient
    }
}

/// Java's `Integer.parseInt` with its error text.
fn parse_java_int(s: &str) -> Result<i64, ConfigurationError> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ConfigurationError(format!("For input string: \"{s}\"")));
    }
    s.parse::<i32>()
        .map(i64::from)
        .map_err(|_| ConfigurationError(format!("For input string: \"{s}\"")))
}

/// Parses a replication factor option value (`ReplicationFactor.fromString`
/// then `validateReplicationFactor`).
pub fn parse_replication_factor(s: &str) -> Result<ReplicationFactor, ConfigurationError> {
    if let Some((all, trans)) = s.split_once('/') {
        let all = parse_java_int(all)?;
        let trans = parse_java_int(trans)?;
        if trans != 0 {
            return Err(ConfigurationError(
                "Transient replication is disabled. Enable in cassandra.yaml to use.".to_string(),
            ));
        }
        check_non_negative(all)?;
        return Ok(ReplicationFactor {
            all: all as usize,
            transient: 0,
        });
    }
    let all = parse_java_int(s)?;
    check_non_negative(all)?;
    Ok(ReplicationFactor {
        all: all as usize,
        transient: 0,
    })
}

fn check_non_negative(rf: i64) -> Result<(), ConfigurationError> {
    if rf < 0 {
        return Err(ConfigurationError(format!(
            "Replication factor must be non-negative, found {rf}"
        )));
    }
    Ok(())
}

/// The datacenters a `NetworkTopologyStrategy` may name: the local one and
/// every one the ring knows (Cassandra's `Datacenters.getValidDatacenters`).
pub fn valid_datacenters(local_dc: &str, known: &[String]) -> BTreeSet<String> {
    let mut s: BTreeSet<String> = known.iter().cloned().collect();
    s.insert(local_dc.to_string());
    s
}

/// Builds the options of a replication map given in `CREATE`/`ALTER
/// KEYSPACE` (`ReplicationParams.fromMapWithDefaults`): resolves `class`,
/// and for `NetworkTopologyStrategy` expands `replication_factor` to every
/// valid datacenter (keeping the previous per-DC factors on ALTER, and
/// taking the previous `replication_factor` when switching from
/// SimpleStrategy with no options) and drops DCs with factor `0`.
///
/// `map` must contain `class`. Returns the class and the remaining options.
pub fn prepare_replication(
    map: &BTreeMap<String, String>,
    previous: Option<&BTreeMap<String, String>>,
    valid_dcs: &BTreeSet<String>,
) -> Result<(StrategyClass, BTreeMap<String, String>), ConfigurationError> {
    let mut options = map.clone();
    let class = options
        .remove("class")
        .ok_or_else(|| ConfigurationError("Missing replication strategy class".to_string()))?;
    let class = StrategyClass::from_name(&class)?;
    if class == StrategyClass::NetworkTopology {
        let empty = BTreeMap::new();
        let previous = previous.unwrap_or(&empty);
        let mut rf = options.remove(REPLICATION_FACTOR);
        if rf.is_none() && options.is_empty() {
            rf = previous.get(REPLICATION_FACTOR).cloned();
        } else if rf.is_some() {
            for (k, v) in previous {
                if k != REPLICATION_FACTOR {
                    options.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
        }
        if let Some(rf) = rf {
            let f = parse_replication_factor(&rf)?;
            let text = if f.transient > 0 {
                format!("{}/{}", f.all, f.transient)
            } else {
                f.all.to_string()
            };
            for dc in valid_dcs {
                options.entry(dc.clone()).or_insert_with(|| text.clone());
            }
        }
        options.retain(|_, v| v != "0");
    }
    Ok((class, options))
}

/// Validates strategy options the way instantiating the strategy in
/// Cassandra does (`AbstractReplicationStrategy.validateReplicationStrategy`).
pub fn validate_replication(
    keyspace: &str,
    class: StrategyClass,
    options: &BTreeMap<String, String>,
    valid_dcs: &BTreeSet<String>,
) -> Result<(), ConfigurationError> {
    match class {
        StrategyClass::Simple => {
            let rf = options.get(REPLICATION_FACTOR).ok_or_else(|| {
                ConfigurationError(
                    "SimpleStrategy requires a replication_factor strategy option.".to_string(),
                )
            })?;
            parse_replication_factor(rf)?;
            for key in options.keys() {
                if key != REPLICATION_FACTOR {
                    return Err(unrecognized(key, class, keyspace));
                }
            }
        }
        StrategyClass::NetworkTopology => {
            // The constructor parses every factor first.
            for (dc, v) in options {
                if dc.eq_ignore_ascii_case(REPLICATION_FACTOR) {
                    return Err(ConfigurationError(format!(
                        "{REPLICATION_FACTOR} should not appear as an option at construction time for NetworkTopologyStrategy"
                    )));
                }
                parse_replication_factor(v)?;
            }
            if options.is_empty() {
                return Err(ConfigurationError(
                    "Configuration for at least one datacenter must be present".to_string(),
                ));
            }
            for dc in options.keys() {
                if !valid_dcs.contains(dc) {
                    return Err(unrecognized(dc, class, keyspace));
                }
            }
        }
        StrategyClass::Local => {}
    }
    Ok(())
}

fn unrecognized(key: &str, class: StrategyClass, keyspace: &str) -> ConfigurationError {
    ConfigurationError(format!(
        "Unrecognized strategy option {{{key}}} passed to {} for keyspace {keyspace}",
        class.simple_name()
    ))
}

/// A keyspace's replication, resolved: what the coordinator uses to count
/// replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicationStrategy {
    /// `SimpleStrategy` with its factor.
    Simple {
        /// Replicas on the ring.
        rf: ReplicationFactor,
    },
    /// `NetworkTopologyStrategy` with a factor per datacenter.
    NetworkTopology {
        /// Replicas per datacenter.
        dc_rf: BTreeMap<String, ReplicationFactor>,
    },
    /// `LocalStrategy`: one replica, this node.
    Local,
}

impl ReplicationStrategy {
    /// Builds the strategy from a stored class name and options.
    pub fn from_options(
        class: &str,
        options: &BTreeMap<String, String>,
    ) -> Result<ReplicationStrategy, ConfigurationError> {
        Ok(match StrategyClass::from_name(class)? {
            StrategyClass::Simple => ReplicationStrategy::Simple {
                rf: parse_replication_factor(options.get(REPLICATION_FACTOR).ok_or_else(
                    || {
                        ConfigurationError(
                            "SimpleStrategy requires a replication_factor strategy option."
                                .to_string(),
                        )
                    },
                )?)?,
            },
            StrategyClass::NetworkTopology => ReplicationStrategy::NetworkTopology {
                dc_rf: options
                    .iter()
                    .map(|(dc, v)| Ok((dc.clone(), parse_replication_factor(v)?)))
                    .collect::<Result<_, ConfigurationError>>()?,
            },
            StrategyClass::Local => ReplicationStrategy::Local,
        })
    }

    /// The total replication factor (sum over datacenters for NTS).
    pub fn total_replication_factor(&self) -> usize {
        match self {
            ReplicationStrategy::Simple { rf } => rf.all,
            ReplicationStrategy::NetworkTopology { dc_rf } => dc_rf.values().map(|r| r.all).sum(),
            ReplicationStrategy::Local => 1,
        }
    }

    /// The replication factor in datacenter `dc` (for `LOCAL_*` and
    /// `EACH_QUORUM`); SimpleStrategy is datacenter-blind and answers its
    /// total factor.
    pub fn replication_factor_in(&self, dc: &str) -> usize {
        match self {
            ReplicationStrategy::Simple { rf } => rf.all,
            ReplicationStrategy::NetworkTopology { dc_rf } => {
                dc_rf.get(dc).map(|r| r.all).unwrap_or(0)
            }
            ReplicationStrategy::Local => 1,
        }
    }
}

/// A node as the replica placement sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingNode {
    /// How the node is named in results (e.g. `/10.0.0.1:7000`).
    pub endpoint: String,
    /// Its datacenter.
    pub datacenter: String,
    /// Its rack.
    pub rack: String,
    /// Its tokens.
    pub tokens: Vec<i64>,
}

/// A token ring: nodes and their sorted tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ring {
    nodes: Vec<RingNode>,
    /// Sorted tokens and the index of the owning node.
    tokens: Vec<(i64, usize)>,
    sorted: Vec<i64>,
}

impl Ring {
    /// Builds the ring; when two nodes claim a token the first one keeps it.
    pub fn new(nodes: Vec<RingNode>) -> Ring {
        let mut tokens: Vec<(i64, usize)> = nodes
            .iter()
            .enumerate()
            .flat_map(|(i, n)| n.tokens.iter().map(move |&t| (t, i)))
            .collect();
        tokens.sort();
        tokens.dedup_by_key(|(t, _)| *t);
        let sorted = tokens.iter().map(|(t, _)| *t).collect();
        Ring {
            nodes,
            tokens,
            sorted,
        }
    }

    /// The sorted tokens.
    pub fn tokens(&self) -> &[i64] {
        &self.sorted
    }

    /// Node `i` as given to [`Ring::new`].
    pub fn node(&self, i: usize) -> &RingNode {
        &self.nodes[i]
    }

    /// Owners of the ring tokens starting at the first token `>= token`,
    /// wrapping once around (Cassandra's `TokenMetadata.ringIterator`).
    fn walk(&self, token: i64) -> impl Iterator<Item = usize> + '_ {
        let start = self.sorted.partition_point(|&t| t < token);
        let n = self.tokens.len();
        (0..n).map(move |k| self.tokens[(start + k) % n.max(1)].1)
    }

    /// The replicas (node indexes, in placement order) for `token` —
    /// Cassandra's `calculateNaturalReplicas` for each strategy:
    /// SimpleStrategy takes the next distinct nodes on the ring;
    /// NetworkTopologyStrategy fills each datacenter's factor preferring
    /// distinct racks, then repeats racks only when the DC has fewer racks
    /// than its factor.
    pub fn natural_replicas(&self, strategy: &ReplicationStrategy, token: i64) -> Vec<usize> {
        let mut out: Vec<usize> = Vec::new();
        match strategy {
            ReplicationStrategy::Local => {
                if !self.nodes.is_empty() {
                    out.push(0);
                }
            }
            ReplicationStrategy::Simple { rf } => {
                for i in self.walk(token) {
                    if out.len() >= rf.all {
                        break;
                    }
                    if !out.contains(&i) {
                        out.push(i);
                    }
                }
            }
            ReplicationStrategy::NetworkTopology { dc_rf } => {
                struct Dc {
                    rf_left: usize,
                    acceptable_rack_repeats: i64,
                }
                let mut dcs: BTreeMap<&str, Dc> = BTreeMap::new();
                for (dc, rf) in dc_rf {
                    let members: Vec<&RingNode> = self
                        .nodes
                        .iter()
                        .filter(|n| &n.datacenter == dc && !n.tokens.is_empty())
                        .collect();
                    let racks: BTreeSet<&str> = members.iter().map(|n| n.rack.as_str()).collect();
                    if rf.all == 0 || members.is_empty() {
                        continue;
                    }
                    dcs.insert(
                        dc.as_str(),
                        Dc {
                            rf_left: rf.all.min(members.len()),
                            acceptable_rack_repeats: rf.all as i64 - racks.len() as i64,
                        },
                    );
                }
                let mut to_fill = dcs.len();
                let mut seen_racks: BTreeSet<(&str, &str)> = BTreeSet::new();
                for i in self.walk(token) {
                    if to_fill == 0 {
                        break;
                    }
                    let node = &self.nodes[i];
                    let Some(dc) = dcs.get_mut(node.datacenter.as_str()) else {
                        continue;
                    };
                    if dc.rf_left == 0 || out.contains(&i) {
                        continue;
                    }
                    if seen_racks.insert((node.datacenter.as_str(), node.rack.as_str())) {
                        dc.rf_left -= 1;
                        out.push(i);
                    } else if dc.acceptable_rack_repeats > 0 {
                        dc.acceptable_rack_repeats -= 1;
                        dc.rf_left -= 1;
                        out.push(i);
                    } else {
                        continue;
                    }
                    if dc.rf_left == 0 {
                        to_fill -= 1;
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn dcs(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn class_names() {
        assert_eq!(
            StrategyClass::from_name("SimpleStrategy").unwrap(),
            StrategyClass::Simple
        );
        assert_eq!(
            StrategyClass::from_name(NETWORK_TOPOLOGY_STRATEGY).unwrap(),
            StrategyClass::NetworkTopology
        );
        assert_eq!(
            StrategyClass::from_name("Foo").unwrap_err().0,
            "Unable to find replication strategy class 'org.apache.cassandra.locator.Foo'"
        );
        assert!(StrategyClass::from_name("simplestrategy").is_err());
    }

    #[test]
    fn simple_strategy_rules() {
        let v = dcs(&["dc1"]);
        let (c, o) = prepare_replication(
            &m(&[("class", "SimpleStrategy"), ("replication_factor", "3")]),
            None,
            &v,
        )
        .unwrap();
        assert_eq!(c, StrategyClass::Simple);
        validate_replication("ks", c, &o, &v).unwrap();
        let e = validate_replication("ks", c, &m(&[]), &v).unwrap_err();
        assert_eq!(
            e.0,
            "SimpleStrategy requires a replication_factor strategy option."
        );
        let e = validate_replication("ks", c, &m(&[("replication_factor", "x")]), &v).unwrap_err();
        assert_eq!(e.0, "For input string: \"x\"");
        let e = validate_replication("ks", c, &m(&[("replication_factor", "-1")]), &v).unwrap_err();
        assert_eq!(e.0, "Replication factor must be non-negative, found -1");
        let e = validate_replication(
            "ks",
            c,
            &m(&[("replication_factor", "1"), ("dc1", "1")]),
            &v,
        )
        .unwrap_err();
        assert_eq!(
            e.0,
            "Unrecognized strategy option {dc1} passed to SimpleStrategy for keyspace ks"
        );
    }

    #[test]
    fn nts_expansion_and_validation() {
        let v = dcs(&["dc1", "dc2"]);
        let (c, o) = prepare_replication(
            &m(&[
                ("class", "NetworkTopologyStrategy"),
                ("replication_factor", "3"),
            ]),
            None,
            &v,
        )
        .unwrap();
        assert_eq!(o, m(&[("dc1", "3"), ("dc2", "3")]));
        validate_replication("ks", c, &o, &v).unwrap();

        // ALTER keeps the previous per-DC factors, explicit ones win.
        let (_, o) = prepare_replication(
            &m(&[
                ("class", "NetworkTopologyStrategy"),
                ("replication_factor", "2"),
                ("dc1", "5"),
            ]),
            Some(&m(&[("dc2", "1")])),
            &v,
        )
        .unwrap();
        assert_eq!(o, m(&[("dc1", "5"), ("dc2", "1")]));

        // From SimpleStrategy with no options: takes its factor.
        let (_, o) = prepare_replication(
            &m(&[("class", "NetworkTopologyStrategy")]),
            Some(&m(&[("replication_factor", "2")])),
            &v,
        )
        .unwrap();
        assert_eq!(o, m(&[("dc1", "2"), ("dc2", "2")]));

        // RF 0 drops the DC.
        let (_, o) = prepare_replication(
            &m(&[
                ("class", "NetworkTopologyStrategy"),
                ("dc1", "3"),
                ("dc2", "0"),
            ]),
            None,
            &v,
        )
        .unwrap();
        assert_eq!(o, m(&[("dc1", "3")]));

        let e = validate_replication("ks", c, &m(&[("dc9", "1")]), &v).unwrap_err();
        assert_eq!(
            e.0,
            "Unrecognized strategy option {dc9} passed to NetworkTopologyStrategy for keyspace ks"
        );
        let e = validate_replication("ks", c, &m(&[]), &v).unwrap_err();
        assert_eq!(
            e.0,
            "Configuration for at least one datacenter must be present"
        );
        let e = validate_replication("ks", c, &m(&[("dc1", "three")]), &v).unwrap_err();
        assert_eq!(e.0, "For input string: \"three\"");
        assert!(parse_replication_factor("3/1").is_err());
    }

    fn node(name: &str, dc: &str, rack: &str, tokens: &[i64]) -> RingNode {
        RingNode {
            endpoint: name.to_string(),
            datacenter: dc.to_string(),
            rack: rack.to_string(),
            tokens: tokens.to_vec(),
        }
    }

    #[test]
    fn simple_placement_walks_the_ring() {
        let ring = Ring::new(vec![
            node("a", "dc1", "r1", &[0, 300]),
            node("b", "dc1", "r1", &[100]),
            node("c", "dc1", "r1", &[200]),
        ]);
        let s =
            ReplicationStrategy::from_options(SIMPLE_STRATEGY, &m(&[("replication_factor", "2")]))
                .unwrap();
        assert_eq!(ring.natural_replicas(&s, 50), vec![1, 2]);
        assert_eq!(ring.natural_replicas(&s, 250), vec![0, 1]);
        assert_eq!(ring.natural_replicas(&s, 301), vec![0, 1]);
        assert_eq!(ring.natural_replicas(&s, 100), vec![1, 2]);
    }

    #[test]
    fn nts_placement_prefers_distinct_racks() {
        let ring = Ring::new(vec![
            node("a", "dc1", "r1", &[0]),
            node("b", "dc1", "r1", &[100]),
            node("c", "dc1", "r2", &[200]),
            node("d", "dc2", "r1", &[150]),
            node("e", "dc2", "r1", &[250]),
        ]);
        let s = ReplicationStrategy::from_options(
            NETWORK_TOPOLOGY_STRATEGY,
            &m(&[("dc1", "2"), ("dc2", "1")]),
        )
        .unwrap();
        // From 50: b (dc1 r1), d (dc2), c (dc1 r2) -> done; a skipped.
        assert_eq!(ring.natural_replicas(&s, 50), vec![1, 3, 2]);
        // From 0: a (r1), b is r1 again: skipped (2 racks for RF 2), d, c.
        assert_eq!(ring.natural_replicas(&s, 0), vec![0, 3, 2]);
        // RF 3 in dc1 with 2 racks: one rack repeat allowed.
        let s3 = ReplicationStrategy::from_options(NETWORK_TOPOLOGY_STRATEGY, &m(&[("dc1", "3")]))
            .unwrap();
        assert_eq!(ring.natural_replicas(&s3, 0), vec![0, 1, 2]);
    }

    #[test]
    fn strategy_factors() {
        let s = ReplicationStrategy::from_options(
            NETWORK_TOPOLOGY_STRATEGY,
            &m(&[("dc1", "3"), ("dc2", "2")]),
        )
        .unwrap();
        assert_eq!(s.total_replication_factor(), 5);
        assert_eq!(s.replication_factor_in("dc2"), 2);
        assert_eq!(s.replication_factor_in("dc3"), 0);
    }
}

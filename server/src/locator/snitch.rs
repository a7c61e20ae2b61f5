//! Snitches: where this node sits (datacenter and rack).
//!
//! `SimpleSnitch` puts every node in `datacenter1`/`rack1`.
//! `GossipingPropertyFileSnitch` reads `dc=` and `rack=` from
//! `cassandra-rackdc.properties` (see [`crate::config::Config::rackdc_properties`]:
//! beside the YAML file, else in the work directory) and, like Cassandra,
//! refuses to start when either is missing — including when the file itself
//! is absent or unreadable (Cassandra logs `Unable to read ...` and then
//! fails with the same `ConfigurationException`). Other nodes learn the
//! location through gossip (`ApplicationState::Dc`/`Rack`).

use std::collections::HashMap;
use std::path::Path;

use crate::config::Config;

/// `datacenter1`: `SimpleSnitch`'s datacenter.
pub const SIMPLE_SNITCH_DC: &str = "datacenter1";
/// `rack1`: `SimpleSnitch`'s rack.
pub const SIMPLE_SNITCH_RACK: &str = "rack1";
/// The file `GossipingPropertyFileSnitch` reads.
pub const RACKDC_PROPERTY_FILENAME: &str = "cassandra-rackdc.properties";

/// The snitch classes Tessera implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Snitch {
    /// `org.apache.cassandra.locator.SimpleSnitch`.
    Simple,
    /// `org.apache.cassandra.locator.GossipingPropertyFileSnitch`.
    GossipingPropertyFile,
}

impl Snitch {
    /// Resolves a class name, short (`SimpleSnitch`) or full
    /// (`org.apache.cassandra.locator.SimpleSnitch`).
    pub fn from_name(name: &str) -> Result<Snitch, String> {
        let name = name.trim();
        let short = match name.strip_prefix("org.apache.cassandra.locator.") {
            Some(s) => s,
            None if !name.contains('.') => name,
            None => return Err(unknown(name)),
        };
        match short {
            "SimpleSnitch" => Ok(Snitch::Simple),
            "GossipingPropertyFileSnitch" => Ok(Snitch::GossipingPropertyFile),
            _ => Err(unknown(name)),
        }
    }
}

fn unknown(name: &str) -> String {
    format!(
        "Unable to find snitch class '{name}' (Tessera supports SimpleSnitch and \
         GossipingPropertyFileSnitch)"
    )
}

/// This node's `(datacenter, rack)` as its configured `endpoint_snitch` says.
pub fn location(config: &Config) -> Result<(String, String), String> {
    match Snitch::from_name(&config.endpoint_snitch)? {
        Snitch::Simple => Ok((SIMPLE_SNITCH_DC.into(), SIMPLE_SNITCH_RACK.into())),
        Snitch::GossipingPropertyFile => rackdc_location(&config.rackdc_properties),
    }
}

/// `GossipingPropertyFileSnitch`'s location from a `cassandra-rackdc.properties` file.
pub fn rackdc_location(path: &Path) -> Result<(String, String), String> {
    let props = match std::fs::read_to_string(path) {
        Ok(text) => parse_properties(&text),
        Err(e) => {
            log::warn!("Unable to read {}: {e}", path.display());
            HashMap::new()
        }
    };
    match (props.get("dc"), props.get("rack")) {
        (Some(dc), Some(rack)) if !dc.trim().is_empty() && !rack.trim().is_empty() => {
            Ok((dc.trim().to_string(), rack.trim().to_string()))
        }
        _ => Err(format!(
            "DC or rack not found in snitch properties, check your configuration in: {}",
            path.display()
        )),
    }
}

/// Parses Java `.properties` text: `key=value`, `key: value` or `key value`;
/// `#` and `!` start comments; a trailing `\` continues the line.
pub fn parse_properties(text: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut logical = String::new();
    for raw in text.lines() {
        let line = raw.trim_start();
        if logical.is_empty() && (line.is_empty() || line.starts_with('#') || line.starts_with('!'))
        {
            continue;
        }
        if let Some(body) = line.strip_suffix('\\') {
            logical.push_str(body);
            continue;
        }
        logical.push_str(line);
        let entry = std::mem::take(&mut logical);
        let split = entry
            .find(['=', ':'])
            .or_else(|| entry.find(char::is_whitespace));
        let (key, value) = match split {
            Some(i) => {
                let sep_len = entry[i..].chars().next().map_or(1, char::len_utf8);
                (&entry[..i], &entry[i + sep_len..])
            }
            None => (entry.as_str(), ""),
        };
        out.insert(key.trim().to_string(), value.trim().to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn temp_file(name: &str, text: Option<&str>) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("tessera-snitch-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(RACKDC_PROPERTY_FILENAME);
        if let Some(t) = text {
            std::fs::write(&p, t).unwrap();
        }
        p
    }

    fn config(snitch: &str, rackdc: PathBuf) -> Config {
        Config {
            endpoint_snitch: snitch.into(),
            rackdc_properties: rackdc,
            ..Config::default()
        }
    }

    #[test]
    fn simple_snitch() {
        let c = config("SimpleSnitch", PathBuf::from("/nonexistent"));
        assert_eq!(
            location(&c).unwrap(),
            ("datacenter1".into(), "rack1".into())
        );
        let c = config("org.apache.cassandra.locator.SimpleSnitch", PathBuf::new());
        assert_eq!(location(&c).unwrap().0, "datacenter1");
    }

    #[test]
    fn gossiping_property_file_snitch_reads_dc_and_rack() {
        let p = temp_file(
            "ok",
            Some("# comment\n! other comment\ndc=dc2\nrack = r1  \nprefer_local=true\n"),
        );
        let c = config("GossipingPropertyFileSnitch", p.clone());
        assert_eq!(location(&c).unwrap(), ("dc2".into(), "r1".into()));
        let c = config(
            "org.apache.cassandra.locator.GossipingPropertyFileSnitch",
            p,
        );
        assert_eq!(location(&c).unwrap(), ("dc2".into(), "r1".into()));
    }

    #[test]
    fn gossiping_property_file_snitch_needs_the_file_and_both_keys() {
        let missing = temp_file("missing", None);
        let err = location(&config("GossipingPropertyFileSnitch", missing)).unwrap_err();
        assert!(
            err.starts_with("DC or rack not found in snitch properties"),
            "{err}"
        );
        let no_rack = temp_file("norack", Some("dc=dc1\n"));
        assert!(location(&config("GossipingPropertyFileSnitch", no_rack)).is_err());
        let empty = temp_file("empty", Some("dc=\nrack=r\n"));
        assert!(location(&config("GossipingPropertyFileSnitch", empty)).is_err());
    }

    #[test]
    fn unknown_snitch_is_an_error() {
        for name in ["Ec2Snitch", "com.example.MySnitch", "simplesnitch", ""] {
            let err = location(&config(name, PathBuf::new())).unwrap_err();
            assert!(err.contains("Unable to find snitch class"), "{err}");
        }
    }

    #[test]
    fn properties_syntax() {
        let p = parse_properties("a:1\nb 2\nc=x=y\n  d = long \\\n   value\nflag\n");
        assert_eq!(p["a"], "1");
        assert_eq!(p["b"], "2");
        assert_eq!(p["c"], "x=y");
        assert_eq!(p["d"], "long value");
        assert_eq!(p["flag"], "");
    }
}

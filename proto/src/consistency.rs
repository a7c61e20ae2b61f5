//! The `[consistency]` notation: a `[short]` naming a consistency level.

use std::fmt;

/// A consistency level as sent on the wire (native protocol section 3).
///
/// The discriminants are the protocol's `[consistency]` codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum Consistency {
    /// Any node, including a hint, may acknowledge (writes only).
    Any = 0x0000,
    One = 0x0001,
    Two = 0x0002,
    Three = 0x0003,
    Quorum = 0x0004,
    All = 0x0005,
    LocalQuorum = 0x0006,
    EachQuorum = 0x0007,
    /// Paxos consistency for lightweight transactions across datacenters.
    Serial = 0x0008,
    /// Paxos consistency for lightweight transactions in the local datacenter.
    LocalSerial = 0x0009,
    LocalOne = 0x000A,
}

impl Consistency {
    /// Every level, in code order.
    pub const ALL_LEVELS: [Consistency; 11] = [
        Consistency::Any,
        Consistency::One,
        Consistency::Two,
        Consistency::Three,
        Consistency::Quorum,
        Consistency::All,
        Consistency::LocalQuorum,
        Consistency::EachQuorum,
        Consistency::Serial,
        Consistency::LocalSerial,
        Consistency::LocalOne,
    ];

    /// Decodes a wire code; `None` for an unknown code.
    pub fn from_u16(code: u16) -> Option<Consistency> {
        Self::ALL_LEVELS.get(usize::from(code)).copied()
    }

    /// The wire code.
    pub fn as_u16(self) -> u16 {
        self as u16
    }

    /// The Cassandra name (`LOCAL_QUORUM`), as used by cqlsh's `CONSISTENCY`
    /// command and in error messages.
    pub fn name(self) -> &'static str {
        match self {
            Consistency::Any => "ANY",
            Consistency::One => "ONE",
            Consistency::Two => "TWO",
            Consistency::Three => "THREE",
            Consistency::Quorum => "QUORUM",
            Consistency::All => "ALL",
            Consistency::LocalQuorum => "LOCAL_QUORUM",
            Consistency::EachQuorum => "EACH_QUORUM",
            Consistency::Serial => "SERIAL",
            Consistency::LocalSerial => "LOCAL_SERIAL",
            Consistency::LocalOne => "LOCAL_ONE",
        }
    }

    /// Parses a Cassandra name, case-insensitively (`local_quorum`).
    pub fn from_name(name: &str) -> Option<Consistency> {
        Self::ALL_LEVELS
            .iter()
            .copied()
            .find(|c| c.name().eq_ignore_ascii_case(name))
    }

    /// `SERIAL` or `LOCAL_SERIAL`.
    pub fn is_serial(self) -> bool {
        matches!(self, Consistency::Serial | Consistency::LocalSerial)
    }

    /// Levels whose replica count is computed from the local datacenter only.
    pub fn is_datacenter_local(self) -> bool {
        matches!(
            self,
            Consistency::LocalOne | Consistency::LocalQuorum | Consistency::LocalSerial
        )
    }
}

impl fmt::Display for Consistency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for code in 0u16..=0x000A {
            let c = Consistency::from_u16(code).expect("known code");
            assert_eq!(c.as_u16(), code);
            assert_eq!(Consistency::from_name(c.name()), Some(c));
        }
        assert_eq!(Consistency::from_u16(0x000B), None);
        assert_eq!(Consistency::from_u16(0xFFFF), None);
    }

    #[test]
    fn names_match_cassandra() {
        assert_eq!(Consistency::LocalQuorum.to_string(), "LOCAL_QUORUM");
        assert_eq!(Consistency::LocalOne.to_string(), "LOCAL_ONE");
        assert_eq!(Consistency::EachQuorum.to_string(), "EACH_QUORUM");
        assert_eq!(Consistency::from_u16(6), Some(Consistency::LocalQuorum));
        assert_eq!(
            Consistency::from_name("local_one"),
            Some(Consistency::LocalOne)
        );
        assert!(Consistency::LocalSerial.is_serial());
        assert!(!Consistency::Quorum.is_serial());
    }
}

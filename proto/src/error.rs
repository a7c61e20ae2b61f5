//! Errors: decoding failures ([`ProtocolError`], [`FrameError`]) and the
//! protocol's ERROR message ([`DbError`], [`ErrorResponse`], spec section 9).

use std::fmt;
use std::net::IpAddr;

use bytes::Bytes;

use crate::consistency::Consistency;
use crate::types::{self, Reader};

/// A message body, or a notation inside it, could not be decoded.
///
/// The server answers these with ERROR code 0x000A (`ProtocolError`); see
/// [`ErrorResponse::from`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    /// The input ended before a notation was complete.
    Truncated {
        /// The notation being read (`"[string]"`).
        what: &'static str,
        /// Bytes the notation needed.
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// A length prefix was negative where the notation forbids it.
    InvalidLength {
        /// The notation being read.
        what: &'static str,
        /// The length read.
        length: i64,
    },
    /// A `[string]` or `[long string]` was not valid UTF-8.
    InvalidUtf8 {
        /// The notation being read.
        what: &'static str,
    },
    /// An unknown `[consistency]` code.
    UnknownConsistency(u16),
    /// An `[inet]` whose address length is neither 4 nor 16.
    InvalidInetLength(u8),
    /// An opcode that is not a request (or not a response, when decoding
    /// responses).
    UnknownOpcode(u8),
    /// An unknown `[option]` id in a type description.
    UnknownTypeId(u16),
    /// A compressed body could not be decompressed.
    Decompression(String),
    /// Anything else, with Cassandra-style wording.
    Invalid(String),
}

impl ProtocolError {
    /// Shorthand for [`ProtocolError::Invalid`].
    pub fn invalid(msg: impl Into<String>) -> ProtocolError {
        ProtocolError::Invalid(msg.into())
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::Truncated {
                what,
                needed,
                remaining,
            } => write!(
                f,
                "Not enough bytes to read {what}: needed {needed}, {remaining} remaining"
            ),
            ProtocolError::InvalidLength { what, length } => {
                write!(f, "Invalid length {length} for {what}")
            }
            ProtocolError::InvalidUtf8 { what } => {
                write!(f, "Invalid UTF-8 in {what}")
            }
            ProtocolError::UnknownConsistency(code) => {
                write!(f, "Unknown code {code} for a consistency level")
            }
            ProtocolError::InvalidInetLength(n) => {
                write!(f, "Invalid IP address length {n} (expected 4 or 16)")
            }
            ProtocolError::UnknownOpcode(op) => write!(f, "Unknown opcode {op}"),
            ProtocolError::UnknownTypeId(id) => write!(f, "Unknown type id 0x{id:04x}"),
            ProtocolError::Decompression(msg) => write!(f, "Decompression failed: {msg}"),
            ProtocolError::Invalid(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for ProtocolError {}

/// An envelope (v4 frame) or v5 segment could not be split off the stream.
///
/// Each variant says what the transport should do: answer with an ERROR on
/// `stream` and keep going, or close the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The version byte is not 3, 4 or 5. Answer with ERROR 0x000A
    /// ([`crate::frame::unsupported_version_message`]) on `stream`, then close.
    UnsupportedVersion {
        /// The version, without the direction bit.
        version: u8,
        /// The request's stream id (0 if it could not be read).
        stream: i16,
    },
    /// The body length exceeds the configured maximum. The transport may
    /// discard `length` body bytes and answer ERROR 0x000A on `stream`.
    TooLarge {
        /// The request's stream id.
        stream: i16,
        /// The declared body length.
        length: u32,
        /// The configured maximum.
        max: usize,
    },
    /// A frame travelling the wrong way (a response sent by a client, or a
    /// request received by a client).
    WrongDirection {
        /// The frame's stream id.
        stream: i16,
    },
    /// A v5 segment header failed its CRC24: the stream is unrecoverable.
    HeaderCrcMismatch {
        /// The CRC carried by the segment.
        read: u32,
        /// The CRC computed over the header.
        computed: u32,
    },
    /// A v5 segment payload failed its CRC32.
    PayloadCrcMismatch {
        /// The CRC carried by the segment.
        read: u32,
        /// The CRC computed over the payload.
        computed: u32,
    },
    /// A malformed length or a failed decompression.
    Protocol(ProtocolError),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::UnsupportedVersion { version, .. } => {
                f.write_str(&crate::frame::unsupported_version_message(*version))
            }
            FrameError::TooLarge { length, max, .. } => write!(
                f,
                "Request is too big: length {length} exceeds maximum allowed length {max}."
            ),
            FrameError::WrongDirection { .. } => {
                f.write_str("Frame has the wrong direction bit for this side of the connection")
            }
            FrameError::HeaderCrcMismatch { read, computed } => write!(
                f,
                "Segment header CRC24 mismatch: read {read:#08x}, computed {computed:#08x}"
            ),
            FrameError::PayloadCrcMismatch { read, computed } => write!(
                f,
                "Segment payload CRC32 mismatch: read {read:#010x}, computed {computed:#010x}"
            ),
            FrameError::Protocol(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl std::error::Error for FrameError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FrameError::Protocol(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ProtocolError> for FrameError {
    fn from(e: ProtocolError) -> FrameError {
        FrameError::Protocol(e)
    }
}

/// A typed server error, carrying the extra data the protocol sends after
/// the message for each code (spec section 9).
#[derive(Debug, Clone, PartialEq)]
pub enum DbError {
    /// 0x0000: something unexpected happened; the server is to blame.
    ServerError,
    /// 0x000A: the client broke the protocol.
    ProtocolError,
    /// 0x0100: authentication was required and failed.
    AuthenticationError,
    /// 0x1000: not enough live replicas to honour the consistency level.
    Unavailable {
        consistency: Consistency,
        required: i32,
        alive: i32,
    },
    /// 0x1001: the coordinator is overloaded.
    Overloaded,
    /// 0x1002: the coordinator is still bootstrapping.
    IsBootstrapping,
    /// 0x1003: a TRUNCATE failed.
    TruncateError,
    /// 0x1100: too few replicas acknowledged a write in time.
    ///
    /// `write_type` is one of SIMPLE, BATCH, UNLOGGED_BATCH, COUNTER,
    /// BATCH_LOG, CAS, VIEW, CDC. In v5 a CAS timeout also carries a
    /// contention count, sent here as 0.
    WriteTimeout {
        consistency: Consistency,
        received: i32,
        block_for: i32,
        write_type: String,
    },
    /// 0x1200: too few replicas answered a read in time.
    ReadTimeout {
        consistency: Consistency,
        received: i32,
        block_for: i32,
        data_present: bool,
    },
    /// 0x1300: replicas failed a read. v4 sends `num_failures`; v5 sends
    /// `reason_map` (endpoint, failure code) instead.
    ReadFailure {
        consistency: Consistency,
        received: i32,
        block_for: i32,
        num_failures: i32,
        reason_map: Vec<(IpAddr, u16)>,
        data_present: bool,
    },
    /// 0x1400: a user-defined function failed.
    FunctionFailure {
        keyspace: String,
        function: String,
        arg_types: Vec<String>,
    },
    /// 0x1500: replicas failed a write. v4 sends `num_failures`; v5 sends
    /// `reason_map`.
    WriteFailure {
        consistency: Consistency,
        received: i32,
        block_for: i32,
        num_failures: i32,
        reason_map: Vec<(IpAddr, u16)>,
        write_type: String,
    },
    /// 0x1600 (v5): a write was refused because CDC space is full.
    CdcWriteFailure,
    /// 0x1700 (v5): the outcome of a CAS write is unknown.
    CasWriteUnknown {
        consistency: Consistency,
        received: i32,
        block_for: i32,
    },
    /// 0x2000: the query does not parse.
    SyntaxError,
    /// 0x2100: the user lacks a permission.
    Unauthorized,
    /// 0x2200: the query is syntactically right but invalid.
    Invalid,
    /// 0x2300: the query is invalid given the configuration.
    ConfigError,
    /// 0x2400: a CREATE found the keyspace or table existing; `table` is
    /// empty for a keyspace.
    AlreadyExists { keyspace: String, table: String },
    /// 0x2500: EXECUTE named a prepared id the server does not know.
    Unprepared { id: Bytes },
    /// Any other code, kept so a client can still report it.
    Other(i32),
}

impl DbError {
    /// The protocol error code.
    pub fn code(&self) -> i32 {
        match self {
            DbError::ServerError => 0x0000,
            DbError::ProtocolError => 0x000A,
            DbError::AuthenticationError => 0x0100,
            DbError::Unavailable { .. } => 0x1000,
            DbError::Overloaded => 0x1001,
            DbError::IsBootstrapping => 0x1002,
            DbError::TruncateError => 0x1003,
            DbError::WriteTimeout { .. } => 0x1100,
            DbError::ReadTimeout { .. } => 0x1200,
            DbError::ReadFailure { .. } => 0x1300,
            DbError::FunctionFailure { .. } => 0x1400,
            DbError::WriteFailure { .. } => 0x1500,
            DbError::CdcWriteFailure => 0x1600,
            DbError::CasWriteUnknown { .. } => 0x1700,
            DbError::SyntaxError => 0x2000,
            DbError::Unauthorized => 0x2100,
            DbError::Invalid => 0x2200,
            DbError::ConfigError => 0x2300,
            DbError::AlreadyExists { .. } => 0x2400,
            DbError::Unprepared { .. } => 0x2500,
            DbError::Other(code) => *code,
        }
    }

    /// The Java exception name drivers print for this code.
    pub fn name(&self) -> &'static str {
        match self {
            DbError::ServerError => "ServerError",
            DbError::ProtocolError => "ProtocolError",
            DbError::AuthenticationError => "AuthenticationError",
            DbError::Unavailable { .. } => "Unavailable",
            DbError::Overloaded => "Overloaded",
            DbError::IsBootstrapping => "IsBootstrapping",
            DbError::TruncateError => "TruncateError",
            DbError::WriteTimeout { .. } => "WriteTimeout",
            DbError::ReadTimeout { .. } => "ReadTimeout",
            DbError::ReadFailure { .. } => "ReadFailure",
            DbError::FunctionFailure { .. } => "FunctionFailure",
            DbError::WriteFailure { .. } => "WriteFailure",
            DbError::CdcWriteFailure => "CDCWriteFailure",
            DbError::CasWriteUnknown { .. } => "CASWriteUnknown",
            DbError::SyntaxError => "SyntaxError",
            DbError::Unauthorized => "Unauthorized",
            DbError::Invalid => "Invalid",
            DbError::ConfigError => "ConfigError",
            DbError::AlreadyExists { .. } => "AlreadyExists",
            DbError::Unprepared { .. } => "Unprepared",
            DbError::Other(_) => "Unknown",
        }
    }
}

/// Why a replica failed a request: Cassandra's `RequestFailureReason`,
/// the `<failurecode>` of a v5 `<reasonmap>` (ReadFailure, WriteFailure).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestFailureReason {
    /// 0: any other failure (an I/O or commitlog error, a corrupt SSTable).
    Unknown,
    /// 1: a read scanned more tombstones than `tombstone_failure_threshold`.
    ReadTooManyTombstones,
    /// 2: the replica itself timed out (e.g. a write waiting for a lock).
    Timeout,
    /// 3: the replica does not know the table, or the data does not fit
    /// its schema.
    IncompatibleSchema,
    /// 4: a read answer exceeded the size threshold.
    ReadSize,
    /// 5: the replica is down.
    NodeDown,
    /// 6: a secondary index is not queryable on the replica.
    IndexNotAvailable,
    /// Any other code, kept as received.
    Other(u16),
}

impl RequestFailureReason {
    /// The wire code.
    pub fn code(self) -> u16 {
        match self {
            RequestFailureReason::Unknown => 0,
            RequestFailureReason::ReadTooManyTombstones => 1,
            RequestFailureReason::Timeout => 2,
            RequestFailureReason::IncompatibleSchema => 3,
            RequestFailureReason::ReadSize => 4,
            RequestFailureReason::NodeDown => 5,
            RequestFailureReason::IndexNotAvailable => 6,
            RequestFailureReason::Other(c) => c,
        }
    }

    /// The reason of a wire code.
    pub fn from_code(code: u16) -> RequestFailureReason {
        match code {
            0 => RequestFailureReason::Unknown,
            1 => RequestFailureReason::ReadTooManyTombstones,
            2 => RequestFailureReason::Timeout,
            3 => RequestFailureReason::IncompatibleSchema,
            4 => RequestFailureReason::ReadSize,
            5 => RequestFailureReason::NodeDown,
            6 => RequestFailureReason::IndexNotAvailable,
            c => RequestFailureReason::Other(c),
        }
    }
}

impl fmt::Display for RequestFailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestFailureReason::Unknown => f.write_str("UNKNOWN"),
            RequestFailureReason::ReadTooManyTombstones => f.write_str("READ_TOO_MANY_TOMBSTONES"),
            RequestFailureReason::Timeout => f.write_str("TIMEOUT"),
            RequestFailureReason::IncompatibleSchema => f.write_str("INCOMPATIBLE_SCHEMA"),
            RequestFailureReason::ReadSize => f.write_str("READ_SIZE"),
            RequestFailureReason::NodeDown => f.write_str("NODE_DOWN"),
            RequestFailureReason::IndexNotAvailable => f.write_str("INDEX_NOT_AVAILABLE"),
            RequestFailureReason::Other(c) => write!(f, "code {c}"),
        }
    }
}

/// The body of an ERROR message: a typed error and its human message.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorResponse {
    /// The code and its extra data.
    pub error: DbError,
    /// The `[string]` message.
    pub message: String,
}

impl ErrorResponse {
    /// An error with the given kind and message.
    pub fn new(error: DbError, message: impl Into<String>) -> ErrorResponse {
        ErrorResponse {
            error,
            message: message.into(),
        }
    }

    /// 0x2200 Invalid (`InvalidRequest` in drivers).
    pub fn invalid(message: impl Into<String>) -> ErrorResponse {
        Self::new(DbError::Invalid, message)
    }

    /// 0x2000 SyntaxError.
    pub fn syntax(message: impl Into<String>) -> ErrorResponse {
        Self::new(DbError::SyntaxError, message)
    }

    /// 0x000A ProtocolError.
    pub fn protocol(message: impl Into<String>) -> ErrorResponse {
        Self::new(DbError::ProtocolError, message)
    }

    /// 0x0000 ServerError.
    pub fn server(message: impl Into<String>) -> ErrorResponse {
        Self::new(DbError::ServerError, message)
    }

    /// 0x2300 ConfigError.
    pub fn config(message: impl Into<String>) -> ErrorResponse {
        Self::new(DbError::ConfigError, message)
    }

    /// 0x2100 Unauthorized.
    pub fn unauthorized(message: impl Into<String>) -> ErrorResponse {
        Self::new(DbError::Unauthorized, message)
    }

    /// 0x0100 AuthenticationError.
    pub fn authentication(message: impl Into<String>) -> ErrorResponse {
        Self::new(DbError::AuthenticationError, message)
    }

    /// 0x1001 Overloaded.
    pub fn overloaded(message: impl Into<String>) -> ErrorResponse {
        Self::new(DbError::Overloaded, message)
    }

    /// 0x2500 Unprepared, with Cassandra's message naming the id in hex.
    pub fn unprepared(id: Bytes) -> ErrorResponse {
        let mut hex = String::with_capacity(id.len() * 2);
        for b in id.iter() {
            hex.push_str(&format!("{b:02x}"));
        }
        Self::new(
            DbError::Unprepared { id },
            format!("Prepared query with ID {hex} not found (either the query was not prepared on this host (maybe the host has been restarted?) or you have prepared too many queries and it has been evicted from the internal cache)"),
        )
    }

    /// 0x2400 AlreadyExists for a keyspace, with Cassandra's message.
    pub fn keyspace_exists(keyspace: &str) -> ErrorResponse {
        Self::new(
            DbError::AlreadyExists {
                keyspace: keyspace.to_string(),
                table: String::new(),
            },
            format!("Keyspace {keyspace} already exists"),
        )
    }

    /// 0x2400 AlreadyExists for a table, with Cassandra's message.
    pub fn table_exists(keyspace: &str, table: &str) -> ErrorResponse {
        Self::new(
            DbError::AlreadyExists {
                keyspace: keyspace.to_string(),
                table: table.to_string(),
            },
            format!("Object {keyspace}.{table} already exists"),
        )
    }

    /// 0x1000 Unavailable, with Cassandra's message.
    pub fn unavailable(consistency: Consistency, required: i32, alive: i32) -> ErrorResponse {
        Self::new(
            DbError::Unavailable {
                consistency,
                required,
                alive,
            },
            format!("Cannot achieve consistency level {consistency}"),
        )
    }

    /// The error as a client of protocol `version` can read it: v3 has no
    /// ReadFailure, WriteFailure or FunctionFailure, so (as Cassandra does)
    /// they go out as ReadTimeout, WriteTimeout and Invalid.
    pub fn for_version(&self, version: u8) -> std::borrow::Cow<'_, ErrorResponse> {
        use std::borrow::Cow;
        if version >= 4 {
            return Cow::Borrowed(self);
        }
        let error = match &self.error {
            DbError::ReadFailure {
                consistency,
                received,
                block_for,
                data_present,
                ..
            } => DbError::ReadTimeout {
                consistency: *consistency,
                received: *received,
                block_for: *block_for,
                data_present: *data_present,
            },
            DbError::WriteFailure {
                consistency,
                received,
                block_for,
                write_type,
                ..
            } => DbError::WriteTimeout {
                consistency: *consistency,
                received: *received,
                block_for: *block_for,
                write_type: write_type.clone(),
            },
            DbError::FunctionFailure { .. } => DbError::Invalid,
            _ => return Cow::Borrowed(self),
        };
        Cow::Owned(ErrorResponse::new(error, self.message.clone()))
    }

    /// Encodes the ERROR body for protocol `version`.
    pub fn encode(&self, version: u8, out: &mut Vec<u8>) {
        if version < 4 {
            if let std::borrow::Cow::Owned(e) = self.for_version(version) {
                return e.encode(version, out);
            }
        }
        types::write_int(out, self.error.code());
        types::write_string(out, &self.message);
        match &self.error {
            DbError::Unavailable {
                consistency,
                required,
                alive,
            } => {
                types::write_consistency(out, *consistency);
                types::write_int(out, *required);
                types::write_int(out, *alive);
            }
            DbError::WriteTimeout {
                consistency,
                received,
                block_for,
                write_type,
            } => {
                types::write_consistency(out, *consistency);
                types::write_int(out, *received);
                types::write_int(out, *block_for);
                types::write_string(out, write_type);
                if version >= 5 && write_type == "CAS" {
                    types::write_short(out, 0);
                }
            }
            DbError::ReadTimeout {
                consistency,
                received,
                block_for,
                data_present,
            } => {
                types::write_consistency(out, *consistency);
                types::write_int(out, *received);
                types::write_int(out, *block_for);
                out.push(u8::from(*data_present));
            }
            DbError::ReadFailure {
                consistency,
                received,
                block_for,
                num_failures,
                reason_map,
                data_present,
            } => {
                types::write_consistency(out, *consistency);
                types::write_int(out, *received);
                types::write_int(out, *block_for);
                write_failures(out, version, *num_failures, reason_map);
                out.push(u8::from(*data_present));
            }
            DbError::FunctionFailure {
                keyspace,
                function,
                arg_types,
            } => {
                types::write_string(out, keyspace);
                types::write_string(out, function);
                types::write_string_list(out, arg_types);
            }
            DbError::WriteFailure {
                consistency,
                received,
                block_for,
                num_failures,
                reason_map,
                write_type,
            } => {
                types::write_consistency(out, *consistency);
                types::write_int(out, *received);
                types::write_int(out, *block_for);
                write_failures(out, version, *num_failures, reason_map);
                types::write_string(out, write_type);
            }
            DbError::CasWriteUnknown {
                consistency,
                received,
                block_for,
            } => {
                types::write_consistency(out, *consistency);
                types::write_int(out, *received);
                types::write_int(out, *block_for);
            }
            DbError::AlreadyExists { keyspace, table } => {
                types::write_string(out, keyspace);
                types::write_string(out, table);
            }
            DbError::Unprepared { id } => types::write_short_bytes(out, id),
            DbError::ServerError
            | DbError::ProtocolError
            | DbError::AuthenticationError
            | DbError::Overloaded
            | DbError::IsBootstrapping
            | DbError::TruncateError
            | DbError::CdcWriteFailure
            | DbError::SyntaxError
            | DbError::Unauthorized
            | DbError::Invalid
            | DbError::ConfigError
            | DbError::Other(_) => {}
        }
    }

    /// Decodes an ERROR body for protocol `version` (the client side).
    pub fn decode(version: u8, r: &mut Reader<'_>) -> Result<ErrorResponse, ProtocolError> {
        let code = r.read_int()?;
        let message = r.read_string()?.to_string();
        let error = match code {
            0x0000 => DbError::ServerError,
            0x000A => DbError::ProtocolError,
            0x0100 => DbError::AuthenticationError,
            0x1000 => DbError::Unavailable {
                consistency: r.read_consistency()?,
                required: r.read_int()?,
                alive: r.read_int()?,
            },
            0x1001 => DbError::Overloaded,
            0x1002 => DbError::IsBootstrapping,
            0x1003 => DbError::TruncateError,
            0x1100 => {
                let consistency = r.read_consistency()?;
                let received = r.read_int()?;
                let block_for = r.read_int()?;
                let write_type = r.read_string()?.to_string();
                if version >= 5 && write_type == "CAS" {
                    r.read_short()?;
                }
                DbError::WriteTimeout {
                    consistency,
                    received,
                    block_for,
                    write_type,
                }
            }
            0x1200 => DbError::ReadTimeout {
                consistency: r.read_consistency()?,
                received: r.read_int()?,
                block_for: r.read_int()?,
                data_present: r.read_byte()? != 0,
            },
            0x1300 => {
                let consistency = r.read_consistency()?;
                let received = r.read_int()?;
                let block_for = r.read_int()?;
                let (num_failures, reason_map) = read_failures(r, version)?;
                DbError::ReadFailure {
                    consistency,
                    received,
                    block_for,
                    num_failures,
                    reason_map,
                    data_present: r.read_byte()? != 0,
                }
            }
            0x1400 => DbError::FunctionFailure {
                keyspace: r.read_string()?.to_string(),
                function: r.read_string()?.to_string(),
                arg_types: r.read_string_list()?,
            },
            0x1500 => {
                let consistency = r.read_consistency()?;
                let received = r.read_int()?;
                let block_for = r.read_int()?;
                let (num_failures, reason_map) = read_failures(r, version)?;
                DbError::WriteFailure {
                    consistency,
                    received,
                    block_for,
                    num_failures,
                    reason_map,
                    write_type: r.read_string()?.to_string(),
                }
            }
            0x1600 => DbError::CdcWriteFailure,
            0x1700 => DbError::CasWriteUnknown {
                consistency: r.read_consistency()?,
                received: r.read_int()?,
                block_for: r.read_int()?,
            },
            0x2000 => DbError::SyntaxError,
            0x2100 => DbError::Unauthorized,
            0x2200 => DbError::Invalid,
            0x2300 => DbError::ConfigError,
            0x2400 => DbError::AlreadyExists {
                keyspace: r.read_string()?.to_string(),
                table: r.read_string()?.to_string(),
            },
            0x2500 => DbError::Unprepared {
                id: Bytes::copy_from_slice(r.read_short_bytes()?),
            },
            other => DbError::Other(other),
        };
        Ok(ErrorResponse { error, message })
    }
}

impl fmt::Display for ErrorResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Error from server: code={:04x} [{}] message=\"{}\"",
            self.error.code(),
            self.error.name(),
            self.message
        )
    }
}

impl std::error::Error for ErrorResponse {}

impl From<ProtocolError> for ErrorResponse {
    fn from(e: ProtocolError) -> ErrorResponse {
        ErrorResponse::protocol(e.to_string())
    }
}

impl From<FrameError> for ErrorResponse {
    fn from(e: FrameError) -> ErrorResponse {
        ErrorResponse::protocol(e.to_string())
    }
}

fn write_failures(out: &mut Vec<u8>, version: u8, num_failures: i32, reason_map: &[(IpAddr, u16)]) {
    if version >= 5 {
        types::write_int(out, i32::try_from(reason_map.len()).unwrap_or(i32::MAX));
        for (addr, code) in reason_map {
            types::write_inetaddr(out, *addr);
            types::write_short(out, *code);
        }
    } else {
        types::write_int(out, num_failures);
    }
}

fn read_failures(
    r: &mut Reader<'_>,
    version: u8,
) -> Result<(i32, Vec<(IpAddr, u16)>), ProtocolError> {
    let n = r.read_int()?;
    if version < 5 {
        return Ok((n, Vec::new()));
    }
    let count = usize::try_from(n).map_err(|_| ProtocolError::InvalidLength {
        what: "<reasonmap>",
        length: i64::from(n),
    })?;
    // Each entry is at least 1 + 4 + 2 bytes.
    let mut map = Vec::with_capacity(count.min(r.remaining() / 7));
    for _ in 0..count {
        let addr = r.read_inetaddr()?;
        let code = r.read_short()?;
        map.push((addr, code));
    }
    Ok((n, map))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(version: u8, e: &ErrorResponse) -> ErrorResponse {
        let mut out = Vec::new();
        e.encode(version, &mut out);
        let mut r = Reader::new(&out);
        let back = ErrorResponse::decode(version, &mut r).expect("decodes");
        assert_eq!(r.remaining(), 0, "whole body consumed");
        // Every strict prefix fails cleanly.
        for cut in 0..out.len() {
            let mut r = Reader::new(&out[..cut]);
            assert!(ErrorResponse::decode(version, &mut r).is_err(), "cut {cut}");
        }
        back
    }

    #[test]
    fn every_error_round_trips() {
        let ip: IpAddr = "10.0.0.7".parse().expect("ip");
        let errors = vec![
            ErrorResponse::server("boom"),
            ErrorResponse::protocol("bad"),
            ErrorResponse::authentication("no"),
            ErrorResponse::unavailable(Consistency::LocalQuorum, 2, 1),
            ErrorResponse::overloaded("busy"),
            ErrorResponse::new(DbError::IsBootstrapping, "b"),
            ErrorResponse::new(DbError::TruncateError, "t"),
            ErrorResponse::new(
                DbError::WriteTimeout {
                    consistency: Consistency::Quorum,
                    received: 1,
                    block_for: 2,
                    write_type: "SIMPLE".into(),
                },
                "wt",
            ),
            ErrorResponse::new(
                DbError::WriteTimeout {
                    consistency: Consistency::Serial,
                    received: 0,
                    block_for: 2,
                    write_type: "CAS".into(),
                },
                "cas",
            ),
            ErrorResponse::new(
                DbError::ReadTimeout {
                    consistency: Consistency::One,
                    received: 0,
                    block_for: 1,
                    data_present: true,
                },
                "rt",
            ),
            ErrorResponse::new(
                DbError::FunctionFailure {
                    keyspace: "ks".into(),
                    function: "f".into(),
                    arg_types: vec!["int".into(), "text".into()],
                },
                "ff",
            ),
            ErrorResponse::new(DbError::CdcWriteFailure, "cdc"),
            ErrorResponse::new(
                DbError::CasWriteUnknown {
                    consistency: Consistency::Serial,
                    received: 1,
                    block_for: 2,
                },
                "cu",
            ),
            ErrorResponse::syntax("line 1:0 no viable alternative at input 'SELEC'"),
            ErrorResponse::unauthorized("u"),
            ErrorResponse::invalid("unconfigured table peers_v2"),
            ErrorResponse::config("c"),
            ErrorResponse::keyspace_exists("ks"),
            ErrorResponse::table_exists("ks", "t"),
            ErrorResponse::unprepared(Bytes::from_static(&[0xde, 0xad])),
            ErrorResponse::new(DbError::Other(0x7777), "?"),
        ];
        for version in [3u8, 4, 5] {
            for e in &errors {
                let expected = e.for_version(version);
                assert_eq!(&round_trip(version, e), &*expected, "v{version} {e}");
            }
        }
        // Failures: v4 keeps the count, v5 the reason map.
        let rf = ErrorResponse::new(
            DbError::ReadFailure {
                consistency: Consistency::All,
                received: 1,
                block_for: 3,
                num_failures: 1,
                reason_map: vec![(ip, 0x0001)],
                data_present: false,
            },
            "rf",
        );
        let back4 = round_trip(4, &rf);
        assert!(matches!(
            back4.error,
            DbError::ReadFailure { num_failures: 1, ref reason_map, .. } if reason_map.is_empty()
        ));
        assert_eq!(round_trip(5, &rf), rf);
        let wf = ErrorResponse::new(
            DbError::WriteFailure {
                consistency: Consistency::EachQuorum,
                received: 2,
                block_for: 4,
                num_failures: 1,
                reason_map: vec![(ip, 0x0000)],
                write_type: "BATCH".into(),
            },
            "wf",
        );
        assert_eq!(round_trip(5, &wf), wf);
        assert!(matches!(
            round_trip(4, &wf).error,
            DbError::WriteFailure {
                num_failures: 1,
                ..
            }
        ));
    }

    #[test]
    fn v3_clients_get_timeouts_for_failures() {
        let ip: IpAddr = "127.0.0.85".parse().unwrap();
        let wf = ErrorResponse::new(
            DbError::WriteFailure {
                consistency: Consistency::Quorum,
                received: 1,
                block_for: 2,
                num_failures: 2,
                reason_map: vec![(ip, 0), (ip, 3)],
                write_type: "SIMPLE".into(),
            },
            "commitlog failure: disk full",
        );
        assert_eq!(
            round_trip(3, &wf),
            ErrorResponse::new(
                DbError::WriteTimeout {
                    consistency: Consistency::Quorum,
                    received: 1,
                    block_for: 2,
                    write_type: "SIMPLE".into(),
                },
                "commitlog failure: disk full",
            )
        );
        let rf = ErrorResponse::new(
            DbError::ReadFailure {
                consistency: Consistency::One,
                received: 0,
                block_for: 1,
                num_failures: 1,
                reason_map: vec![(ip, 0)],
                data_present: false,
            },
            "corrupt",
        );
        assert!(matches!(
            round_trip(3, &rf).error,
            DbError::ReadTimeout {
                received: 0,
                block_for: 1,
                data_present: false,
                ..
            }
        ));
        // v4 and v5 keep the failure codes.
        assert_eq!(round_trip(4, &wf).error.code(), 0x1500);
        assert_eq!(round_trip(5, &rf).error.code(), 0x1300);
    }

    /// Byte layout of the spec (v4 section 9, v5 section 9): WriteFailure is
    /// <cl><received><blockfor><numfailures|reasonmap><writeType>.
    #[test]
    fn wire_layout_of_write_failure() {
        let ip: IpAddr = "127.0.0.85".parse().unwrap();
        let wf = ErrorResponse::new(
            DbError::WriteFailure {
                consistency: Consistency::One,
                received: 0,
                block_for: 1,
                num_failures: 1,
                reason_map: vec![(ip, 3)],
                write_type: "CAS".into(),
            },
            "x",
        );
        let mut v4 = Vec::new();
        wf.encode(4, &mut v4);
        assert_eq!(
            v4,
            [
                0, 0, 0x15, 0, 0, 1, b'x', 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 3, b'C',
                b'A', b'S'
            ]
        );
        let mut v5 = Vec::new();
        wf.encode(5, &mut v5);
        assert_eq!(
            v5,
            [
                0, 0, 0x15, 0, 0, 1, b'x', 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 4, 127, 0, 0,
                85, 0, 3, 0, 3, b'C', b'A', b'S'
            ]
        );
    }

    #[test]
    fn failure_reason_codes() {
        for c in 0..10u16 {
            assert_eq!(RequestFailureReason::from_code(c).code(), c);
        }
        assert_eq!(RequestFailureReason::IncompatibleSchema.code(), 3);
        assert_eq!(RequestFailureReason::Unknown.to_string(), "UNKNOWN");
    }

    #[test]
    fn wire_layout_of_unavailable() {
        let mut out = Vec::new();
        ErrorResponse::new(
            DbError::Unavailable {
                consistency: Consistency::Quorum,
                required: 2,
                alive: 1,
            },
            "x",
        )
        .encode(4, &mut out);
        assert_eq!(
            out,
            [0, 0, 0x10, 0, 0, 1, b'x', 0, 4, 0, 0, 0, 2, 0, 0, 0, 1]
        );
    }

    #[test]
    fn codes() {
        assert_eq!(ErrorResponse::invalid("x").error.code(), 0x2200);
        assert_eq!(ErrorResponse::syntax("x").error.code(), 0x2000);
        assert_eq!(ErrorResponse::protocol("x").error.code(), 0x000A);
        assert_eq!(ErrorResponse::server("x").error.code(), 0);
        assert_eq!(
            ErrorResponse::unprepared(Bytes::from_static(b"\x01"))
                .error
                .code(),
            0x2500
        );
    }
}

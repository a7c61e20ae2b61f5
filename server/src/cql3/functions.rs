//! Cassandra's native scalar functions (`system.*`): time functions,
//! UUID generators, blob conversions and the JSON functions.
//!
//! Aggregates (`count`, `min`, ...), `token()`, `writetime()` and `ttl()`
//! belong to the selection code, not here.
//!
//! UUID generation keeps per-process state, as Cassandra's `UUIDGen` does:
//! the time-UUID clock sequence and node are chosen once per process and
//! the 100ns tick counter is strictly increasing, so two `now()` calls never
//! return the same value.

use std::cell::Cell;
use std::sync::atomic::{AtomicI64, Ordering as AtomicOrdering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use proto::value::{self, ColumnType, CqlValue};

use super::values;

/// Number of 100ns intervals between the UUID epoch (1582-10-15) and the
/// Unix epoch.
pub const UUID_EPOCH_OFFSET: i64 = 0x01B2_1DD2_1381_4000;

/// Clock-sequence-and-node half of `minTimeUUID` (the smallest under
/// Cassandra's signed-byte comparison).
const MIN_CLOCK_SEQ_AND_NODE: u64 = 0x8080_8080_8080_8080;
/// Clock-sequence-and-node half of `maxTimeUUID`.
const MAX_CLOCK_SEQ_AND_NODE: u64 = 0x7f7f_7f7f_7f7f_7f7f;

/// One native function signature.
#[derive(Debug, Clone, PartialEq)]
pub struct Signature {
    /// Lower-case name without the `system.` prefix.
    pub name: String,
    /// Parameter types.
    pub params: Vec<ColumnType>,
    /// Return type. For `fromjson` it is the receiver's type and is given
    /// here as `Text` only as a placeholder.
    pub ret: ColumnType,
}

/// The native types that have `<type>asblob` / `blobas<type>` functions
/// (every native type except `blob`; `varcharasblob`/`blobasvarchar` exist
/// too, as aliases of the `text` ones).
pub const BLOB_CONVERTIBLE: &[ColumnType] = &[
    ColumnType::Ascii,
    ColumnType::BigInt,
    ColumnType::Boolean,
    ColumnType::Counter,
    ColumnType::Date,
    ColumnType::Decimal,
    ColumnType::Double,
    ColumnType::Duration,
    ColumnType::Float,
    ColumnType::Inet,
    ColumnType::Int,
    ColumnType::SmallInt,
    ColumnType::Text,
    ColumnType::Time,
    ColumnType::Timestamp,
    ColumnType::Timeuuid,
    ColumnType::TinyInt,
    ColumnType::Uuid,
    ColumnType::Varint,
];

/// Strips a `system.` keyspace and lower-cases.
pub fn normalize_name(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    match lower.strip_prefix("system.") {
        Some(rest) => rest.to_string(),
        None => lower,
    }
}

fn sig(name: &str, params: Vec<ColumnType>, ret: ColumnType) -> Signature {
    Signature {
        name: name.to_string(),
        params,
        ret,
    }
}

/// All overloads of the native function `name`; `None` if there is no such
/// function. `tojson` is generic (any single argument) and `fromjson` takes
/// its return type from the receiver, so both are reported with a single
/// placeholder signature.
pub fn overloads(name: &str) -> Option<Vec<Signature>> {
    use ColumnType as T;
    let name = normalize_name(name);
    let n = name.as_str();
    let v = match n {
        "now" | "currenttimeuuid" => vec![sig(n, vec![], T::Timeuuid)],
        "uuid" => vec![sig(n, vec![], T::Uuid)],
        "currenttimestamp" => vec![sig(n, vec![], T::Timestamp)],
        "currentdate" => vec![sig(n, vec![], T::Date)],
        "currenttime" => vec![sig(n, vec![], T::Time)],
        "mintimeuuid" | "maxtimeuuid" => vec![sig(n, vec![T::Timestamp], T::Timeuuid)],
        "dateof" => vec![sig(n, vec![T::Timeuuid], T::Timestamp)],
        "unixtimestampof" => vec![sig(n, vec![T::Timeuuid], T::BigInt)],
        "totimestamp" => vec![
            sig(n, vec![T::Timeuuid], T::Timestamp),
            sig(n, vec![T::Date], T::Timestamp),
        ],
        "todate" => vec![
            sig(n, vec![T::Timeuuid], T::Date),
            sig(n, vec![T::Timestamp], T::Date),
        ],
        "tounixtimestamp" => vec![
            sig(n, vec![T::Timeuuid], T::BigInt),
            sig(n, vec![T::Timestamp], T::BigInt),
            sig(n, vec![T::Date], T::BigInt),
        ],
        "tojson" => vec![sig(n, vec![T::Blob], T::Text)],
        "fromjson" => vec![sig(n, vec![T::Text], T::Text)],
        _ => {
            if let Some(t) = n.strip_suffix("asblob") {
                let ty =
                    ColumnType::native_from_name(t).filter(|t| BLOB_CONVERTIBLE.contains(t))?;
                vec![sig(n, vec![ty], T::Blob)]
            } else if let Some(t) = n.strip_prefix("blobas") {
                let ty =
                    ColumnType::native_from_name(t).filter(|t| BLOB_CONVERTIBLE.contains(t))?;
                vec![sig(n, vec![T::Blob], ty)]
            } else {
                return None;
            }
        }
    };
    Some(v)
}

/// True when values of type `from` can be stored in a receiver of type
/// `to` unchanged (Cassandra's `isValueCompatibleWith`).
pub fn is_value_compatible(from: &ColumnType, to: &ColumnType) -> bool {
    use ColumnType as T;
    let (from, to) = (from.unfrozen(), to.unfrozen());
    if from == to {
        return true;
    }
    matches!(
        (from, to),
        (_, T::Blob)
            | (T::Timeuuid, T::Uuid)
            | (T::Ascii, T::Text)
            | (T::BigInt, T::Timestamp)
            | (T::Timestamp, T::BigInt)
            | (T::Int, T::Varint)
            | (T::BigInt, T::Varint)
            | (T::Counter, T::BigInt)
    ) || match (from, to) {
        (T::List(a), T::List(b)) | (T::Set(a), T::Set(b)) => a.unfrozen() == b.unfrozen(),
        (T::Map(ak, av), T::Map(bk, bv)) => {
            ak.unfrozen() == bk.unfrozen() && av.unfrozen() == bv.unfrozen()
        }
        _ => false,
    }
}

fn unknown(name: &str) -> String {
    format!("Unknown function '{name}'")
}

fn signature_list(sigs: &[Signature]) -> String {
    sigs.iter()
        .map(|s| {
            format!(
                "system.{}({}) -> {}",
                s.name,
                s.params
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                s.ret
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Picks the overload of `name` whose parameters exactly match
/// `arg_types` (or, failing that, the single one they are value-compatible
/// with).
pub fn resolve(name: &str, arg_types: &[ColumnType]) -> Result<Signature, String> {
    let n = normalize_name(name);
    let sigs = overloads(&n).ok_or_else(|| unknown(name))?;
    if n == "tojson" {
        if arg_types.len() != 1 {
            return Err(format!(
                "toJson() only accepts one argument (got {})",
                arg_types.len()
            ));
        }
        return Ok(sig("tojson", arg_types.to_vec(), ColumnType::Text));
    }
    let arity: Vec<&Signature> = sigs
        .iter()
        .filter(|s| s.params.len() == arg_types.len())
        .collect();
    if arity.is_empty() {
        return Err(format!(
            "Invalid number of arguments in call to function system.{}: {} required but {} provided",
            n,
            sigs[0].params.len(),
            arg_types.len()
        ));
    }
    if let Some(s) = arity.iter().find(|s| {
        s.params
            .iter()
            .zip(arg_types)
            .all(|(p, a)| p.unfrozen() == a.unfrozen())
    }) {
        return Ok((*s).clone());
    }
    let compatible: Vec<&&Signature> = arity
        .iter()
        .filter(|s| {
            s.params
                .iter()
                .zip(arg_types)
                .all(|(p, a)| is_value_compatible(a, p))
        })
        .collect();
    match compatible.as_slice() {
        [one] => Ok((**one).clone()),
        [] => Err(format!(
            "Invalid call to function system.{} with arguments ({}): none of its type signatures match ({})",
            n,
            arg_types.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(", "),
            signature_list(&sigs)
        )),
        many => Err(format!(
            "Ambiguous call to function system.{} (can be matched by following signatures: {}): use type casts to disambiguate",
            n,
            signature_list(&many.iter().map(|s| (**s).clone()).collect::<Vec<_>>())
        )),
    }
}

/// The result type of `name(arg_types...)`, for result metadata. `fromjson`
/// needs a receiver and is an error here.
pub fn return_type(name: &str, arg_types: &[ColumnType]) -> Result<ColumnType, String> {
    if normalize_name(name) == "fromjson" {
        return Err("fromJson() cannot be used in the selection clause".into());
    }
    Ok(resolve(name, arg_types)?.ret)
}

// ---------------------------------------------------------------------------
// Clocks and UUIDs
// ---------------------------------------------------------------------------

/// Microseconds since the Unix epoch, from the system clock.
pub fn current_micros() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_micros() as i64,
        Err(e) => -(e.duration().as_micros() as i64),
    }
}

fn urandom_u64() -> u64 {
    use std::io::Read;
    let mut buf = [0u8; 8];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        if f.read_exact(&mut buf).is_ok() {
            return u64::from_le_bytes(buf);
        }
    }
    // Fallback: time and address entropy, mixed.
    let t = current_micros() as u64;
    let addr = &buf as *const _ as u64;
    splitmix(t ^ addr.rotate_left(32))
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

thread_local! {
    static RNG: Cell<u64> = const { Cell::new(0) };
}

/// A random `u64` from a per-thread xorshift64* generator seeded from
/// `/dev/urandom`. Not for cryptography.
pub fn random_u64() -> u64 {
    RNG.with(|s| {
        let mut x = s.get();
        if x == 0 {
            x = urandom_u64() | 1;
        }
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        s.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    })
}

/// A random (version 4) UUID.
pub fn random_uuid() -> [u8; 16] {
    let mut u = [0u8; 16];
    u[..8].copy_from_slice(&random_u64().to_be_bytes());
    u[8..].copy_from_slice(&random_u64().to_be_bytes());
    u[6] = (u[6] & 0x0f) | 0x40;
    u[8] = (u[8] & 0x3f) | 0x80;
    u
}

/// This process's clock sequence and node (variant bits set, random node
/// with the multicast bit, as RFC 4122 §4.5 allows).
fn clock_seq_and_node() -> u64 {
    static CSN: OnceLock<u64> = OnceLock::new();
    *CSN.get_or_init(|| {
        let r = urandom_u64();
        let node = (r & 0xffff_ffff_ffff) | 0x0100_0000_0000;
        let clock = (r >> 48) & 0x3fff;
        0x8000_0000_0000_0000 | (clock << 48) | node
    })
}

/// Builds a version 1 UUID from 100ns ticks since the UUID epoch and the
/// clock-sequence-and-node half.
pub fn make_timeuuid(ticks: i64, clock_seq_and_node: u64) -> [u8; 16] {
    let t = ticks as u64;
    let msb: u64 =
        ((t & 0xffff_ffff) << 32) | (((t >> 32) & 0xffff) << 16) | 0x1000 | ((t >> 48) & 0x0fff);
    let mut u = [0u8; 16];
    u[..8].copy_from_slice(&msb.to_be_bytes());
    u[8..].copy_from_slice(&clock_seq_and_node.to_be_bytes());
    u
}

/// The 100ns ticks since the UUID epoch stored in a time UUID.
pub fn timeuuid_ticks(u: &[u8; 16]) -> i64 {
    let msb = u64::from_be_bytes(u[..8].try_into().unwrap_or([0; 8]));
    let time_low = msb >> 32;
    let time_mid = (msb >> 16) & 0xffff;
    let time_hi = msb & 0x0fff;
    ((time_hi << 48) | (time_mid << 32) | time_low) as i64
}

/// Milliseconds since the Unix epoch of a time UUID.
pub fn timeuuid_millis(u: &[u8; 16]) -> i64 {
    (timeuuid_ticks(u) - UUID_EPOCH_OFFSET).div_euclid(10_000)
}

/// A new, unique, time-ordered version 1 UUID for the current time: the
/// tick counter never repeats within the process.
pub fn now_timeuuid() -> [u8; 16] {
    static LAST: AtomicI64 = AtomicI64::new(0);
    let now = current_micros()
        .saturating_mul(10)
        .saturating_add(UUID_EPOCH_OFFSET);
    let mut last = LAST.load(AtomicOrdering::Relaxed);
    let ticks = loop {
        let candidate = if now > last { now } else { last + 1 };
        match LAST.compare_exchange_weak(
            last,
            candidate,
            AtomicOrdering::Relaxed,
            AtomicOrdering::Relaxed,
        ) {
            Ok(_) => break candidate,
            Err(actual) => last = actual,
        }
    };
    make_timeuuid(ticks, clock_seq_and_node())
}

/// The smallest time UUID at `ms` (Cassandra's `minTimeuuid`).
pub fn min_timeuuid(ms: i64) -> [u8; 16] {
    make_timeuuid(
        ms.saturating_mul(10_000).saturating_add(UUID_EPOCH_OFFSET),
        MIN_CLOCK_SEQ_AND_NODE,
    )
}

/// The largest time UUID at `ms` (Cassandra's `maxTimeuuid`).
pub fn max_timeuuid(ms: i64) -> [u8; 16] {
    make_timeuuid(
        ms.saturating_mul(10_000)
            .saturating_add(9_999)
            .saturating_add(UUID_EPOCH_OFFSET),
        MAX_CLOCK_SEQ_AND_NODE,
    )
}

/// Milliseconds to the `date` wire value, as Cassandra converts
/// (`Duration.ofMillis(ms).toDays()`, which truncates whole seconds toward
/// zero).
pub fn millis_to_date(ms: i64) -> Result<u32, String> {
    let days = ms.div_euclid(1000) / 86_400;
    let wire = days + value::DATE_EPOCH as i64;
    u32::try_from(wire).map_err(|_| format!("Timestamp {ms} is out of the range of the date type"))
}

/// The `date` wire value to milliseconds since the epoch.
pub fn date_to_millis(d: u32) -> i64 {
    (d as i64 - value::DATE_EPOCH as i64) * 86_400_000
}

// ---------------------------------------------------------------------------
// Calls
// ---------------------------------------------------------------------------

/// Calls the native function `name` using the system clock for "now".
/// `args[i]` is `None` for null. Returns the result type and value (`None`
/// = null). `receiver` is needed by `fromjson` only.
pub fn call(
    name: &str,
    args: &[Option<CqlValue>],
    arg_types: &[ColumnType],
    receiver: Option<&ColumnType>,
) -> Result<(ColumnType, Option<CqlValue>), String> {
    call_at(name, args, arg_types, receiver, current_micros())
}

/// [`call`] with the statement's "now" (microseconds since the epoch) for
/// `currenttimestamp()`, `currentdate()` and `currenttime()`.
pub fn call_at(
    name: &str,
    args: &[Option<CqlValue>],
    arg_types: &[ColumnType],
    receiver: Option<&ColumnType>,
    now_micros: i64,
) -> Result<(ColumnType, Option<CqlValue>), String> {
    let n = normalize_name(name);
    if args.len() != arg_types.len() {
        return Err(format!(
            "Invalid call to function system.{n}: {} arguments but {} types",
            args.len(),
            arg_types.len()
        ));
    }
    if n == "fromjson" {
        let ty = receiver.ok_or("fromJson() cannot be used in the selection clause")?;
        if args.len() != 1 {
            return Err(format!(
                "fromJson() only accepts one argument (got {})",
                args.len()
            ));
        }
        return match &args[0] {
            None => Ok((ty.clone(), None)),
            Some(CqlValue::Text(s)) | Some(CqlValue::Ascii(s)) => {
                Ok((ty.clone(), values::from_json(s, ty)?))
            }
            Some(other) => Err(format!(
                "fromJson() requires a text argument, got {}",
                value::to_cql_literal(other)
            )),
        };
    }
    let sig = resolve(&n, arg_types)?;
    if n == "tojson" {
        let json = values::to_json(args[0].as_ref(), &arg_types[0]);
        return Ok((ColumnType::Text, Some(CqlValue::Text(json))));
    }
    let ret = sig.ret.clone();
    // All remaining native functions return null on null input.
    if args.iter().any(|a| a.is_none()) {
        return Ok((ret, None));
    }
    let arg = |i: usize| args.get(i).and_then(|a| a.as_ref());
    let result = match n.as_str() {
        "now" | "currenttimeuuid" => CqlValue::Timeuuid(now_timeuuid()),
        "uuid" => CqlValue::Uuid(random_uuid()),
        "currenttimestamp" => CqlValue::Timestamp(now_micros.div_euclid(1000)),
        "currentdate" => CqlValue::Date(millis_to_date(now_micros.div_euclid(1000))?),
        "currenttime" => CqlValue::Time(now_micros.rem_euclid(86_400_000_000) * 1000),
        "mintimeuuid" | "maxtimeuuid" => {
            let ms = as_millis(arg(0))?;
            CqlValue::Timeuuid(if n == "mintimeuuid" {
                min_timeuuid(ms)
            } else {
                max_timeuuid(ms)
            })
        }
        "dateof" | "totimestamp" => CqlValue::Timestamp(as_millis(arg(0))?),
        "unixtimestampof" | "tounixtimestamp" => CqlValue::BigInt(as_millis(arg(0))?),
        "todate" => match arg(0) {
            Some(CqlValue::Date(d)) => CqlValue::Date(*d),
            a => CqlValue::Date(millis_to_date(as_millis(a)?)?),
        },
        _ if n.ends_with("asblob") => {
            let v = arg(0).ok_or_else(|| unknown(name))?;
            CqlValue::Blob(value::serialize_to_vec(v))
        }
        _ if n.starts_with("blobas") => {
            let bytes: &[u8] = match arg(0) {
                Some(CqlValue::Blob(b)) => b,
                Some(CqlValue::Empty) => &[],
                _ => return Err(format!("Invalid argument to function system.{n}")),
            };
            if value::validate(&ret, bytes).is_err() {
                return Err(format!(
                    "In call to function system.{n}, value 0x{} is not a valid binary representation for type {}",
                    bytes.iter().map(|b| format!("{b:02x}")).collect::<String>(),
                    ret
                ));
            }
            value::deserialize(&ret, bytes).map_err(|e| e.0)?
        }
        _ => return Err(unknown(name)),
    };
    Ok((ret, Some(result)))
}

/// Milliseconds since the epoch of a timestamp, time UUID or date value.
fn as_millis(v: Option<&CqlValue>) -> Result<i64, String> {
    match v {
        Some(CqlValue::Timestamp(ms)) | Some(CqlValue::BigInt(ms)) => Ok(*ms),
        Some(CqlValue::Timeuuid(u)) | Some(CqlValue::Uuid(u)) => Ok(timeuuid_millis(u)),
        Some(CqlValue::Date(d)) => Ok(date_to_millis(*d)),
        Some(CqlValue::Empty) => Err("Invalid empty value in time function argument".into()),
        other => Err(format!("Invalid time function argument: {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> i64 {
        match values::literal_to_value(
            &super::super::ast::Literal::String(s.into()),
            &ColumnType::Timestamp,
        )
        .unwrap()
        {
            CqlValue::Timestamp(ms) => ms,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn now_is_unique_monotonic_v1() {
        let mut prev = now_timeuuid();
        for _ in 0..1000 {
            let u = now_timeuuid();
            assert_eq!(u[6] >> 4, 1);
            assert_eq!(u[8] & 0xc0, 0x80);
            assert!(timeuuid_ticks(&u) > timeuuid_ticks(&prev));
            prev = u;
        }
        let ms = timeuuid_millis(&prev);
        assert!((ms - current_micros() / 1000).abs() < 5_000);
    }

    #[test]
    fn uuid_v4() {
        let a = random_uuid();
        let b = random_uuid();
        assert_ne!(a, b);
        assert_eq!(a[6] >> 4, 4);
        assert_eq!(a[8] & 0xc0, 0x80);
        let (t, v) = call("uuid", &[], &[], None).unwrap();
        assert_eq!(t, ColumnType::Uuid);
        assert!(matches!(v, Some(CqlValue::Uuid(_))));
    }

    #[test]
    fn min_max_timeuuid() {
        let ms = ts("2013-02-02 10:00:00+0000");
        let (_, min) = call(
            "mintimeuuid",
            &[Some(CqlValue::Timestamp(ms))],
            &[ColumnType::Timestamp],
            None,
        )
        .unwrap();
        let (_, max) = call(
            "maxtimeuuid",
            &[Some(CqlValue::Timestamp(ms))],
            &[ColumnType::Timestamp],
            None,
        )
        .unwrap();
        let (Some(CqlValue::Timeuuid(min)), Some(CqlValue::Timeuuid(max))) = (min, max) else {
            panic!()
        };
        assert_eq!(timeuuid_millis(&min), ms);
        assert_eq!(timeuuid_millis(&max), ms);
        assert_eq!(&min[8..], &[0x80; 8]);
        assert_eq!(&max[8..], &[0x7f; 8]);
        let mid = make_timeuuid(ms * 10_000 + UUID_EPOCH_OFFSET + 5, 0x8000_0000_0000_0001);
        let t = ColumnType::Timeuuid;
        use std::cmp::Ordering::*;
        assert_eq!(
            value::compare_values(&t, &CqlValue::Timeuuid(min), &CqlValue::Timeuuid(mid)),
            Less
        );
        assert_eq!(
            value::compare_values(&t, &CqlValue::Timeuuid(mid), &CqlValue::Timeuuid(max)),
            Less
        );
        // A known Cassandra value: minTimeuuid('2013-01-01 00:05+0000').
        let u = min_timeuuid(ts("2013-01-01 00:05+0000"));
        assert_eq!(
            value::format_uuid(&u),
            "e23f1e00-53a6-11e2-8080-808080808080"
        );
    }

    #[test]
    fn time_conversions() {
        let u = value::parse_uuid("e23f1e00-53a6-11e2-8080-808080808080").unwrap();
        let tu = [Some(CqlValue::Timeuuid(u))];
        let (t, v) = call("totimestamp", &tu, &[ColumnType::Timeuuid], None).unwrap();
        assert_eq!(t, ColumnType::Timestamp);
        assert_eq!(v, Some(CqlValue::Timestamp(ts("2013-01-01 00:05+0000"))));
        let (t, v) = call("todate", &tu, &[ColumnType::Timeuuid], None).unwrap();
        assert_eq!(t, ColumnType::Date);
        assert_eq!(v, Some(CqlValue::Date(value::DATE_EPOCH + 15706)));
        let (_, v) = call("tounixtimestamp", &tu, &[ColumnType::Timeuuid], None).unwrap();
        assert_eq!(v, Some(CqlValue::BigInt(1_356_998_700_000)));
        let (_, v) = call("unixtimestampof", &tu, &[ColumnType::Timeuuid], None).unwrap();
        assert_eq!(v, Some(CqlValue::BigInt(1_356_998_700_000)));
        let d = [Some(CqlValue::Date(value::DATE_EPOCH + 1))];
        let (_, v) = call("totimestamp", &d, &[ColumnType::Date], None).unwrap();
        assert_eq!(v, Some(CqlValue::Timestamp(86_400_000)));
        let (_, v) = call("tounixtimestamp", &d, &[ColumnType::Date], None).unwrap();
        assert_eq!(v, Some(CqlValue::BigInt(86_400_000)));
        // Java's truncation: -1ms is still day 0, -1 day - 1s is day -1.
        let (_, v) = call(
            "todate",
            &[Some(CqlValue::Timestamp(-1))],
            &[ColumnType::Timestamp],
            None,
        )
        .unwrap();
        assert_eq!(v, Some(CqlValue::Date(value::DATE_EPOCH)));
        let (_, v) = call(
            "todate",
            &[Some(CqlValue::Timestamp(-86_401_000))],
            &[ColumnType::Timestamp],
            None,
        )
        .unwrap();
        assert_eq!(v, Some(CqlValue::Date(value::DATE_EPOCH - 1)));
        // null in, null out
        let (_, v) = call("totimestamp", &[None], &[ColumnType::Date], None).unwrap();
        assert_eq!(v, None);
        let now = 1_356_998_700_000_123;
        let (_, v) = call_at("currenttimestamp", &[], &[], None, now).unwrap();
        assert_eq!(v, Some(CqlValue::Timestamp(1_356_998_700_000)));
        let (_, v) = call_at("currentdate", &[], &[], None, now).unwrap();
        assert_eq!(v, Some(CqlValue::Date(value::DATE_EPOCH + 15706)));
        let (_, v) = call_at("currenttime", &[], &[], None, now).unwrap();
        assert_eq!(v, Some(CqlValue::Time(300_000_123_000)));
    }

    #[test]
    fn blob_conversions() {
        let (t, v) = call(
            "intasblob",
            &[Some(CqlValue::Int(1))],
            &[ColumnType::Int],
            None,
        )
        .unwrap();
        assert_eq!(t, ColumnType::Blob);
        assert_eq!(v, Some(CqlValue::Blob(vec![0, 0, 0, 1])));
        let (t, v) = call(
            "system.blobasint",
            &[Some(CqlValue::Blob(vec![0, 0, 0, 1]))],
            &[ColumnType::Blob],
            None,
        )
        .unwrap();
        assert_eq!(t, ColumnType::Int);
        assert_eq!(v, Some(CqlValue::Int(1)));
        let err = call(
            "blobasint",
            &[Some(CqlValue::Blob(vec![0, 1]))],
            &[ColumnType::Blob],
            None,
        )
        .unwrap_err();
        assert_eq!(
            err,
            "In call to function system.blobasint, value 0x0001 is not a valid binary representation for type int"
        );
        for t in BLOB_CONVERTIBLE {
            let name = t.cql_name().unwrap();
            assert!(overloads(&format!("{name}asblob")).is_some(), "{name}");
            assert_eq!(
                return_type(&format!("blobas{name}"), &[ColumnType::Blob]).unwrap(),
                *t
            );
        }
        assert_eq!(
            return_type("blobasvarchar", &[ColumnType::Blob]).unwrap(),
            ColumnType::Text
        );
        assert!(overloads("varcharasblob").is_some());
        assert!(overloads("blobasblob").is_none());
        let (_, v) = call(
            "textasblob",
            &[Some(CqlValue::Text("hi".into()))],
            &[ColumnType::Text],
            None,
        )
        .unwrap();
        assert_eq!(v, Some(CqlValue::Blob(b"hi".to_vec())));
    }

    #[test]
    fn resolution_and_errors() {
        assert_eq!(
            call("nosuch", &[], &[], None).unwrap_err(),
            "Unknown function 'nosuch'"
        );
        assert_eq!(return_type("now", &[]).unwrap(), ColumnType::Timeuuid);
        assert_eq!(
            return_type("todate", &[ColumnType::Timestamp]).unwrap(),
            ColumnType::Date
        );
        assert_eq!(
            return_type("tojson", &[ColumnType::Int]).unwrap(),
            ColumnType::Text
        );
        assert!(return_type("now", &[ColumnType::Int])
            .unwrap_err()
            .contains("Invalid number of arguments"));
        assert!(return_type("todate", &[ColumnType::Int])
            .unwrap_err()
            .contains("none of its type signatures"));
        assert!(return_type("fromjson", &[ColumnType::Text]).is_err());
        // bigint is value-compatible with timestamp
        assert_eq!(
            return_type("todate", &[ColumnType::BigInt]).unwrap(),
            ColumnType::Date
        );
    }

    #[test]
    fn json_functions() {
        let (t, v) = call(
            "tojson",
            &[Some(CqlValue::Int(3))],
            &[ColumnType::Int],
            None,
        )
        .unwrap();
        assert_eq!(t, ColumnType::Text);
        assert_eq!(v, Some(CqlValue::Text("3".into())));
        let (_, v) = call("tojson", &[None], &[ColumnType::Int], None).unwrap();
        assert_eq!(v, Some(CqlValue::Text("null".into())));
        let lt = ColumnType::List(Box::new(ColumnType::Int));
        let (t, v) = call(
            "fromjson",
            &[Some(CqlValue::Text("[1, 2]".into()))],
            &[ColumnType::Text],
            Some(&lt),
        )
        .unwrap();
        assert_eq!(t, lt);
        assert_eq!(
            v,
            Some(CqlValue::List(vec![CqlValue::Int(1), CqlValue::Int(2)]))
        );
        assert!(call(
            "fromjson",
            &[Some(CqlValue::Text("1".into()))],
            &[ColumnType::Text],
            None
        )
        .is_err());
    }
}

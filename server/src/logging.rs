//! The node's logger: one line per record on stderr,
//! `2024-05-01T12:00:00.123Z INFO  [shard 1] transport: message`.
//!
//! The level comes from `--log-level` (the config's `log_level`) or the
//! `TESSERA_LOG` environment variable, which wins so an operator can turn on
//! debug output without editing the config. `TESSERA_LOG` also accepts
//! per-target levels: `TESSERA_LOG=info,server::gms=debug`.

#![warn(missing_docs)]

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use log::{LevelFilter, Log, Metadata, Record};

/// The logger. Built by [`init`]; public so tests and tools can format
/// records the same way.
#[derive(Debug)]
pub struct Logger {
    default: LevelFilter,
    /// `(target prefix, level)`, longest prefix first.
    targets: Vec<(String, LevelFilter)>,
}

impl Logger {
    /// A logger with `default` for every target, overridden by `spec`
    /// (`TESSERA_LOG` syntax: `LEVEL` or `LEVEL,target=LEVEL,...`).
    pub fn new(default: LevelFilter, spec: Option<&str>) -> Result<Logger, String> {
        let mut logger = Logger {
            default,
            targets: Vec::new(),
        };
        if let Some(spec) = spec {
            for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                match part.split_once('=') {
                    Some((target, level)) => {
                        let level = parse_level(level)?;
                        logger.targets.push((target.trim().to_string(), level));
                    }
                    None => logger.default = parse_level(part)?,
                }
            }
        }
        logger.targets.sort_by_key(|t| std::cmp::Reverse(t.0.len()));
        Ok(logger)
    }

    fn level_for(&self, target: &str) -> LevelFilter {
        self.targets
            .iter()
            .find(|(prefix, _)| {
                target == prefix
                    || (target.starts_with(prefix.as_str())
                        && target[prefix.len()..].starts_with("::"))
            })
            .map_or(self.default, |(_, l)| *l)
    }

    /// The most verbose level any target uses.
    pub fn max_level(&self) -> LevelFilter {
        self.targets
            .iter()
            .map(|(_, l)| *l)
            .fold(self.default, Ord::max)
    }

    /// Formats one record as the logger writes it (without the newline).
    pub fn format(&self, record: &Record<'_>) -> String {
        let shard = match crate::shard::current_shard_id() {
            Some(id) => format!("[shard {id}] "),
            None => String::new(),
        };
        format!(
            "{} {:<5} {}{}: {}",
            timestamp(SystemTime::now()),
            record.level(),
            shard,
            record.target(),
            record.args()
        )
    }
}

fn parse_level(s: &str) -> Result<LevelFilter, String> {
    s.trim().parse::<LevelFilter>().map_err(|_| {
        format!("invalid log level '{s}': expected off, error, warn, info, debug or trace")
    })
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.level_for(metadata.target())
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let mut line = self.format(record);
        line.push('\n');
        // One write under stderr's lock keeps lines from different shards whole.
        let stderr = std::io::stderr();
        let mut lock = stderr.lock();
        let _ = lock.write_all(line.as_bytes());
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
    }
}

/// UTC timestamp with milliseconds, RFC 3339.
fn timestamp(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, day) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Days since 1970-01-01 → (year, month, day) (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Installs the logger for the process: `level` unless `TESSERA_LOG` is
/// set. Fails if `TESSERA_LOG` is malformed or a logger is already installed.
pub fn init(level: LevelFilter) -> Result<(), String> {
    let env = std::env::var("TESSERA_LOG").ok();
    let logger = Logger::new(level, env.as_deref()).map_err(|e| format!("TESSERA_LOG: {e}"))?;
    let max = logger.max_level();
    // The logger lives for the whole process.
    log::set_logger(Box::leak(Box::new(logger))).map_err(|e| e.to_string())?;
    log::set_max_level(max);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + std::time::Duration::from_millis(1_709_251_199_999);
        assert_eq!(timestamp(t), "2024-02-29T23:59:59.999Z");
        let t = UNIX_EPOCH + std::time::Duration::from_secs(951_782_400);
        assert_eq!(timestamp(t), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn per_target_levels() {
        let l = Logger::new(
            LevelFilter::Info,
            Some("warn,server::gms=debug,server=error"),
        )
        .unwrap();
        assert_eq!(l.level_for("proto"), LevelFilter::Warn);
        assert_eq!(l.level_for("server::gms"), LevelFilter::Debug);
        assert_eq!(
            l.level_for("server::gms::failure_detector"),
            LevelFilter::Debug
        );
        assert_eq!(l.level_for("server::gmsx"), LevelFilter::Error);
        assert_eq!(l.level_for("server::transport"), LevelFilter::Error);
        assert_eq!(l.max_level(), LevelFilter::Debug);
        assert!(Logger::new(LevelFilter::Info, Some("loud")).is_err());
        assert_eq!(
            Logger::new(LevelFilter::Info, None).unwrap().max_level(),
            LevelFilter::Info
        );
    }

    #[test]
    fn line_format() {
        let l = Logger::new(LevelFilter::Info, None).unwrap();
        let line = l.format(
            &Record::builder()
                .level(log::Level::Warn)
                .target("server::config")
                .args(format_args!("hello {}", 1))
                .build(),
        );
        assert!(line.ends_with("Z WARN  server::config: hello 1"), "{line}");
    }
}

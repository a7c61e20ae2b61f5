//! Cassandra's phi accrual `FailureDetector`.
//!
//! For each endpoint an `ArrivalWindow` keeps the last 1000 intervals
//! between heartbeat updates (the first sample is the initial value, twice
//! the gossip interval; intervals longer than the maximum are ignored, as
//! Cassandra's `fd_max_interval_ms` does). `phi = PHI_FACTOR × (now − last
//! arrival) / mean interval`, with `PHI_FACTOR = 1 / ln 10`; an endpoint is
//! convicted when phi exceeds `phi_convict_threshold` (8). With heartbeats
//! arriving about once a second a silent node is convicted after roughly
//! `8 × mean / 0.434` seconds: a faster gossip interval convicts faster.
//!
//! Like Cassandra, if this node itself stalled for longer than
//! [`MAX_LOCAL_PAUSE`] between two `interpret` rounds (GC, overload,
//! suspended VM), nothing is convicted in that round.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Intervals kept per endpoint.
pub const SAMPLE_SIZE: usize = 1000;
/// `1 / ln(10)`: turns `t / mean` into phi.
pub const PHI_FACTOR: f64 = std::f64::consts::LOG10_E;
/// Cassandra's default `phi_convict_threshold`.
pub const DEFAULT_PHI_CONVICT_THRESHOLD: f64 = 8.0;
/// A local stall longer than this suspends conviction for one round.
pub const MAX_LOCAL_PAUSE: Duration = Duration::from_secs(5);

/// Inter-arrival times of one endpoint's heartbeats (Cassandra's `ArrivalWindow`).
#[derive(Debug, Clone)]
pub struct ArrivalWindow {
    last: Option<Instant>,
    intervals: VecDeque<f64>,
    sum: f64,
}

impl ArrivalWindow {
    fn new() -> ArrivalWindow {
        ArrivalWindow {
            last: None,
            intervals: VecDeque::with_capacity(16),
            sum: 0.0,
        }
    }

    fn push(&mut self, secs: f64) {
        if self.intervals.len() >= SAMPLE_SIZE {
            if let Some(old) = self.intervals.pop_front() {
                self.sum -= old;
            }
        }
        self.intervals.push_back(secs);
        self.sum += secs;
    }

    fn add(&mut self, now: Instant, initial: Duration, max_interval: Duration) {
        match self.last {
            Some(last) => {
                let dt = now.saturating_duration_since(last);
                if dt <= max_interval {
                    self.push(dt.as_secs_f64());
                }
            }
            None => self.push(initial.as_secs_f64()),
        }
        self.last = Some(now);
    }

    /// Mean interval in seconds.
    pub fn mean(&self) -> f64 {
        if self.intervals.is_empty() {
            0.0
        } else {
            self.sum / self.intervals.len() as f64
        }
    }

    /// `(now − last) / mean` (Cassandra's `phi` before the factor).
    fn raw_phi(&self, now: Instant) -> f64 {
        let (Some(last), mean) = (self.last, self.mean()) else {
            return 0.0;
        };
        if mean <= 0.0 {
            return 0.0;
        }
        now.saturating_duration_since(last).as_secs_f64() / mean
    }
}

/// Phi accrual failure detector for all endpoints of one node.
#[derive(Debug)]
pub struct FailureDetector {
    windows: RefCell<HashMap<IpAddr, ArrivalWindow>>,
    phi_convict_threshold: f64,
    initial: Duration,
    max_interval: Duration,
    last_interpret: Cell<Option<Instant>>,
    last_pause: Cell<Option<Instant>>,
}

impl FailureDetector {
    /// A detector for a cluster gossiping every `gossip_interval`.
    pub fn new(phi_convict_threshold: f64, gossip_interval: Duration) -> FailureDetector {
        FailureDetector {
            windows: RefCell::new(HashMap::new()),
            phi_convict_threshold,
            initial: gossip_interval * 2,
            max_interval: gossip_interval * 2,
            last_interpret: Cell::new(None),
            last_pause: Cell::new(None),
        }
    }

    /// A heartbeat of `ip` arrived now.
    pub fn report(&self, ip: IpAddr) {
        self.report_at(ip, Instant::now());
    }

    /// A heartbeat of `ip` arrived at `now`.
    pub fn report_at(&self, ip: IpAddr, now: Instant) {
        self.windows
            .borrow_mut()
            .entry(ip)
            .or_insert_with(ArrivalWindow::new)
            .add(now, self.initial, self.max_interval);
    }

    /// Phi of `ip` now (`None` if never reported).
    pub fn phi(&self, ip: IpAddr) -> Option<f64> {
        self.phi_at(ip, Instant::now())
    }

    /// Phi of `ip` at `now`.
    pub fn phi_at(&self, ip: IpAddr, now: Instant) -> Option<f64> {
        self.windows
            .borrow()
            .get(&ip)
            .map(|w| PHI_FACTOR * w.raw_phi(now))
    }

    /// Whether `ip` should be convicted now (called every gossip round).
    pub fn interpret(&self, ip: IpAddr) -> bool {
        self.interpret_at(ip, Instant::now())
    }

    /// Whether `ip` should be convicted at `now`.
    pub fn interpret_at(&self, ip: IpAddr, now: Instant) -> bool {
        if let Some(last) = self.last_interpret.get() {
            if now.saturating_duration_since(last) > MAX_LOCAL_PAUSE {
                log::warn!(
                    "not marking nodes down: this node paused for {:?}",
                    now.saturating_duration_since(last)
                );
                self.last_pause.set(Some(now));
            }
        }
        self.last_interpret.set(Some(now));
        if let Some(p) = self.last_pause.get() {
            if now.saturating_duration_since(p) < MAX_LOCAL_PAUSE {
                return false;
            }
        }
        self.phi_at(ip, now)
            .is_some_and(|phi| phi > self.phi_convict_threshold)
    }

    /// Forgets `ip`'s history (a restart, or removal).
    pub fn remove(&self, ip: IpAddr) {
        self.windows.borrow_mut().remove(&ip);
    }

    /// The configured threshold.
    pub fn phi_convict_threshold(&self) -> f64 {
        self.phi_convict_threshold
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_heartbeats_are_not_convicted_silence_is() {
        let fd = FailureDetector::new(8.0, Duration::from_secs(1));
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let t0 = Instant::now();
        assert!(!fd.interpret_at(ip, t0));
        for i in 0..100 {
            fd.report_at(ip, t0 + Duration::from_secs(i));
        }
        let last = t0 + Duration::from_secs(99);
        // Mean ~1 s: phi = 0.434 × t.
        assert!(!fd.interpret_at(ip, last + Duration::from_secs(1)));
        let phi = fd.phi_at(ip, last + Duration::from_secs(10)).unwrap();
        assert!((phi - 10.0 * PHI_FACTOR).abs() < 0.2, "{phi}");
        for s in 2..=17u64 {
            assert!(!fd.interpret_at(ip, last + Duration::from_secs(s)));
        }
        assert!(fd.interpret_at(ip, last + Duration::from_secs(20)));
        fd.remove(ip);
        assert_eq!(fd.phi_at(ip, last), None);
    }

    #[test]
    fn long_gaps_are_ignored_and_window_is_bounded() {
        let fd = FailureDetector::new(8.0, Duration::from_millis(100));
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let mut t = Instant::now();
        for _ in 0..3000 {
            t += Duration::from_millis(100);
            fd.report_at(ip, t);
        }
        t += Duration::from_secs(60);
        fd.report_at(ip, t);
        let w = fd.windows.borrow();
        let w = &w[&ip];
        assert_eq!(w.intervals.len(), SAMPLE_SIZE);
        assert!((w.mean() - 0.1).abs() < 1e-6);
    }

    #[test]
    fn local_pause_suspends_conviction() {
        let fd = FailureDetector::new(8.0, Duration::from_millis(100));
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let mut t = Instant::now();
        for _ in 0..50 {
            t += Duration::from_millis(100);
            fd.report_at(ip, t);
            fd.interpret_at(ip, t);
        }
        // This node stalls for 10 s: no conviction right after.
        assert!(!fd.interpret_at(ip, t + Duration::from_secs(10)));
        assert!(!fd.interpret_at(ip, t + Duration::from_secs(13)));
        assert!(fd.interpret_at(ip, t + Duration::from_secs(16)));
    }
}

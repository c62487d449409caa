//! A circuit breaker per channel: closed → open on consecutive failures or an error rate over a
//! window, fed by submits and polls alike → half-open after a pause, letting one probe through
//! → closed on its success, open again (for twice as long, up to a bound) on its failure. An
//! upstream 429 pauses the channel for its `Retry-After` without counting as a failure.
//!
//! Pure: the clock is passed in, so the state machine is tested without sleeping. Each instance
//! keeps its own breakers: what trips them (timeouts, 5xx, refused connections) is seen from
//! where the instance stands, and a shared breaker would let one instance's network trouble
//! close a channel that works for the others; PostgreSQL-wide caps are the store's job.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub use reelay_upstream::BreakerConfig;

/// What one call to the upstream showed about the channel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    /// It answered as a working upstream does (including refusing a bad request).
    Success,
    /// Connect error, timeout, 5xx: the channel is unwell.
    Failure,
    /// 429: the channel is fine but full; pause it this long.
    RateLimited(Duration),
    /// A failure that also said when to come back (a 503 with `Retry-After`): counts as a
    /// failure and pauses the channel this long.
    Unavailable(Duration),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Closed,
    Open,
    HalfOpen,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half_open",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Breaker {
    cfg: BreakerConfig,
    state: State,
    /// Open until then (then half-open).
    open_until: Option<Instant>,
    /// How long the next opening lasts: doubles on a failed probe, back to the base on close.
    open_for: Duration,
    /// Half-open: when the probe in flight was let through.
    probe_since: Option<Instant>,
    consecutive_failures: u32,
    /// Outcomes within the window (true = failure), oldest first.
    window: VecDeque<(Instant, bool)>,
    paused_until: Option<Instant>,
    /// Times it opened, for the operator's view.
    pub openings: u64,
}

/// Outcomes kept at most in the window, whatever its length: the rate needs no more.
const WINDOW_CAP: usize = 1024;

impl Breaker {
    pub fn new(cfg: BreakerConfig) -> Breaker {
        Breaker {
            open_for: Duration::from_secs(cfg.open_seconds.max(1)),
            cfg,
            state: State::Closed,
            open_until: None,
            probe_since: None,
            consecutive_failures: 0,
            window: VecDeque::new(),
            paused_until: None,
            openings: 0,
        }
    }

    /// The state at `now` (an opening that ran out reads as half-open).
    pub fn state(&self, now: Instant) -> State {
        match (self.state, self.open_until) {
            (State::Open, Some(t)) if now >= t => State::HalfOpen,
            (s, _) => s,
        }
    }

    pub fn paused(&self, now: Instant) -> bool {
        self.paused_until.is_some_and(|t| now < t)
    }

    /// Whether a call may go to the channel now. In half-open this lets one probe through
    /// (another only if the probe's answer never came within `probe_timeout`).
    pub fn allow(&mut self, now: Instant) -> bool {
        if !self.cfg.enabled {
            return !self.paused(now);
        }
        if self.paused(now) {
            return false;
        }
        match self.state(now) {
            State::Closed => true,
            State::Open => false,
            State::HalfOpen => {
                self.state = State::HalfOpen;
                let timeout = Duration::from_secs(self.cfg.probe_timeout_seconds.max(1));
                match self.probe_since {
                    Some(t) if now < t + timeout => false,
                    _ => {
                        self.probe_since = Some(now);
                        true
                    }
                }
            }
        }
    }

    /// Whether a call may go now, without taking the half-open probe.
    pub fn would_allow(&self, now: Instant) -> bool {
        if self.paused(now) {
            return false;
        }
        if !self.cfg.enabled {
            return true;
        }
        match self.state(now) {
            State::Closed => true,
            State::Open => false,
            State::HalfOpen => {
                let timeout = Duration::from_secs(self.cfg.probe_timeout_seconds.max(1));
                self.probe_since.is_none_or(|t| now >= t + timeout)
            }
        }
    }

    pub fn record(&mut self, now: Instant, outcome: Outcome) {
        let failed = match outcome {
            Outcome::RateLimited(d) => {
                let until = now + d.min(Duration::from_secs(self.cfg.max_pause_seconds.max(1)));
                self.paused_until = Some(self.paused_until.map_or(until, |p| p.max(until)));
                return;
            }
            Outcome::Unavailable(d) => {
                let until = now + d.min(Duration::from_secs(self.cfg.max_pause_seconds.max(1)));
                self.paused_until = Some(self.paused_until.map_or(until, |p| p.max(until)));
                true
            }
            Outcome::Failure => true,
            Outcome::Success => false,
        };
        if !self.cfg.enabled {
            return;
        }
        let window = Duration::from_secs(self.cfg.window_seconds.max(1));
        while self
            .window
            .front()
            .is_some_and(|(t, _)| now.saturating_duration_since(*t) > window)
            || self.window.len() >= WINDOW_CAP
        {
            self.window.pop_front();
        }
        self.window.push_back((now, failed));
        match (self.state(now), failed) {
            (State::HalfOpen, false) => self.close(),
            (State::HalfOpen, true) => {
                let doubled =
                    (self.open_for * 2).min(Duration::from_secs(self.cfg.max_open_seconds.max(1)));
                self.open_for = doubled;
                self.open(now);
            }
            (State::Open, _) => {}
            (State::Closed, false) => self.consecutive_failures = 0,
            (State::Closed, true) => {
                self.consecutive_failures += 1;
                if self.consecutive_failures >= self.cfg.consecutive_failures.max(1)
                    || self.rate_tripped()
                {
                    self.open(now);
                }
            }
        }
    }

    fn rate_tripped(&self) -> bool {
        let n = self.window.len() as u32;
        if n < self.cfg.min_calls.max(1) {
            return false;
        }
        let failures = self.window.iter().filter(|(_, f)| *f).count() as f64;
        failures / n as f64 >= self.cfg.error_rate
    }

    fn open(&mut self, now: Instant) {
        self.state = State::Open;
        self.open_until = Some(now + self.open_for);
        self.probe_since = None;
        self.consecutive_failures = 0;
        self.window.clear();
        self.openings += 1;
    }

    fn close(&mut self) {
        self.state = State::Closed;
        self.open_until = None;
        self.probe_since = None;
        self.consecutive_failures = 0;
        self.window.clear();
        self.open_for = Duration::from_secs(self.cfg.open_seconds.max(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cfg() -> BreakerConfig {
        BreakerConfig {
            consecutive_failures: 3,
            min_calls: 10,
            error_rate: 0.5,
            window_seconds: 60,
            open_seconds: 10,
            max_open_seconds: 40,
            probe_timeout_seconds: 5,
            ..BreakerConfig::default()
        }
    }

    #[test]
    fn opens_on_consecutive_failures_then_probes_then_closes() {
        let t0 = Instant::now();
        let mut b = Breaker::new(cfg());
        for i in 0..3 {
            assert!(b.allow(t0), "closed lets call {i} through");
            b.record(t0, Outcome::Failure);
        }
        assert_eq!(b.state(t0), State::Open);
        assert!(!b.allow(t0 + Duration::from_secs(9)));
        // After the opening: one probe, not two.
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(b.state(t1), State::HalfOpen);
        assert!(b.allow(t1));
        assert!(!b.allow(t1));
        // The probe fails: open again, twice as long.
        b.record(t1, Outcome::Failure);
        assert!(!b.allow(t1 + Duration::from_secs(19)));
        let t2 = t1 + Duration::from_secs(20);
        assert!(b.allow(t2));
        b.record(t2, Outcome::Success);
        assert_eq!(b.state(t2), State::Closed);
        assert!(b.allow(t2));
        assert_eq!(b.openings, 2);
    }

    #[test]
    fn opens_on_the_error_rate_and_a_lost_probe_does_not_wedge_it() {
        let t0 = Instant::now();
        let mut b = Breaker::new(cfg());
        // Alternating: never three in a row, but six of eleven calls failed (the rate is
        // judged when a failure comes).
        for i in 0..11 {
            b.record(
                t0,
                if i % 2 == 0 {
                    Outcome::Failure
                } else {
                    Outcome::Success
                },
            );
        }
        assert_eq!(b.state(t0), State::Open);
        let t1 = t0 + Duration::from_secs(10);
        assert!(b.allow(t1));
        // The probe's answer never comes: after the probe timeout another probe goes.
        assert!(!b.allow(t1 + Duration::from_secs(4)));
        assert!(b.allow(t1 + Duration::from_secs(5)));
    }

    #[test]
    fn a_429_pauses_without_tripping() {
        let t0 = Instant::now();
        let mut b = Breaker::new(cfg());
        for _ in 0..20 {
            b.record(t0, Outcome::RateLimited(Duration::from_secs(2)));
        }
        assert_eq!(b.state(t0), State::Closed);
        assert!(!b.allow(t0 + Duration::from_secs(1)));
        assert!(b.allow(t0 + Duration::from_secs(2)));
    }

    proptest! {
        /// Whatever happens: an open breaker lets nothing through before its time; half-open
        /// lets one probe through per probe timeout; closed lets everything through unpaused;
        /// a success while half-open closes it.
        #[test]
        fn the_state_machine_holds(steps in proptest::collection::vec((0u8..4, 0u64..15), 1..200)) {
            let mut b = Breaker::new(cfg());
            let mut now = Instant::now();
            for (what, dt) in steps {
                now += Duration::from_secs(dt);
                let before = b.state(now);
                match what {
                    0 => b.record(now, Outcome::Success),
                    1 => b.record(now, Outcome::Failure),
                    2 => b.record(now, Outcome::RateLimited(Duration::from_secs(dt))),
                    _ => {
                        let paused = b.paused(now);
                        let predicted = b.would_allow(now);
                        let allowed = b.allow(now);
                        prop_assert_eq!(predicted, allowed);
                        match before {
                            State::Open => prop_assert!(!allowed),
                            State::Closed => prop_assert_eq!(allowed, !paused),
                            State::HalfOpen => if allowed { prop_assert!(!b.allow(now)) },
                        }
                    }
                }
                if what == 0 && before == State::HalfOpen {
                    prop_assert_eq!(b.state(now), State::Closed);
                }
                prop_assert!(b.open_for <= Duration::from_secs(40));
            }
        }
    }
}

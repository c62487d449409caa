use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use reelay_upstream::{ChannelConfig, Upstream};

use crate::breaker::{self, Breaker, Outcome};

/// A configured upstream with its live health.
pub struct Channel {
    pub config: ChannelConfig,
    pub upstream: Arc<dyn Upstream>,
    /// After a refused submit, the channel is tried after the others until then (a
    /// preference; the breaker is what keeps a sick channel out).
    unhealthy_until: Mutex<Option<Instant>>,
    breaker: Mutex<Breaker>,
}

impl Channel {
    pub fn new(config: ChannelConfig, upstream: Arc<dyn Upstream>) -> Channel {
        Channel {
            breaker: Mutex::new(Breaker::new(config.breaker.clone())),
            config,
            upstream,
            unhealthy_until: Mutex::new(None),
        }
    }

    /// Whether a call may go to this channel now (takes the half-open probe when it is one).
    pub fn allow(&self) -> bool {
        self.breaker.lock().unwrap().allow(Instant::now())
    }

    /// Whether a call could go now, without taking a half-open probe.
    pub fn would_allow(&self) -> bool {
        self.breaker.lock().unwrap().would_allow(Instant::now())
    }

    /// What a submit or a poll showed about the channel.
    pub fn record(&self, outcome: Outcome) {
        let now = Instant::now();
        let mut b = self.breaker.lock().unwrap();
        let before = b.state(now);
        b.record(now, outcome);
        let after = b.state(now);
        if before != after {
            tracing::warn!(
                channel = self.name(),
                from = before.as_str(),
                to = after.as_str(),
                "circuit breaker"
            );
        }
    }

    pub fn breaker_state(&self) -> breaker::State {
        self.breaker.lock().unwrap().state(Instant::now())
    }

    /// The operator's view of this channel (its key never in it).
    pub fn view(&self) -> ChannelView {
        let now = Instant::now();
        let b = self.breaker.lock().unwrap();
        ChannelView {
            name: self.config.name.clone(),
            kind: format!("{:?}", self.config.kind).to_lowercase(),
            base_url: self.config.base_url.clone(),
            enabled: self.config.enabled,
            priority: self.config.priority,
            weight: self.config.weight,
            max_concurrent: self.config.max_concurrent,
            models: self.config.models.clone(),
            breaker: b.state(now).as_str(),
            breaker_openings: b.openings,
            paused: b.paused(now),
            in_flight: None,
        }
    }
    pub fn name(&self) -> &str {
        &self.config.name
    }
    pub fn mark_unhealthy(&self, for_: Duration) {
        *self.unhealthy_until.lock().unwrap() = Some(Instant::now() + for_);
    }
    pub fn healthy(&self) -> bool {
        self.unhealthy_until
            .lock()
            .unwrap()
            .is_none_or(|t| Instant::now() >= t)
    }
}

/// What `GET /admin/v1/channels` shows of a channel.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ChannelView {
    pub name: String,
    pub kind: String,
    pub base_url: String,
    pub enabled: bool,
    pub priority: i32,
    pub weight: u32,
    pub max_concurrent: Option<i64>,
    pub models: Vec<String>,
    /// `closed`, `open` or `half_open` (this instance's).
    pub breaker: &'static str,
    pub breaker_openings: u64,
    /// Paused by an upstream's `Retry-After`.
    pub paused: bool,
    /// Tasks held upstream now (across instances; from the store).
    pub in_flight: Option<i64>,
}

#[derive(Clone, Default)]
pub struct Channels(Arc<Vec<Channel>>);

impl Channels {
    pub fn new(channels: Vec<Channel>) -> Channels {
        Channels(Arc::new(channels))
    }

    pub fn get(&self, name: &str) -> Option<&Channel> {
        self.0.iter().find(|c| c.name() == name)
    }

    pub fn all(&self) -> &[Channel] {
        &self.0
    }

    /// Channels that can serve `model`, best first: healthy before unhealthy, then by
    /// priority, and within one priority in a weighted random order.
    pub fn candidates(&self, model: &str) -> Vec<&Channel> {
        let mut rng = rand::thread_rng();
        let mut list: Vec<(&Channel, bool, i32, f64)> = self
            .0
            .iter()
            .filter(|c| c.config.enabled && c.config.serves_model(model))
            .map(|c| {
                // Weighted shuffle: sort by u^(1/w), the Efraimidis–Spirakis key.
                let u: f64 = rng.gen_range(f64::EPSILON..1.0);
                let key = u.powf(1.0 / c.config.weight.max(1) as f64);
                (c, !c.healthy(), c.config.priority, -key)
            })
            .collect();
        list.sort_by(|a, b| (a.1, a.2).cmp(&(b.1, b.2)).then(a.3.total_cmp(&b.3)));
        list.into_iter().map(|x| x.0).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reelay_upstream::{SubmitError, UpstreamError, UpstreamStatus};

    /// An upstream that is never called: selection only reads the configuration.
    struct Idle(String);

    #[async_trait::async_trait]
    impl Upstream for Idle {
        fn name(&self) -> &str {
            &self.0
        }
        async fn submit(
            &self,
            _: &reelay_core::TaskSpec,
            _: &reelay_upstream::SubmitContext<'_>,
        ) -> Result<String, SubmitError> {
            unreachable!()
        }
        async fn status(&self, _: &str) -> Result<UpstreamStatus, UpstreamError> {
            unreachable!()
        }
        async fn cancel(&self, _: &str) -> Result<(), UpstreamError> {
            unreachable!()
        }
    }

    fn channel(name: &str, priority: i32, weight: u32) -> Channel {
        let mut cfg = ChannelConfig::sandbox("http://127.0.0.1:1".into());
        cfg.name = name.into();
        cfg.priority = priority;
        cfg.weight = weight;
        Channel::new(cfg, Arc::new(Idle(name.into())))
    }

    #[test]
    fn weights_split_dispatches_and_priority_comes_first() {
        let channels = Channels::new(vec![
            channel("a", 0, 3),
            channel("b", 0, 1),
            channel("backup", 1, 100),
        ]);
        let mut firsts = std::collections::HashMap::<&str, u32>::new();
        for _ in 0..4_000 {
            let c = channels.candidates("gen4_turbo");
            assert_eq!(
                c.last().unwrap().name(),
                "backup",
                "a lower priority comes last"
            );
            *firsts.entry(c[0].name()).or_default() += 1;
        }
        // 3:1 → 3,000 of 4,000 to `a`, within ±5 % of the dispatches (σ ≈ 27).
        let a = firsts.get("a").copied().unwrap_or(0);
        assert!(
            (2_800..=3_200).contains(&a),
            "a was first {a} times of 4000"
        );
        assert_eq!(a + firsts.get("b").copied().unwrap_or(0), 4_000);
    }
}

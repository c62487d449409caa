use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use reelay_upstream::{ChannelConfig, Upstream};

/// A configured upstream with its live health.
pub struct Channel {
    pub config: ChannelConfig,
    pub upstream: Arc<dyn Upstream>,
    /// After a failure that proves the channel unwell, it is passed over until then.
    unhealthy_until: Mutex<Option<Instant>>,
}

impl Channel {
    pub fn new(config: ChannelConfig, upstream: Arc<dyn Upstream>) -> Channel {
        Channel {
            config,
            upstream,
            unhealthy_until: Mutex::new(None),
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
            .filter(|c| c.config.enabled && c.upstream.supports_model(model))
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

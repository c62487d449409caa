use rand::Rng;

/// Exponential backoff with up to 50 % random jitter (Runway's own advice), so a burst of
/// failures does not come back as a synchronized burst of retries.
pub fn backoff_ms(attempt: i64, base_ms: u64, max_ms: u64) -> u64 {
    let exp = base_ms.saturating_mul(1u64 << attempt.clamp(0, 20));
    let capped = exp.min(max_ms);
    let jitter = rand::thread_rng().gen_range(0.5..=1.0);
    ((capped as f64) * jitter) as u64
}

/// Polls come often while a task is young and less often as it ages: most tasks finish in a
/// few minutes, and a task an hour old gains nothing from a poll per second.
pub fn poll_interval_ms(age_ms: i64, min_ms: u64, max_ms: u64, age_factor: f64) -> u64 {
    let grown = min_ms as f64 + age_ms.max(0) as f64 * age_factor;
    grown.min(max_ms as f64) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 0..30 {
            let b = backoff_ms(attempt, 1000, 60_000);
            assert!(b <= 60_000);
            assert!(b >= (1000u64 << attempt.min(6)).min(60_000) / 2);
        }
    }

    #[test]
    fn poll_interval_backs_off_with_age() {
        assert_eq!(poll_interval_ms(0, 1000, 30_000, 0.1), 1000);
        assert_eq!(poll_interval_ms(60_000, 1000, 30_000, 0.1), 7000);
        assert_eq!(poll_interval_ms(3_600_000, 1000, 30_000, 0.1), 30_000);
    }
}

//! A setting that does not hold: the key at fault and what is wrong with it. Every check of a
//! configuration (the file, the environment, a channel posted to the admin API) answers with
//! one, so a message always names the key, and callers can tell the key from the prose.

use std::fmt::Display;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {problem}")]
pub struct SettingError {
    /// Dotted path of the setting, e.g. `engine.workers` or `channels.primary.weight`.
    pub key: String,
    pub problem: String,
}

impl SettingError {
    pub fn new(key: impl Into<String>, problem: impl Into<String>) -> SettingError {
        SettingError {
            key: key.into(),
            problem: problem.into(),
        }
    }

    /// The same error seen from the enclosing section: `weight` within `channels.primary`
    /// is `channels.primary.weight`.
    pub fn within(self, section: &str) -> SettingError {
        SettingError {
            key: format!("{section}.{}", self.key),
            problem: self.problem,
        }
    }
}

/// `Ok` when `value` lies in `min..=max`; otherwise an error naming `key` and the range.
pub fn in_range<T: PartialOrd + Display>(
    key: &str,
    value: T,
    min: T,
    max: T,
) -> Result<(), SettingError> {
    if value >= min && value <= max {
        Ok(())
    } else {
        Err(SettingError::new(
            key,
            format!("must be between {min} and {max}, got {value}"),
        ))
    }
}

/// `Ok` unless `bad`, in which case `key` fails with `problem`.
pub fn ensure(bad: bool, key: &str, problem: &str) -> Result<(), SettingError> {
    if bad {
        Err(SettingError::new(key, problem))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_whole_key() {
        let e = in_range("weight", 0, 1, 10_000)
            .unwrap_err()
            .within("channels.a");
        assert_eq!(e.key, "channels.a.weight");
        assert_eq!(
            e.to_string(),
            "channels.a.weight: must be between 1 and 10000, got 0"
        );
        assert!(in_range("x", 1.5, 0.0, 2.0).is_ok());
        assert!(ensure(false, "x", "never").is_ok());
    }
}

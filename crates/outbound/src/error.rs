use std::net::IpAddr;

/// Why a destination was refused.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum Refusal {
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
    #[error("URL scheme {0:?} is not allowed (only http and https)")]
    Scheme(String),
    #[error("URL must not carry a user name or password")]
    Userinfo,
    #[error("URL has no host")]
    NoHost,
    #[error("URL is longer than {max} characters", max = crate::url_check::MAX_URL_LEN)]
    TooLong,
    #[error("requests to {0} are blocked (private, loopback, link-local or reserved range)")]
    BlockedAddress(IpAddr),
    #[error(
        "{host} resolves only to blocked addresses (private, loopback, link-local or reserved)"
    )]
    NoAllowedAddress { host: String },
    #[error("could not resolve {host}: {message}")]
    Resolve { host: String, message: String },
}

impl Refusal {
    /// A stable code for logs, delivery records and API errors.
    ///
    /// A resolution failure gets its own code rather than `invalid_url` or
    /// `blocked_destination`: the URL is fine and the answer may change, so callers should treat
    /// it as a transient failure, whereas both other codes are permanent for that attempt.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::BlockedAddress(_) | Refusal::NoAllowedAddress { .. } => "blocked_destination",
            Refusal::Resolve { .. } => "resolve_failed",
            Refusal::InvalidUrl(_)
            | Refusal::Scheme(_)
            | Refusal::Userinfo
            | Refusal::NoHost
            | Refusal::TooLong => "invalid_url",
        }
    }
}

/// Finds a [`Refusal`] in a reqwest error's source chain.
///
/// The guarded client's DNS step refuses a destination by failing resolution, so reqwest reports
/// it as a connect error; the refusal itself sits a few `source()` levels down.
pub fn refusal_of(err: &reqwest::Error) -> Option<Refusal> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(r) = e.downcast_ref::<Refusal>() {
            return Some(r.clone());
        }
        cur = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable() {
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(Refusal::BlockedAddress(ip).code(), "blocked_destination");
        assert_eq!(
            Refusal::NoAllowedAddress { host: "x".into() }.code(),
            "blocked_destination"
        );
        assert_eq!(
            Refusal::Resolve {
                host: "x".into(),
                message: "nx".into()
            }
            .code(),
            "resolve_failed"
        );
        for r in [
            Refusal::InvalidUrl("x".into()),
            Refusal::Scheme("file".into()),
            Refusal::Userinfo,
            Refusal::NoHost,
            Refusal::TooLong,
        ] {
            assert_eq!(r.code(), "invalid_url", "{r:?}");
        }
    }

    #[test]
    fn messages_name_the_culprit() {
        let ip: IpAddr = "169.254.169.254".parse().unwrap();
        assert!(Refusal::BlockedAddress(ip)
            .to_string()
            .contains("169.254.169.254"));
        assert!(Refusal::NoAllowedAddress {
            host: "evil.test".into()
        }
        .to_string()
        .contains("evil.test"));
        assert!(Refusal::TooLong.to_string().contains("2048"));
    }
}

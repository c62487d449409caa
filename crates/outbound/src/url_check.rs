//! The URL "on its face": what can be refused before any DNS lookup.

use std::net::IpAddr;

use url::{Host, Url};

use crate::Refusal;

/// §6.3 rule 1 of `shared/api/webhooks.md`.
pub const MAX_URL_LEN: usize = 2048;

/// Parses `input` the way the connection will see it and refuses what is wrong without DNS.
///
/// Parsing with the WHATWG parser is the point: it turns every IPv4 spelling a browser or
/// `inet_aton` accepts (`2130706433`, `0177.0.0.1`, `0x7f.1`, `127.1`, fullwidth digits) into
/// one `Ipv4Addr`, so a literal cannot hide from the address check as a "domain name".
pub(crate) fn check(input: &str, is_allowed: impl Fn(IpAddr) -> bool) -> Result<Url, Refusal> {
    // Checked before parsing too, so an enormous string is not parsed for nothing.
    if input.len() > MAX_URL_LEN {
        return Err(Refusal::TooLong);
    }
    let url = Url::parse(input).map_err(|e| Refusal::InvalidUrl(e.to_string()))?;
    // Percent-encoding and punycode can make the serialization longer than the input.
    if url.as_str().len() > MAX_URL_LEN {
        return Err(Refusal::TooLong);
    }
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Refusal::Scheme(url.scheme().to_string()));
    }
    // Rejected rather than turned into `Authorization` (webhooks.md §6.3 rule 1): credentials in a
    // client-chosen URL end up in logs and delivery records.
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Refusal::Userinfo);
    }
    match url.host() {
        None => Err(Refusal::NoHost),
        Some(Host::Domain("")) => Err(Refusal::NoHost),
        Some(Host::Ipv4(ip)) => literal(url, IpAddr::V4(ip), is_allowed),
        Some(Host::Ipv6(ip)) => literal(url, IpAddr::V6(ip), is_allowed),
        Some(Host::Domain(_)) => Ok(url),
    }
}

fn literal(url: Url, ip: IpAddr, is_allowed: impl Fn(IpAddr) -> bool) -> Result<Url, Refusal> {
    if is_allowed(ip) {
        Ok(url)
    } else {
        Err(Refusal::BlockedAddress(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{is_allowed, Allowlist};

    fn check_default(s: &str) -> Result<Url, Refusal> {
        check(s, |ip| is_allowed(&Allowlist::default(), ip))
    }

    fn blocked(s: &str, ip: &str) {
        assert_eq!(
            check_default(s),
            Err(Refusal::BlockedAddress(ip.parse().unwrap())),
            "{s}"
        );
    }

    #[test]
    fn every_ipv4_notation_is_the_same_address() {
        for s in [
            "http://127.0.0.1/",
            "http://2130706433/",
            "http://0177.0.0.1/",
            "http://0x7f.0.0.1/",
            "http://0x7f000001/",
            "http://0x7f.1/",
            "http://127.1/",
            "http://0177.1/",
            "http://127.0.0.1./",
            "http://%31%32%37.0.0.1/",
            "http://\u{2460}\u{2461}\u{2466}.0.0.1/",
            "http://127\u{3002}0\u{3002}0\u{3002}1/",
        ] {
            blocked(s, "127.0.0.1");
        }
        blocked("http://0/", "0.0.0.0");
        blocked("http://10.1/", "10.0.0.1");
    }

    #[test]
    fn ipv6_literals_are_checked() {
        blocked("http://[::1]/", "::1");
        blocked("http://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1");
        blocked("http://[::ffff:a9fe:a9fe]/", "::ffff:169.254.169.254");
        blocked("http://[fd00:ec2::254]/", "fd00:ec2::254");
        assert!(check_default("http://[2606:4700::1111]/").is_ok());
        assert!(check_default("http://[::ffff:8.8.8.8]:8080/").is_ok());
    }

    #[test]
    fn public_literals_and_names_pass() {
        assert_eq!(
            check_default("https://8.8.8.8/hook").unwrap().as_str(),
            "https://8.8.8.8/hook"
        );
        // Names are for the resolver to judge.
        assert!(check_default("http://localhost/").is_ok());
        assert!(check_default("HTTPS://Example.COM:8443/a?b=c").is_ok());
    }

    #[test]
    fn only_http_and_https() {
        for (s, scheme) in [
            ("file:///etc/passwd", "file"),
            ("gopher://x/", "gopher"),
            ("ftp://example.com/", "ftp"),
            ("ws://example.com/", "ws"),
            ("data:text/plain,hi", "data"),
            ("javascript:alert(1)", "javascript"),
        ] {
            assert_eq!(check_default(s), Err(Refusal::Scheme(scheme.into())), "{s}");
        }
    }

    #[test]
    fn userinfo_is_refused() {
        for s in [
            "http://user:pass@example.com/",
            "http://user@example.com/",
            "http://:pass@example.com/",
        ] {
            assert_eq!(check_default(s), Err(Refusal::Userinfo), "{s}");
        }
        // An empty userinfo vanishes in parsing: nothing to refuse.
        assert_eq!(
            check_default("http://@example.com/").unwrap().as_str(),
            "http://example.com/"
        );
    }

    #[test]
    fn unparsable_urls() {
        for s in [
            "",
            "example.com/hook",
            "/relative",
            "http://",
            "http://[fe80::1%25eth0]/",
            "http://1.2.3.4.5/",
            "http://0x100000000/",
            "http://exa mple.com/",
        ] {
            let r = check_default(s).unwrap_err();
            assert!(matches!(r, Refusal::InvalidUrl(_)), "{s}: {r:?}");
        }
    }

    #[test]
    fn length_limit() {
        let base = "http://example.com/";
        let fits = format!("{base}{}", "a".repeat(MAX_URL_LEN - base.len()));
        assert!(check_default(&fits).is_ok());
        let over = format!("{base}{}", "a".repeat(MAX_URL_LEN - base.len() + 1));
        assert_eq!(check_default(&over), Err(Refusal::TooLong));
        // Short input, long serialization: each inner space becomes %20.
        let spaces = format!("{base}{}x", " ".repeat(MAX_URL_LEN / 2));
        assert_eq!(check_default(&spaces), Err(Refusal::TooLong));
    }
}

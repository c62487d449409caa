use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use url::{Host, Url};

use crate::client::GuardedClient;
use crate::policy::{self, Allowlist};
use crate::resolver::{Resolver, SystemResolver};
use crate::{url_check, Refusal};

/// The SSRF guard: the block tables, the operator's exemptions and the resolver whose answers
/// are checked. Cheap to clone.
#[derive(Clone)]
pub struct Guard {
    allow: Arc<Allowlist>,
    resolver: Arc<dyn Resolver>,
}

impl fmt::Debug for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard")
            .field("allow", &self.allow.nets())
            .finish_non_exhaustive()
    }
}

impl Guard {
    /// `allow_cidrs` is `REELAY_OUTBOUND_ALLOW_CIDRS`: comma-separated CIDRs (or bare IPs) exempt
    /// from the block list; empty by default. The error names the bad entry.
    pub fn new(allow_cidrs: &str) -> Result<Guard, String> {
        Ok(Guard {
            allow: Arc::new(Allowlist::parse(allow_cidrs)?),
            resolver: Arc::new(SystemResolver),
        })
    }

    pub fn with_resolver(self, resolver: Arc<dyn Resolver>) -> Guard {
        Guard { resolver, ..self }
    }

    /// The operator's exemptions, for logging the effective configuration at start.
    pub fn allowlist(&self) -> &[IpNet] {
        self.allow.nets()
    }

    /// Whether a connection to `ip` may be made: the allowlist wins, otherwise no row of the
    /// block tables may match the canonical form of the address.
    pub fn is_allowed(&self, ip: IpAddr) -> bool {
        policy::is_allowed(&self.allow, ip)
    }

    /// The check "on its face", without DNS: http(s) only, a host, no userinfo, at most 2048
    /// characters, and an IP-literal host must be allowed.
    pub fn check_url(&self, url: &str) -> Result<Url, Refusal> {
        url_check::check(url, |ip| self.is_allowed(ip))
    }

    /// The full check: [`Guard::check_url`], then for a name, resolution through the guard's
    /// resolver keeping only allowed addresses. Returns the addresses a connection may use,
    /// with the URL's port.
    pub async fn resolve(&self, url: &Url) -> Result<Vec<SocketAddr>, Refusal> {
        // Re-checked because a `Url` can be built or mutated without going through `check_url`.
        let url = self.check_url(url.as_str())?;
        // check_url admits only http and https, which both have a default port.
        let port = url.port_or_known_default().unwrap_or(80);
        let ips = match url.host() {
            Some(Host::Ipv4(ip)) => vec![IpAddr::V4(ip)],
            Some(Host::Ipv6(ip)) => vec![IpAddr::V6(ip)],
            Some(Host::Domain(name)) => self.resolve_host(name).await?,
            None => return Err(Refusal::NoHost),
        };
        Ok(ips
            .into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect())
    }

    /// Resolves `host` and drops blocked addresses, as Svix's `NonLocalDnsResolver` does: a
    /// name answering [public, private] still works, through the public address only.
    pub(crate) async fn resolve_host(&self, host: &str) -> Result<Vec<IpAddr>, Refusal> {
        // Callers hand over URL hosts, which are never literals after WHATWG parsing; this keeps
        // a literal from reaching a resolver that would echo it back unchecked anyway.
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return if self.is_allowed(ip) {
                Ok(vec![ip])
            } else {
                Err(Refusal::BlockedAddress(ip))
            };
        }
        let answer = self
            .resolver
            .resolve(host)
            .await
            .map_err(|e| Refusal::Resolve {
                host: host.to_string(),
                message: e.to_string(),
            })?;
        if answer.is_empty() {
            return Err(Refusal::Resolve {
                host: host.to_string(),
                message: "no addresses in the answer".to_string(),
            });
        }
        let mut kept: Vec<IpAddr> = Vec::with_capacity(answer.len());
        for ip in answer {
            if !self.is_allowed(ip) {
                tracing::debug!(host, %ip, "outbound guard dropped a blocked address");
            } else if !kept.contains(&ip) {
                kept.push(ip);
            }
        }
        if kept.is_empty() {
            tracing::debug!(host, "outbound guard refused: every address is blocked");
            return Err(Refusal::NoAllowedAddress {
                host: host.to_string(),
            });
        }
        Ok(kept)
    }

    /// A client for guarded requests; share it (it pools connections). See [`GuardedClient`].
    pub fn client(
        &self,
        connect_timeout: Duration,
        timeout: Duration,
        user_agent: &str,
    ) -> reqwest::Result<GuardedClient> {
        GuardedClient::new(self.clone(), connect_timeout, timeout, user_agent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StaticResolver;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn guard(allow: &str) -> Guard {
        let r = StaticResolver::new()
            .host("rebind.test", [ip("93.184.216.34"), ip("10.0.0.1")])
            .host("dup.test", [ip("93.184.216.34"), ip("93.184.216.34")])
            .host("v6.test", [ip("2606:4700::1111")])
            .host("private.test", [ip("10.0.0.1"), ip("fd00::1")])
            .host("empty.test", []);
        Guard::new(allow).unwrap().with_resolver(Arc::new(r))
    }

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[tokio::test]
    async fn blocked_addresses_are_dropped_from_the_answer() {
        let g = guard("");
        assert_eq!(
            g.resolve(&url("http://rebind.test/")).await.unwrap(),
            vec!["93.184.216.34:80".parse().unwrap()]
        );
        assert_eq!(g.resolve(&url("http://dup.test/")).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn port_comes_from_the_url() {
        let g = guard("");
        assert_eq!(
            g.resolve(&url("https://v6.test/")).await.unwrap(),
            vec!["[2606:4700::1111]:443".parse().unwrap()]
        );
        assert_eq!(
            g.resolve(&url("http://v6.test:8080/")).await.unwrap(),
            vec!["[2606:4700::1111]:8080".parse().unwrap()]
        );
        assert_eq!(
            g.resolve(&url("http://8.8.8.8:81/")).await.unwrap(),
            vec!["8.8.8.8:81".parse().unwrap()]
        );
    }

    #[tokio::test]
    async fn all_blocked_empty_and_unknown() {
        let g = guard("");
        assert_eq!(
            g.resolve(&url("http://private.test/")).await,
            Err(Refusal::NoAllowedAddress {
                host: "private.test".into()
            })
        );
        let empty = g.resolve(&url("http://empty.test/")).await.unwrap_err();
        assert_eq!(empty.code(), "resolve_failed");
        let nx = g.resolve(&url("http://nx.test/")).await.unwrap_err();
        assert!(
            matches!(&nx, Refusal::Resolve { host, .. } if host == "nx.test"),
            "{nx:?}"
        );
    }

    #[tokio::test]
    async fn allowlist_admits_resolved_private_addresses() {
        let g = guard("10.0.0.0/8");
        assert_eq!(
            g.resolve(&url("http://private.test:9000/")).await.unwrap(),
            vec!["10.0.0.1:9000".parse().unwrap()]
        );
    }

    #[tokio::test]
    async fn resolve_rechecks_urls_built_elsewhere() {
        let g = guard("");
        let mut u = url("http://example.test/");
        u.set_host(Some("169.254.169.254")).unwrap();
        assert_eq!(
            g.resolve(&u).await,
            Err(Refusal::BlockedAddress(ip("169.254.169.254")))
        );
        let mut u = url("http://example.test/");
        u.set_username("admin").unwrap();
        assert_eq!(g.resolve(&u).await, Err(Refusal::Userinfo));
    }

    #[tokio::test]
    async fn literal_hosts_never_reach_the_resolver() {
        let g = guard("");
        assert_eq!(
            g.resolve_host("127.0.0.1").await,
            Err(Refusal::BlockedAddress(ip("127.0.0.1")))
        );
        assert_eq!(
            g.resolve_host("[::1]").await,
            Err(Refusal::BlockedAddress(ip("::1")))
        );
        assert_eq!(g.resolve_host("8.8.8.8").await, Ok(vec![ip("8.8.8.8")]));
    }

    #[test]
    fn new_validates_the_allowlist() {
        assert!(Guard::new("").is_ok());
        assert!(Guard::new("127.0.0.1/32, ::1/128").is_ok());
        assert_eq!(
            Guard::new("10.0.0.5").unwrap().allowlist(),
            &["10.0.0.5/32".parse::<IpNet>().unwrap()]
        );
        assert!(Guard::new("10.0.0.0/33")
            .unwrap_err()
            .contains("10.0.0.0/33"));
        assert!(Guard::new("nonsense").unwrap_err().contains("nonsense"));
    }
}

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect;

use crate::{Guard, Refusal};

/// A shared reqwest client whose every connection passes the guard.
///
/// Names are resolved by the guard's resolver and filtered inside reqwest's connector, so the
/// addresses checked are the addresses connected to: no second lookup, no DNS-rebinding window.
/// IP-literal hosts never reach a resolver, which is why [`GuardedClient::request`] checks the
/// URL before building the request. Redirects are not followed and environment proxies are
/// ignored (through a proxy the proxy would resolve the name, unfiltered).
#[derive(Clone)]
pub struct GuardedClient {
    inner: reqwest::Client,
    guard: Guard,
}

impl fmt::Debug for GuardedClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuardedClient")
            .field("guard", &self.guard)
            .finish_non_exhaustive()
    }
}

impl GuardedClient {
    pub(crate) fn new(
        guard: Guard,
        connect_timeout: Duration,
        timeout: Duration,
        user_agent: &str,
    ) -> reqwest::Result<GuardedClient> {
        let inner = reqwest::Client::builder()
            .dns_resolver(Arc::new(FilteringResolver {
                guard: guard.clone(),
            }))
            // A 3xx is the receiver's answer, not an instruction: following it would need the
            // whole check again for the new origin (webhooks.md §6.3 rule 3).
            .redirect(redirect::Policy::none())
            .no_proxy()
            .connect_timeout(connect_timeout)
            .timeout(timeout)
            .user_agent(user_agent)
            .build()?;
        Ok(GuardedClient { inner, guard })
    }

    /// Checks `url` on its face (refusing literal private IPs, bad schemes, userinfo, overlong
    /// URLs before any connection), then starts a request on the guarded client. A name that
    /// resolves only to blocked addresses fails at `send()`; see [`crate::refusal_of`].
    pub fn request(
        &self,
        method: reqwest::Method,
        url: &str,
    ) -> Result<reqwest::RequestBuilder, Refusal> {
        let url = self.guard.check_url(url)?;
        Ok(self.inner.request(method, url))
    }

    /// The underlying client. Requests built on it directly skip the IP-literal check of
    /// [`GuardedClient::request`]; pass URLs through [`Guard::check_url`] first.
    pub fn inner(&self) -> &reqwest::Client {
        &self.inner
    }

    pub fn guard(&self) -> &Guard {
        &self.guard
    }
}

/// reqwest's DNS hook, answering only with addresses the guard allows.
struct FilteringResolver {
    guard: Guard,
}

impl Resolve for FilteringResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.guard.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let ips = guard.resolve_host(&host).await?;
            // Port 0 is replaced by the URL's port (or the scheme's default) by the connector.
            let addrs: Addrs = Box::new(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

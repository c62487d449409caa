//! Name resolution behind a trait, so tests (and operators pinning internal names) can answer
//! without DNS, and the guard can check exactly the addresses it will connect to.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;

use futures::future::{BoxFuture, FutureExt};

/// Resolves a host name to addresses. The guard filters the answer; a resolver never decides
/// what is allowed.
pub trait Resolver: Send + Sync + 'static {
    fn resolve(&self, host: &str) -> BoxFuture<'static, io::Result<Vec<IpAddr>>>;
}

/// The operating system's resolver (`getaddrinfo` through `tokio::net::lookup_host`).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn resolve(&self, host: &str) -> BoxFuture<'static, io::Result<Vec<IpAddr>>> {
        let host = host.to_string();
        async move {
            let addrs = tokio::net::lookup_host((host, 0)).await?;
            Ok(addrs.map(|a| a.ip()).collect())
        }
        .boxed()
    }
}

/// A fixed table of answers. A name not in the table fails like NXDOMAIN; a name mapped to no
/// addresses answers with an empty list (the "no answer" case).
#[derive(Debug, Clone, Default)]
pub struct StaticResolver {
    hosts: HashMap<String, Vec<IpAddr>>,
}

impl StaticResolver {
    pub fn new() -> StaticResolver {
        StaticResolver::default()
    }

    /// Answers `name` with `addrs`, replacing an earlier entry for the same name.
    pub fn host(mut self, name: &str, addrs: impl IntoIterator<Item = IpAddr>) -> StaticResolver {
        self.insert(name, addrs);
        self
    }

    pub fn insert(&mut self, name: &str, addrs: impl IntoIterator<Item = IpAddr>) {
        self.hosts.insert(key(name), addrs.into_iter().collect());
    }
}

/// DNS names are case-insensitive and `example.test.` is the same name as `example.test`.
fn key(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

impl Resolver for StaticResolver {
    fn resolve(&self, host: &str) -> BoxFuture<'static, io::Result<Vec<IpAddr>>> {
        let answer = match self.hosts.get(&key(host)) {
            Some(addrs) => Ok(addrs.clone()),
            None => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no such host: {host}"),
            )),
        };
        futures::future::ready(answer).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn static_answers_and_nxdomain() {
        let r = StaticResolver::new()
            .host("Hook.Test", [ip("127.0.0.1"), ip("::1")])
            .host("empty.test", []);
        assert_eq!(
            r.resolve("hook.test").await.unwrap(),
            vec![ip("127.0.0.1"), ip("::1")]
        );
        assert_eq!(r.resolve("HOOK.test.").await.unwrap().len(), 2);
        assert!(r.resolve("empty.test").await.unwrap().is_empty());
        let err = r.resolve("other.test").await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains("other.test"));
    }

    #[tokio::test]
    async fn system_resolver_handles_literals_without_dns() {
        assert_eq!(
            SystemResolver.resolve("127.0.0.1").await.unwrap(),
            vec![ip("127.0.0.1")]
        );
    }
}

//! The SSRF guard as its users see it: a corpus of hostile URLs, and real sockets proving that
//! refused destinations are never contacted and allowed ones are reached at the checked address.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use axum::serve::ListenerExt;
use futures::future::BoxFuture;
use reelay_outbound::{refusal_of, Guard, GuardedClient, Refusal, Resolver, StaticResolver};
use reqwest::Method;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Names the corpus and the socket tests use; `*.test` is reserved, so none of them can leak to
/// real DNS by accident.
fn names() -> StaticResolver {
    StaticResolver::new()
        .host("metadata.internal.test", [ip("169.254.169.254")])
        .host("intranet.test", [ip("10.0.0.7")])
        .host("mixed.test", [ip("10.0.0.1"), ip("fd00::1")])
        .host("localhost", [ip("127.0.0.1"), ip("::1")])
        .host("169.254.169.254.nip.io", [ip("169.254.169.254")])
        .host("v6-metadata.test", [ip("fd00:ec2::254")])
        .host("mapped.test", [ip("::ffff:10.0.0.1")])
        .host("nat64.test", [ip("64:ff9b::a9fe:a9fe")])
        .host("noanswer.test", [])
        .host("rebind.test", [ip("93.184.216.34"), ip("10.0.0.1")])
}

/// Records every name it is asked, to prove what the client did (and did not) look up.
#[derive(Clone)]
struct Recording {
    inner: StaticResolver,
    asked: Arc<Mutex<Vec<String>>>,
}

impl Recording {
    fn new(inner: StaticResolver) -> Recording {
        Recording {
            inner,
            asked: Arc::default(),
        }
    }

    fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }
}

impl Resolver for Recording {
    fn resolve(&self, host: &str) -> BoxFuture<'static, std::io::Result<Vec<IpAddr>>> {
        self.asked.lock().unwrap().push(host.to_string());
        self.inner.resolve(host)
    }
}

fn guard(allow: &str, resolver: impl Resolver) -> Guard {
    Guard::new(allow).unwrap().with_resolver(Arc::new(resolver))
}

fn client(guard: &Guard) -> GuardedClient {
    guard
        .client(
            Duration::from_secs(2),
            Duration::from_secs(5),
            "reelay-test/1",
        )
        .unwrap()
}

/// Sends `url` through the guarded client and returns the refusal, wherever it surfaced.
async fn refusal(client: &GuardedClient, url: &str) -> Result<Refusal, String> {
    let req = match client.request(Method::POST, url) {
        Err(r) => return Ok(r),
        Ok(req) => req,
    };
    match req.body("{}").send().await {
        Ok(resp) => Err(format!("was sent, answered {}", resp.status())),
        Err(e) => refusal_of(&e).ok_or_else(|| format!("failed without a refusal: {e:?}")),
    }
}

const OVERLONG: &str = "http://example.com/";

#[tokio::test]
async fn corpus_is_refused_with_the_right_code() {
    let long = format!("{OVERLONG}{}", "a".repeat(2100));
    let b = "blocked_destination";
    let i = "invalid_url";
    let r = "resolve_failed";
    let corpus: Vec<(&str, &str)> = vec![
        // IPv4 loopback in every notation the WHATWG parser folds into 127.0.0.1
        ("http://127.0.0.1/", b),
        ("http://2130706433/", b),
        ("http://0177.0.0.1/", b),
        ("http://0x7f.0.0.1/", b),
        ("http://0x7f000001/", b),
        ("http://0x7f.1/", b),
        ("http://127.1/", b),
        ("http://0177.1/", b),
        ("http://127.0.0.1./", b),
        ("http://%31%32%37.0.0.1/", b),
        ("http://\u{2460}\u{2461}\u{2466}.0.0.1/", b),
        ("http://127\u{3002}0\u{3002}0\u{3002}1/", b),
        ("http://0/", b),
        ("http://0.0.0.0:8080/", b),
        ("http://10.1/", b),
        // cloud metadata
        ("http://169.254.169.254/latest/meta-data/", b),
        ("http://2852039166/", b),
        ("http://0xa9.0xfe.0xa9.0xfe/", b),
        ("http://0251.0376.0251.0376/", b),
        ("http://[::ffff:169.254.169.254]/", b),
        ("http://[::ffff:a9fe:a9fe]/", b),
        ("http://[fd00:ec2::254]/latest/meta-data/", b),
        // IPv6 special ranges
        ("http://[::1]/", b),
        ("http://[::]/", b),
        ("http://[fe80::1]/", b),
        ("http://[fc00::1]/", b),
        ("http://[fd12:3456::1]:8080/", b),
        ("http://[ff02::1]/", b),
        ("http://[fec0::1]/", b),
        ("http://[2001:db8::1]/", b),
        // IPv4 embedded in IPv6
        ("http://[::ffff:127.0.0.1]/", b),
        ("http://[::ffff:7f00:1]/", b),
        ("http://[::127.0.0.1]/", b),
        ("http://[64:ff9b::7f00:1]/", b),
        ("http://[2002:7f00:1::]/", b),
        ("http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", b),
        // the url crate refuses zone ids outright
        ("http://[fe80::1%25eth0]/", i),
        ("http://[fe80::1%eth0]/", i),
        // other private, shared and reserved IPv4
        ("http://100.64.0.1/", b),
        ("http://10.0.0.1/", b),
        ("http://172.16.0.1/", b),
        ("http://192.168.1.1/", b),
        ("http://192.0.0.8/", b),
        ("http://192.0.2.1/", b),
        ("http://198.51.100.1/", b),
        ("http://203.0.113.1/", b),
        ("http://198.18.0.1/", b),
        ("http://224.0.0.1/", b),
        ("http://240.0.0.1/", b),
        ("http://255.255.255.255/", b),
        // names that resolve to blocked addresses
        ("https://metadata.internal.test/computeMetadata/v1/", b),
        ("http://METADATA.Internal.Test./", b),
        ("http://intranet.test/", b),
        ("http://mixed.test/", b),
        ("http://localhost:8080/", b),
        ("http://169.254.169.254.nip.io/", b),
        ("http://v6-metadata.test/", b),
        ("http://mapped.test/", b),
        ("http://nat64.test/", b),
        // names with no usable answer
        ("http://nxdomain.test/", r),
        ("http://noanswer.test/", r),
        // not http(s)
        ("file:///etc/passwd", i),
        ("gopher://x/", i),
        ("ftp://example.com/", i),
        ("ws://example.com/", i),
        ("data:text/plain;base64,SGVsbG8=", i),
        ("javascript:alert(1)", i),
        // malformed, credentials, length
        ("http://user:pass@example.com/", i),
        ("http://user@169.254.169.254/", i),
        ("//example.com/hook", i),
        ("http://1.2.3.4.5/", i),
        (long.as_str(), i),
    ];
    assert!(corpus.len() >= 40);

    let names = Recording::new(names());
    let g = guard("", names.clone());
    let c = client(&g);
    let mut wrong = Vec::new();
    for (url, code) in &corpus {
        match refusal(&c, url).await {
            Ok(refusal) if refusal.code() == *code => {}
            Ok(refusal) => wrong.push(format!("{url}: {refusal:?} has code {}", refusal.code())),
            Err(e) => wrong.push(format!("{url}: {e}")),
        }
        // The guard's own full check agrees with what the client did.
        if let Ok(parsed) = url::Url::parse(url) {
            match g.resolve(&parsed).await {
                Err(refusal) if refusal.code() == *code => {}
                other => wrong.push(format!("{url}: Guard::resolve gave {other:?}")),
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "not refused as expected:\n{}",
        wrong.join("\n")
    );

    // Literals and malformed URLs were refused on their face: only names reached the resolver.
    let mut asked = names.asked();
    asked.sort();
    asked.dedup();
    assert_eq!(
        asked,
        [
            "169.254.169.254.nip.io",
            "intranet.test",
            "localhost",
            "mapped.test",
            "metadata.internal.test",
            "metadata.internal.test.",
            "mixed.test",
            "nat64.test",
            "noanswer.test",
            "nxdomain.test",
            "v6-metadata.test",
        ]
    );
}

#[tokio::test]
async fn refusals_name_the_destination() {
    let c = client(&guard("", names()));
    assert_eq!(
        refusal(&c, "http://[::ffff:a9fe:a9fe]/").await,
        Ok(Refusal::BlockedAddress(ip("::ffff:169.254.169.254")))
    );
    assert_eq!(
        refusal(&c, "http://0x7f000001/").await,
        Ok(Refusal::BlockedAddress(ip("127.0.0.1")))
    );
    assert_eq!(
        refusal(&c, "http://intranet.test/").await,
        Ok(Refusal::NoAllowedAddress {
            host: "intranet.test".into()
        })
    );
    assert_eq!(
        refusal(&c, "gopher://x/").await,
        Ok(Refusal::Scheme("gopher".into()))
    );
    assert_eq!(
        refusal(&c, "http://user:pass@example.com/").await,
        Ok(Refusal::Userinfo)
    );
    let long = format!("{OVERLONG}{}", "a".repeat(2100));
    assert_eq!(refusal(&c, &long).await, Ok(Refusal::TooLong));
    match refusal(&c, "http://nxdomain.test/").await {
        Ok(Refusal::Resolve { host, message }) => {
            assert_eq!(host, "nxdomain.test");
            assert!(message.contains("nxdomain.test"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn rebinding_answer_keeps_only_the_public_address() {
    let g = guard("", names());
    let url = url::Url::parse("http://rebind.test:8443/hook").unwrap();
    assert_eq!(
        g.resolve(&url).await.unwrap(),
        vec!["93.184.216.34:8443".parse::<SocketAddr>().unwrap()]
    );
}

#[test]
fn guard_new_validates_the_allowlist() {
    let err = Guard::new("10.0.0.0/33").unwrap_err();
    assert!(err.contains("10.0.0.0/33"), "{err}");
    let err = Guard::new("nonsense").unwrap_err();
    assert!(err.contains("nonsense"), "{err}");
    let err = Guard::new("127.0.0.1/32,nonsense").unwrap_err();
    assert!(err.contains("nonsense"), "{err}");
    assert!(Guard::new("").unwrap().allowlist().is_empty());
    assert_eq!(
        Guard::new("127.0.0.1/32, ::1/128")
            .unwrap()
            .allowlist()
            .len(),
        2
    );
    let g = Guard::new("10.0.0.5").unwrap();
    assert!(g.is_allowed(ip("10.0.0.5")));
    assert!(!g.is_allowed(ip("10.0.0.6")));
}

// ---- through real sockets ----

#[derive(Debug, Clone, PartialEq)]
struct Seen {
    method: String,
    path: String,
    host: Option<String>,
    user_agent: Option<String>,
}

#[derive(Clone, Default)]
struct Server {
    port: u16,
    connections: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    fn requests(&self) -> Vec<Seen> {
        self.requests.lock().unwrap().clone()
    }
}

async fn record(State(server): State<Server>, req: Request) -> Response {
    let text = |name| {
        req.headers()
            .get(name)
            .map(|h: &header::HeaderValue| h.to_str().unwrap().to_string())
    };
    let seen = Seen {
        method: req.method().to_string(),
        path: req.uri().path().to_string(),
        host: text(header::HOST),
        user_agent: text(header::USER_AGENT),
    };
    server.requests.lock().unwrap().push(seen);
    let location = match req.uri().path() {
        "/redirect/private" => "http://10.0.0.1/",
        "/redirect/metadata" => "http://169.254.169.254/latest/meta-data/",
        "/redirect/name" => "http://elsewhere.test/x",
        _ => return Response::new(Body::from("ok")),
    };
    Response::builder()
        .status(StatusCode::FOUND)
        .header(header::LOCATION, location)
        .body(Body::empty())
        .unwrap()
}

/// An axum server on `addr` that counts accepted connections and records every request.
async fn spawn_server(addr: SocketAddr) -> std::io::Result<Server> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let server = Server {
        port: listener.local_addr()?.port(),
        ..Server::default()
    };
    let connections = server.connections.clone();
    let listener = listener.tap_io(move |_| {
        connections.fetch_add(1, Ordering::SeqCst);
    });
    let app = axum::Router::new()
        .fallback(record)
        .with_state(server.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Ok(server)
}

async fn loopback_server() -> Server {
    spawn_server("127.0.0.1:0".parse().unwrap()).await.unwrap()
}

#[tokio::test]
async fn loopback_is_refused_and_never_contacted_without_an_allowlist() {
    let server = loopback_server().await;
    let port = server.port;
    let names = StaticResolver::new().host("hook.test", [ip("127.0.0.1")]);
    let c = client(&guard(
        "",
        names.host("localhost", [ip("127.0.0.1"), ip("::1")]),
    ));

    assert_eq!(
        refusal(&c, &format!("http://127.0.0.1:{port}/")).await,
        Ok(Refusal::BlockedAddress(ip("127.0.0.1")))
    );
    assert_eq!(
        refusal(&c, &format!("http://[::ffff:127.0.0.1]:{port}/")).await,
        Ok(Refusal::BlockedAddress(ip("::ffff:127.0.0.1")))
    );
    assert_eq!(
        refusal(&c, &format!("http://2130706433:{port}/")).await,
        Ok(Refusal::BlockedAddress(ip("127.0.0.1")))
    );
    for name in ["hook.test", "localhost"] {
        assert_eq!(
            refusal(&c, &format!("http://{name}:{port}/x")).await,
            Ok(Refusal::NoAllowedAddress { host: name.into() })
        );
    }

    assert_eq!(server.requests(), vec![]);
    assert_eq!(server.connections(), 0);
}

#[tokio::test]
async fn allowlisted_name_reaches_the_checked_address_with_its_own_host_header() {
    let server = loopback_server().await;
    let port = server.port;
    let names = StaticResolver::new().host("hook.test", [ip("127.0.0.1")]);
    let c = client(&guard("127.0.0.1/32", names));

    let resp = c
        .request(Method::POST, &format!("http://hook.test:{port}/x"))
        .unwrap()
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "ok");
    assert_eq!(
        server.requests(),
        vec![Seen {
            method: "POST".into(),
            path: "/x".into(),
            host: Some(format!("hook.test:{port}")),
            user_agent: Some("reelay-test/1".into()),
        }]
    );
}

#[tokio::test]
async fn allowlisted_literal_is_reached_without_the_resolver() {
    let server = loopback_server().await;
    let port = server.port;
    let names = Recording::new(StaticResolver::new());
    let c = client(&guard("127.0.0.1", names.clone()));
    let resp = c
        .request(Method::GET, &format!("http://127.0.0.1:{port}/lit"))
        .unwrap()
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let seen = server.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].host.as_deref(),
        Some(format!("127.0.0.1:{port}").as_str())
    );
    assert!(names.asked().is_empty());
}

#[tokio::test]
async fn redirects_are_returned_not_followed() {
    let server = loopback_server().await;
    let port = server.port;
    let names = Recording::new(
        StaticResolver::new()
            .host("hook.test", [ip("127.0.0.1")])
            .host("elsewhere.test", [ip("127.0.0.1")]),
    );
    let c = client(&guard("127.0.0.1/32", names.clone()));

    for (path, location) in [
        ("/redirect/private", "http://10.0.0.1/"),
        (
            "/redirect/metadata",
            "http://169.254.169.254/latest/meta-data/",
        ),
        ("/redirect/name", "http://elsewhere.test/x"),
    ] {
        let resp = c
            .request(Method::POST, &format!("http://hook.test:{port}{path}"))
            .unwrap()
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 302, "{path}");
        assert_eq!(resp.headers()[header::LOCATION], location, "{path}");
    }

    let paths: Vec<String> = server.requests().into_iter().map(|s| s.path).collect();
    assert_eq!(
        paths,
        ["/redirect/private", "/redirect/metadata", "/redirect/name"]
    );
    // Had a redirect been followed, `elsewhere.test` would have been looked up.
    assert!(
        names.asked().iter().all(|h| h == "hook.test"),
        "{:?}",
        names.asked()
    );
}

#[tokio::test]
async fn name_resolving_to_a_private_address_fails_at_send_with_the_refusal() {
    let server = loopback_server().await;
    let port = server.port;
    let names = StaticResolver::new()
        .host("evil.test", [ip("10.0.0.1")])
        .host("hook.test", [ip("127.0.0.1")]);
    let c = client(&guard("127.0.0.1/32", names));

    let err = c
        .request(Method::POST, &format!("http://evil.test:{port}/x"))
        .unwrap()
        .body("{}")
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    let refusal = refusal_of(&err).expect("a refusal in the error chain");
    assert_eq!(
        refusal,
        Refusal::NoAllowedAddress {
            host: "evil.test".into()
        }
    );
    assert_eq!(refusal.code(), "blocked_destination");
    assert_eq!(server.connections(), 0);

    // An ordinary failure is not mistaken for a refusal.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = c
        .request(Method::POST, &format!("http://hook.test:{closed}/x"))
        .unwrap()
        .send()
        .await
        .unwrap_err();
    assert_eq!(refusal_of(&err), None, "{err:?}");
}

/// The client connects only to addresses that survived the filter: with the same port open on
/// 127.0.0.2 (blocked) and 127.0.0.1 (allowlisted) and a name answering both, blocked first, only
/// the allowlisted server sees a connection.
#[tokio::test]
async fn connection_uses_only_the_filtered_answer() {
    let good = loopback_server().await;
    let port = good.port;
    let trap = match spawn_server(SocketAddr::new(ip("127.0.0.2"), port)).await {
        Ok(trap) => trap,
        Err(e) => {
            eprintln!("skipping: cannot listen on 127.0.0.2:{port} on this system: {e}");
            return;
        }
    };
    let names = StaticResolver::new().host("pinned.test", [ip("127.0.0.2"), ip("127.0.0.1")]);
    let c = client(&guard("127.0.0.1/32", names));

    for _ in 0..3 {
        let resp = c
            .request(Method::POST, &format!("http://pinned.test:{port}/x"))
            .unwrap()
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    assert_eq!(good.requests().len(), 3);
    assert_eq!(trap.connections(), 0);
    assert_eq!(trap.requests(), vec![]);
}

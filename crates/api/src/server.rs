//! Serving the router on a socket with limits a hostile client cannot get around.
//!
//! `axum::serve` has no knobs for any of this, so the accept loop is ours: a cap on open
//! connections (a connection past it gets a short 503 and is closed, instead of the process
//! running out of file descriptors and `accept` failing for everyone), a deadline for each
//! request head (slow headers), an idle timeout between requests on a keep-alive connection,
//! and a deadline for the request body (slow bodies). The handler itself is never cut short: a
//! handler dropped mid-transaction could answer an error for work it committed.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::Router;
use bytes::Bytes;
use http_body::Frame;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use reelay_core::setting::{in_range, SettingError};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// `[server]`: connection hygiene. Every value is bounded and has a default that a public
/// deployment can keep.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// A connection must deliver a complete request head within this, counted from when it
    /// opened or from the first byte of a later request.
    pub header_timeout_ms: u64,
    /// A keep-alive connection with no request in progress is closed after this.
    pub keep_alive_timeout_ms: u64,
    /// The whole request body must arrive within this, counted from the end of its head.
    pub body_timeout_ms: u64,
    /// Open connections at most; lowered at start to fit the process's file-descriptor limit.
    pub max_connections: usize,
    /// At shutdown, connections still busy after this are closed.
    pub drain_timeout_ms: u64,
    /// Largest request head (request line and headers), bytes; larger → 431.
    pub max_header_bytes: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            header_timeout_ms: 10_000,
            keep_alive_timeout_ms: 60_000,
            body_timeout_ms: 60_000,
            max_connections: 10_000,
            drain_timeout_ms: 10_000,
            max_header_bytes: 64 * 1024,
        }
    }
}

impl ServerConfig {
    /// Names the first setting out of range (within `[server]`).
    pub fn validate(&self) -> Result<(), SettingError> {
        let ms = in_range::<u64>;
        ms("header_timeout_ms", self.header_timeout_ms, 100, 600_000)?;
        ms(
            "keep_alive_timeout_ms",
            self.keep_alive_timeout_ms,
            100,
            3_600_000,
        )?;
        ms("body_timeout_ms", self.body_timeout_ms, 100, 3_600_000)?;
        ms("drain_timeout_ms", self.drain_timeout_ms, 0, 600_000)?;
        ms("max_connections", self.max_connections as u64, 1, 1_000_000)?;
        ms(
            "max_header_bytes",
            self.max_header_bytes as u64,
            8192,
            1 << 20,
        )?;
        Ok(())
    }
}

/// Raises the soft limit on open files to the hard limit (the default soft limit, often 1024,
/// is what made a thousand idle sockets starve `accept`) and returns the soft limit in force.
pub fn raise_fd_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        match rlimit::increase_nofile_limit(u64::MAX) {
            Ok(n) => Some(n),
            Err(e) => {
                tracing::warn!(error = %e, "could not raise the open-file limit");
                rlimit::getrlimit(rlimit::Resource::NOFILE)
                    .ok()
                    .map(|(soft, _)| soft)
            }
        }
    }
    #[cfg(not(unix))]
    None
}

/// The connection cap that fits `fd_limit`: file descriptors are also needed for the
/// database, media files, upstream and webhook connections and ffmpeg pipes, so a quarter of
/// the limit (at least 256 when the limit allows) stays free for them.
pub fn connection_cap(configured: usize, fd_limit: Option<u64>) -> usize {
    let Some(limit) = fd_limit else {
        return configured;
    };
    let reserve = (limit / 4).max(256.min(limit / 2));
    let fits = limit.saturating_sub(reserve).max(1);
    configured.min(usize::try_from(fits).unwrap_or(usize::MAX))
}

/// What the connection loop was given, after sizing.
#[derive(Debug, Clone)]
pub struct Limits {
    pub header_timeout: Duration,
    pub keep_alive_timeout: Duration,
    pub body_timeout: Duration,
    pub drain_timeout: Duration,
    pub max_connections: usize,
    pub max_header_bytes: usize,
}

impl Limits {
    pub fn new(config: &ServerConfig, max_connections: usize) -> Limits {
        Limits {
            header_timeout: Duration::from_millis(config.header_timeout_ms),
            keep_alive_timeout: Duration::from_millis(config.keep_alive_timeout_ms),
            body_timeout: Duration::from_millis(config.body_timeout_ms),
            drain_timeout: Duration::from_millis(config.drain_timeout_ms),
            max_connections,
            max_header_bytes: config.max_header_bytes,
        }
    }
}

/// Connections refused at the cap are answered by at most this many small tasks at once;
/// past that they are closed without an answer (an attacker must not turn refusals into a
/// second unbounded pool).
const MAX_REFUSING: usize = 64;

/// Serves `app` on `listener` until `shutdown` resolves, then lets busy connections finish
/// (within the drain timeout) and returns.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
) {
    let limits = Arc::new(limits);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let refusing = Arc::new(Semaphore::new(MAX_REFUSING));
    let stop = CancellationToken::new();
    let kill = CancellationToken::new();
    let origin = Instant::now();
    let mut accept_errors = ErrorLog::default();
    let peak = Arc::new(AtomicUsize::new(0));
    let trimmer = tokio::spawn(trim_after_bursts(
        slots.clone(),
        limits.max_connections,
        peak.clone(),
    ));
    tokio::pin!(shutdown);
    loop {
        let (stream, _peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    if !is_per_connection(&e) {
                        // Out of file descriptors (EMFILE/ENFILE) or memory: back off instead
                        // of spinning, and say so without flooding the log.
                        accept_errors.note(&e);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    continue;
                }
            },
        };
        match slots.clone().try_acquire_owned() {
            Ok(permit) => {
                // The trimmer samples every two seconds; a burst that comes and goes between
                // two samples is seen here.
                peak.fetch_max(
                    limits.max_connections - slots.available_permits(),
                    Ordering::Relaxed,
                );
                let conn = Conn {
                    app: app.clone(),
                    limits: limits.clone(),
                    origin,
                    stop: stop.clone(),
                    kill: kill.clone(),
                };
                tokio::spawn(conn.run(stream, permit));
            }
            Err(_) => match refusing.clone().try_acquire_owned() {
                Ok(permit) => {
                    tokio::spawn(refuse(stream, permit));
                }
                // Too many refusals under way: answer without waiting for anything.
                Err(_) => refuse_now(&stream),
            },
        }
    }
    drop(listener);
    trimmer.abort();
    stop.cancel();
    let all = limits.max_connections as u32;
    let drained = tokio::time::timeout(limits.drain_timeout, slots.acquire_many(all)).await;
    if drained.is_err() {
        tracing::warn!("closing connections still busy after the drain timeout");
        kill.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(1), slots.acquire_many(all)).await;
    }
}

/// Closed connections after which a drained burst is worth handing memory back for.
const TRIM_AFTER_CLOSED: usize = 256;

/// Hands the memory of a burst of connections back to the system once the burst has drained.
///
/// Each connection's buffers are freed when it closes, but glibc's allocator keeps freed
/// memory in its per-thread arenas: measured, 2,000 idle keep-alive connections took RSS from
/// 18 to 41 MB and it stayed at 41 MB after they closed (mimalloc did no better: 28 → 66 →
/// 63 MB). `malloc_trim` returns the free pages. It runs at most every two seconds, only once
/// a burst has gone (at least `TRIM_AFTER_CLOSED` fewer connections than at the peak since the
/// last trim), on a blocking thread since it walks every arena.
async fn trim_after_bursts(slots: Arc<Semaphore>, cap: usize, peak: Arc<AtomicUsize>) {
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let open = cap.saturating_sub(slots.available_permits());
        if peak.load(Ordering::Relaxed).saturating_sub(open) >= TRIM_AFTER_CLOSED {
            peak.store(open, Ordering::Relaxed);
            let _ = tokio::task::spawn_blocking(release_free_memory).await;
        }
    }
}

fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of the allocator's own heap to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Accept errors that concern only the connection being accepted (the client gave up).
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
    )
}

/// Logs accept failures at most once every ten seconds, with how many there were.
#[derive(Default)]
struct ErrorLog {
    last: Option<Instant>,
    since_last: u64,
}

impl ErrorLog {
    fn note(&mut self, e: &io::Error) {
        self.since_last += 1;
        if self
            .last
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(10))
        {
            tracing::error!(error = %e, failures = self.since_last, "cannot accept connections");
            self.last = Some(Instant::now());
            self.since_last = 0;
        }
    }
}

const REFUSAL_BODY: &str = r#"{"error":{"code":"too_many_connections","message":"The server has too many open connections. Retry shortly."}}"#;

fn refusal() -> String {
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{REFUSAL_BODY}",
        REFUSAL_BODY.len()
    )
}

/// The answer past the cap: a complete 503 the client can read and retry on, then close.
async fn refuse(mut stream: TcpStream, _permit: OwnedSemaphorePermit) {
    let _ = tokio::time::timeout(Duration::from_millis(250), async {
        stream.write_all(refusal().as_bytes()).await?;
        stream.shutdown().await?;
        // Read what the client sends meanwhile: closing with unread data resets the
        // connection, which can destroy the answer before the client read it.
        let mut sink = [0u8; 4096];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<_, io::Error>(())
    })
    .await;
}

/// The same answer without a task: the few bytes fit any socket buffer, and what the client
/// already sent is read first for the reason above.
fn refuse_now(stream: &TcpStream) {
    let mut sink = [0u8; 4096];
    while matches!(stream.try_read(&mut sink), Ok(n) if n > 0) {}
    let _ = stream.try_write(refusal().as_bytes());
}

struct Conn {
    app: Router,
    limits: Arc<Limits>,
    origin: Instant,
    stop: CancellationToken,
    kill: CancellationToken,
}

impl Conn {
    async fn run(self, stream: TcpStream, _slot: OwnedSemaphorePermit) {
        let _ = stream.set_nodelay(true);
        let watch = Arc::new(Watch::new(self.millis()));
        let io = Watched {
            inner: stream,
            watch: watch.clone(),
            origin: self.origin,
        };
        let service = {
            let (app, watch, body_timeout) =
                (self.app.clone(), watch.clone(), self.limits.body_timeout);
            let origin = self.origin;
            hyper::service::service_fn(move |req: http::Request<Incoming>| {
                let busy = Busy::begin(watch.clone(), origin);
                let app = app.clone();
                async move {
                    let req = req.map(|b| Body::new(Deadline::new(b, body_timeout)));
                    let res = match app.oneshot(req).await {
                        Ok(res) => res,
                        Err(never) => match never {},
                    };
                    Ok::<_, Infallible>(res.map(|b| {
                        Body::new(Tracked {
                            inner: b,
                            _busy: busy,
                        })
                    }))
                }
            })
        };
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            // hyper's own head timer also runs while a keep-alive connection waits; ours are
            // the precise ones, this is only a backstop past both.
            .header_read_timeout(self.limits.header_timeout + self.limits.keep_alive_timeout)
            .max_buf_size(self.limits.max_header_bytes);
        let conn = http.serve_connection(TokioIo::new(io), service);
        tokio::pin!(conn);
        let mut draining = false;
        loop {
            let wake = match watch.deadline(&self.limits) {
                Some((at, _)) => self.origin + Duration::from_millis(at),
                // Busy: look again later (the request may end and the connection go idle).
                None => {
                    Instant::now()
                        + self
                            .limits
                            .header_timeout
                            .min(self.limits.keep_alive_timeout)
                }
            };
            tokio::select! {
                res = conn.as_mut() => {
                    if let Err(e) = res {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                    break;
                }
                _ = tokio::time::sleep_until(wake) => {
                    match watch.deadline(&self.limits) {
                        Some((at, Phase::Head)) if at <= self.millis() => {
                            tracing::debug!("closing a connection whose request head is late");
                            break;
                        }
                        Some((at, Phase::Idle)) if at <= self.millis() => {
                            if draining {
                                break;
                            }
                            conn.as_mut().graceful_shutdown();
                            draining = true;
                        }
                        _ => {}
                    }
                }
                _ = self.stop.cancelled(), if !draining => {
                    conn.as_mut().graceful_shutdown();
                    draining = true;
                }
                _ = self.kill.cancelled() => break,
            }
        }
    }

    fn millis(&self) -> u64 {
        millis_since(self.origin)
    }
}

fn millis_since(origin: Instant) -> u64 {
    u64::try_from(origin.elapsed().as_millis()).unwrap_or(u64::MAX)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for (the rest of) a request head.
    Head,
    /// Between requests on a keep-alive connection.
    Idle,
}

/// Where a connection is between requests, kept by the socket wrapper (bytes arrived) and the
/// service (a request began, its response ended). Everything of one connection runs on one
/// task; the atomics only make it shareable.
struct Watch {
    /// Requests whose response has not been sent completely.
    busy: AtomicUsize,
    /// Bytes of a next request arrived while idle.
    head: AtomicBool,
    /// A request was served: the connection now waits under the keep-alive timeout.
    served: AtomicBool,
    /// When the current phase began, ms since the server's origin.
    since: AtomicU64,
}

impl Watch {
    fn new(now: u64) -> Watch {
        Watch {
            busy: AtomicUsize::new(0),
            head: AtomicBool::new(false),
            served: AtomicBool::new(false),
            since: AtomicU64::new(now),
        }
    }

    fn on_bytes(&self, now: u64) {
        if self.busy.load(Ordering::Relaxed) == 0 && !self.head.swap(true, Ordering::Relaxed) {
            self.since.store(now, Ordering::Relaxed);
        }
    }

    /// When the connection is due to be closed, and why; none while a request is in progress.
    fn deadline(&self, limits: &Limits) -> Option<(u64, Phase)> {
        if self.busy.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let since = self.since.load(Ordering::Relaxed);
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        // A new connection owes its first head promptly, as any started head does.
        if self.head.load(Ordering::Relaxed) || !self.served.load(Ordering::Relaxed) {
            Some((since.saturating_add(ms(limits.header_timeout)), Phase::Head))
        } else {
            Some((
                since.saturating_add(ms(limits.keep_alive_timeout)),
                Phase::Idle,
            ))
        }
    }
}

/// Marks a request in progress from its head until its response body is dropped (sent, or
/// abandoned with the connection).
struct Busy {
    watch: Arc<Watch>,
    origin: Instant,
}

impl Busy {
    fn begin(watch: Arc<Watch>, origin: Instant) -> Busy {
        watch.busy.fetch_add(1, Ordering::Relaxed);
        watch.head.store(false, Ordering::Relaxed);
        watch.served.store(true, Ordering::Relaxed);
        Busy { watch, origin }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        if self.watch.busy.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.watch.head.store(false, Ordering::Relaxed);
            self.watch
                .since
                .store(millis_since(self.origin), Ordering::Relaxed);
        }
    }
}

/// The socket, noting when bytes arrive.
struct Watched {
    inner: TcpStream,
    watch: Arc<Watch>,
    origin: Instant,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(res, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.watch.on_bytes(millis_since(self.origin));
        }
        res
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A request body that must arrive completely by a deadline. Handlers see a read error, which
/// each dialect answers in its own shape as an unreadable body.
struct Deadline {
    inner: Incoming,
    timer: Pin<Box<Sleep>>,
    timeout: Duration,
}

impl Deadline {
    fn new(inner: Incoming, timeout: Duration) -> Deadline {
        Deadline {
            inner,
            timer: Box::pin(tokio::time::sleep(timeout)),
            timeout,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
struct BodyTimeout(Duration);

impl http_body::Body for Deadline {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if self.timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(BodyTimeout(self.timeout).into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that keeps its request counted as in progress until it is dropped.
struct Tracked {
    inner: Body,
    _busy: Busy,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_descriptors_for_everything_else() {
        assert_eq!(connection_cap(10_000, None), 10_000);
        assert_eq!(connection_cap(10_000, Some(1024)), 768);
        assert_eq!(connection_cap(10_000, Some(1_048_576)), 10_000);
        assert_eq!(connection_cap(10_000, Some(256)), 128);
        assert_eq!(connection_cap(10_000, Some(4)), 2);
        assert_eq!(connection_cap(10_000, Some(0)), 1);
    }

    #[test]
    fn settings_out_of_range_are_named() {
        assert!(ServerConfig::default().validate().is_ok());
        let bad = ServerConfig {
            header_timeout_ms: 0,
            ..ServerConfig::default()
        };
        assert_eq!(bad.validate().unwrap_err().key, "header_timeout_ms");
        let bad = ServerConfig {
            max_connections: 0,
            ..ServerConfig::default()
        };
        assert_eq!(bad.validate().unwrap_err().key, "max_connections");
    }

    #[test]
    fn phases_follow_the_requests() {
        let limits = Limits::new(&ServerConfig::default(), 10);
        let w = Arc::new(Watch::new(1000));
        // New connection: the head deadline from the start.
        assert_eq!(w.deadline(&limits), Some((11_000, Phase::Head)));
        let origin = Instant::now();
        let busy = Busy::begin(w.clone(), origin);
        assert_eq!(w.deadline(&limits), None);
        w.on_bytes(5000); // pipelined bytes while busy do not start a head
        drop(busy);
        let (at, phase) = w.deadline(&limits).unwrap();
        assert_eq!(phase, Phase::Idle);
        let since = w.since.load(Ordering::Relaxed);
        assert_eq!(at, since + 60_000);
        w.on_bytes(since + 10);
        assert_eq!(
            w.deadline(&limits),
            Some((since + 10 + 10_000, Phase::Head))
        );
    }
}

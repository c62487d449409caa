//! A file server on 127.0.0.1:0 standing in for an upstream's CDN: each path answers from a
//! script (a status, a file, or bytes generated on the fly), and requests are counted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

#[derive(Clone, Debug)]
pub enum Reply {
    /// This status with a small text body.
    Status(u16),
    /// These bytes with this content type.
    File(&'static str, Bytes),
    /// `size` bytes of [`pattern`], produced chunk by chunk (never held in memory whole), with
    /// this content type and a Content-Length.
    Generated(&'static str, u64),
}

#[derive(Default)]
struct Inner {
    /// Per path: the replies in order; the last one repeats.
    scripts: HashMap<String, Vec<Reply>>,
    hits: HashMap<String, usize>,
}

#[derive(Clone)]
pub struct FileServer {
    pub base: String,
    inner: Arc<Mutex<Inner>>,
}

/// Byte `i` of every generated file: a cheap pattern a test can hash again.
pub fn pattern(i: u64) -> u8 {
    (i.wrapping_mul(2_654_435_761) >> 13) as u8
}

/// `size` bytes of [`pattern`] in chunks of `chunk`, starting at 0.
pub fn pattern_chunks(size: u64, chunk: u64) -> impl Iterator<Item = Bytes> {
    (0..size.div_ceil(chunk)).map(move |c| {
        let start = c * chunk;
        let end = (start + chunk).min(size);
        Bytes::from((start..end).map(pattern).collect::<Vec<u8>>())
    })
}

impl FileServer {
    pub async fn start() -> FileServer {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = axum::Router::new()
            .route("/{*path}", get(serve))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FileServer {
            base: format!("http://{addr}"),
            inner,
        }
    }

    /// `path` (without the leading `/`) answers `replies`, one per request, the last repeating.
    pub fn script(&self, path: &str, replies: Vec<Reply>) {
        self.inner
            .lock()
            .unwrap()
            .scripts
            .insert(path.to_string(), replies);
    }

    pub fn hits(&self, path: &str) -> usize {
        *self.inner.lock().unwrap().hits.get(path).unwrap_or(&0)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.base)
    }
}

async fn serve(State(inner): State<Arc<Mutex<Inner>>>, Path(path): Path<String>) -> Response {
    let reply = {
        let mut g = inner.lock().unwrap();
        let n = {
            let h = g.hits.entry(path.clone()).or_insert(0);
            *h += 1;
            *h
        };
        g.scripts
            .get(&path)
            .and_then(|s| s.get(n - 1).or(s.last()).cloned())
    };
    match reply {
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
        Some(Reply::Status(s)) => (
            StatusCode::from_u16(s).unwrap(),
            [(header::CONTENT_TYPE, "text/plain")],
            "scripted failure",
        )
            .into_response(),
        Some(Reply::File(ct, bytes)) => ([(header::CONTENT_TYPE, ct)], bytes).into_response(),
        Some(Reply::Generated(ct, size)) => {
            let stream =
                futures::stream::iter(pattern_chunks(size, 64 * 1024).map(Ok::<_, std::io::Error>));
            let mut r = Response::new(Body::from_stream(stream));
            r.headers_mut()
                .insert(header::CONTENT_TYPE, ct.parse().unwrap());
            r.headers_mut()
                .insert(header::CONTENT_LENGTH, size.to_string().parse().unwrap());
            r
        }
    }
}

//! Micro-benchmarks of webhook signing: the Standard Webhooks `webhook-signature` header
//! (HMAC-SHA256 over `{id}.{timestamp}.{body}`, base64) for one secret and for two during a
//! rotation, and kie.ai's callback signature. Run: `cargo bench -p reelay-engine --bench
//! signing`. Figures: docs/performance.md.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use reelay_engine::signing::{kie_signature, sign, signature_header};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const PREVIOUS: &str = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const MSG_ID: &str = "msg_0193a5f2-7c1e-7a2b-9c3d-4e5f60718293-3";
const TS: i64 = 1_796_000_000;

/// A Runway-dialect `task.succeeded` body as the engine sends it (about 350 bytes): the task
/// with one signed output link.
fn body() -> Vec<u8> {
    let link = "https://reelay.example.com/media/0193a5f2-7c1e-7a2b-9c3d-4e5f60718293/output-0.mp4?exp=1796086400&sig=3f2a9c1b7d4e5f60718293a4b5c6d7e8";
    format!(
        r#"{{"type":"task.succeeded","timestamp":"2026-12-01T12:00:00.000Z","data":{{"id":"0193a5f2-7c1e-7a2b-9c3d-4e5f60718293","status":"SUCCEEDED","createdAt":"2026-12-01T11:58:25.000Z","output":["{link}"],"cost":{{"credits":25}}}}}}"#
    )
    .into_bytes()
}

fn signing(c: &mut Criterion) {
    let body = body();
    let mut g = c.benchmark_group("webhook signing");
    g.bench_function(format!("sign, {} B body", body.len()), |b| {
        b.iter(|| sign(black_box(SECRET), MSG_ID, TS, black_box(&body)))
    });
    g.bench_function("signature_header, 2 secrets (rotation)", |b| {
        b.iter(|| signature_header([SECRET, PREVIOUS], MSG_ID, TS, black_box(&body)))
    });
    let big = vec![b'x'; 64 * 1024];
    g.bench_function("sign, 64 KiB body", |b| {
        b.iter(|| sign(black_box(SECRET), MSG_ID, TS, black_box(&big)))
    });
    g.bench_function("kie_signature", |b| {
        b.iter(|| {
            kie_signature(
                black_box("kie-hmac-key-0123456789abcdef"),
                "0193a5f2-7c1e-7a2b-9c3d-4e5f60718293",
                TS,
            )
        })
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(50)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = signing
}
criterion_main!(benches);

//! Micro-benchmarks of each dialect's pure request and response code: a create body read,
//! checked against the catalog and priced (what a create does before it touches the store),
//! a task rendered as the dialect shows it (its webhook/callback body, which embeds the same
//! object as its GET), and the account price multiplier. No I/O, no server.
//! Run: `cargo bench -p reelay-api --bench dialects`. Figures: docs/performance.md.
//!
//! The Runway create path is `handlers::parse_body` (`serde_json::from_slice` then
//! `TaskSpec::parse`); it sits in a private module, so this file makes the same two calls.
//! The quick-start text-to-video translation (mapping lookup, Runway body) lives in its
//! handler and is repeated here in the same few lines; its image path fetches the image, so it
//! is not measured.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use reelay_api::bench_support::{account_price, quickstart as qs, reverse as rv};
use reelay_api::dialects::{quickstart, reverse, runway};
use reelay_api::MediaLinks;
use reelay_core::{Catalog, TaskSpec, TaskState};
use reelay_store::Task;
use serde_json::{json, Value};

const GEN4_TURBO_I2V: &[u8] = br#"{
  "model": "gen4_turbo",
  "promptImage": "https://cdn.example.com/uploads/2026/12/portrait-0042.jpg",
  "promptText": "The camera slowly pushes in as she turns toward the window, soft morning light",
  "ratio": "1280:720",
  "duration": 5,
  "seed": 123456789
}"#;

const GEN45_T2V: &[u8] = br#"{
  "model": "gen4.5",
  "promptText": "A red fox trots across a snowy field at dusk, breath visible, cinematic wide shot",
  "ratio": "1280:720",
  "duration": 10,
  "contentModeration": {"publicFigureThreshold": "auto"}
}"#;

/// `POST /runway/pro/generate`, image-to-video as the resellers' clients send it.
const REVERSE_GENERATE: &[u8] = br#"{
  "prompt": "The camera slowly pushes in as she turns toward the window, soft morning light",
  "image": "https://cdn.example.com/uploads/2026/12/portrait-0042.jpg",
  "model": "gen4",
  "ratio": "16:9",
  "style": "cinematic",
  "callback_url": "https://hooks.example.com/runway/callback",
  "options": {"seconds": 5, "seed": 42, "flip": false}
}"#;

/// `POST /api/v1/runway/generate`, text-to-video as kie.ai's clients send it.
const QUICKSTART_GENERATE: &[u8] = br#"{
  "prompt": "A red fox trots across a snowy field at dusk, breath visible, cinematic wide shot",
  "duration": 5,
  "quality": "720p",
  "aspectRatio": "16:9",
  "waterMark": "",
  "callBackUrl": "https://hooks.example.com/kie/callback"
}"#;

fn runway_create(catalog: &Catalog, endpoint: &str, body: &[u8]) -> (Value, TaskSpec) {
    let value: Value = serde_json::from_slice(body).expect("JSON");
    let spec = TaskSpec::parse(catalog, endpoint, &value).expect("a valid body");
    (value, spec)
}

fn reverse_create(catalog: &Catalog, m: &reverse::Mapping, body: &[u8]) -> TaskSpec {
    let obj = reelay_api::bench_support::json_object(body, true).expect("JSON");
    let t = rv::generate(m, &obj, false).expect("a valid body");
    let mut spec = TaskSpec::parse(catalog, &t.endpoint, &t.body).expect("a valid body");
    spec.callback_url = t.callback_url;
    spec
}

fn quickstart_create(catalog: &Catalog, m: &quickstart::Mapping, body: &[u8]) -> TaskSpec {
    let obj = reelay_api::bench_support::json_object(body, false).expect("JSON");
    let r = qs::read_generate(m, &obj).expect("a valid body");
    let aspect = r.aspect.unwrap_or_default();
    let target = &m.text[&r.quality][&aspect];
    let runway_body = json!({"model": target.model, "promptText": r.prompt,
                             "ratio": target.ratio, "duration": r.duration});
    let params = json!({
        "kind": "generate",
        "parentTaskId": "",
        "generateParam": {"prompt": r.prompt, "imageUrl": r.image_url.unwrap_or_default(),
                          "expandPrompt": r.expand},
        "quality": r.quality, "duration": r.duration, "ratio": target.ratio,
        "waterMark": r.water_mark,
    });
    let mut spec = TaskSpec::parse(catalog, "text_to_video", &runway_body).expect("valid");
    spec.callback_url = r.callback;
    spec.params = Some(params);
    spec
}

/// A task that just succeeded, archived: one video output with its poster and last frame,
/// so a rendering signs three media links.
fn succeeded(dialect: reelay_core::Dialect, spec: TaskSpec) -> Task {
    let now = 1_796_000_000_000;
    Task {
        id: "0193a5f2-7c1e-7a2b-9c3d-4e5f60718293".into(),
        account_id: "acct_01JEXAMPLE".into(),
        key_id: Some("key_01JEXAMPLE".into()),
        dialect,
        credits_held: spec.price,
        spec,
        state: TaskState::Succeeded,
        progress: 1.0,
        channel: Some("runway-main".into()),
        upstream_id: Some("7b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0".into()),
        attempts: 1,
        next_attempt_at: None,
        lease_owner: None,
        lease_until: None,
        cancel_upstream: false,
        credits_captured: 25,
        credits_refunded: 0,
        failure_code: None,
        failure_message: None,
        outputs: vec!["output-0.mp4".into()],
        upstream_outputs: vec!["https://dnznrvs05pmza.cloudfront.net/abc/output.mp4".into()],
        deleted: false,
        created_at: now - 95_000,
        updated_at: now,
        started_at: Some(now - 90_000),
        finished_at: Some(now),
        expires_at: Some(now + 7 * 86_400_000),
        poster: Some("output-0.poster.jpg".into()),
        last_frame: Some("output-0.last.jpg".into()),
        archive_started_at: Some(now - 2_000),
    }
}

fn links() -> MediaLinks {
    MediaLinks::new(
        "https://reelay.example.com",
        &[7u8; 32],
        Duration::from_secs(86_400),
    )
}

fn create(c: &mut Criterion) {
    let catalog = Catalog::builtin();
    let (rm, qm) = (reverse::Mapping::builtin(), quickstart::Mapping::builtin());
    let mut g = c.benchmark_group("create: parse + validate + price");
    g.bench_function("runway gen4_turbo image_to_video", |b| {
        b.iter(|| runway_create(&catalog, "image_to_video", black_box(GEN4_TURBO_I2V)))
    });
    g.bench_function("runway gen4.5 text_to_video", |b| {
        b.iter(|| runway_create(&catalog, "text_to_video", black_box(GEN45_T2V)))
    });
    g.bench_function("reverse /runway/pro/generate (image)", |b| {
        b.iter(|| reverse_create(&catalog, &rm, black_box(REVERSE_GENERATE)))
    });
    g.bench_function("quickstart /api/v1/runway/generate (text)", |b| {
        b.iter(|| quickstart_create(&catalog, &qm, black_box(QUICKSTART_GENERATE)))
    });
    g.finish();
}

fn render(c: &mut Criterion) {
    let catalog = Catalog::builtin();
    let links = links();
    let runway_task = succeeded(
        reelay_core::Dialect::Runway,
        runway_create(&catalog, "image_to_video", GEN4_TURBO_I2V).1,
    );
    let reverse_task = succeeded(
        reelay_core::Dialect::Reverse,
        reverse_create(&catalog, &reverse::Mapping::builtin(), REVERSE_GENERATE),
    );
    let qs_task = succeeded(
        reelay_core::Dialect::Quickstart,
        quickstart_create(
            &catalog,
            &quickstart::Mapping::builtin(),
            QUICKSTART_GENERATE,
        ),
    );
    let at = runway_task.updated_at;
    let run = Some(TaskState::Running);
    let done = TaskState::Succeeded;
    assert!(runway::callback(&links, &runway_task, run, done, at).is_some());
    assert!(reverse::callback(&links, &reverse_task, run, done, at).is_some());
    assert!(quickstart::callback(&links, &qs_task, done).is_some());

    let mut g = c.benchmark_group("render: succeeded task -> callback JSON");
    g.bench_function("runway (task JSON as GET /v1/tasks/{id})", |b| {
        b.iter(|| runway::callback(&links, black_box(&runway_task), run, done, at))
    });
    g.bench_function("reverse (feed data)", |b| {
        b.iter(|| reverse::callback(&links, black_box(&reverse_task), run, done, at))
    });
    g.bench_function("quickstart (snake_case callback)", |b| {
        b.iter(|| quickstart::callback(&links, black_box(&qs_task), done))
    });
    g.finish();
}

fn pricing(c: &mut Criterion) {
    let mut g = c.benchmark_group("pricing");
    g.bench_function("account_price x1.0", |b| {
        b.iter(|| account_price(black_box(25), black_box(1.0)))
    });
    g.bench_function("account_price x1.15", |b| {
        b.iter(|| account_price(black_box(25), black_box(1.15)))
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
    targets = create, render, pricing
}
criterion_main!(benches);

//! Micro-benchmarks of the catalog: validating and pricing a Runway body (`TaskSpec::parse`,
//! which every dialect ends in) and the price alone (`Price::credits_for`). Pure code, no I/O.
//! Run: `cargo bench -p reelay-core --bench catalog`. Figures: docs/performance.md.

use std::hint::black_box;
use std::time::Duration;

use base64::Engine as _;
use criterion::{criterion_group, criterion_main, Criterion};
use reelay_core::{Catalog, TaskSpec};
use serde_json::{json, Value};

/// A typical SDK image-to-video body: an HTTPS image, a prompt, ratio and duration.
fn gen4_turbo_url() -> Value {
    json!({
        "model": "gen4_turbo",
        "promptImage": "https://cdn.example.com/uploads/2026/12/portrait-0042.jpg",
        "promptText": "The camera slowly pushes in as she turns toward the window, soft morning light",
        "ratio": "1280:720",
        "duration": 5,
        "seed": 123456789
    })
}

/// The same with the image inline: a 256 KiB JPEG as a data URI (decoded to be checked).
fn gen4_turbo_data_uri() -> Value {
    let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0];
    jpeg.extend((0..256 * 1024 - 4).map(|i| (i * 31 % 251) as u8));
    let uri = format!(
        "data:image/jpeg;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(&jpeg)
    );
    let mut v = gen4_turbo_url();
    v["promptImage"] = json!(uri);
    v
}

/// A typical text-to-video body for the newest model.
fn gen45_text() -> Value {
    json!({
        "model": "gen4.5",
        "promptText": "A red fox trots across a snowy field at dusk, breath visible, cinematic wide shot",
        "ratio": "1280:720",
        "duration": 10,
        "contentModeration": {"publicFigureThreshold": "auto"}
    })
}

/// veo3.1 with audio: the price has a per-second part that depends on a boolean field.
fn veo_audio() -> Value {
    json!({
        "model": "veo3.1",
        "promptImage": [
            {"uri": "https://cdn.example.com/a.jpg", "position": "first"},
            {"uri": "https://cdn.example.com/b.jpg", "position": "last"}
        ],
        "promptText": "waves crash on black rocks",
        "ratio": "1280:720",
        "duration": 8,
        "audio": true
    })
}

fn validate(c: &mut Criterion) {
    let catalog = Catalog::builtin();
    let mut g = c.benchmark_group("core/TaskSpec::parse");
    for (name, endpoint, body) in [
        ("gen4_turbo i2v (URL)", "image_to_video", gen4_turbo_url()),
        (
            "gen4_turbo i2v (256 KiB data URI)",
            "image_to_video",
            gen4_turbo_data_uri(),
        ),
        ("gen4.5 t2v", "text_to_video", gen45_text()),
        (
            "veo3.1 i2v first+last, audio",
            "image_to_video",
            veo_audio(),
        ),
    ] {
        TaskSpec::parse(&catalog, endpoint, &body).expect("a valid body");
        g.bench_function(name, |b| {
            b.iter(|| TaskSpec::parse(&catalog, black_box(endpoint), black_box(&body)))
        });
    }
    g.finish();
}

fn pricing(c: &mut Criterion) {
    let catalog = Catalog::builtin();
    let mut g = c.benchmark_group("core/Price::credits_for");
    for (name, endpoint, body) in [
        ("gen4_turbo 5 s", "image_to_video", gen4_turbo_url()),
        ("veo3.1 8 s + audio", "image_to_video", veo_audio()),
    ] {
        let model = body["model"].as_str().expect("a model");
        let price = &catalog.endpoint(endpoint).expect("endpoint").models[model].price;
        let obj = body.as_object().expect("an object").clone();
        g.bench_function(name, |b| {
            b.iter(|| black_box(price).credits_for(black_box(&obj)))
        });
    }
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
    targets = validate, pricing
}
criterion_main!(benches);

//! Frame derivation of a 1280×720 H.264 clip (what Runway makes: five seconds at 24 fps, an
//! IDR every 48 frames), in process: the poster (first picture) and the last frame (decoding
//! the last GOP, 24 pictures here). Through `Frames::derive` on a local store, as the archiver
//! and the media route call it: the blocking thread, the file reads and the JPEG included.
//! Run: `cargo bench -p reelay-media --bench frames`.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use reelay_media::{FrameKind, Frames, MediaStore};
use reelay_sim::clip::{self, ClipSpec};

fn frames(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let media = MediaStore::local(dir.path()).unwrap();
    let spec = ClipSpec::default();
    let mp4 = clip::generate(&spec).unwrap();
    rt.block_on(media.put("t/0.mp4", "video/mp4", mp4.into()))
        .unwrap();
    let frames = Frames::new(None, Duration::from_secs(60), 1);

    let mut g = c.benchmark_group("frames_1280x720");
    g.sample_size(20);
    for (name, kind) in [
        ("poster", FrameKind::Poster),
        ("last_frame", FrameKind::LastFrame),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| rt.block_on(frames.derive(&media, "t/0.mp4", kind)).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, frames);
criterion_main!(benches);

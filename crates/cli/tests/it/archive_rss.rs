//! Memory stays flat whatever the output size: a 200 MB output streamed through the archiver
//! keeps the server under 100 MB of resident memory.
//!
//! Measured on the real binary in a process of its own, so the figures are the server's alone
//! (the test binary runs many tests at once): the peak the kernel recorded (`VmHWM`, over the
//! server's whole life) and `VmRSS` sampled every 20 ms during the transfer. The simulator and
//! the file server generating the 200 MB on the fly run in the test process. A whole-file
//! buffer anywhere on the path would add 200 MB and fail it.

use crate::common;

use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::files::{pattern_chunks, FileServer, Reply};
use common::process::Reelay;
use common::{fast_sim, gen4_turbo, VERSION};
use reelay_sim::SimConfig;
use serde_json::Value;
use sha2::{Digest, Sha256};

const SIZE: u64 = 200 * 1024 * 1024;
const LIMIT_KB: u64 = 100 * 1024;

/// A field of /proc/<pid>/status in kB (Linux).
fn status_kb(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("Linux /proc");
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_mb_output_is_archived_in_under_100_mb_of_memory() {
    let files = FileServer::start().await;
    files.script(
        "big.bin",
        vec![Reply::Generated("application/octet-stream", SIZE)],
    );
    let sim = reelay_sim::spawn(
        SimConfig {
            output_url: Some(files.url("big.bin")),
            ..fast_sim()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let config = dir.path().join("reelay.toml");
    std::fs::write(
        &config,
        format!(
            r#"log = "warn"
sandbox = false
outbound_allow_cidrs = "127.0.0.1/32"

[limits]
requests_per_second = 0

[engine]
poll_min_ms = 100
poll_max_ms = 500

[[channels]]
name = "sim"
kind = "sandbox"
base_url = "{}"
"#,
            sim.base_url()
        ),
    )
    .unwrap();
    let server = tokio::task::block_in_place(|| {
        Reelay::start(&config, &data_dir, dir.path().join("server.log"))
    });
    let pid = server.pid();
    let key = server.first_key.clone().expect("first start prints a key");
    let before_kb = status_kb(pid, "VmRSS:");
    let sampled_max = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (max, stop) = (sampled_max.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                max.fetch_max(status_kb(pid, "VmRSS:"), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };

    let client = reqwest::Client::new();
    let call = |req: reqwest::RequestBuilder| {
        req.bearer_auth(&key)
            .header("X-Runway-Version", VERSION)
            .send()
    };
    let created: Value = call(
        client
            .post(format!("{}/v1/image_to_video", server.base_url))
            .json(&gen4_turbo("big")),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let id = created["id"].as_str().expect("created").to_string();
    let deadline = Instant::now() + Duration::from_secs(120);
    let task: Value = loop {
        let t: Value = call(client.get(format!("{}/v1/tasks/{id}", server.base_url)))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if matches!(t["status"].as_str(), Some("SUCCEEDED" | "FAILED")) {
            break t;
        }
        assert!(Instant::now() < deadline, "not finished: {t}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(task["status"], "SUCCEEDED", "{task}");

    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let peak_kb = status_kb(pid, "VmHWM:");
    let sampled_kb = sampled_max.load(Ordering::Relaxed);
    eprintln!(
        "archive of {} MB: server RSS before {} MB, sampled max {} MB, peak (VmHWM) {} MB",
        SIZE >> 20,
        before_kb / 1024,
        sampled_kb / 1024,
        peak_kb / 1024
    );
    assert!(sampled_kb > 0);
    assert!(peak_kb < LIMIT_KB, "peak RSS {peak_kb} kB >= {LIMIT_KB} kB");
    assert!(
        sampled_kb < LIMIT_KB,
        "sampled RSS {sampled_kb} kB >= {LIMIT_KB} kB"
    );

    // The whole output arrived, byte for byte, and its recorded hash is right.
    let store = common::open_store(&data_dir).await;
    let objects = store.media_objects(&id).await.unwrap();
    assert_eq!(objects.len(), 1, "{objects:?}");
    let mut expected = Sha256::new();
    for chunk in pattern_chunks(SIZE, 1 << 20) {
        expected.update(&chunk);
    }
    let expected = hex::encode(expected.finalize());
    assert_eq!(objects[0].size, SIZE as i64);
    assert_eq!(objects[0].sha256, expected);
    let path = data_dir.join("media").join(&id).join(&objects[0].name);
    let mut file = std::fs::File::open(&path).unwrap();
    let mut actual = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        total += n as u64;
        actual.update(&buf[..n]);
    }
    assert_eq!(total, SIZE);
    assert_eq!(hex::encode(actual.finalize()), expected);
    drop(server);
}

//! Memory stays flat whatever the output size: a 200 MB output streamed through the archiver
//! keeps the process under 100 MB of resident memory.
//!
//! Measured in-process, in a test binary of its own (this file holds exactly one test, and cargo
//! runs each test file as a separate process), so the numbers are this scenario's alone. The
//! process holds the whole server, the upstream simulator and the file server generating the
//! 200 MB on the fly, so its RSS is an upper bound on the server's own. Both the peak the kernel
//! recorded (`VmHWM`, over the process's whole life) and `VmRSS` sampled every 20 ms during the
//! transfer are checked. A whole-file buffer anywhere on the path would add 200 MB and fail it.

use crate::common;

use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::files::{pattern_chunks, FileServer, Reply};
use common::{fast_sim, gen4_turbo, TestApp};
use reelay_sim::SimConfig;
use sha2::{Digest, Sha256};

const SIZE: u64 = 200 * 1024 * 1024;
const LIMIT_KB: u64 = 100 * 1024;

/// A field of /proc/self/status in kB (Linux).
fn status_kb(field: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/self/status").expect("Linux /proc");
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

#[test]
fn a_200_mb_output_is_archived_in_under_100_mb_of_memory() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let before_kb = status_kb("VmRSS:");
    let sampled_max = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (max, stop) = (sampled_max.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                max.fetch_max(status_kb("VmRSS:"), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };

    rt.block_on(async {
        let files = FileServer::start().await;
        files.script(
            "big.bin",
            vec![Reply::Generated("application/octet-stream", SIZE)],
        );
        let app = TestApp::with_sim(
            SimConfig {
                output_url: Some(files.url("big.bin")),
                ..fast_sim()
            },
            |c| c.outbound_allow_cidrs = "127.0.0.1/32".into(),
        )
        .await;
        let id = app.create("image_to_video", &gen4_turbo("big")).await;
        let t = app.wait_terminal(&id).await;
        assert_eq!(t["status"], "SUCCEEDED", "{t}");

        stop.store(true, Ordering::Relaxed);
        let peak_kb = status_kb("VmHWM:");
        let sampled_kb = sampled_max.load(Ordering::Relaxed);
        eprintln!(
            "archive of {} MB: RSS before {} MB, sampled max {} MB, peak (VmHWM) {} MB",
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
        let objects = app.server.store.media_objects(&id).await.unwrap();
        assert_eq!(objects.len(), 1, "{objects:?}");
        let mut expected = Sha256::new();
        for chunk in pattern_chunks(SIZE, 1 << 20) {
            expected.update(&chunk);
        }
        let expected = hex::encode(expected.finalize());
        assert_eq!(objects[0].size, SIZE as i64);
        assert_eq!(objects[0].sha256, expected);
        let path = app
            .dir
            .path()
            .join("media")
            .join(&id)
            .join(&objects[0].name);
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
        app.server.stop().await;
    });
    sampler.join().unwrap();
    drop(rt);
}

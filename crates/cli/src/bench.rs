//! `reelay bench`: a small load tool. It submits tasks through the Runway dialect at a fixed
//! concurrency, reports create latency and throughput, and (with `--wait`) how long it took
//! for all of them to finish.

use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use serde_json::{json, Value};

pub struct BenchArgs {
    /// One base URL, or several separated by commas (instances sharing a database): submits go
    /// round-robin across them.
    pub url: String,
    pub key: String,
    pub tasks: usize,
    pub concurrency: usize,
    pub wait: bool,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

pub async fn run(args: BenchArgs) -> anyhow::Result<Value> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let bases: Vec<String> = args
        .url
        .split(',')
        .map(|u| u.trim().trim_end_matches('/').to_string())
        .filter(|u| !u.is_empty())
        .collect();
    anyhow::ensure!(!bases.is_empty(), "--url names no server");
    let base = bases[0].clone();
    let body = json!({"model": "gen4_turbo", "promptImage": "https://example.com/bench.jpg",
                      "promptText": "bench", "ratio": "1280:720", "duration": 5});
    let started = Instant::now();
    let results: Vec<(Duration, Result<String, String>)> = stream::iter(0..args.tasks)
        .map(|n| {
            let (client, base, key, body) = (
                client.clone(),
                bases[n % bases.len()].clone(),
                args.key.clone(),
                body.clone(),
            );
            async move {
                let t0 = Instant::now();
                let r = client
                    .post(format!("{base}/v1/image_to_video"))
                    .bearer_auth(&key)
                    .header("X-Runway-Version", "2024-11-06")
                    .json(&body)
                    .send()
                    .await;
                let outcome = match r {
                    Ok(resp) if resp.status().is_success() => match resp.json::<Value>().await {
                        Ok(v) => v["id"]
                            .as_str()
                            .map(str::to_string)
                            .ok_or_else(|| "no id".to_string()),
                        Err(e) => Err(e.to_string()),
                    },
                    Ok(resp) => Err(format!("status {}", resp.status())),
                    Err(e) => Err(e.to_string()),
                };
                (t0.elapsed(), outcome)
            }
        })
        .buffer_unordered(args.concurrency.max(1))
        .collect()
        .await;
    let submit_elapsed = started.elapsed();
    let mut latencies: Vec<Duration> = results.iter().map(|r| r.0).collect();
    latencies.sort();
    let ids: Vec<String> = results.iter().filter_map(|r| r.1.clone().ok()).collect();
    let errors = results.len() - ids.len();
    let mut report = json!({
        "servers": bases.len(),
        "tasks": args.tasks,
        "concurrency": args.concurrency,
        "accepted": ids.len(),
        "errors": errors,
        "submit_seconds": submit_elapsed.as_secs_f64(),
        "creates_per_second": ids.len() as f64 / submit_elapsed.as_secs_f64(),
        "create_latency_ms": {
            "p50": percentile(&latencies, 0.50).as_secs_f64() * 1000.0,
            "p95": percentile(&latencies, 0.95).as_secs_f64() * 1000.0,
            "p99": percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
            "max": latencies.last().copied().unwrap_or_default().as_secs_f64() * 1000.0,
        },
    });
    if args.wait {
        let mut pending = ids.clone();
        let mut succeeded = 0usize;
        let deadline = Instant::now() + Duration::from_secs(3600);
        while !pending.is_empty() && Instant::now() < deadline {
            let checks: Vec<(String, Option<String>)> = stream::iter(pending.clone())
                .map(|id| {
                    let (client, base, key) = (client.clone(), base.clone(), args.key.clone());
                    async move {
                        let status = client
                            .get(format!("{base}/v1/tasks/{id}"))
                            .bearer_auth(&key)
                            .header("X-Runway-Version", "2024-11-06")
                            .send()
                            .await
                            .ok();
                        let status = match status {
                            Some(r) => r
                                .json::<Value>()
                                .await
                                .ok()
                                .and_then(|v| v["status"].as_str().map(str::to_string)),
                            None => None,
                        };
                        (id, status)
                    }
                })
                .buffer_unordered(args.concurrency.max(1))
                .collect()
                .await;
            pending.clear();
            for (id, status) in checks {
                match status.as_deref() {
                    Some("SUCCEEDED") => succeeded += 1,
                    Some("FAILED" | "CANCELLED") => {}
                    _ => pending.push(id),
                }
            }
            if !pending.is_empty() {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
        let total = started.elapsed();
        report["succeeded"] = json!(succeeded);
        report["unfinished"] = json!(pending.len());
        report["end_to_end_seconds"] = json!(total.as_secs_f64());
        report["completed_per_second"] = json!(succeeded as f64 / total.as_secs_f64());
    }
    Ok(report)
}

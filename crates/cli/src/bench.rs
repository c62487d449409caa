//! `reelay bench`: the load tool. Bounded in count and time, it stops by itself.
//!
//! Without `--url` it starts everything it measures on free ports: a simulator (in process,
//! tasks finishing after `--sim-run-seconds`), a callback receiver (in process) and a `reelay
//! serve` of this same binary as a child process (so its peak RSS and CPU seconds are its
//! own). With `--url` it loads running servers (several, comma-separated, round-robin) and
//! reads their RSS/CPU only when given `--pid`.
//!
//! Modes: `submit` (accepted submits/s, submit latency, errors by status and dialect code) and
//! `e2e` (also: tasks completed per second and the accept → terminal-callback latency, both
//! measured at the callback receiver — never by polling every task). Upstream requests per
//! task come from the simulator's counters.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Submit only.
    Submit,
    /// Submit, then wait for every task's terminal callback.
    E2e,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Dialect {
    /// `POST /v1/image_to_video` with `X-Reelay-Callback-Url`.
    Runway,
    /// `POST /runway/pro/generate` with `callback_url`.
    Reverse,
}

/// The video the simulator serves as every video output (default: its small embedded sample).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SimVideo {
    /// Serve a generated H.264 MP4 of this size (`1280x720`: what Runway makes, five seconds).
    #[arg(long, value_name = "WIDTHxHEIGHT")]
    pub video_size: Option<String>,
    /// Pad the served video to this many bytes (a valid MP4 still), for archive figures.
    #[arg(long, requires = "video_size", value_name = "BYTES")]
    pub video_bytes: Option<u64>,
}

/// Videos bigger than this are refused: the simulator holds the file in memory.
const MAX_VIDEO_BYTES: u64 = 2 << 30;

impl SimVideo {
    /// The file, when one was asked for.
    pub fn build(&self) -> anyhow::Result<Option<bytes::Bytes>> {
        let Some(size) = &self.video_size else {
            return Ok(None);
        };
        let spec = reelay_sim::clip::ClipSpec::parse_size(size).map_err(anyhow::Error::msg)?;
        let mut mp4 = reelay_sim::clip::generate(&spec).map_err(anyhow::Error::msg)?;
        if let Some(total) = self.video_bytes {
            if total > MAX_VIDEO_BYTES {
                anyhow::bail!("--video-bytes {total}: at most {MAX_VIDEO_BYTES}");
            }
            mp4 = reelay_sim::clip::padded(mp4, total);
        }
        Ok(Some(mp4.into()))
    }
}

pub struct BenchArgs {
    /// Running servers, comma-separated; `None`: start our own.
    pub url: Option<String>,
    /// API key for `--url` (our own server prints one).
    pub key: Option<String>,
    pub tasks: usize,
    pub concurrency: usize,
    /// Open loop: offer this many submits per second (at most `concurrency` in flight)
    /// instead of sending the next as soon as one returns.
    pub rate: Option<f64>,
    pub mode: Mode,
    pub dialect: Dialect,
    /// Give up waiting after this long (the report says how many did not finish).
    pub max_seconds: u64,
    /// The server process to read RSS and CPU from, with `--url`.
    pub pid: Option<u32>,
    /// The simulator behind `--url` servers, for upstream request counts.
    pub sim_url: Option<String>,
    /// Our own simulator: seconds a task runs.
    pub sim_run_seconds: f64,
    /// Our own server: derive posters and last frames.
    pub frames: bool,
    /// Our own server: this database instead of a temporary SQLite file.
    pub database_url: Option<String>,
    /// Our own simulator: the video it serves.
    pub video: SimVideo,
    /// After the submits (and every upstream create), watch the tasks in flight this long:
    /// upstream polls per second against what the poll schedule makes due, the server's CPU
    /// in that window and its RSS.
    pub hold_seconds: Option<u64>,
    /// Our own server: poll every task at this fixed interval (engine.poll_min_ms =
    /// poll_max_ms), so the due poll rate is tasks / interval.
    pub poll_seconds: Option<u64>,
}

fn percentiles(mut v: Vec<Duration>) -> Value {
    v.sort();
    let at = |p: f64| {
        if v.is_empty() {
            return 0.0;
        }
        let i = ((v.len() as f64 - 1.0) * p).round() as usize;
        v[i.min(v.len() - 1)].as_secs_f64() * 1000.0
    };
    json!({"p50": at(0.50), "p95": at(0.95), "p99": at(0.99),
           "max": v.last().map(|d| d.as_secs_f64() * 1000.0).unwrap_or(0.0)})
}

/// Terminal callbacks by task id, with their arrival time.
#[derive(Clone, Default)]
struct Callbacks(Arc<Mutex<HashMap<String, Instant>>>);

impl Callbacks {
    fn note(&self, body: &Value) {
        // Runway: {"data": {"id", "status"}}; reverse: {"task_id", "status": "2"|"3"}.
        let (id, terminal) = match (&body["data"]["id"], &body["task_id"]) {
            (Value::String(id), _) => (
                id,
                matches!(
                    body["data"]["status"].as_str(),
                    Some("SUCCEEDED" | "FAILED" | "CANCELLED")
                ),
            ),
            (_, Value::String(id)) => (id, matches!(body["status"].as_str(), Some("2" | "3"))),
            _ => return,
        };
        if terminal {
            let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
            seen.entry(id.clone()).or_insert_with(Instant::now);
        }
    }
    fn snapshot(&self) -> HashMap<String, Instant> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

async fn start_receiver(seen: Callbacks) -> anyhow::Result<String> {
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let seen = seen.clone();
            async move {
                if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                    seen.note(&v);
                }
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(url)
}

/// Our own `reelay serve`, stopped (and its folder removed) on drop.
struct OwnServer {
    child: std::process::Child,
    dir: PathBuf,
    url: String,
    key: String,
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start_server(sim_url: &str, args: &BenchArgs) -> anyhow::Result<OwnServer> {
    use std::io::BufRead;
    let dir = std::env::temp_dir().join(format!("reelay-bench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let config = dir.join("reelay.toml");
    std::fs::write(
        &config,
        format!(
            r#"log = "warn"
sandbox = false
default_account_credits = 1000000000000
outbound_allow_cidrs = "127.0.0.1/32"
{db}
[limits]
requests_per_second = 0
max_active_tasks = 1000000

[media]
derive_frames = {frames}
{engine}

[[channels]]
name = "sim"
kind = "sandbox"
base_url = "{sim_url}"
"#,
            frames = args.frames,
            engine = args
                .poll_seconds
                .map(|p| format!(
                    "\n[engine]\npoll_min_ms = {ms}\npoll_max_ms = {ms}\n",
                    ms = p * 1000
                ))
                .unwrap_or_default(),
            db = args
                .database_url
                .as_ref()
                .map(|u| format!("database_url = {u:?}"))
                .unwrap_or_default(),
        ),
    )?;
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .env_remove("REELAY_CONFIG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(dir.join("server.log"))?)
        .spawn()?;
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let (mut key, deadline) = (None, Instant::now() + Duration::from_secs(60));
    let mut server = OwnServer {
        child,
        dir: dir.clone(),
        url: String::new(),
        key: String::new(),
    };
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).map_err(|_| {
            let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
            anyhow::anyhow!("the server did not start: {log}")
        })?;
        if let Some(k) = line.trim().strip_prefix("key_") {
            key = Some(format!("key_{k}"));
        }
        if let Some(rest) = line.strip_prefix("reelay listening on ") {
            server.url = rest.split_whitespace().next().unwrap_or("").to_string();
            server.key = key.ok_or_else(|| anyhow::anyhow!("the server printed no key"))?;
            return Ok(server);
        }
    }
}

/// Peak RSS (kB) and CPU seconds of a process, from /proc (Linux).
fn process_usage(pid: u32) -> Option<(u64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces, hence the last ')').
    let rest: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = rest.get(11)?.parse::<u64>().ok()? + rest.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every Linux this runs on.
    Some((hwm, ticks as f64 / 100.0))
}

/// The server's resident memory now (kB), from `/proc`.
fn current_rss_kb(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// `--hold-seconds`: waits until the upstream received every accepted task (and, with a
/// fixed poll interval, one interval more, so every task is on its schedule), then counts the
/// upstream polls, the server's CPU and its RSS over `hold` seconds.
async fn hold_in_flight(
    args: &BenchArgs,
    sim: &SimSource,
    client: &reqwest::Client,
    pid: Option<u32>,
    accepted: usize,
    creates_before: u64,
    hold: u64,
) -> Value {
    let give_up = Instant::now() + Duration::from_secs(args.max_seconds);
    if sim_stats(sim, client).await.is_none() {
        return json!({"error": "no simulator to count upstream requests at (--sim-url)"});
    }
    loop {
        let creates = sim_stats(sim, client)
            .await
            .map(|s| s.creates_received - creates_before)
            .unwrap_or(0);
        if creates as usize >= accepted || Instant::now() > give_up {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let all_upstream = Instant::now();
    if let Some(p) = args.poll_seconds {
        tokio::time::sleep(Duration::from_secs(p)).await;
    }
    // With a fixed interval the polls of a burst of submits come in bunches one interval
    // apart: only a window of whole intervals holds the average rate the schedule makes due.
    let hold = match args.poll_seconds {
        Some(p) => hold.div_ceil(p).max(1) * p,
        None => hold,
    };
    let before = sim_stats(sim, client).await;
    let usage_before = pid.and_then(process_usage);
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(hold)).await;
    let window = t0.elapsed().as_secs_f64();
    let after = sim_stats(sim, client).await;
    let usage_after = pid.and_then(process_usage);
    let polls = match (before, after) {
        (Some(b), Some(a)) => a.polls - b.polls,
        _ => 0,
    };
    let mut v = json!({
        "tasks": accepted,
        "seconds_until_all_upstream": all_upstream.elapsed().as_secs_f64() - window
            - args.poll_seconds.unwrap_or(0) as f64,
        "window_seconds": window,
        "polls": polls,
        "polls_per_second": polls as f64 / window,
    });
    if let Some(p) = args.poll_seconds {
        v["due_polls_per_second"] = json!(accepted as f64 / p as f64);
    }
    if let (Some((_, c0)), Some((_, c1))) = (usage_before, usage_after) {
        v["server_cpu_seconds"] = json!(c1 - c0);
        v["server_cpu_ms_per_poll"] = json!((c1 - c0) * 1000.0 / (polls.max(1) as f64));
    }
    if let Some(kb) = pid.and_then(current_rss_kb) {
        v["server_rss_mb"] = json!(kb as f64 / 1024.0);
    }
    v
}

/// Why a submit failed: the status and the dialect's own error code or message.
fn error_key(status: u16, body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let code = match (&v["error"], &v["code"], &v["msg"]) {
        (Value::Object(e), _, _) => e
            .get("code")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        (Value::String(e), _, _) => e.chars().take(60).collect(),
        (_, Value::Number(c), Value::String(m)) => {
            format!("{c} {}", m.chars().take(50).collect::<String>())
        }
        _ => body.chars().take(60).collect(),
    };
    format!("{status} {code}").trim().to_string()
}

async fn sim_stats(sim: &SimSource, client: &reqwest::Client) -> Option<reelay_sim::SimStats> {
    match sim {
        SimSource::Own(h) => Some(h.sim.stats()),
        SimSource::Remote(url) => client
            .get(format!("{url}/_sim/stats"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok(),
        SimSource::None => None,
    }
}

enum SimSource {
    Own(reelay_sim::SimHandle),
    Remote(String),
    None,
}

pub async fn run(args: BenchArgs) -> anyhow::Result<Value> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .timeout(Duration::from_secs(60))
        .build()?;
    let seen = Callbacks::default();
    let callback_url = start_receiver(seen.clone()).await?;
    let (sim, own, bases, key, pid);
    match &args.url {
        Some(urls) => {
            bases = urls
                .split(',')
                .map(|u| u.trim().trim_end_matches('/').to_string())
                .filter(|u| !u.is_empty())
                .collect::<Vec<_>>();
            anyhow::ensure!(!bases.is_empty(), "--url names no server");
            key = args
                .key
                .clone()
                .ok_or_else(|| anyhow::anyhow!("--key is needed with --url"))?;
            sim = args
                .sim_url
                .clone()
                .map(SimSource::Remote)
                .unwrap_or(SimSource::None);
            own = None;
            pid = args.pid;
        }
        None => {
            let handle = reelay_sim::spawn(
                reelay_sim::SimConfig {
                    pending_seconds: 0.0,
                    run_seconds: args.sim_run_seconds,
                    output_video: args.video.build()?,
                    ..reelay_sim::SimConfig::default()
                },
                "127.0.0.1:0".parse().expect("static address"),
            )
            .await?;
            let server = start_server(&handle.base_url(), &args)?;
            bases = vec![server.url.clone()];
            key = server.key.clone();
            pid = Some(server.child.id());
            sim = SimSource::Own(handle);
            own = Some(server);
        }
    }
    let stats_before = sim_stats(&sim, &client).await;
    let deadline = Instant::now() + Duration::from_secs(args.max_seconds);

    let started = Instant::now();
    let results: Vec<(Duration, Instant, Result<String, String>)> = stream::iter(0..args.tasks)
        .map(|n| {
            // Callbacks only where they are measured: a submit-only run asks for none.
            let cb = (args.mode == Mode::E2e).then_some(&callback_url);
            let (client, base, key) = (&client, &bases[n % bases.len()], &key);
            async move {
                // Open loop: submit `n` is due at its slot of the schedule, and its latency
                // counts from then, so a server that falls behind shows it in the latency
                // (no coordinated omission) instead of slowing the offered load.
                let t0 = match args.rate {
                    Some(rate) => {
                        let due = started + Duration::from_secs_f64(n as f64 / rate);
                        tokio::time::sleep_until(due.into()).await;
                        due
                    }
                    None => Instant::now(),
                };
                if t0 > deadline {
                    return (Duration::ZERO, t0, Err("not sent: --max-seconds".into()));
                }
                let req = match args.dialect {
                    Dialect::Runway => {
                        let req = client
                            .post(format!("{base}/v1/image_to_video"))
                            .header("X-Runway-Version", "2024-11-06");
                        match cb {
                            Some(cb) => req.header("X-Reelay-Callback-Url", cb),
                            None => req,
                        }
                        .json(&json!({"model": "gen4_turbo", "promptImage": "https://example.com/bench.jpg",
                                      "promptText": "bench", "ratio": "1280:720", "duration": 5}))
                    }
                    Dialect::Reverse => client
                        .post(format!("{base}/runway/pro/generate"))
                        .json(&match cb {
                            Some(cb) => json!({"prompt": "bench", "callback_url": cb}),
                            None => json!({"prompt": "bench"}),
                        }),
                };
                let outcome = match req.bearer_auth(key).send().await {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let body = r.text().await.unwrap_or_default();
                        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                        let id = v["id"].as_str().or(v["data"]["task_id"].as_str());
                        match id {
                            Some(id) if status == 200 => Ok(id.to_string()),
                            _ => Err(error_key(status, &body)),
                        }
                    }
                    Err(e) if e.is_timeout() => Err("timeout".into()),
                    Err(_) => Err("connection error".into()),
                };
                (t0.elapsed(), Instant::now(), outcome)
            }
        })
        .buffer_unordered(args.concurrency.max(1))
        .collect()
        .await;
    let submit_elapsed = started.elapsed();
    let mut errors: BTreeMap<String, usize> = BTreeMap::new();
    let mut accepted: HashMap<String, Instant> = HashMap::new();
    for (_, at, r) in &results {
        match r {
            Ok(id) => {
                accepted.insert(id.clone(), *at);
            }
            Err(e) => *errors.entry(e.clone()).or_default() += 1,
        }
    }
    let mut report = json!({
        "mode": format!("{:?}", args.mode).to_lowercase(),
        "dialect": format!("{:?}", args.dialect).to_lowercase(),
        "servers": bases.len(),
        "tasks": args.tasks,
        "concurrency": args.concurrency,
        "offered_per_second": args.rate,
        "accepted": accepted.len(),
        "errors": errors,
        "submit_seconds": submit_elapsed.as_secs_f64(),
        "accepted_per_second": accepted.len() as f64 / submit_elapsed.as_secs_f64(),
        "submit_latency_ms": percentiles(results.iter().map(|r| r.0).collect()),
    });

    if args.mode == Mode::E2e {
        loop {
            let done = seen.snapshot();
            if accepted.keys().all(|id| done.contains_key(id)) || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let done = seen.snapshot();
        let finished: Vec<(Instant, Instant)> = accepted
            .iter()
            .filter_map(|(id, at)| done.get(id).map(|cb| (*at, *cb)))
            .collect();
        let last = finished.iter().map(|f| f.1).max().unwrap_or(started);
        let span = last.duration_since(started).as_secs_f64().max(1e-9);
        report["completed"] = json!(finished.len());
        report["unfinished"] = json!(accepted.len() - finished.len());
        report["end_to_end_seconds"] = json!(span);
        report["completed_per_second"] = json!(finished.len() as f64 / span);
        report["accept_to_callback_ms"] = percentiles(
            finished
                .iter()
                .map(|(a, c)| c.saturating_duration_since(*a))
                .collect(),
        );
    }
    if let Some(hold) = args.hold_seconds {
        report["in_flight"] = hold_in_flight(
            &args,
            &sim,
            &client,
            pid,
            accepted.len(),
            stats_before.as_ref().map_or(0, |s| s.creates_received),
            hold,
        )
        .await;
    }
    if let (Some(before), Some(after)) = (stats_before, sim_stats(&sim, &client).await) {
        let creates = after.creates_received - before.creates_received;
        let polls = after.polls - before.polls;
        let n = accepted.len().max(1) as f64;
        report["upstream"] = json!({
            "creates": creates, "polls": polls,
            "requests_per_task": (creates + polls) as f64 / n,
        });
    }
    if let Some((hwm_kb, cpu)) = pid.and_then(process_usage) {
        report["server"] = json!({"peak_rss_mb": hwm_kb as f64 / 1024.0, "cpu_seconds": cpu});
    }
    drop(own);
    Ok(report)
}

/// The report as a table for people.
pub fn table(r: &Value) -> String {
    let ms = |v: &Value| {
        format!(
            "p50 {:.1}  p95 {:.1}  p99 {:.1}  max {:.1} ms",
            v["p50"].as_f64().unwrap_or(0.0),
            v["p95"].as_f64().unwrap_or(0.0),
            v["p99"].as_f64().unwrap_or(0.0),
            v["max"].as_f64().unwrap_or(0.0)
        )
    };
    let mut out = vec![
        format!(
            "reelay bench: {} {} tasks, concurrency {}, {} server(s), mode {}",
            r["dialect"].as_str().unwrap_or(""),
            r["tasks"],
            r["concurrency"],
            r["servers"],
            r["mode"].as_str().unwrap_or("")
        ),
        format!(
            "  accepted            {} in {:.2} s = {:.0}/s",
            r["accepted"],
            r["submit_seconds"].as_f64().unwrap_or(0.0),
            r["accepted_per_second"].as_f64().unwrap_or(0.0)
        ),
        format!("  submit latency      {}", ms(&r["submit_latency_ms"])),
    ];
    if let Some(f) = r["in_flight"].as_object() {
        let n = |k: &str| f.get(k).and_then(Value::as_f64).unwrap_or(0.0);
        out.push(format!(
            "  in flight           {} tasks: {:.0} polls/s upstream (due by the schedule: {}), \
             {:.3} ms server CPU per poll, RSS {:.1} MB, over {:.0} s",
            f.get("tasks").cloned().unwrap_or_default(),
            n("polls_per_second"),
            f.get("due_polls_per_second")
                .and_then(Value::as_f64)
                .map(|d| format!("{d:.0}/s"))
                .unwrap_or_else(|| "-".into()),
            n("server_cpu_ms_per_poll"),
            n("server_rss_mb"),
            n("window_seconds"),
        ));
    }
    if let Some(rate) = r["offered_per_second"].as_f64() {
        out.insert(1, format!("  offered             {rate:.0}/s (open loop)"));
    }
    match r["errors"].as_object() {
        Some(e) if !e.is_empty() => {
            out.push("  errors".into());
            for (k, n) in e {
                out.push(format!("    {n:>8}  {k}"));
            }
        }
        _ => out.push("  errors              none".into()),
    }
    if r.get("completed").is_some() {
        out.push(format!(
            "  completed           {} ({} unfinished) in {:.2} s = {:.0}/s (at the callback receiver)",
            r["completed"],
            r["unfinished"],
            r["end_to_end_seconds"].as_f64().unwrap_or(0.0),
            r["completed_per_second"].as_f64().unwrap_or(0.0)
        ));
        out.push(format!(
            "  accept -> callback  {}",
            ms(&r["accept_to_callback_ms"])
        ));
    }
    if let Some(u) = r.get("upstream") {
        out.push(format!(
            "  upstream            {} creates, {} polls, {:.2} requests/task",
            u["creates"],
            u["polls"],
            u["requests_per_task"].as_f64().unwrap_or(0.0)
        ));
    }
    if let Some(s) = r.get("server") {
        out.push(format!(
            "  server              peak RSS {:.1} MB, CPU {:.2} s",
            s["peak_rss_mb"].as_f64().unwrap_or(0.0),
            s["cpu_seconds"].as_f64().unwrap_or(0.0)
        ));
    }
    out.join("\n")
}

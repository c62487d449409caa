//! Hostile clients: slow heads, slow bodies, idle sockets past the connection cap and the
//! open-file limit, credits past their range, and a sweep checking that no refusal commits a
//! write and no client mistake answers 5xx.

use crate::common;

use std::time::{Duration, Instant};

use common::process::Reelay;
use common::{admin, TestApp, ADMIN_TOKEN};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Fast deadlines so the tests see them fire.
fn quick(c: &mut reelay::config::Config) {
    c.server.header_timeout_ms = 600;
    c.server.keep_alive_timeout_ms = 1_500;
    c.server.body_timeout_ms = 800;
    // No background write may land inside the sweep's windows.
    c.limits.key_touch_seconds = 3600;
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.server.addr).await.unwrap()
}

/// Reads until the peer closes; returns what arrived. Panics if it stays open past `limit`
/// (a bound against hanging, not a timing assertion).
async fn read_until_closed(s: &mut TcpStream, limit: Duration) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return got,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => panic!(
                "connection still open after {limit:?}; got {:?}",
                String::from_utf8_lossy(&got)
            ),
        }
    }
}

#[tokio::test]
async fn connections_without_a_timely_head_are_closed() {
    let app = TestApp::spawn_with(quick).await;
    // Nothing at all.
    let mut silent = connect(&app).await;
    // A partial head that never ends.
    let mut partial = connect(&app).await;
    partial
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // A head trickled a byte at a time, slower than the deadline allows.
    let mut trickle = connect(&app).await;
    let addr = app.server.addr;
    let trickler = tokio::spawn(async move {
        for b in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: yes\r\n\r\n" {
            if trickle.write_all(&[*b]).await.is_err() {
                return (trickle, true);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        (trickle, false)
    });
    assert!(read_until_closed(&mut silent, Duration::from_secs(10))
        .await
        .is_empty());
    assert!(read_until_closed(&mut partial, Duration::from_secs(10))
        .await
        .is_empty());
    let (mut trickle, cut) = trickler.await.unwrap();
    if !cut {
        let got = read_until_closed(&mut trickle, Duration::from_secs(10)).await;
        assert!(
            !String::from_utf8_lossy(&got).contains("200 OK"),
            "a 4.6 s head was served under a 0.6 s deadline"
        );
    }
    // The server itself is fine.
    let ok = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn keep_alive_connections_are_reused_then_closed_when_idle() {
    let app = TestApp::spawn_with(quick).await;
    let mut s = connect(&app).await;
    let req = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut buf = [0u8; 1024];
    for _ in 0..3 {
        s.write_all(req).await.unwrap();
        let n = s.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        // Idle for less than the keep-alive timeout, but longer than the head deadline: an
        // idle connection is not a late head.
        tokio::time::sleep(Duration::from_millis(900)).await;
    }
    let started = Instant::now();
    assert!(read_until_closed(&mut s, Duration::from_secs(10))
        .await
        .is_empty());
    assert!(started.elapsed() >= Duration::from_millis(500));
}

#[tokio::test]
async fn a_slow_body_is_refused_in_the_dialect_shape_and_nothing_is_written() {
    let app = TestApp::spawn_with(quick).await;
    let before = app.writes().await;
    let body = serde_json::to_vec(&common::gen4_turbo("slow")).unwrap();
    for (path, auth) in [
        ("/v1/image_to_video", format!("Bearer {}", app.key)),
        ("/runway/pro/generate", format!("Bearer {}", app.key)),
    ] {
        let mut s = connect(&app).await;
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nX-Runway-Version: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            common::VERSION,
            body.len()
        );
        s.write_all(head.as_bytes()).await.unwrap();
        s.write_all(&body[..10]).await.unwrap();
        // ... and the rest never comes.
        let got = read_until_closed(&mut s, Duration::from_secs(10)).await;
        let text = String::from_utf8_lossy(&got);
        assert!(text.starts_with("HTTP/1.1 400"), "{path}: {text}");
        let json: Value = serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap_or(""))
            .unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {text}"));
        if path.starts_with("/v1/") {
            assert!(json["error"].is_string(), "{json}");
        } else {
            assert_eq!(json["code"], 400, "{json}");
        }
    }
    assert_eq!(app.writes().await, before);
}

#[tokio::test]
async fn past_the_connection_cap_a_client_gets_a_clean_503_then_service_again() {
    let app = TestApp::spawn_with(|c| {
        quick(c);
        c.server.max_connections = 8;
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..8 {
        idle.push(connect(&app).await);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut extra = connect(&app).await;
    extra
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let got = read_until_closed(&mut extra, Duration::from_secs(5)).await;
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("retry-after: 1"),
        "{text}"
    );
    let body: Value = serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "too_many_connections");
    // The idle ones are closed by the head deadline; then the server answers again.
    for s in &mut idle {
        read_until_closed(s, Duration::from_secs(10)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = reqwest::get(app.url("/healthz")).await.unwrap();
        if r.status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "still refused: {}", r.status());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn binary_config(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("reelay.toml");
    std::fs::write(
        &path,
        "log = \"info\"\n[server]\nheader_timeout_ms = 1000\nkeep_alive_timeout_ms = 2000\n",
    )
    .unwrap();
    path
}

/// The finding: under a 256-descriptor limit, more idle sockets than descriptors made `accept`
/// fail (`Too many open files`) and `/healthz` hang. Now the cap sits below the limit, the
/// excess is refused with a 503, and the server answers throughout.
#[tokio::test]
async fn idle_sockets_past_the_open_file_limit_do_not_starve_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let config = binary_config(dir.path());
    let log = dir.path().join("reelay.log");
    let server = Reelay::start_limited(
        &config,
        &dir.path().join("data"),
        log.clone(),
        Some((256, 256)),
    );
    let addr = server.base_url.trim_start_matches("http://").to_string();
    let mut idle = Vec::new();
    for _ in 0..400 {
        if let Ok(s) = TcpStream::connect(&addr).await {
            idle.push(s);
        }
    }
    // Fresh clients get an answer at once (a 503 while the idle ones hold every slot), never
    // a hang.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    // (A refused connection may be reset if its request crosses the close; a hang is what
    // must never happen.)
    let mut answered = None;
    for _ in 0..5 {
        match client
            .get(format!("{}/healthz", server.base_url))
            .send()
            .await
        {
            Ok(r) => {
                answered = Some(r.status().as_u16());
                break;
            }
            Err(e) => assert!(!e.is_timeout(), "/healthz hung: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(matches!(answered, Some(200 | 503)), "{answered:?}");
    // After the head deadline the idle ones are gone and the server serves again.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = client
            .get(format!("{}/healthz", server.base_url))
            .send()
            .await
        {
            if r.status() == 200 {
                break;
            }
        }
        assert!(Instant::now() < deadline, "the server did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(idle);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("Too many open files"), "{text}");
    assert!(text.contains("max_connections=128"), "{text}");
}

#[tokio::test]
async fn the_open_file_soft_limit_is_raised_to_the_hard_limit() {
    let dir = tempfile::tempdir().unwrap();
    let config = binary_config(dir.path());
    let log = dir.path().join("reelay.log");
    let _server = Reelay::start_limited(
        &config,
        &dir.path().join("data"),
        log.clone(),
        Some((256, 2048)),
    );
    let text = std::fs::read_to_string(&log).unwrap();
    // 2048 less a quarter for the database, files and outbound connections.
    assert!(text.contains("max_connections=1536"), "{text}");
}

/// The finding: top-ups adding up past `i64::MAX` answered 500 yet committed, the balance became
/// a REAL, and from then on listing accounts, `ledger verify` and the account's own requests
/// failed for good.
#[tokio::test]
async fn credits_past_their_range_are_refused_and_nothing_is_written() {
    use reelay::config::Config;
    let app = TestApp::spawn_with(|c: &mut Config| quick(c)).await;
    let max = reelay_store::MAX_BALANCE;
    let (s, v) = admin(
        &app,
        reqwest::Method::POST,
        "/accounts",
        Some(json!({"name": "rich", "credits": max})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let id = v["account_id"].as_str().unwrap().to_string();
    let key = v["api_key"].as_str().unwrap().to_string();
    let before = app.writes().await;
    for (path, body) in [
        ("topup", json!({"amount": 1})),
        ("topup", json!({"amount": max})),
        ("adjust", json!({"amount": max, "reason": "more"})),
    ] {
        let (s, v) = admin(
            &app,
            reqwest::Method::POST,
            &format!("/accounts/{id}/{path}"),
            Some(body.clone()),
        )
        .await;
        assert_eq!(s, 409, "{path} {body}: {v}");
        assert_eq!(v["error"]["code"], "balance_limit", "{v}");
    }
    for amount in [
        json!(i64::MAX),
        json!(9.3e18),
        json!(-9.3e18),
        json!(max + 1),
    ] {
        let (s, v) = admin(
            &app,
            reqwest::Method::POST,
            &format!("/accounts/{id}/topup"),
            Some(json!({"amount": amount})),
        )
        .await;
        assert_eq!(s, 400, "{amount}: {v}");
    }
    assert_eq!(app.writes().await, before, "a refusal committed a write");
    // Everything that broke for good before still works.
    let (s, v) = admin(&app, reqwest::Method::GET, "/accounts", None).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = admin(&app, reqwest::Method::GET, "/ledger/verify", None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["ok"], true, "{v}");
    let r = app
        .authed(reqwest::Method::GET, "/v1/organization", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let org: Value = r.json().await.unwrap();
    assert_eq!(org["creditBalance"], max);
    // Spending makes room again.
    let (s, v) = admin(
        &app,
        reqwest::Method::POST,
        &format!("/accounts/{id}/adjust"),
        Some(json!({"amount": -10, "reason": "room"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = admin(
        &app,
        reqwest::Method::POST,
        &format!("/accounts/{id}/topup"),
        Some(json!({"amount": 10})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["credits_available"], max);
}

/// The finding: a multiplier of 1e-9 priced a 10 s gen4.5 video at 0 credits.
#[tokio::test]
async fn no_multiplier_makes_a_priced_task_free() {
    let app = TestApp::spawn_with(quick).await;
    let (s, v) = admin(
        &app,
        reqwest::Method::POST,
        "/accounts",
        Some(json!({"name": "cheap", "credits": 1000})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let id = v["account_id"].as_str().unwrap().to_string();
    let key = v["api_key"].as_str().unwrap().to_string();
    for m in [1e-9, 5e-324, 0.0, 100.5, 1e9] {
        let (s, v) = admin(
            &app,
            reqwest::Method::PATCH,
            &format!("/accounts/{id}"),
            Some(json!({"price_multiplier": m})),
        )
        .await;
        assert_eq!(s, 400, "{m}: {v}");
    }
    let (s, v) = admin(
        &app,
        reqwest::Method::PATCH,
        &format!("/accounts/{id}"),
        Some(json!({"price_multiplier": 0.01})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    // An account written with a tiny multiplier before the range existed is clamped too.
    app.server
        .store
        .set_account_limits(&id, Some(1e-9), None)
        .await
        .unwrap();
    // (The key has not been used yet, so no cached lookup hides the change.)
    let r = app
        .post_as(
            &key,
            "/v1/text_to_video",
            &json!({"model": "gen4.5", "promptText": "a cat", "ratio": "1280:720", "duration": 10}),
            &[],
        )
        .await;
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{v}");
    let account = app.account(&id).await;
    assert!(account.credits_held >= 1, "held {}", account.credits_held);
    assert_eq!(account.credits_available + account.credits_held, 1000);
}

/// Every refusal across the dialects, the admin API and media links: no 5xx for a client's
/// mistake, and no committed write behind any answer of 4xx or 5xx.
#[tokio::test]
async fn no_refusal_commits_a_write_and_no_client_mistake_answers_5xx() {
    let app = TestApp::spawn_with(quick).await;
    // The write detector detects writes (on either backend).
    let before = app.writes().await;
    let id = app
        .create("image_to_video", &common::gen4_turbo("a write"))
        .await;
    assert_ne!(
        app.writes().await,
        before,
        "an accepted task went unnoticed"
    );
    // Its run (and its webhook-free settlement) is over before the sweep starts, so nothing
    // else writes meanwhile.
    app.wait_terminal(&id).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let key = app.key.clone();
    let huge = "x".repeat(2 * 1024 * 1024);
    let bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"{".to_vec(),
        b"[]".to_vec(),
        b"null".to_vec(),
        b"\"str\"".to_vec(),
        b"{\"model\": 5}".to_vec(),
        b"{\"model\": \"gen4_turbo\", \"duration\": 1e308}".to_vec(),
        b"{\"model\": \"gen4_turbo\", \"duration\": -9223372036854775809}".to_vec(),
        b"{\"model\": \"gen4.5\", \"promptText\": \"a\", \"ratio\": \"1280:720\", \"duration\": 0}".to_vec(),
        format!("{{\"model\": \"gen4.5\", \"promptText\": \"{huge}\", \"ratio\": \"1280:720\", \"duration\": 5}}").into_bytes(),
        b"{\"model\": \"mirelo_sfx_2_0\", \"promptText\": \"boom\", \"duration\": 0}".to_vec(),
        "{\"prompt\": \"\u{0}\u{ffff}\", \"seed\": 18446744073709551616}".as_bytes().to_vec(),
        vec![b'['; 10_000],
        vec![0xff, 0xfe, 0x00],
    ];
    let creates = [
        "/v1/image_to_video",
        "/v1/text_to_video",
        "/v1/sound_effect",
        "/v1/organization/usage",
        "/runway/pro/generate",
        "/runway/pro/video2video",
        "/runway/feed",
        "/api/v1/runway/generate",
        "/api/v1/runway/extend",
        "/api/v1/aleph/generate",
        "/v1/videos",
        "/v1/videos/extensions",
        "/v1/videos/video_0190d5b30000700080000000000000aa/remix",
        "/v1/uploads",
        "/uploads/form",
        "/admin/v1/accounts",
        "/admin/v1/accounts/acct_nope/topup",
        "/admin/v1/accounts/acct_nope/adjust",
        "/admin/v1/accounts/acct_nope/keys",
    ];
    let gets = [
        "/v1/tasks/not-a-uuid",
        "/v1/tasks/0190d5b3-0000-7000-8000-000000000000",
        "/runway/feed?task_id=%00",
        "/api/v1/runway/record-detail?taskId=x",
        "/api/v1/runway/record-detail",
        "/api/v1/aleph/record-info?taskId=%ff",
        "/media/x/y",
        "/media/x/y?exp=1&sig=2",
        "/media/x/y?exp=1&exp=2&sig=a",
        "/media/x/y?exp=99999999999999999999999&sig=",
        "/admin/v1/",
        "/admin/v1/accounts/acct_nope",
        "/admin/v1/tasks/%00",
        "/admin/v1/accounts/acct_nope/ledger?limit=-1",
        "/v1/organization",
        "/v1/videos?limit=0",
        "/v1/videos?limit=x&order=up",
        "/v1/videos?after=junk",
        "/v1/videos/video_x",
        "/v1/videos/video_0190d5b30000700080000000000000aa",
        "/v1/videos/video_0190d5b30000700080000000000000aa/content?variant=nope",
        "/v1/videos/%00/content",
    ];
    let mut seen = 0;
    let mut check = |what: String, status: u16, before: u64, after: u64| {
        assert!(status < 500, "{what} answered {status}");
        if status >= 400 {
            assert_eq!(
                before, after,
                "{what} answered {status} but committed a write"
            );
        }
        seen += 1;
    };
    for path in creates {
        let auth = if path.starts_with("/admin") {
            ADMIN_TOKEN.to_string()
        } else {
            key.clone()
        };
        for body in &bodies {
            for idem in [None, Some("k".repeat(300)), Some("ok-key".to_string())] {
                let before = app.writes().await;
                let mut req = app
                    .authed(reqwest::Method::POST, path, &auth)
                    .header("content-type", "application/json")
                    .body(body.clone());
                if let Some(k) = &idem {
                    req = req.header("Idempotency-Key", k);
                }
                let r = req.send().await.unwrap();
                let status = r.status().as_u16();
                let text = r.text().await.unwrap_or_default();
                let after = app.writes().await;
                let what = format!("POST {path} {:.80}", String::from_utf8_lossy(body));
                let v: Value = serde_json::from_str(&text)
                    .unwrap_or_else(|_| panic!("{what}: {status} is not JSON: {text:.200}"));
                // The quick-start dialect answers HTTP 200 with its status in `code`.
                let status = match v["code"].as_u64() {
                    Some(code) if status == 200 && path.starts_with("/api/v1/") => code as u16,
                    _ => status,
                };
                // Every one of these bodies is a client's mistake, except that the usage
                // report is a read, which an empty body may ask for.
                let read = path == "/v1/organization/usage" && before == after;
                assert!(
                    status >= 400 || read,
                    "{what} was accepted ({status}): {text:.200}"
                );
                check(what, status, before, after);
            }
        }
    }
    // Multipart bodies as the openai SDK sends them, broken in every way, and the upload form.
    let forms: Vec<(&str, Vec<u8>)> = vec![
        ("multipart/form-data", b"--x\r\n".to_vec()),
        ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data\r\n\r\nv\r\n--x--\r\n".to_vec()),
        ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data; name=\"seconds\"\r\n\r\n8\r\n--x--\r\n".to_vec()),
        ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\n\xff\xfe\r\n--x--\r\n".to_vec()),
        ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\np\r\n--x\r\nContent-Disposition: form-data; name=\"input_reference\"; filename=\"a.gif\"\r\n\r\nGIF89a\r\n--x--\r\n".to_vec()),
        ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\n0190d5b30000700080000000000000aa\r\n--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\r\n\x89PNG\r\n--x--\r\n".to_vec()),
    ];
    for path in ["/v1/videos", "/v1/videos/extensions", "/uploads/form"] {
        for (ct, body) in &forms {
            let before = app.writes().await;
            let r = app
                .authed(reqwest::Method::POST, path, &key)
                .header("content-type", *ct)
                .body(body.clone())
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let after = app.writes().await;
            let what = format!("POST {path} {ct} {:.60}", String::from_utf8_lossy(body));
            assert!(status >= 400, "{what} was accepted ({status})");
            check(what, status, before, after);
        }
    }
    for path in gets {
        for auth in [key.as_str(), ADMIN_TOKEN, "wrong"] {
            let before = app.writes().await;
            let r = app
                .authed(reqwest::Method::GET, path, auth)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let after = app.writes().await;
            check(format!("GET {path}"), status, before, after);
        }
    }
    assert!(seen > 300, "only {seen} refusals checked");
}

/// POSTs a JSON body as the test key; answers the status and the parsed body.
async fn post_json(app: &TestApp, path: &str, body: &Value) -> (u16, Value) {
    let r = app.post(path, body).await;
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A 20 MiB prompt was accepted for 2 credits and grew the database by 57 MiB; every text
/// field of every dialect is now bounded, and refused in that dialect's own shape.
#[tokio::test]
async fn over_long_text_is_refused_in_each_dialect_naming_the_field() {
    let app = TestApp::spawn_with(quick).await;
    let huge = "a".repeat(20 * 1024 * 1024);
    let long = "b".repeat(reelay_core::catalog::DEFAULT_TEXT_MAX_UTF16 + 1);
    let before = app.writes().await;

    let (s, v) = post_json(
        &app,
        "/v1/sound_effect",
        &json!({"model": "eleven_text_to_sound_v2", "promptText": huge}),
    )
    .await;
    assert_eq!(s, 400, "{v:.300}");
    assert_eq!(v["issues"][0]["path"], json!(["promptText"]), "{v:.300}");
    assert_eq!(v["issues"][0]["code"], "too_big");

    // The items of a string list, too.
    let (s, v) = post_json(
        &app,
        "/v1/text_to_image",
        &json!({"model": "recraft_v4_1_flash", "promptText": "x", "ratio": "1024:1024",
                "colors": ["#fff", long]}),
    )
    .await;
    assert_eq!(s, 400, "{v:.300}");
    assert_eq!(v["issues"][0]["path"], json!(["colors", 1]), "{v:.300}");

    for (path, body, field) in [
        ("/runway/pro/generate", json!({"prompt": long}), "prompt"),
        (
            "/runway/pro/generate",
            json!({"prompt": "x", "style": long}),
            "style",
        ),
        (
            "/runway/pro/generate",
            json!({"prompt": "x", "callback_url": long}),
            "callback_url",
        ),
    ] {
        let (s, v) = post_json(&app, path, &body).await;
        assert_eq!(s, 400, "{path} {field}: {v:.300}");
        assert!(v["msg"].as_str().unwrap().contains(field), "{v:.300}");
    }
    for (body, field) in [
        (
            json!({"prompt": "x", "duration": 5, "quality": "720p", "aspectRatio": "16:9", "waterMark": long}),
            "waterMark",
        ),
        (
            json!({"prompt": "x", "duration": 5, "quality": "720p", "aspectRatio": long}),
            "aspectRatio",
        ),
    ] {
        let (s, v) = post_json(&app, "/api/v1/runway/generate", &body).await;
        assert_eq!(s, 200, "{v:.300}");
        assert_eq!(v["code"], 422, "{field}: {v:.300}");
        assert!(v["msg"].as_str().unwrap().contains(field), "{v:.300}");
    }
    assert_eq!(app.writes().await, before);
}

/// `duration: 0` for a per-second model was accepted at 0 credits; it is refused (reelay
/// refuses rather than bills the minimum: a client asking for nothing has made a mistake).
#[tokio::test]
async fn a_zero_second_request_for_a_per_second_model_is_refused() {
    let app = TestApp::spawn_with(quick).await;
    let before = app.writes().await;
    for d in [0.0, 0.4, -1.0] {
        let (s, v) = post_json(
            &app,
            "/v1/sound_effect",
            &json!({"model": "mirelo_sfx_2_0", "promptText": "boom", "duration": d}),
        )
        .await;
        assert_eq!(s, 400, "{d}: {v}");
        assert_eq!(v["issues"][0]["path"], json!(["duration"]), "{v}");
    }
    assert_eq!(app.writes().await, before);
    let (s, v) = post_json(
        &app,
        "/v1/sound_effect",
        &json!({"model": "mirelo_sfx_2_0", "promptText": "boom", "duration": 1}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert!(v["estimatedCost"]["credits"].as_i64().unwrap() >= 1, "{v}");
}

/// `/admin/v1/` answered a Runway-shaped 404, a media link with a repeated `exp` or `sig` a
/// text/plain 400: both now answer in their own documented shapes.
#[tokio::test]
async fn admin_and_media_paths_answer_in_their_own_shapes() {
    let app = TestApp::spawn_with(quick).await;
    for path in ["/admin/v1/", "/admin/v1", "/admin/v1/nothing/here/"] {
        let r = app
            .authed(reqwest::Method::GET, path, "wrong")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "unauthorized", "{path}: {v}");
        let r = app
            .authed(reqwest::Method::GET, path, ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{path}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "not_found", "{path}: {v}");
    }
    for query in [
        "exp=1&exp=2&sig=ab",
        "exp=1&sig=ab&sig=cd",
        "exp=x&sig=ab",
        "sig=ab",
        "exp=1&sig=ab",
    ] {
        let r = reqwest::get(app.url(&format!("/media/task/video.mp4?{query}")))
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{query}");
        assert_eq!(r.headers()["content-type"], "application/json", "{query}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v, json!({"error": "Not found"}), "{query}");
    }
    let r = reqwest::Client::new()
        .post(app.url("/media/task/video.mp4?exp=1&sig=ab"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v, json!({"error": "Method not allowed"}));
}

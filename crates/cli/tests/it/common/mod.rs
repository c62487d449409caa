//! `TestApp`: the real server on port 0 with a temp data dir, driven over HTTP.
#![allow(dead_code)]

pub mod files;
pub mod process;
pub mod receiver;

use std::time::{Duration, Instant};

use reelay::config::{Config, Overrides};
use reelay::serve::Server;
use reelay_sim::{SimConfig, SimHandle};
use reelay_upstream::{ChannelConfig, ChannelKind};
use serde_json::{json, Value};

pub const VERSION: &str = "2024-11-06";

pub struct TestApp {
    pub server: Server,
    pub key: String,
    pub client: reqwest::Client,
    pub dir: tempfile::TempDir,
    /// The external simulator, when the test uses one instead of the built-in sandbox.
    pub sim: Option<SimHandle>,
}

/// A config for tests: port 0, a temp dir, a fast engine.
pub fn test_config(dir: &std::path::Path) -> Config {
    let mut c = Config::load(
        None,
        &Overrides {
            listen: Some("127.0.0.1:0".into()),
            data_dir: Some(dir.to_path_buf()),
        },
    )
    .expect("test config loads");
    c.sandbox_run_seconds = 1.0;
    c.engine.poll_min_ms = 100;
    c.engine.poll_max_ms = 500;
    c.engine.backoff_base_ms = 50;
    c.engine.backoff_max_ms = 500;
    c.engine.reconcile_delay_ms = 200;
    c.engine.throttle_recheck_ms = 100;
    c.engine.idle_wakeup_ms = 500;
    c.log = "warn".into();
    // Rate limits are tested on their own; other tests must not trip them.
    c.limits.requests_per_second = 0;
    c.admin_token = Some(ADMIN_TOKEN.into());
    c
}

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// A channel pointing at an external simulator.
pub fn sim_channel(name: &str, sim: &SimHandle) -> ChannelConfig {
    let mut ch = ChannelConfig::sandbox(sim.base_url());
    ch.name = name.into();
    ch.kind = ChannelKind::Sandbox;
    ch.request_timeout_ms = 2_000;
    ch.connect_timeout_ms = 1_000;
    ch
}

pub fn fast_sim() -> SimConfig {
    SimConfig {
        pending_seconds: 0.1,
        run_seconds: 0.5,
        ..SimConfig::default()
    }
}

impl TestApp {
    /// The server with its built-in sandbox.
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(f: impl FnOnce(&mut Config)) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path());
        f(&mut config);
        let server = reelay::serve::start(config).await.expect("server starts");
        Self::from_server(server, dir).await
    }

    /// A server the test started itself (e.g. with `serve::start_with`) in `dir`.
    pub async fn from_server(server: Server, dir: tempfile::TempDir) -> TestApp {
        let key = server.first_key.clone().expect("first start prints a key");
        TestApp {
            server,
            key,
            client: reqwest::Client::new(),
            dir,
            sim: None,
        }
    }

    /// The server with one channel to an external simulator (and no sandbox).
    pub async fn with_sim(sim_config: SimConfig, f: impl FnOnce(&mut Config)) -> TestApp {
        let sim = reelay_sim::spawn(sim_config, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let ch = sim_channel("sim", &sim);
        let mut app = Self::spawn_with(|c| {
            c.sandbox = false;
            c.channels = vec![ch];
            f(c);
        })
        .await;
        app.sim = Some(sim);
        app
    }

    pub fn sim(&self) -> &reelay_sim::Sim {
        &self
            .sim
            .as_ref()
            .expect("this test app has an external simulator")
            .sim
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.server.base_url, path)
    }

    pub fn authed(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
    ) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(key)
            .header("X-Runway-Version", VERSION)
    }

    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.authed(reqwest::Method::POST, path, &self.key)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.authed(reqwest::Method::GET, path, &self.key)
            .send()
            .await
            .unwrap()
    }

    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.authed(reqwest::Method::DELETE, path, &self.key)
            .send()
            .await
            .unwrap()
    }

    /// Creates a task and returns its id, asserting a 200.
    pub async fn create(&self, endpoint: &str, body: &Value) -> String {
        let resp = self.post(&format!("/v1/{endpoint}"), body).await;
        let status = resp.status();
        let v: Value = resp.json().await.unwrap();
        assert_eq!(status, 200, "create {endpoint} answered {status}: {v}");
        v["id"].as_str().unwrap().to_string()
    }

    pub async fn task(&self, id: &str) -> Value {
        let resp = self.get(&format!("/v1/tasks/{id}")).await;
        assert_eq!(resp.status(), 200);
        resp.json().await.unwrap()
    }

    /// Polls until the task is SUCCEEDED, FAILED or CANCELLED.
    pub async fn wait_terminal(&self, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let t = self.task(id).await;
            if matches!(
                t["status"].as_str(),
                Some("SUCCEEDED" | "FAILED" | "CANCELLED")
            ) {
                return t;
            }
            assert!(Instant::now() < deadline, "task {id} did not finish: {t}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A second account with its own key.
    pub async fn other_account(&self) -> String {
        self.new_account("other", 1000).await.1
    }

    /// An account with `credits` and one key: (account id, key).
    pub async fn new_account(&self, name: &str, credits: i64) -> (String, String) {
        let account = self
            .server
            .store
            .create_account(name, credits)
            .await
            .unwrap();
        let key = reelay_store::generate_api_key();
        self.server
            .store
            .create_api_key(&account.id, &reelay_store::hash_api_key(&key), &key[..12])
            .await
            .unwrap();
        (account.id, key)
    }

    /// POST with a given key and extra headers.
    pub async fn post_as(
        &self,
        key: &str,
        path: &str,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut req = self.authed(reqwest::Method::POST, path, key).json(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.unwrap()
    }

    pub async fn account(&self, id: &str) -> reelay_store::Account {
        self.server.store.get_account(id).await.unwrap().unwrap()
    }
}

pub fn gen4_turbo(prompt: &str) -> Value {
    json!({"model": "gen4_turbo", "promptImage": "https://example.com/a.jpg", "promptText": prompt,
           "ratio": "1280:720", "duration": 5})
}

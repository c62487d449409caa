//! The three adapters against the real simulator on a real socket: the same table of cases for
//! Runway's official format, the reverse format and the quick-start format.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reelay_core::{Catalog, TaskSpec};
use reelay_sim::{spawn, Fault, SimConfig, SimHandle, SAMPLE_MP4};
use reelay_upstream::{
    build, ChannelConfig, ChannelKind, SubmitContext, SubmitError, Upstream, UpstreamError,
    UpstreamStatus,
};
use serde_json::{json, Value};

const KINDS: [ChannelKind; 3] = [
    ChannelKind::Runway,
    ChannelKind::Reverse,
    ChannelKind::Quickstart,
];
const KEY: &str = "sk-sim-secret";

struct Rig {
    kind: ChannelKind,
    sim: SimHandle,
    up: Arc<dyn Upstream>,
    http: reqwest::Client,
}

async fn rig_with_key(kind: ChannelKind, key: &str) -> Rig {
    let sim = spawn(
        SimConfig {
            api_key: Some(KEY.into()),
            pending_seconds: 0.2,
            run_seconds: 0.2,
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .expect("bind");
    let cfg = ChannelConfig {
        name: format!("test-{}", kind.as_str()),
        kind,
        api_key: Some(key.into()),
        request_timeout_ms: 2_000,
        ..ChannelConfig::sandbox(sim.base_url())
    };
    Rig {
        kind,
        up: build(&cfg).expect("an adapter for every kind"),
        sim,
        http: reqwest::Client::new(),
    }
}

async fn rig(kind: ChannelKind) -> Rig {
    rig_with_key(kind, KEY).await
}

/// One task every format can express: image to video with a prompt, 5 s, 16:9.
fn spec(prompt: &str) -> TaskSpec {
    let body = json!({"model": "gen4_turbo", "promptImage": "https://example.com/a.jpg",
                      "promptText": prompt, "ratio": "1280:720", "duration": 5});
    TaskSpec::parse(&Catalog::builtin(), "image_to_video", &body).expect("a valid body")
}

impl Rig {
    async fn submit_with(
        &self,
        prompt: &str,
        callback_url: Option<&str>,
        model: Option<&str>,
    ) -> Result<String, SubmitError> {
        let ctx = SubmitContext {
            reference: "ref-1",
            callback_url,
            model,
        };
        self.up.submit(&spec(prompt), &ctx).await
    }

    async fn submit(&self, prompt: &str) -> Result<String, SubmitError> {
        self.submit_with(prompt, None, None).await
    }

    /// Polls until the task ends, with a deadline (not a timing assertion).
    async fn finish(&self, id: &str) -> UpstreamStatus {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let s = self.up.status(id).await.expect("a readable status");
            match s {
                UpstreamStatus::Succeeded { .. }
                | UpstreamStatus::Failed { .. }
                | UpstreamStatus::Cancelled
                | UpstreamStatus::NotFound => return s,
                _ => {}
            }
            assert!(Instant::now() < deadline, "{:?}: still {s:?}", self.kind);
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// What the simulator saw for a task (format, model, body).
    async fn seen(&self, id: &str) -> Value {
        self.sim
            .sim
            .task_request(id)
            .expect("the sim knows the task")
    }

    fn created(&self) -> u64 {
        self.sim.sim.stats().tasks_created
    }
}

#[tokio::test]
async fn a_task_runs_to_succeeded_and_its_output_downloads() {
    for kind in KINDS {
        let r = rig(kind).await;
        let id = r.submit("a cat").await.expect("accepted");
        let outputs = match r.finish(&id).await {
            UpstreamStatus::Succeeded { outputs } => outputs,
            other => panic!("{kind:?}: {other:?}"),
        };
        assert_eq!(outputs.len(), 1, "{kind:?}");
        let file = r.http.get(&outputs[0]).send().await.unwrap();
        assert_eq!(file.status(), 200, "{kind:?}");
        assert_eq!(&file.bytes().await.unwrap()[..], SAMPLE_MP4, "{kind:?}");
        let seen = r.seen(&id).await;
        assert_eq!(seen["format"], kind.as_str());
        assert_eq!(seen["reference"], "ref-1");
        assert_eq!(r.sim.sim.stats().creates_by_format[kind.as_str()], 1);
    }
}

#[tokio::test]
async fn a_task_failing_mid_run_is_failed_with_a_code() {
    for kind in KINDS {
        let r = rig(kind).await;
        let id = r
            .submit("a cat [sim:fail=SAFETY.OUTPUT.VIDEO]")
            .await
            .expect("accepted");
        match r.finish(&id).await {
            UpstreamStatus::Failed { code, message } => {
                let code = code.unwrap_or_default();
                assert!(code.starts_with("SAFETY.OUTPUT"), "{kind:?}: {code}");
                assert!(message.contains("moderation"), "{kind:?}: {message}");
            }
            other => panic!("{kind:?}: {other:?}"),
        }
        let id = r.submit("[sim:fail=INTERNAL]").await.unwrap();
        assert!(
            matches!(r.finish(&id).await, UpstreamStatus::Failed { .. }),
            "{kind:?}"
        );
    }
}

/// The money-critical table: whether the upstream may hold the task decides the variant.
#[tokio::test]
async fn submit_failures_are_sorted_by_whether_the_task_may_exist() {
    #[derive(Debug)]
    enum Want {
        RateLimited(Duration),
        NotAccepted(Option<Duration>),
        Unknown,
        Rejected,
        OutOfCredit,
    }
    let cases = [
        (
            Fault::RateLimit {
                retry_after_secs: 3,
            },
            Want::RateLimited(Duration::from_secs(3)),
            false,
        ),
        (
            Fault::ServerError { status: 503 },
            Want::NotAccepted(None),
            false,
        ),
        (Fault::ServerError { status: 500 }, Want::Unknown, false),
        (
            Fault::AcceptThenServerError { status: 500 },
            Want::Unknown,
            true,
        ),
        (Fault::ResetAfterAccept, Want::Unknown, true),
        (Fault::TimeoutAfterAccept { secs: 6 }, Want::Unknown, true),
        (Fault::Moderation, Want::Rejected, false),
        (Fault::OutOfCredit, Want::OutOfCredit, false),
    ];
    for kind in KINDS {
        let r = rig(kind).await;
        for (fault, want, creates) in &cases {
            let before = r.created();
            r.sim.sim.push_fault(fault.clone());
            let got = r.submit("a cat").await;
            let ok = match (&got, want) {
                (Err(SubmitError::NotAccepted { retry_after, .. }), Want::NotAccepted(w)) => {
                    // A 503's Retry-After is a bonus; a 429's must come through.
                    w.is_none() || retry_after == w
                }
                (Err(SubmitError::RateLimited { retry_after, .. }), Want::RateLimited(w)) => {
                    *retry_after == Some(*w)
                }
                (Err(SubmitError::Unknown { .. }), Want::Unknown) => true,
                (Err(SubmitError::Rejected { code, .. }), Want::Rejected) => {
                    code.starts_with("SAFETY")
                }
                (Err(SubmitError::OutOfCredit { .. }), Want::OutOfCredit) => true,
                _ => false,
            };
            assert!(ok, "{kind:?} {fault:?}: want {want:?}, got {got:?}");
            assert_eq!(
                r.created() - before,
                u64::from(*creates),
                "{kind:?} {fault:?}: tasks created"
            );
        }
        // And the channel still works.
        assert!(r.submit("a cat").await.is_ok(), "{kind:?}");
    }
}

#[tokio::test]
async fn a_wrong_key_is_not_accepted_rather_than_rejected() {
    for kind in KINDS {
        let r = rig_with_key(kind, "sk-wrong").await;
        let got = r.submit("a cat").await;
        assert!(
            matches!(got, Err(SubmitError::NotAccepted { .. })),
            "{kind:?}: {got:?}"
        );
        assert_eq!(r.created(), 0);
        let polled = r.up.status("00000000-0000-0000-0000-000000000000").await;
        assert!(
            matches!(polled, Err(UpstreamError::Transient(_))),
            "{kind:?}: {polled:?}"
        );
    }
}

#[tokio::test]
async fn probes_tell_a_working_key_from_a_wrong_one() {
    for kind in KINDS {
        assert_eq!(rig(kind).await.up.probe().await, Ok(()), "{kind:?}");
        let wrong = rig_with_key(kind, "sk-wrong").await.up.probe().await;
        assert!(
            matches!(wrong, Err(UpstreamError::Transient(_))),
            "{kind:?}: {wrong:?}"
        );
    }
}

#[tokio::test]
async fn a_task_the_upstream_does_not_show_yet() {
    let id = "00000000-0000-0000-0000-000000000000";
    for kind in KINDS {
        let r = rig(kind).await;
        let want = match kind {
            // Runway's 404 is final.
            ChannelKind::Runway => UpstreamStatus::NotFound,
            // §10.2 `task_not_exist` in the first minute, §10.3 code 404: still submitting.
            _ => UpstreamStatus::Pending,
        };
        assert_eq!(r.up.status(id).await, Ok(want), "{kind:?}");
    }
}

#[tokio::test]
async fn the_channels_model_mapping_reaches_the_upstream() {
    for (kind, default, mapped) in [
        (ChannelKind::Runway, "gen4_turbo", "gen4.5"),
        (ChannelKind::Reverse, "gen4", "gen4.5"),
        (
            ChannelKind::Quickstart,
            "runway-duration-5-generate",
            "runway-duration-10-generate",
        ),
    ] {
        let r = rig(kind).await;
        let id = r.submit("a cat").await.unwrap();
        assert_eq!(r.seen(&id).await["model"], default, "{kind:?}");
        let id = r.submit_with("a cat", None, Some(mapped)).await.unwrap();
        let seen = r.seen(&id).await;
        assert_eq!(seen["model"], mapped, "{kind:?}");
        assert_eq!(seen["body"]["model"], mapped, "{kind:?}");
        match kind {
            ChannelKind::Reverse => {
                assert_eq!(seen["body"]["image"], "https://example.com/a.jpg");
                assert_eq!(seen["body"]["ratio"], "16:9");
                assert_eq!(seen["body"]["options"]["seconds"], 5);
            }
            ChannelKind::Quickstart => {
                assert_eq!(seen["body"]["imageUrl"], "https://example.com/a.jpg");
                // The mapped model name says 10 seconds.
                assert_eq!(seen["body"]["duration"], 10);
                assert_eq!(seen["body"]["quality"], "720p");
            }
            _ => {}
        }
    }
}

/// A receiver on port 0 for callbacks.
async fn hook() -> (String, tokio::sync::mpsc::UnboundedReceiver<Value>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/hook/{task}",
        axum::routing::post(move |axum::Json(v): axum::Json<Value>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(v);
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook/t-1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

#[tokio::test]
async fn a_callback_url_given_brings_a_callback() {
    for kind in KINDS {
        let r = rig(kind).await;
        if kind == ChannelKind::Runway {
            assert!(!r.up.takes_callbacks());
            continue;
        }
        assert!(r.up.takes_callbacks(), "{kind:?}");
        let (url, mut rx) = hook().await;
        let id = r.submit_with("a cat", Some(&url), None).await.unwrap();
        let v = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .expect("a callback before the deadline")
            .unwrap();
        let task_id = v
            .get("task_id")
            .or_else(|| v.pointer("/data/task_id"))
            .and_then(Value::as_str);
        assert_eq!(task_id, Some(id.as_str()), "{kind:?}: {v}");
        assert_eq!(r.seen(&id).await["callback_url"], url.as_str());
    }
}

#[tokio::test]
async fn no_cancel_in_the_resellers_formats_and_keys_stay_out_of_debug() {
    for kind in [ChannelKind::Reverse, ChannelKind::Quickstart] {
        let r = rig(kind).await;
        assert_eq!(
            r.up.cancel("00000000-0000-0000-0000-000000000000").await,
            Err(UpstreamError::Unsupported)
        );
    }
    let cfg = ChannelConfig {
        kind: ChannelKind::Reverse,
        api_key: Some(KEY.into()),
        ..ChannelConfig::sandbox("http://127.0.0.1:9".into())
    };
    let debug = format!(
        "{:?} {:?}",
        reelay_upstream::ReverseAdapter::new(&cfg).unwrap(),
        reelay_upstream::QuickstartAdapter::new(&cfg).unwrap()
    );
    assert!(!debug.contains(KEY), "{debug}");
    let reverse = reelay_upstream::ReverseAdapter::new(&cfg).unwrap();
    assert!(reverse.serves("character_performance") && !reverse.serves("video_upscale"));
    let quick = reelay_upstream::QuickstartAdapter::new(&cfg).unwrap();
    assert!(quick.serves("image_to_video") && !quick.serves("video_to_video"));
}

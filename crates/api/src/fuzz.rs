//! Standing fuzz targets (proptest over raw bytes and over near-valid JSON) for every dialect's
//! body parser and the media link parser: whatever arrives, the parser answers — no panic, no
//! 5xx for a client's bytes, and what it accepts is bounded. `PROPTEST_CASES` raises the count
//! for a longer hunt (`PROPTEST_CASES=100000 cargo test -p reelay-api fuzz`).

use axum::response::IntoResponse;
use proptest::prelude::*;
use serde_json::Value;

use crate::dialects::{quickstart, reverse, runway};
use crate::media::LinkQuery;

/// Field names the parsers know, so generated objects reach past the unknown-field check.
const NAMES: &[&str] = &[
    "model",
    "promptText",
    "promptImage",
    "ratio",
    "duration",
    "seed",
    "videoUri",
    "uri",
    "position",
    "character",
    "reference",
    "type",
    "outputCount",
    "audio",
    "prompt",
    "image",
    "last_image",
    "video",
    "options",
    "seconds",
    "flip",
    "style",
    "callback_url",
    "key",
    "character_video",
    "motion_vector",
    "x",
    "image_as_end_frame",
    "expression_intensity",
    "taskId",
    "quality",
    "aspectRatio",
    "imageUrl",
    "waterMark",
    "callBackUrl",
    "expandPrompt",
    "videoUrl",
    "referenceImage",
    "uploadCn",
    "gen4.5",
    "gen4_turbo",
    "1280:720",
    "16:9",
    "720p",
    "runway-duration-5-generate",
    "https://example.com/a.png",
];

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        prop_oneof![Just(0i64), Just(1), Just(5), Just(10), Just(-1)].prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN", |f| f.is_finite())
            .prop_map(Value::from),
        proptest::sample::select(NAMES).prop_map(Value::from),
        ".{0,40}".prop_map(Value::from),
        (1usize..40_000).prop_map(|n| Value::from("é".repeat(n))),
    ]
}

fn json() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    proptest::sample::select(NAMES).prop_map(String::from),
                    ".{0,12}"
                ],
                inner,
                0..8,
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Raw bytes, a generated JSON document, or one cut short.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..256),
        json().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        (json(), any::<prop::sample::Index>()).prop_map(|(v, cut)| {
            let bytes = serde_json::to_vec(&v).unwrap();
            let at = cut.index(bytes.len() + 1);
            bytes[..at].to_vec()
        }),
    ]
}

fn strings_bounded(v: &Value) -> bool {
    match v {
        Value::String(s) => s.len() <= reelay_core::media_ref::AV_DATA_URI_MAX,
        Value::Array(a) => a.iter().all(strings_bounded),
        Value::Object(o) => o.values().all(strings_bounded),
        _ => true,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(256)
    ))]

    #[test]
    fn runway_bodies(bytes in body(), ep in proptest::sample::select(&reelay_core::catalog::GENERATION_ENDPOINTS[..])) {
        let catalog = reelay_core::Catalog::builtin();
        match runway::parse_body(&catalog, ep, &bytes) {
            Ok((_, spec)) => prop_assert!(spec.price >= 1, "{ep} accepted at {} credits", spec.price),
            Err(e) => {
                let status = e.into_response().status();
                prop_assert!(status.is_client_error(), "{ep}: {status}");
            }
        }
    }

    #[test]
    fn reverse_bodies(bytes in body(), route in 0..3usize, require_callback in any::<bool>()) {
        let m = reverse::Mapping::builtin();
        let read = crate::create::json_object(&bytes, true).and_then(|obj| match route {
            0 => reverse::request::generate(&m, &obj, require_callback),
            1 => reverse::request::video2video(&m, &obj, require_callback),
            _ => reverse::request::act_one(&m, &obj, require_callback),
        });
        match read {
            Ok(t) => {
                prop_assert!(strings_bounded(&t.body));
                prop_assert!(!reelay_core::validate::longer_than_utf16(
                    &t.prompt, reelay_core::catalog::DEFAULT_TEXT_MAX_UTF16));
            }
            Err(e) => {
                let status = <reverse::Reverse as crate::error::Render>::render(e).status();
                prop_assert!(status.is_client_error(), "{status}");
            }
        }
    }

    #[test]
    fn quickstart_bodies(bytes in body(), route in 0..3usize) {
        let m = quickstart::Mapping::builtin();
        let code = |e: &crate::error::ApiError| quickstart::Quickstart::code_and_msg(e).0;
        let obj = match crate::create::json_object(&bytes, false) {
            Ok(o) => o,
            Err(e) => {
                prop_assert!((400..500).contains(&code(&e)));
                return Ok(());
            }
        };
        let err = match route {
            0 => quickstart::request::read_generate(&m, &obj).err(),
            1 => quickstart::request::read_extend(&m, &obj).err(),
            _ => quickstart::request::read_aleph(&m, &obj).err(),
        };
        if let Some(e) = err {
            prop_assert!((400..500).contains(&code(&e)), "{e}");
        }
    }

    #[test]
    fn openai_bodies(bytes in body()) {
        use crate::dialects::openai::{request, Mapping, OpenAi};
        use crate::error::Render;
        let (m, catalog) = (Mapping::builtin(), reelay_core::Catalog::builtin());
        let read = crate::create::json_object(&bytes, false).and_then(|fields| {
            let form = request::Form { fields, ..Default::default() };
            let c = request::read_create(&m, &catalog, &form)?;
            reelay_core::TaskSpec::parse(&catalog, c.endpoint, &c.body)
                .map_err(|e| request::catalog_error(e, &c.params.model))
        });
        match read {
            Ok(spec) => prop_assert!(spec.price >= 1),
            Err(e) => {
                let status = OpenAi::render(e).status();
                prop_assert!(status.is_client_error(), "{status}");
            }
        }
    }

    #[test]
    fn media_link_queries(query in prop_oneof![
        ".{0,80}",
        proptest::collection::vec(
            (prop_oneof![Just("exp"), Just("sig"), Just("x")], prop_oneof![".{0,20}", "[0-9]{1,22}"]),
            0..5,
        ).prop_map(|kv| kv.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")),
    ]) {
        if let Some(q) = LinkQuery::parse(Some(&query)) {
            let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect();
            let count = |k: &str| pairs.iter().filter(|(n, _)| n == k).count();
            prop_assert_eq!(count("exp"), 1);
            prop_assert_eq!(count("sig"), 1);
            prop_assert!(pairs.iter().any(|(n, v)| n == "exp" && v.parse() == Ok(q.exp)));
        }
    }
}

//! The built-in catalog against the pinned `runwayml` Python SDK 5.24.0.
//!
//! `SDK_MODELS` is written down from the SDK's request types (`types/*_create_params.py`): every
//! model of every generation endpoint, with the keys its TypedDict marks `Required[...]` (wire
//! names, i.e. after `PropertyInfo(alias=...)`; `model` itself left out). A catalog edit that
//! drops a model, adds one the SDK does not know, or changes what is required fails here.

use std::collections::{BTreeMap, BTreeSet};

use reelay_core::catalog::{FieldSpec, MediaKind};
use reelay_core::{Catalog, CoreError, TaskSpec};
use serde_json::{json, Map, Value};

/// (endpoint, model, required body keys besides `model`) — SDK 5.24.0.
const SDK_MODELS: &[(&str, &str, &[&str])] = &[
    // image_to_video: ImageToVideoCreateParams
    ("image_to_video", "gemini_omni_flash", &["promptImage"]),
    (
        "image_to_video",
        "gemini_omni_flash_1.1",
        &["promptImage", "promptText"],
    ),
    (
        "image_to_video",
        "gen4.5",
        &["duration", "promptImage", "promptText", "ratio"],
    ),
    ("image_to_video", "gen4_turbo", &["promptImage", "ratio"]),
    ("image_to_video", "grok_imagine_1_5", &["promptImage"]),
    ("image_to_video", "grok_imagine_1_5_lite", &["promptImage"]),
    ("image_to_video", "h3_max", &["promptImage", "promptText"]),
    ("image_to_video", "hailuo3", &["promptImage", "promptText"]),
    ("image_to_video", "happyhorse_1_0", &["promptImage"]),
    (
        "image_to_video",
        "kling2.5_turbo_pro",
        &["promptImage", "promptText"],
    ),
    ("image_to_video", "kling3.0_4k", &["promptImage"]),
    ("image_to_video", "kling3.0_pro", &["promptImage"]),
    ("image_to_video", "kling3.0_standard", &["promptImage"]),
    ("image_to_video", "klingO3_4k", &["promptImage"]),
    ("image_to_video", "klingO3_pro", &["promptImage"]),
    ("image_to_video", "klingO3_standard", &["promptImage"]),
    ("image_to_video", "kling_4", &["promptImage"]),
    ("image_to_video", "seedance2", &["promptImage"]),
    ("image_to_video", "seedance2_5", &["promptImage"]),
    ("image_to_video", "seedance2_fast", &["promptImage"]),
    ("image_to_video", "seedance2_mini", &["promptImage"]),
    ("image_to_video", "veo3.1", &["promptImage", "ratio"]),
    ("image_to_video", "veo3.1_fast", &["promptImage", "ratio"]),
    ("image_to_video", "wan3", &["promptImage", "promptText"]),
    (
        "image_to_video",
        "wan3_prime",
        &["promptImage", "promptText"],
    ),
    // text_to_video: TextToVideoCreateParams
    ("text_to_video", "gemini_omni_flash", &["promptText"]),
    ("text_to_video", "gemini_omni_flash_1.1", &["promptText"]),
    (
        "text_to_video",
        "gen4.5",
        &["duration", "promptText", "ratio"],
    ),
    ("text_to_video", "grok_imagine_1_5", &["promptText"]),
    ("text_to_video", "grok_imagine_1_5_lite", &["promptText"]),
    ("text_to_video", "h3_max", &["promptText"]),
    ("text_to_video", "hailuo3", &["promptText"]),
    ("text_to_video", "happyhorse_1_0", &["promptText"]),
    ("text_to_video", "kling2.5_turbo_pro", &["promptText"]),
    ("text_to_video", "kling3.0_4k", &["ratio"]),
    ("text_to_video", "kling3.0_pro", &["ratio"]),
    ("text_to_video", "kling3.0_standard", &["ratio"]),
    ("text_to_video", "klingO3_4k", &["ratio"]),
    ("text_to_video", "klingO3_pro", &["ratio"]),
    ("text_to_video", "klingO3_standard", &["ratio"]),
    ("text_to_video", "kling_4", &["promptText"]),
    ("text_to_video", "seedance2", &["promptText"]),
    ("text_to_video", "seedance2_5", &[]),
    ("text_to_video", "seedance2_fast", &["promptText"]),
    ("text_to_video", "seedance2_mini", &["promptText"]),
    ("text_to_video", "veo3.1", &["promptText", "ratio"]),
    ("text_to_video", "veo3.1_fast", &["promptText", "ratio"]),
    ("text_to_video", "wan3", &["promptText"]),
    ("text_to_video", "wan3_prime", &["promptText"]),
    // video_to_video: VideoToVideoCreateParams
    ("video_to_video", "aleph2", &["videoUri"]),
    (
        "video_to_video",
        "gemini_omni_flash",
        &["promptText", "videoUri"],
    ),
    (
        "video_to_video",
        "gemini_omni_flash_1.1",
        &["promptText", "videoUri"],
    ),
    ("video_to_video", "hailuo3", &["promptText", "promptVideo"]),
    (
        "video_to_video",
        "klingO3_4k",
        &["promptText", "promptVideo"],
    ),
    (
        "video_to_video",
        "klingO3_pro",
        &["promptText", "promptVideo"],
    ),
    (
        "video_to_video",
        "klingO3_standard",
        &["promptText", "promptVideo"],
    ),
    ("video_to_video", "kling_4", &["promptText", "videoUri"]),
    ("video_to_video", "seedance2", &["promptVideo"]),
    ("video_to_video", "seedance2_5", &["promptVideo"]),
    ("video_to_video", "seedance2_fast", &["promptVideo"]),
    ("video_to_video", "seedance2_mini", &["promptVideo"]),
    // character_performance
    (
        "character_performance",
        "act_two",
        &["character", "reference"],
    ),
    // video_upscale
    (
        "video_upscale",
        "enhance_frame_rate",
        &["targetFramerate", "videoUri"],
    ),
    (
        "video_upscale",
        "magnific_video_upscaler_creative",
        &["videoUri"],
    ),
    // text_to_image: TextToImageCreateParams
    ("text_to_image", "bria_fibo_1_5", &["promptText", "ratio"]),
    ("text_to_image", "bria_fibo_edit_1_5", &["promptText"]),
    (
        "text_to_image",
        "gemini_2.5_flash",
        &["promptText", "ratio"],
    ),
    (
        "text_to_image",
        "gemini_image3.1_flash",
        &["promptText", "ratio"],
    ),
    (
        "text_to_image",
        "gemini_image3.1_flash_lite",
        &["promptText", "ratio"],
    ),
    (
        "text_to_image",
        "gemini_image3_pro",
        &["promptText", "ratio"],
    ),
    ("text_to_image", "gen4_image", &["promptText", "ratio"]),
    (
        "text_to_image",
        "gen4_image_turbo",
        &["promptText", "ratio", "referenceImages"],
    ),
    ("text_to_image", "gpt_image_2", &["promptText", "ratio"]),
    (
        "text_to_image",
        "gpt_image_2_5_flare",
        &["promptText", "ratio"],
    ),
    (
        "text_to_image",
        "gpt_image_2_5_sunburst",
        &["promptText", "ratio"],
    ),
    (
        "text_to_image",
        "grok_imagine_image_2",
        &["promptText", "ratio"],
    ),
    ("text_to_image", "ideogram_4_0", &["promptText"]),
    ("text_to_image", "ideogram_4_5", &["promptText"]),
    ("text_to_image", "muse_image", &["promptText", "ratio"]),
    ("text_to_image", "nano_banana_2.1", &["promptText", "ratio"]),
    (
        "text_to_image",
        "recraft_v4_1_flash",
        &["promptText", "ratio"],
    ),
    ("text_to_image", "recraft_v4_1_vector", &["promptText"]),
    ("text_to_image", "seedream5_flash", &["promptText", "ratio"]),
    ("text_to_image", "seedream5_lite", &["promptText", "ratio"]),
    ("text_to_image", "seedream5_pro", &["promptText", "ratio"]),
    // image_upscale
    (
        "image_upscale",
        "magnific_precision_upscaler_v2",
        &["imageUri"],
    ),
    // sound_effect
    ("sound_effect", "eleven_text_to_sound_v2", &["promptText"]),
    (
        "sound_effect",
        "mirelo_sfx_2_0",
        &["duration", "promptText"],
    ),
    ("sound_effect", "seed_audio", &["promptText"]),
    // text_to_speech
    (
        "text_to_speech",
        "eleven_multilingual_v2",
        &["promptText", "voice"],
    ),
    ("text_to_speech", "eleven_v3", &["promptText", "voice"]),
    ("text_to_speech", "eleven_v4", &["promptText", "voice"]),
    ("text_to_speech", "seed_audio", &["promptText"]),
    // speech_to_speech
    (
        "speech_to_speech",
        "eleven_multilingual_sts_v2",
        &["media", "voice"],
    ),
    // voice_dubbing
    (
        "voice_dubbing",
        "eleven_voice_dubbing",
        &["audioUri", "targetLang"],
    ),
    // voice_isolation
    ("voice_isolation", "eleven_voice_isolation", &["audioUri"]),
    // video_to_audio
    (
        "video_to_audio",
        "mirelo_sfx_2_0",
        &["duration", "videoUri"],
    ),
    // video_to_hdr
    ("video_to_hdr", "ruby", &["videoUri"]),
];

const ENDPOINTS: &[&str] = &reelay_core::GENERATION_ENDPOINTS;

fn uri(kind: MediaKind) -> Value {
    let ext = match kind {
        MediaKind::Image => "png",
        MediaKind::Video => "mp4",
        MediaKind::Audio => "mp3",
    };
    Value::String(format!("https://example.com/input.{ext}"))
}

fn clamp_i(n: i64, min: Option<i64>, max: Option<i64>) -> i64 {
    let n = min.map_or(n, |m| n.max(m));
    max.map_or(n, |m| n.min(m))
}

/// A valid value for a field, as small as the rule allows.
fn sample(spec: &FieldSpec) -> Value {
    match spec {
        FieldSpec::Text { .. } => json!("a red fox running through fresh snow"),
        FieldSpec::Enum { values, .. } => json!(values[0]),
        FieldSpec::Int {
            min,
            max,
            values,
            default,
            ..
        } => {
            if !values.is_empty() {
                json!(default.filter(|d| values.contains(d)).unwrap_or(values[0]))
            } else {
                json!(clamp_i(default.unwrap_or(5), *min, *max))
            }
        }
        FieldSpec::Number { min, max } => {
            let n = min.map_or(5.0, |m| m.max(5.0));
            json!(max.map_or(n, |m| n.min(m)))
        }
        FieldSpec::Bool => json!(true),
        FieldSpec::Media { kind } => uri(*kind),
        FieldSpec::PromptImage { .. } | FieldSpec::Any => uri(MediaKind::Image),
        FieldSpec::TypedMedia { types } => json!({"type": types[0].as_str(), "uri": uri(types[0])}),
        FieldSpec::MediaList {
            kind,
            min_items,
            typed,
            ..
        } => {
            let item = if *typed {
                json!({"type": kind.as_str(), "uri": uri(*kind)})
            } else {
                json!({"uri": uri(*kind)})
            };
            Value::Array(vec![item; min_items.unwrap_or(1).max(1)])
        }
        FieldSpec::StringList { .. } | FieldSpec::ObjectList { .. } => json!([]),
        FieldSpec::Object { fields, required } => {
            let mut o = Map::new();
            if let Some(fields) = fields {
                for r in required {
                    o.insert(r.clone(), sample(&fields[r]));
                }
            }
            Value::Object(o)
        }
    }
}

fn parse(endpoint: &str, body: &Value) -> Result<TaskSpec, CoreError> {
    TaskSpec::parse(&Catalog::builtin(), endpoint, body)
}

fn expected_output(endpoint: &str) -> MediaKind {
    match endpoint {
        "text_to_image" | "image_upscale" => MediaKind::Image,
        "sound_effect" | "text_to_speech" | "speech_to_speech" | "voice_dubbing"
        | "voice_isolation" | "video_to_audio" => MediaKind::Audio,
        _ => MediaKind::Video,
    }
}

#[test]
fn every_sdk_model_accepts_a_minimal_body_and_has_a_price() {
    let catalog = Catalog::builtin();
    for (endpoint, model, required) in SDK_MODELS {
        let ep = catalog
            .endpoint(endpoint)
            .unwrap_or_else(|| panic!("no endpoint {endpoint}"));
        let spec = ep
            .models
            .get(*model)
            .unwrap_or_else(|| panic!("{endpoint}: no model {model}"));
        let want: BTreeSet<&str> = required.iter().copied().collect();
        let have: BTreeSet<&str> = spec.required.iter().map(String::as_str).collect();
        assert_eq!(
            have, want,
            "{endpoint}.{model}: required keys differ from the SDK"
        );

        let mut body = Map::new();
        body.insert("model".into(), json!(model));
        for key in *required {
            body.insert((*key).into(), sample(&spec.fields[*key]));
        }
        let body = Value::Object(body);
        let task = match parse(endpoint, &body) {
            Ok(t) => t,
            Err(e) => panic!("{endpoint}.{model}: minimal body {body} refused: {e:?}"),
        };
        assert_eq!(task.model, *model);
        assert!(
            task.price > 0,
            "{endpoint}.{model}: price {} for {body}",
            task.price
        );
        assert_eq!(
            task.output,
            Some(expected_output(endpoint)),
            "{endpoint}.{model}: output kind"
        );
    }
}

#[test]
fn catalog_models_per_endpoint_are_exactly_the_sdk_ones() {
    let mut sdk: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (endpoint, model, _) in SDK_MODELS {
        assert!(
            sdk.entry(endpoint).or_default().insert(model),
            "{endpoint}.{model} listed twice"
        );
    }
    let catalog = Catalog::builtin();
    let have: BTreeSet<&str> = catalog.endpoints().map(|e| e.name.as_str()).collect();
    let want: BTreeSet<&str> = ENDPOINTS.iter().copied().collect();
    assert_eq!(have, want, "catalog endpoints");
    assert_eq!(sdk.keys().copied().collect::<BTreeSet<_>>(), want);
    for ep in catalog.endpoints() {
        let have: BTreeSet<&str> = ep.models.keys().map(String::as_str).collect();
        assert_eq!(have, sdk[ep.name.as_str()], "models of {}", ep.name);
    }
    // Model counts per endpoint in SDK 5.24.0, as a second guard on the table itself.
    let counts: Vec<(&str, usize)> = ENDPOINTS.iter().map(|e| (*e, sdk[e].len())).collect();
    assert_eq!(
        counts,
        vec![
            ("image_to_video", 25),
            ("text_to_video", 24),
            ("video_to_video", 12),
            ("character_performance", 1),
            ("video_upscale", 2),
            ("text_to_image", 21),
            ("image_upscale", 1),
            ("sound_effect", 3),
            ("text_to_speech", 4),
            ("speech_to_speech", 1),
            ("voice_dubbing", 1),
            ("voice_isolation", 1),
            ("video_to_audio", 1),
            ("video_to_hdr", 1),
        ]
    );
}

#[test]
fn retired_models_are_refused_with_their_message() {
    let catalog = Catalog::builtin();
    for (endpoint, model) in [
        ("image_to_video", "gen3a_turbo"),
        ("image_to_video", "veo3"),
        ("text_to_video", "veo3"),
        ("video_to_video", "gen4_aleph"),
        ("video_upscale", "upscale_v1"),
    ] {
        let ep = catalog.endpoint(endpoint).unwrap();
        assert!(
            ep.retired.contains_key(model),
            "{endpoint}: {model} not marked retired"
        );
        assert!(
            !ep.models.contains_key(model),
            "{endpoint}: retired {model} still served"
        );
        match parse(endpoint, &json!({"model": model, "promptText": "x"})) {
            Err(CoreError::Validation(issues)) => {
                assert!(
                    issues[0].message.contains("retired"),
                    "{endpoint}.{model}: {issues:?}"
                )
            }
            other => panic!("{endpoint}.{model}: expected refusal, got {other:?}"),
        }
    }
}

const IMG: &str = "https://example.com/a.png";
const VID: &str = "https://example.com/a.mp4";
const AUD: &str = "https://example.com/a.mp3";

#[test]
fn invalid_bodies_are_refused() {
    let imgs = |n: usize| Value::Array(vec![json!({"uri": IMG}); n]);
    let cases: Vec<(&str, &str, Value, &str)> = vec![
        // wrong ratio for the model (a Veo ratio on gen4_turbo)
        (
            "wrong ratio",
            "image_to_video",
            json!({"model": "gen4_turbo", "promptImage": IMG, "ratio": "1920:1080"}),
            "invalid_value",
        ),
        (
            "text_to_video gen4.5 only has two ratios",
            "text_to_video",
            json!({"model": "gen4.5", "promptText": "x", "ratio": "960:960", "duration": 5}),
            "invalid_value",
        ),
        (
            "seedream5_lite free-form size below the pixel range",
            "text_to_image",
            json!({"model": "seedream5_lite", "promptText": "x", "ratio": "1000:1000"}),
            "invalid_value",
        ),
        // duration out of range
        (
            "gen4.5 duration 11",
            "image_to_video",
            json!({"model": "gen4.5", "promptImage": IMG, "promptText": "x", "ratio": "1280:720", "duration": 11}),
            "too_big",
        ),
        (
            "veo3.1 duration 5",
            "text_to_video",
            json!({"model": "veo3.1", "promptText": "x", "ratio": "1280:720", "duration": 5}),
            "invalid_value",
        ),
        (
            "gemini_omni_flash_1.1 duration 2",
            "image_to_video",
            json!({"model": "gemini_omni_flash_1.1", "promptImage": IMG, "promptText": "x", "duration": 2}),
            "too_small",
        ),
        (
            "eleven sound effect of 31 s",
            "sound_effect",
            json!({"model": "eleven_text_to_sound_v2", "promptText": "rain", "duration": 31}),
            "too_big",
        ),
        // "auto" where not allowed
        (
            "auto duration on gen4_turbo",
            "image_to_video",
            json!({"model": "gen4_turbo", "promptImage": IMG, "ratio": "1280:720", "duration": "auto"}),
            "invalid_type",
        ),
        (
            "auto duration on kling3.0_standard",
            "text_to_video",
            json!({"model": "kling3.0_standard", "ratio": "1280:720", "duration": "auto"}),
            "invalid_type",
        ),
        // unknown fields
        (
            "ratio is not accepted by kling2.5_turbo_pro image-to-video",
            "image_to_video",
            json!({"model": "kling2.5_turbo_pro", "promptImage": IMG, "promptText": "x", "ratio": "1280:720"}),
            "unrecognized_keys",
        ),
        (
            "klingO3 has no cfgScale",
            "text_to_video",
            json!({"model": "klingO3_standard", "ratio": "1280:720", "cfgScale": 0.5}),
            "unrecognized_keys",
        ),
        (
            "klingO3 video-to-video takes no duration",
            "video_to_video",
            json!({"model": "klingO3_pro", "promptText": "x", "promptVideo": VID, "duration": 5}),
            "unrecognized_keys",
        ),
        (
            "snake_case key where the wire wants camelCase",
            "image_to_video",
            json!({"model": "gen4_turbo", "prompt_image": IMG, "promptImage": IMG, "ratio": "1280:720"}),
            "unrecognized_keys",
        ),
        (
            "draftTaskId only on text_to_video",
            "video_to_video",
            json!({"model": "seedance2_5", "promptVideo": VID, "draftTaskId": "abc"}),
            "unrecognized_keys",
        ),
        // missing required fields
        (
            "gen4.5 without duration",
            "text_to_video",
            json!({"model": "gen4.5", "promptText": "x", "ratio": "1280:720"}),
            "invalid_type",
        ),
        (
            "gen4_image_turbo without references",
            "text_to_image",
            json!({"model": "gen4_image_turbo", "promptText": "x", "ratio": "1024:1024"}),
            "invalid_type",
        ),
        (
            "kling3.0 text-to-video without ratio",
            "text_to_video",
            json!({"model": "kling3.0_pro", "promptText": "x"}),
            "invalid_type",
        ),
        (
            "mirelo video-to-audio without duration",
            "video_to_audio",
            json!({"model": "mirelo_sfx_2_0", "videoUri": VID}),
            "invalid_type",
        ),
        (
            "seedance2 video-to-video takes promptVideo, not videoUri",
            "video_to_video",
            json!({"model": "seedance2", "videoUri": VID}),
            "invalid_type",
        ),
        // wrong types
        (
            "promptText as a number",
            "image_to_video",
            json!({"model": "gen4_turbo", "promptImage": IMG, "ratio": "1280:720", "promptText": 42}),
            "invalid_type",
        ),
        (
            "targetFramerate is a string enum",
            "video_upscale",
            json!({"model": "enhance_frame_rate", "videoUri": VID, "targetFramerate": 60}),
            "invalid_type",
        ),
        (
            "speech_to_speech media of type image",
            "speech_to_speech",
            json!({"model": "eleven_multilingual_sts_v2", "media": {"type": "image", "uri": IMG},
                "voice": {"type": "runway-preset", "presetId": "Maya"}}),
            "invalid_union",
        ),
        (
            "untyped reference audio",
            "text_to_video",
            json!({"model": "wan3", "promptText": "x", "referenceAudio": [{"uri": AUD}]}),
            "invalid_value",
        ),
        // other value rules
        (
            "unknown voice preset",
            "text_to_speech",
            json!({"model": "eleven_v3", "promptText": "hi", "voice": {"type": "runway-preset", "presetId": "Nobody"}}),
            "invalid_value",
        ),
        (
            "eleven_v3 speed 1.5",
            "text_to_speech",
            json!({"model": "eleven_v3", "promptText": "hi", "speed": 1.5,
                "voice": {"type": "runway-preset", "presetId": "Maya"}}),
            "too_big",
        ),
        (
            "gemini image outputCount 2",
            "text_to_image",
            json!({"model": "gemini_image3_pro", "promptText": "x", "ratio": "1024:1024", "outputCount": 2}),
            "invalid_value",
        ),
        (
            "gpt_image_2 outputCount 11",
            "text_to_image",
            json!({"model": "gpt_image_2", "promptText": "x", "ratio": "auto", "outputCount": 11}),
            "too_big",
        ),
        (
            "flare has no transparent background",
            "text_to_image",
            json!({"model": "gpt_image_2_5_flare", "promptText": "x", "ratio": "auto", "background": "transparent"}),
            "invalid_value",
        ),
        (
            "ruby ProRes tier 422 LT",
            "video_to_hdr",
            json!({"model": "ruby", "videoUri": VID, "outputFormat": "hdr_prores", "proresProfile": "422 LT"}),
            "invalid_value",
        ),
        (
            "veo3.1 last frame only",
            "image_to_video",
            json!({"model": "veo3.1", "ratio": "1280:720", "promptImage": [{"uri": IMG, "position": "last"}]}),
            "custom",
        ),
        (
            "gen4_turbo has no reference images in promptImage",
            "image_to_video",
            json!({"model": "gen4_turbo", "ratio": "1280:720", "promptImage": [{"uri": IMG}]}),
            "invalid_type",
        ),
        // too many reference images
        (
            "gen4_image with 4 references",
            "text_to_image",
            json!({"model": "gen4_image", "promptText": "x", "ratio": "1024:1024", "referenceImages": imgs(4)}),
            "too_big",
        ),
        (
            "klingO3 image-to-video with 8 references",
            "image_to_video",
            json!({"model": "klingO3_standard", "promptImage": IMG, "references": imgs(8)}),
            "too_big",
        ),
        (
            "hailuo3 with 10 references",
            "text_to_video",
            json!({"model": "hailuo3", "promptText": "x", "references": imgs(10)}),
            "too_big",
        ),
        (
            "bria_fibo_1_5 with 2 references",
            "text_to_image",
            json!({"model": "bria_fibo_1_5", "promptText": "x", "ratio": "1024:1024", "referenceImages": imgs(2)}),
            "too_big",
        ),
        (
            "aleph2 with 6 keyframes",
            "video_to_video",
            json!({"model": "aleph2", "videoUri": VID, "keyframes": vec![json!({"at": 0.5, "uri": IMG}); 6]}),
            "too_big",
        ),
        // text over the UTF-16 limit
        (
            "gen4.5 prompt of 1001 UTF-16 units",
            "image_to_video",
            json!({"model": "gen4.5", "promptImage": IMG, "ratio": "1280:720", "duration": 5, "promptText": "a".repeat(1001)}),
            "too_big",
        ),
        (
            "seedance2 prompt of 3501 units",
            "text_to_video",
            json!({"model": "seedance2", "promptText": "é".repeat(3501)}),
            "too_big",
        ),
        (
            "seedance2_5 prompt of 15002 units (astral characters count twice)",
            "text_to_video",
            json!({"model": "seedance2_5", "promptText": "😀".repeat(7501)}),
            "too_big",
        ),
        (
            "happyhorse prompt of 2501 units",
            "text_to_video",
            json!({"model": "happyhorse_1_0", "promptText": "a".repeat(2501)}),
            "too_big",
        ),
        // media of the wrong kind / unknown model
        (
            "a video where an image is expected",
            "image_upscale",
            json!({"model": "magnific_precision_upscaler_v2", "imageUri": "data:video/mp4;base64,AAAA"}),
            "custom",
        ),
        (
            "unknown model",
            "text_to_image",
            json!({"model": "dall-e-3", "promptText": "x"}),
            "invalid_union",
        ),
    ];
    assert!(cases.len() >= 15);
    for (what, endpoint, body, code) in cases {
        match parse(endpoint, &body) {
            Err(CoreError::Validation(issues)) => assert!(
                issues.iter().any(|i| i.code == code),
                "{what}: expected a {code} issue, got {issues:?}"
            ),
            other => panic!("{what}: expected a validation error, got {other:?}"),
        }
    }
}

#[test]
fn valid_variants_are_accepted_and_priced() {
    let ok = |endpoint: &str, body: Value| -> i64 {
        match parse(endpoint, &body) {
            Ok(t) => t.price,
            Err(e) => panic!("{endpoint}: {body} refused: {e:?}"),
        }
    };
    // "auto" is billed at the maximum up front.
    assert_eq!(
        ok(
            "text_to_video",
            json!({"model": "seedance2", "promptText": "x", "duration": "auto"})
        ),
        36 * 15
    );
    assert_eq!(
        ok(
            "text_to_video",
            json!({"model": "seedance2", "promptText": "x", "duration": 4})
        ),
        36 * 4
    );
    // Veo's audio surcharge.
    let veo = |audio: bool| json!({"model": "veo3.1_fast", "promptText": "x", "ratio": "1280:720", "duration": 8, "audio": audio});
    assert_eq!(ok("text_to_video", veo(false)), 80);
    assert_eq!(ok("text_to_video", veo(true)), 120);
    // per_image × outputCount.
    assert_eq!(
        ok(
            "text_to_image",
            json!({"model": "muse_image", "promptText": "x", "ratio": "auto", "outputCount": 3})
        ),
        3
    );
    // Free-form Seedream 5 Lite size inside the pixel range.
    ok(
        "text_to_image",
        json!({"model": "seedream5_lite", "promptText": "x", "ratio": "2000:2000"}),
    );
    // Reference-image mode of promptImage, and first+last keyframes.
    ok(
        "image_to_video",
        json!({"model": "seedance2_fast", "promptImage": [{"uri": IMG}, {"uri": IMG}]}),
    );
    ok(
        "image_to_video",
        json!({"model": "kling3.0_pro", "promptImage": [
        {"uri": IMG, "position": "first"}, {"uri": IMG, "position": "last"}]}),
    );
    // Kling O3 references: a bare string or items with an optional position.
    ok(
        "video_to_video",
        json!({"model": "klingO3_4k", "promptText": "x", "promptVideo": VID, "references": IMG}),
    );
    ok(
        "image_to_video",
        json!({"model": "klingO3_pro", "promptImage": IMG,
        "references": [{"uri": IMG}, {"uri": IMG, "position": "last"}],
        "providerSettings": {"shotType": "customize", "multiPrompt": [{"prompt": "a", "duration": 5}]}}),
    );
    ok(
        "video_to_video",
        json!({"model": "klingO3_standard", "promptText": "x", "promptVideo": VID,
        "providerSettings": {"keepOriginalSound": false}}),
    );
    // Untyped items the SDK leaves open (kling_4).
    ok(
        "image_to_video",
        json!({"model": "kling_4", "promptImage": [{"uri": IMG, "position": "first"}, {"uri": IMG}],
        "referenceVideos": [{"uri": VID}]}),
    );
    // Seedance 2.5 draft enhancement carries nothing but the draft id.
    ok(
        "text_to_video",
        json!({"model": "seedance2_5", "draftTaskId": "0d7b8f1e-3c55-4a09-9b1e-6f2c1a7e4d10"}),
    );
    ok(
        "video_to_video",
        json!({"model": "seedance2_5", "promptVideo": VID, "mode": "edit", "promptText": "x", "duration": "auto"}),
    );
    // Aleph 2 keyframes with snake_case range keys (no alias in the SDK).
    ok(
        "video_to_video",
        json!({"model": "aleph2", "videoUri": VID, "keyframes": [
        {"seconds": 1.5, "uri": IMG, "range": {"start_seconds": 1, "end_seconds": 3}}]}),
    );
    // Deprecated upper-case Hailuo resolutions are still accepted.
    ok(
        "text_to_video",
        json!({"model": "hailuo3", "promptText": "x", "resolution": "2K"}),
    );
    // Image references with tags and subjects.
    ok(
        "text_to_image",
        json!({"model": "gemini_image3.1_flash", "promptText": "@Hero", "ratio": "1024:1024", "outputCount": 4,
        "referenceImages": [{"uri": IMG, "tag": "Hero", "subject": "human"}]}),
    );
    // seed_audio with a cloned voice; eleven_v4 with its context fields.
    ok(
        "text_to_speech",
        json!({"model": "seed_audio", "promptText": "hello", "sampleRate": 24000,
        "voice": {"type": "reference-audio", "audioUri": AUD}}),
    );
    ok(
        "text_to_speech",
        json!({"model": "eleven_v4", "promptText": "hello", "previousText": "well,",
        "voice": {"type": "runway-preset", "presetId": "Rachel"}}),
    );
    ok(
        "sound_effect",
        json!({"model": "seed_audio", "promptText": "a storm", "referenceAudios": [AUD, AUD, AUD]}),
    );
    // Price follows the requested duration for per-second audio.
    assert_eq!(
        ok(
            "sound_effect",
            json!({"model": "mirelo_sfx_2_0", "promptText": "rain", "duration": 12.5})
        ),
        13
    );
}

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::catalog::Catalog;
use crate::error::CoreError;
use crate::issue::Issue;
pub use crate::kinds::{MediaKind, Operation};
use crate::validate::validate_body;

/// A validated request, in the canonical form every dialect produces.
///
/// The upstream protocol reelay speaks is Runway's, so the canonical input *is* a Runway body
/// for `endpoint` (validated against the catalog); dialects that speak other shapes build one.
/// Holding a `TaskSpec` means the body was valid when it was built (`TaskSpec::parse`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct TaskSpec {
    pub operation: Operation,
    /// The catalog endpoint, e.g. `image_to_video`.
    pub endpoint: String,
    /// The model as the client named it.
    pub model: String,
    /// The body to send upstream (model already mapped to the upstream name).
    pub input: Value,
    /// Credits this task holds until it ends.
    pub price: i64,
    #[serde(default)]
    pub output: Option<MediaKind>,
    #[serde(default)]
    pub callback_url: Option<String>,
    /// The creating dialect's own facts about the request that the Runway body cannot carry
    /// (e.g. the quick-start dialect's `generateParam` and parent task), echoed in its views.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Value>,
    /// Text drawn at the bottom right of video outputs when they are archived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watermark: Option<String>,
    /// The client's request as it came, less any credential, for the operator's view; kept
    /// only when small (a body carrying a data URI is not stored twice).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received: Option<Value>,
}

impl TaskSpec {
    /// Checks a body for `endpoint` against the catalog and, if it is valid, prices it.
    pub fn parse(catalog: &Catalog, endpoint: &str, body: &Value) -> Result<TaskSpec, CoreError> {
        let ep = catalog.endpoint(endpoint).ok_or_else(|| {
            CoreError::Validation(vec![Issue::custom(
                vec![],
                format!("Unknown endpoint {endpoint}"),
            )])
        })?;
        let model_name = validate_body(ep, body).map_err(CoreError::Validation)?;
        let model = &ep.models[&model_name];
        let obj = body.as_object().expect("validated as an object");
        let mut input = body.clone();
        if let Some(up) = &model.upstream_model {
            input["model"] = Value::String(up.clone());
        }
        Ok(TaskSpec {
            operation: ep.operation,
            endpoint: endpoint.to_string(),
            model: model_name,
            input,
            price: model.price.credits_for(obj),
            output: model.output.or(Some(default_output(ep.operation))),
            callback_url: None,
            params: None,
            watermark: None,
            received: None,
        })
    }
}

fn default_output(op: Operation) -> MediaKind {
    use Operation::*;
    match op {
        TextToImage | ImageUpscale => MediaKind::Image,
        SoundEffect | TextToSpeech | SpeechToSpeech | VoiceDubbing | VoiceIsolation
        | VideoToAudio => MediaKind::Audio,
        _ => MediaKind::Video,
    }
}

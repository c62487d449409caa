//! What this dialect keeps with a task beyond the canonical spec: the Video object's fields as
//! the client asked for them (its model name, `size`, `seconds`) and where the video came from.
//! Stored as JSON under these names, which are therefore a stored format.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Params {
    /// The model as the client named it (`sora-2`), reported back as `model`.
    pub model: String,
    /// `WIDTHxHEIGHT`.
    pub size: String,
    /// Whole seconds, as a string (the dialect's type).
    pub seconds: String,
    pub prompt: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remixed_from_video_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extended_from_video_id: Option<String>,
}

impl Params {
    pub fn of(task: &reelay_store::Task) -> Params {
        crate::dialects::params_of(task)
    }

    pub fn to_value(&self) -> Value {
        crate::dialects::params_value(self)
    }
}

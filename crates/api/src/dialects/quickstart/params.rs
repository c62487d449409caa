//! What this dialect keeps with a task beyond the canonical spec (`TaskSpec::params`): which
//! route made it, the parent of an extension, and the request facts `record-detail` reports
//! back. Typed here; stored as JSON with these (camelCase) names, which are therefore a
//! stored format.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    #[default]
    Generate,
    Extend,
    Aleph,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct GenerateParam {
    pub prompt: String,
    pub image_url: String,
    pub expand_prompt: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Params {
    pub kind: Route,
    pub parent_task_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generate_param: Option<GenerateParam>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<i64>,
    /// The pixel ratio generated (an extension keeps its parent's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio: Option<String>,
    pub water_mark: String,
    /// Aleph: the request as sent, less the callback URL (`paramJson`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<Map<String, Value>>,
}

impl Params {
    /// The params of a task of this dialect (defaults for one stored without them).
    pub fn of(task: &reelay_store::Task) -> Params {
        crate::dialects::params_of(task)
    }

    pub fn to_value(&self) -> Value {
        crate::dialects::params_value(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_stored_shape_reads_and_writes_the_same() {
        let stored = json!({
            "kind": "extend", "parentTaskId": "p1",
            "generateParam": {"prompt": "a", "imageUrl": "u", "expandPrompt": true},
            "quality": "720p", "duration": 5, "ratio": "1280:720", "waterMark": "",
        });
        let p = Params::deserialize(&stored).unwrap();
        assert_eq!(p.kind, Route::Extend);
        assert_eq!(p.to_value(), stored);
        let aleph = json!({"kind": "aleph", "request": {"prompt": "x"}, "waterMark": "w"});
        let a = Params::deserialize(&aleph).unwrap();
        assert_eq!(a.kind, Route::Aleph);
        assert_eq!(a.to_value()["request"], json!({"prompt": "x"}));
    }
}

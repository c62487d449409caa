//! One problem with a request's field: where it is (a JSON path), a code and a message. Every
//! dialect renders these in its own error shape. A leaf: it imports nothing of this crate.

use serde::Serialize;
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Issue {
    pub code: String,
    pub path: Vec<Value>,
    pub message: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Issue {
    pub fn new(code: &str, path: Vec<Value>, message: impl Into<String>) -> Issue {
        Issue {
            code: code.into(),
            path,
            message: message.into(),
            extra: Map::new(),
        }
    }
    pub fn custom(path: Vec<Value>, message: impl Into<String>) -> Issue {
        Issue::new("custom", path, message)
    }
    pub(crate) fn with(mut self, k: &str, v: impl Into<Value>) -> Issue {
        self.extra.insert(k.into(), v.into());
        self
    }
    pub(crate) fn invalid_type(path: Vec<Value>, expected: &str, got: Option<&Value>) -> Issue {
        Issue::new(
            "invalid_type",
            path,
            format!(
                "Invalid input: expected {expected}, received {}",
                type_name(got)
            ),
        )
        .with("expected", expected)
    }
}

fn type_name(v: Option<&Value>) -> &'static str {
    match v {
        None => "undefined",
        Some(Value::Null) => "null",
        Some(Value::Bool(_)) => "boolean",
        Some(Value::Number(_)) => "number",
        Some(Value::String(_)) => "string",
        Some(Value::Array(_)) => "array",
        Some(Value::Object(_)) => "object",
    }
}

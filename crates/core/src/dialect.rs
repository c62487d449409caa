//! Which client dialect a task arrived in. A leaf: it imports nothing of this crate.
//!
//! The dialect is stored with the task (its answers and callbacks keep that dialect's shape
//! for its whole life), so the names below are part of the stored format: never rename one.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Dialect {
    /// Runway's official developer API (`/v1/...`).
    Runway,
    /// The resellers' `/runway/pro/*` + `/runway/feed` format.
    Reverse,
    /// The kie.ai-style `/api/v1/runway/*` format.
    Quickstart,
    /// OpenAI's `/v1/videos`.
    Openai,
}

impl Dialect {
    pub const ALL: [Dialect; 4] = [
        Dialect::Runway,
        Dialect::Reverse,
        Dialect::Quickstart,
        Dialect::Openai,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Runway => "runway",
            Dialect::Reverse => "reverse",
            Dialect::Quickstart => "quickstart",
            Dialect::Openai => "openai",
        }
    }

    pub fn parse(s: &str) -> Option<Dialect> {
        Dialect::ALL.into_iter().find(|d| d.as_str() == s)
    }
}

impl std::fmt::Display for Dialect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for d in Dialect::ALL {
            assert_eq!(Dialect::parse(d.as_str()), Some(d));
            assert_eq!(serde_json::to_value(d).unwrap(), d.as_str());
        }
        assert_eq!(Dialect::parse("Runway"), None);
    }
}

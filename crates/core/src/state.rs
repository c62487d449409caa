use serde::{Deserialize, Serialize};

/// Canonical task states. Dialects map these onto their own words (tables beside each dialect).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    Queued,
    Submitting,
    Throttled,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl TaskState {
    pub const ALL: [TaskState; 7] = [
        TaskState::Queued,
        TaskState::Submitting,
        TaskState::Throttled,
        TaskState::Running,
        TaskState::Succeeded,
        TaskState::Failed,
        TaskState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Queued => "queued",
            TaskState::Submitting => "submitting",
            TaskState::Throttled => "throttled",
            TaskState::Running => "running",
            TaskState::Succeeded => "succeeded",
            TaskState::Failed => "failed",
            TaskState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<TaskState> {
        TaskState::ALL.into_iter().find(|st| st.as_str() == s)
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskState::Succeeded | TaskState::Failed | TaskState::Cancelled
        )
    }

    /// The transitions the engine may make. Everything else is a bug, and the store refuses it
    /// by conditioning every update on the expected current state.
    pub fn can_move_to(self, next: TaskState) -> bool {
        use TaskState::*;
        match (self, next) {
            (a, b) if a == b => matches!(a, Running | Throttled), // progress updates
            (Queued, Submitting | Throttled | Failed | Cancelled) => true,
            (Throttled, Submitting | Running | Queued | Succeeded | Failed | Cancelled) => true,
            (Submitting, Queued | Running | Throttled | Succeeded | Failed | Cancelled) => true,
            // Back to the queue: a failure the configuration retries on another channel.
            (Running, Queued | Throttled | Succeeded | Failed | Cancelled) => true,
            _ => false,
        }
    }
}

impl std::fmt::Display for TaskState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_states_never_move() {
        for from in TaskState::ALL.into_iter().filter(|s| s.is_terminal()) {
            for to in TaskState::ALL {
                assert!(!from.can_move_to(to), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for s in TaskState::ALL {
            assert_eq!(TaskState::parse(s.as_str()), Some(s));
        }
        assert_eq!(TaskState::parse("nope"), None);
    }
}

//! The domain of reelay: what a task is, which states it moves through, which models exist and
//! what they accept, and what they cost. Nothing here touches a socket, a file or a clock.

pub mod catalog;
pub mod dialect;
pub mod error;
pub mod issue;
pub mod kinds;
pub mod media_ref;
pub mod setting;
pub mod spec;
pub mod state;
pub mod validate;

pub use catalog::{
    Catalog, EndpointSpec, ModelSpec, Price, GENERATION_ENDPOINTS, OPENAI_MAP_JSON,
    QUICKSTART_MAP_JSON, REVERSE_MAP_JSON,
};
pub use dialect::Dialect;
pub use error::CoreError;
pub use issue::Issue;
pub use kinds::{MediaKind, Operation};
pub use setting::SettingError;
pub use spec::TaskSpec;
pub use state::TaskState;

/// Task ids are UUIDv7: sortable by creation time, unguessable enough to hand out.
pub fn new_task_id() -> uuid::Uuid {
    uuid::Uuid::now_v7()
}

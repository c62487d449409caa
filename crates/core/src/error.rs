use crate::issue::Issue;

/// Errors of the domain. Each dialect maps these onto its own status codes and bodies once.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("validation of body failed")]
    Validation(Vec<Issue>),
    #[error("catalog is invalid: {0}")]
    Catalog(String),
}

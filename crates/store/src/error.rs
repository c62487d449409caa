#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("unsupported database url: {0}")]
    UnsupportedUrl(String),
    #[error("insufficient credits: {available} available, {price} needed")]
    InsufficientCredits { available: i64, price: i64 },
    /// The caller asked for something the rules refuse (a bug in the caller, not bad data).
    #[error("not allowed: {0}")]
    Invalid(String),
    #[error("not found: {0}")]
    NotFound(String),
}

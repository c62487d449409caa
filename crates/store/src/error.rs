#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(sqlx::Error),
    /// SQLite's own error, from the writer (reads go through sqlx).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
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

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> StoreError {
        // Text PostgreSQL cannot hold (a NUL character; bytes that are not UTF-8) is the
        // caller's mistake, not the database failing: refused like any invalid input.
        // SQLite stores such text as it is, so only PostgreSQL answers these codes.
        if let sqlx::Error::Database(db) = &e {
            if matches!(db.code().as_deref(), Some("22021" | "22P05")) {
                return StoreError::Invalid("text with a NUL character or invalid bytes".into());
            }
        }
        StoreError::Database(e)
    }
}

impl From<serde_rusqlite::Error> for StoreError {
    fn from(e: serde_rusqlite::Error) -> StoreError {
        StoreError::Corrupt(e.to_string())
    }
}

//! Statements on the writer's rusqlite connection: cached prepared statements, rows read by
//! column name into the shared row types (`serde_rusqlite`).

use rusqlite::types::FromSql;
use rusqlite::{Connection, OptionalExtension, Params};
use serde::de::DeserializeOwned;

use crate::Result;

/// Runs a statement; the number of rows it changed.
pub(super) fn exec(c: &Connection, sql: &str, params: impl Params) -> Result<usize> {
    Ok(c.prepare_cached(sql)?.execute(params)?)
}

/// The first row, if any.
pub(super) fn one<T: DeserializeOwned>(
    c: &Connection,
    sql: &str,
    params: impl Params,
) -> Result<Option<T>> {
    let mut stmt = c.prepare_cached(sql)?;
    let mut rows = serde_rusqlite::from_rows::<T>(stmt.query(params)?);
    Ok(rows.next().transpose()?)
}

/// Every row.
pub(super) fn all<T: DeserializeOwned>(
    c: &Connection,
    sql: &str,
    params: impl Params,
) -> Result<Vec<T>> {
    let mut stmt = c.prepare_cached(sql)?;
    let rows = serde_rusqlite::from_rows::<T>(stmt.query(params)?);
    Ok(rows.collect::<Result<Vec<T>, _>>()?)
}

/// The first column of the first row, if there is a row.
pub(super) fn value<T: FromSql>(
    c: &Connection,
    sql: &str,
    params: impl Params,
) -> Result<Option<T>> {
    Ok(c.prepare_cached(sql)?
        .query_row(params, |r| r.get(0))
        .optional()?)
}

//! Keyset pagination over time-ordered ids: no duplicates or gaps while rows are added.
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{Error, Result};

pub const DEFAULT_LIMIT: u64 = 50;
pub const MAX_LIMIT: u64 = 200;

#[derive(Debug, Default, Deserialize, IntoParams)]
pub struct PageQuery {
    /// Items per page, 1–200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u64>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})?$")]
    pub cursor: Option<String>,
}

impl PageQuery {
    pub fn limit(&self) -> Result<u64> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            Some(_) => Err(Error::validation("limit", format!("must be between 1 and {MAX_LIMIT}"))),
        }
    }

    pub fn cursor(&self) -> Result<Option<&str>> {
        match self.cursor.as_deref() {
            None | Some("") => Ok(None),
            // Exactly the hyphenated form the API hands out (and the schema states).
            Some(c) if c.len() == 36 && uuid::Uuid::try_parse(c).is_ok() => Ok(Some(c)),
            Some(_) => Err(Error::validation("cursor", "is not a cursor this API returned")),
        }
    }
}

/// One page of results. `next_cursor` is absent on the last page.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from `limit + 1` fetched rows: the extra row only proves there is more.
    pub fn from_rows<R>(mut rows: Vec<R>, limit: u64, id: impl Fn(&R) -> String, view: impl Fn(R) -> T) -> Self {
        let more = rows.len() as u64 > limit;
        rows.truncate(limit as usize);
        let next_cursor = if more { rows.last().map(&id) } else { None };
        Page { items: rows.into_iter().map(view).collect(), next_cursor }
    }
}

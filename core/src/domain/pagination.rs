//! Keyset pagination over time-ordered ids: no duplicates or gaps while rows are added.
use sea_orm::{
    ConnectionTrait, EntityTrait, QuerySelect,
    sea_query::{Expr, ExprTrait},
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::{
    entity::dispatch_cursor,
    error::{Error, Result},
};

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
    /// The event log position read before the rows: every change up to this `event_id` is in
    /// the answer. Connect Socket.IO with `last_event_id` set to it to follow on with no gap
    /// (changes between it and the answer may come twice; merge them by `version`).
    pub position: i64,
}

impl<T> Page<T> {
    /// Builds a page from `limit + 1` fetched rows: the extra row only proves there is more.
    /// Its position is set by [`Page::at_position`].
    pub fn from_rows<R>(mut rows: Vec<R>, limit: u64, id: impl Fn(&R) -> String, view: impl Fn(R) -> T) -> Self {
        let more = rows.len() as u64 > limit;
        rows.truncate(limit as usize);
        let next_cursor = if more { rows.last().map(&id) } else { None };
        Page { items: rows.into_iter().map(view).collect(), next_cursor, position: 0 }
    }

    /// Reads the log position, then runs `list` (a future does nothing until awaited, so the
    /// rows are read after the position), and stamps the page with it.
    pub async fn at_position(db: &impl ConnectionTrait, list: impl Future<Output = Result<Self>>) -> Result<Self> {
        let position = log_position(db).await?;
        let mut page = list.await?;
        page.position = position;
        Ok(page)
    }
}

/// How far every dispatcher cursor has got: each event up to it is committed, and so is all it
/// produced (its notifications are written with the cursor's advance). A snapshot read after it
/// therefore holds everything up to it, and a catch-up from it (which replays events and
/// notifications alike) misses nothing after it.
pub async fn log_position(db: &impl ConnectionTrait) -> Result<i64> {
    let lowest: Option<Option<i64>> = dispatch_cursor::Entity::find()
        .select_only()
        .expr(Expr::col(dispatch_cursor::Column::LastEventId).min())
        .into_tuple()
        .one(db)
        .await?;
    Ok(lowest.flatten().unwrap_or(0))
}

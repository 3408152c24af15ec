//! Who opened a ticket, by name: staff answer people, not ids.
use std::collections::HashMap;

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use super::Ticket;
use crate::{entity::user, error::Result};

/// Fills in `requester_name` from the requesters' accounts, in one query for all of `tickets`.
/// A ticket whose requester has no account keeps the name its sender gave, if any.
pub async fn name_requesters<'a>(
    db: &impl ConnectionTrait,
    tickets: impl IntoIterator<Item = &'a mut Ticket>,
) -> Result<()> {
    let mut tickets: Vec<&mut Ticket> = tickets.into_iter().collect();
    let mut ids: Vec<String> = tickets.iter().filter_map(|t| t.requester_id.clone()).collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(());
    }
    let mut names = HashMap::new();
    for chunk in ids.chunks(500) {
        for u in user::Entity::find().filter(user::Column::Id.is_in(chunk.iter().cloned())).all(db).await? {
            names.insert(u.id, u.name);
        }
    }
    for t in tickets.iter_mut() {
        if let Some(name) = t.requester_id.as_ref().and_then(|id| names.get(id)) {
            t.requester_name = Some(name.clone());
        }
    }
    Ok(())
}

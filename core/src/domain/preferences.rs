//! What each user chose to be told of. The rules ([`crate::hooks::rules`]) read these when
//! they plan notifications; no stored row means the defaults.
use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set, sea_query::OnConflict};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    auth::AuthUser,
    domain::Store,
    entity::notification_preference,
    error::{Error, Result},
};

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Preferences {
    /// Be told of every new ticket nobody is assigned to (staff; admins hear of every new
    /// ticket anyway). Off unless chosen.
    pub new_unassigned_tickets: bool,
    /// When they were last changed; `null` while they are the defaults.
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreferencesPatch {
    pub new_unassigned_tickets: Option<bool>,
}

pub async fn get(db: &impl ConnectionTrait, user_id: &str) -> Result<Preferences> {
    let row = notification_preference::Entity::find_by_id(user_id.to_string()).one(db).await?;
    Ok(match row {
        Some(r) => Preferences { new_unassigned_tickets: r.new_unassigned_tickets, updated_at: Some(r.updated_at) },
        None => Preferences { new_unassigned_tickets: false, updated_at: None },
    })
}

/// Changes the caller's own preferences. Only staff can be told of unassigned tickets.
pub async fn update(store: &Store, me: &AuthUser, patch: PreferencesPatch) -> Result<Preferences> {
    let current = get(&store.db, me.id()).await?;
    let new_unassigned_tickets = patch.new_unassigned_tickets.unwrap_or(current.new_unassigned_tickets);
    if new_unassigned_tickets && !me.is_staff() {
        return Err(Error::forbidden("only agents and admins can be told of unassigned tickets"));
    }
    let now = super::now();
    let row = notification_preference::ActiveModel {
        user_id: Set(me.id().to_string()),
        new_unassigned_tickets: Set(new_unassigned_tickets),
        updated_at: Set(now),
    };
    notification_preference::Entity::insert(row)
        .on_conflict(
            OnConflict::column(notification_preference::Column::UserId)
                .update_columns([
                    notification_preference::Column::NewUnassignedTickets,
                    notification_preference::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(&store.db)
        .await?;
    Ok(Preferences { new_unassigned_tickets, updated_at: Some(now) })
}

/// Who asked to be told of new unassigned tickets (whether they still may is the rules' and the
/// policy's to judge).
pub async fn watching_unassigned(db: &impl ConnectionTrait) -> Result<Vec<String>> {
    Ok(notification_preference::Entity::find()
        .filter(notification_preference::Column::NewUnassignedTickets.eq(true))
        .all(db)
        .await?
        .into_iter()
        .map(|r| r.user_id)
        .collect())
}

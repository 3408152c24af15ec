//! Optimistic locking: every editable row carries a `version`, and an update applies only to the
//! version it was computed from, so two people editing at once cannot silently overwrite each
//! other: the second gets 409 and reloads.
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use crate::{
    entity::{attachment, canned_reply, comment, kb_article, ticket, user},
    error::{Error, Result},
};

/// An entity whose rows carry `id`, `version` and `updated_at`.
pub trait Versioned: EntityTrait {
    /// How a conflict names the row to a person ("the ticket was changed by someone else").
    const NAME: &'static str;
    const ID: Self::Column;
    const VERSION: Self::Column;
    const UPDATED_AT: Self::Column;
}

/// Writes `changes` over the row `id` if it is still at `version`, moving it to the next version;
/// returns the row as written. 409 if someone else wrote it first.
pub async fn update<E: Versioned>(
    db: &impl ConnectionTrait,
    id: &str,
    version: i64,
    mut changes: E::ActiveModel,
) -> Result<E::Model>
where
    E::Model: sea_orm::IntoActiveModel<E::ActiveModel>,
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    changes.set(E::UPDATED_AT, super::now().into());
    changes.set(E::VERSION, (version + 1).into());
    E::update_many()
        .set(changes)
        .filter(E::ID.eq(id))
        .filter(E::VERSION.eq(version))
        .exec_with_returning(db)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| Error::conflict(format!("the {} was changed by someone else; reload and retry", E::NAME)))
}

macro_rules! versioned {
    ($($module:ident => $name:literal),* $(,)?) => {$(
        impl Versioned for $module::Entity {
            const NAME: &'static str = $name;
            const ID: $module::Column = $module::Column::Id;
            const VERSION: $module::Column = $module::Column::Version;
            const UPDATED_AT: $module::Column = $module::Column::UpdatedAt;
        }
    )*};
}

versioned!(
    ticket => "ticket",
    comment => "comment",
    kb_article => "article",
    attachment => "attachment",
    user => "user",
    canned_reply => "canned reply",
);

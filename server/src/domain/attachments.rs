//! Files on tickets. Whoever may read the ticket may read its attachments.
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, Set,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Action, Change, Kind, Tx, tickets, users::check_version, validate};
use crate::{
    auth::AuthUser,
    entity::{attachment, ticket},
    error::{Error, Result},
    state::AppState,
    storage::StagedBlob,
};

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Attachment {
    pub id: String,
    pub ticket_id: String,
    pub uploader_id: String,
    /// The name it was uploaded with, cleaned; never used as a path.
    pub filename: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl From<attachment::Model> for Attachment {
    fn from(m: attachment::Model) -> Self {
        Self {
            id: m.id,
            ticket_id: m.ticket_id,
            uploader_id: m.uploader_id,
            filename: m.filename,
            content_type: m.content_type,
            size_bytes: m.size_bytes,
            sha256: m.sha256,
            created_at: m.created_at,
            updated_at: m.updated_at,
            version: m.version,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachmentPatch {
    #[schema(min_length = 1, max_length = 255, pattern = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$")]
    pub filename: String,
}

/// Keeps the last path component, drops control and path characters, caps the length.
pub fn clean_filename(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String =
        last.chars().filter(|c| !c.is_control() && !matches!(c, '"' | '<' | '>' | ':' | '|' | '?' | '*')).collect();
    let trimmed = cleaned.trim().trim_start_matches('.').trim();
    let mut name: String = trimmed.chars().take(200).collect();
    if name.is_empty() {
        name = "file".into();
    }
    name
}

/// The content type to store: what the client said if it parses, else a guess from the name.
pub fn content_type_for(declared: Option<&str>, filename: &str) -> String {
    declared
        .and_then(|d| d.parse::<mime_guess::mime::Mime>().ok())
        .map(|m| m.essence_str().to_string())
        .filter(|m| m != "application/octet-stream")
        .unwrap_or_else(|| mime_guess::from_path(filename).first_or_octet_stream().essence_str().to_string())
}

/// The attachment and its ticket, if `who` may read the ticket.
pub async fn readable(
    db: &impl ConnectionTrait,
    who: &AuthUser,
    id: &str,
) -> Result<(attachment::Model, ticket::Model)> {
    let a = attachment::Entity::find_by_id(id.to_string()).one(db).await?.ok_or(Error::NotFound("attachment"))?;
    let t = tickets::readable(db, who, &a.ticket_id).await.map_err(|_| Error::NotFound("attachment"))?;
    Ok((a, t))
}

pub async fn list(state: &AppState, who: &AuthUser, ticket_id: &str) -> Result<Vec<Attachment>> {
    tickets::readable(&state.db, who, ticket_id).await?;
    Ok(attachment::Entity::find()
        .filter(attachment::Column::TicketId.eq(ticket_id))
        .order_by_asc(attachment::Column::Id)
        .all(&state.db)
        .await?
        .into_iter()
        .map(Attachment::from)
        .collect())
}

fn change_for(action: Action, a: &Attachment, t: &ticket::Model, actor: &str) -> Change {
    Change::new(Kind::Attachment, action, &a.id, a).on_ticket(&t.id, t.requester_id.as_deref()).by(actor)
}

/// Checked before an upload is read, so nobody can fill the disk on a ticket they cannot see.
pub async fn check_can_upload(state: &AppState, who: &AuthUser, ticket_id: &str) -> Result<()> {
    tickets::readable(&state.db, who, ticket_id).await.map(|_| ())
}

pub async fn create(
    state: &AppState,
    who: &AuthUser,
    ticket_id: &str,
    filename: &str,
    declared_type: Option<&str>,
    blob: StagedBlob,
) -> Result<Attachment> {
    let filename = clean_filename(filename);
    let content_type = content_type_for(declared_type, &filename);
    let mut tx = Tx::begin(&state.db, &state.hooks).await?;
    let t = match tickets::readable(&tx.txn, who, ticket_id).await {
        Ok(t) => t,
        Err(e) => {
            blob.discard().await;
            return Err(e);
        }
    };
    let now = super::now();
    let model = attachment::ActiveModel {
        id: Set(super::new_id()),
        ticket_id: Set(t.id.clone()),
        uploader_id: Set(who.id().to_string()),
        filename: Set(filename),
        content_type: Set(content_type),
        size_bytes: Set(blob.size as i64),
        sha256: Set(blob.sha256.clone()),
        created_at: Set(now),
        updated_at: Set(now),
        version: Set(1),
    }
    .insert(&tx.txn)
    .await?;
    let view = Attachment::from(model);
    tx.record(change_for(Action::Created, &view, &t, who.id())).await?;
    // Bytes first, then the row: a crash in between leaves an unreferenced file, never a row
    // without content.
    state.storage.commit(blob).await?;
    tx.commit().await?;
    Ok(view)
}

fn may_modify(who: &AuthUser, a: &attachment::Model) -> Result<()> {
    if a.uploader_id == who.id() || who.is_staff() {
        Ok(())
    } else {
        Err(Error::forbidden("only the uploader or staff may change this attachment"))
    }
}

async fn save(
    mut tx: Tx,
    who: &AuthUser,
    t: &ticket::Model,
    current: attachment::Model,
    am: attachment::ActiveModel,
) -> Result<Attachment> {
    let model =
        crate::domain::versioned::update::<attachment::Entity>(&tx.txn, &current.id, current.version, am).await?;
    let view = Attachment::from(model);
    tx.record(change_for(Action::Updated, &view, t, who.id()).previous(Attachment::from(current))).await?;
    tx.commit().await?;
    Ok(view)
}

pub async fn rename(
    state: &AppState,
    who: &AuthUser,
    id: &str,
    patch: AttachmentPatch,
    if_match: Option<i64>,
) -> Result<Attachment> {
    let tx = Tx::begin(&state.db, &state.hooks).await?;
    let (current, t) = readable(&tx.txn, who, id).await?;
    may_modify(who, &current)?;
    check_version(current.version, if_match)?;
    let name = clean_filename(&validate::required_text("filename", &patch.filename, 255)?);
    let mut am: attachment::ActiveModel = current.clone().into();
    am.filename = Set(name);
    save(tx, who, &t, current, am).await
}

pub async fn replace_content(
    state: &AppState,
    who: &AuthUser,
    id: &str,
    declared_type: Option<&str>,
    blob: StagedBlob,
) -> Result<Attachment> {
    let tx = Tx::begin(&state.db, &state.hooks).await?;
    let (current, t) = match readable(&tx.txn, who, id).await.and_then(|r| may_modify(who, &r.0).map(|_| r)) {
        Ok(r) => r,
        Err(e) => {
            blob.discard().await;
            return Err(e);
        }
    };
    let mut am: attachment::ActiveModel = current.clone().into();
    am.size_bytes = Set(blob.size as i64);
    am.sha256 = Set(blob.sha256.clone());
    am.content_type = Set(content_type_for(declared_type, &current.filename));
    state.storage.commit(blob).await?;
    save(tx, who, &t, current, am).await
}

/// Checked before a replacement is read.
pub async fn check_can_modify(state: &AppState, who: &AuthUser, id: &str) -> Result<()> {
    let (a, _) = readable(&state.db, who, id).await?;
    may_modify(who, &a)
}

pub async fn delete(state: &AppState, who: &AuthUser, id: &str) -> Result<()> {
    let mut tx = Tx::begin(&state.db, &state.hooks).await?;
    let (current, t) = readable(&tx.txn, who, id).await?;
    may_modify(who, &current)?;
    attachment::Entity::delete_by_id(id.to_string()).exec(&tx.txn).await?;
    let still_used =
        attachment::Entity::find().filter(attachment::Column::Sha256.eq(current.sha256.clone())).count(&tx.txn).await?
            > 0;
    let view = Attachment::from(current);
    tx.record(change_for(Action::Deleted, &view, &t, who.id())).await?;
    tx.commit().await?;
    if !still_used {
        // Best effort: an orphaned blob is harmless and content-addressed.
        if let Err(e) = state.storage.remove(&view.sha256).await {
            tracing::warn!(error = %e, "could not remove attachment content");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_filenames_are_cleaned() {
        assert_eq!(clean_filename("../../etc/passwd"), "passwd");
        assert_eq!(clean_filename("..\\..\\boot.ini"), "boot.ini");
        assert_eq!(clean_filename("a\u{0}b\r\n.txt"), "ab.txt");
        assert_eq!(clean_filename(".."), "file");
        assert_eq!(clean_filename(".hidden"), "hidden");
        assert_eq!(clean_filename("\"quote\".txt"), "quote.txt");
    }

    #[test]
    fn content_type_falls_back_to_the_name() {
        assert_eq!(content_type_for(None, "a.png"), "image/png");
        assert_eq!(content_type_for(Some("text/plain; charset=utf-8"), "a.bin"), "text/plain");
        assert_eq!(content_type_for(Some("nonsense"), "x"), "application/octet-stream");
    }
}

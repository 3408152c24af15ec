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
    domain::Store,
    entity::{attachment, ticket},
    error::{Error, Result},
    storage::{self, StagedBlob},
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

/// Keeps the last path component, drops control, bidirectional-control and path characters,
/// caps the length. Bidirectional controls go so that a name shows as it is: with U+202E,
/// `invoice\u{202E}fdp.exe` would display as `invoiceexe.pdf`; it is stored as `invoicefdp.exe`.
pub fn clean_filename(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = last
        .chars()
        .filter(|&c| {
            !c.is_control() && !validate::is_bidi_control(c) && !matches!(c, '"' | '<' | '>' | ':' | '|' | '?' | '*')
        })
        .collect();
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

pub async fn list(store: &Store, who: &AuthUser, ticket_id: &str) -> Result<Vec<Attachment>> {
    tickets::readable(&store.db, who, ticket_id).await?;
    Ok(attachment::Entity::find()
        .filter(attachment::Column::TicketId.eq(ticket_id))
        .order_by_asc(attachment::Column::Id)
        .all(&store.db)
        .await?
        .into_iter()
        .map(Attachment::from)
        .collect())
}

fn change_for(action: Action, a: &Attachment, t: &ticket::Model, actor: &str) -> Change {
    Change::new(Kind::Attachment, action, &a.id, a).on_ticket(&t.id, t.requester_id.as_deref()).by(actor)
}

/// Checked before an upload is read, so nobody can fill the disk on a ticket they cannot see.
pub async fn check_can_upload(store: &Store, who: &AuthUser, ticket_id: &str) -> Result<()> {
    tickets::readable(&store.db, who, ticket_id).await.map(|_| ())
}

pub async fn create(
    store: &Store,
    who: &AuthUser,
    ticket_id: &str,
    filename: &str,
    declared_type: Option<&str>,
    blob: StagedBlob,
) -> Result<Attachment> {
    let filename = clean_filename(filename);
    let content_type = content_type_for(declared_type, &filename);
    let (sha256, staged) = (blob.sha256.clone(), blob.path.clone());
    let hold = store.storage.holds().hold(&sha256).await;
    let created = insert(store, who, ticket_id, filename, content_type, blob).await;
    drop(hold);
    if created.is_err() {
        // Whether it failed before or after the bytes were stored: neither the staging file
        // nor content only this row would have used may stay.
        let _ = tokio::fs::remove_file(&staged).await;
        release_content(store, &sha256).await;
    }
    created
}

async fn insert(
    store: &Store,
    who: &AuthUser,
    ticket_id: &str,
    filename: String,
    content_type: String,
    blob: StagedBlob,
) -> Result<Attachment> {
    let mut tx = Tx::begin(&store.db, &store.hooks).await?;
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
    store.storage.commit(blob).await?;
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
    store: &Store,
    who: &AuthUser,
    id: &str,
    patch: AttachmentPatch,
    if_match: Option<i64>,
) -> Result<Attachment> {
    let tx = Tx::begin(&store.db, &store.hooks).await?;
    let (current, t) = readable(&tx.txn, who, id).await?;
    may_modify(who, &current)?;
    check_version(current.version, if_match)?;
    let name = clean_filename(&validate::required_text("filename", &patch.filename, 255)?);
    let mut am: attachment::ActiveModel = current.clone().into();
    am.filename = Set(name);
    save(tx, who, &t, current, am).await
}

pub async fn replace_content(
    store: &Store,
    who: &AuthUser,
    id: &str,
    declared_type: Option<&str>,
    blob: StagedBlob,
) -> Result<Attachment> {
    let (new_sha256, staged) = (blob.sha256.clone(), blob.path.clone());
    let hold = store.storage.holds().hold(&new_sha256).await;
    let replaced = swap_content(store, who, id, declared_type, blob).await;
    drop(hold);
    // Whichever content lost its row: the old one on success, the new one on failure.
    match &replaced {
        Ok((_, old_sha256)) => release_content(store, old_sha256).await,
        Err(_) => {
            let _ = tokio::fs::remove_file(&staged).await;
            release_content(store, &new_sha256).await;
        }
    }
    replaced.map(|(view, _)| view)
}

/// The update of [`replace_content`]; also returns the content the row used before.
async fn swap_content(
    store: &Store,
    who: &AuthUser,
    id: &str,
    declared_type: Option<&str>,
    blob: StagedBlob,
) -> Result<(Attachment, String)> {
    let tx = Tx::begin(&store.db, &store.hooks).await?;
    let (current, t) = readable(&tx.txn, who, id).await?;
    may_modify(who, &current)?;
    let old_sha256 = current.sha256.clone();
    let mut am: attachment::ActiveModel = current.clone().into();
    am.size_bytes = Set(blob.size as i64);
    am.sha256 = Set(blob.sha256.clone());
    am.content_type = Set(content_type_for(declared_type, &current.filename));
    store.storage.commit(blob).await?;
    Ok((save(tx, who, &t, current, am).await?, old_sha256))
}

/// Checked before a replacement is read.
pub async fn check_can_modify(store: &Store, who: &AuthUser, id: &str) -> Result<()> {
    let (a, _) = readable(&store.db, who, id).await?;
    may_modify(who, &a)
}

pub async fn delete(store: &Store, who: &AuthUser, id: &str) -> Result<()> {
    let mut tx = Tx::begin(&store.db, &store.hooks).await?;
    let (current, t) = readable(&tx.txn, who, id).await?;
    may_modify(who, &current)?;
    attachment::Entity::delete_by_id(id.to_string()).exec(&tx.txn).await?;
    let view = Attachment::from(current);
    tx.record(change_for(Action::Deleted, &view, &t, who.id())).await?;
    tx.commit().await?;
    release_content(store, &view.sha256).await;
    Ok(())
}

/// Deletes the attachment rows of a ticket inside its deletion's transaction; returns the
/// content they used, for [`release_contents`] once that transaction is over.
pub async fn delete_on_ticket(txn: &impl ConnectionTrait, ticket_id: &str) -> Result<Vec<String>> {
    let mut hashes: Vec<String> = attachment::Entity::find()
        .filter(attachment::Column::TicketId.eq(ticket_id))
        .all(txn)
        .await?
        .into_iter()
        .map(|a| a.sha256)
        .collect();
    hashes.sort();
    hashes.dedup();
    attachment::Entity::delete_many().filter(attachment::Column::TicketId.eq(ticket_id)).exec(txn).await?;
    Ok(hashes)
}

/// [`release_content`] for each hash.
pub async fn release_contents(store: &Store, hashes: &[String]) {
    for sha256 in hashes {
        release_content(store, sha256).await;
    }
}

/// Removes the bytes under `sha256` if no committed attachment row refers to them (the same
/// content may belong to several attachments). Runs after the transaction that dropped a
/// reference, committed or not. Best effort: bytes left behind are harmless and found again
/// by the next release of the same content.
pub async fn release_content(store: &Store, sha256: &str) {
    let referenced = async {
        let n = attachment::Entity::find().filter(attachment::Column::Sha256.eq(sha256)).count(&store.db).await?;
        Ok(n > 0)
    };
    if let Err(e) = storage::remove_unreferenced(store.storage.as_ref(), sha256, referenced).await {
        tracing::warn!(error = %e, sha256, "could not remove unused attachment content");
    }
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
        assert_eq!(clean_filename("invoice\u{202E}fdp.exe"), "invoicefdp.exe");
        assert_eq!(clean_filename("\u{2067}\u{200F}"), "file");
    }

    #[test]
    fn content_type_falls_back_to_the_name() {
        assert_eq!(content_type_for(None, "a.png"), "image/png");
        assert_eq!(content_type_for(Some("text/plain; charset=utf-8"), "a.bin"), "text/plain");
        assert_eq!(content_type_for(Some("nonsense"), "x"), "application/octet-stream");
    }
}

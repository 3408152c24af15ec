//! Opening tickets: from the API (group-committed) and from ingestion (inside its own
//! transaction, after its duplicate check).
use sea_orm::{ActiveModelTrait, ConnectionTrait, IntoActiveModel};
use serde_json::Value;

use super::{
    Classification, NewTicket, Priority, Status, Ticket, active_user, check_assignee, name_requesters, text_fields,
};
use crate::{
    auth::AuthUser,
    db::TicketNumbers,
    domain::Store,
    domain::{Action, Change, Kind, Tx, insert_statements, validate},
    entity::ticket,
    error::{Error, Result},
};

pub async fn create(store: &Store, who: &AuthUser, input: NewTicket) -> Result<Ticket> {
    if !who.is_staff()
        && (input.requester_id.as_deref().is_some_and(|r| r != who.id())
            || input.assignee_id.is_some()
            || input.status.is_some_and(|s| s != Status::Open)
            || input.requester_email.as_deref().is_some_and(|e| !e.trim().eq_ignore_ascii_case(&who.user.email))
            || input.source.is_some()
            || input.external_id.is_some()
            || input.category.is_some()
            || input.metadata.is_some()
            || input.classification.is_some())
    {
        return Err(Error::forbidden(
            "customers open tickets in their own name and cannot set requester, assignee, status, source, \
             category, external_id, metadata or classification",
        ));
    }
    let source = input.source.clone().unwrap_or_else(|| if who.is_staff() { "api" } else { "web" }.into());
    // The requester's address is the account's own whenever the requester is an account, so
    // nobody can pass a ticket off as someone else's.
    let (requester_id, requester_email, requester_name) = match &input.requester_id {
        Some(r) if who.is_staff() => {
            let requester = active_user(&store.db, "requester_id", r).await?;
            (Some(requester.id), Some(requester.email), Some(requester.name))
        }
        _ if input.requester_email.is_some() && who.is_staff() => (None, input.requester_email.clone(), None),
        _ => (Some(who.id().to_string()), Some(who.user.email.clone()), Some(who.user.name.clone())),
    };
    let assignee_id = match &input.assignee_id {
        Some(a) => Some(check_assignee(&store.db, a).await?),
        None => None,
    };
    let draft = TicketDraft {
        subject: input.subject,
        description: input.description,
        status: input.status.unwrap_or(Status::Open),
        priority: input.priority.unwrap_or(Priority::Medium),
        category: input.category.unwrap_or_else(|| "general".into()),
        tags: input.tags,
        source,
        external_id: input.external_id,
        requester_id,
        requester_email,
        assignee_id,
        metadata: input.metadata.unwrap_or_else(|| Value::Object(Default::default())),
        classification: input.classification,
    };
    let mut row = new_row(draft)?;
    // Taken once the draft is known to be valid, so a refused one spends no number.
    row.number = store.hooks.ticket_numbers().next(&store.db).await?;
    let (mut view, mut change) = created(&row, Some(who.id()));
    if requester_name.is_some() {
        view.requester_name = requester_name;
        change.data = serde_json::to_value(&view).unwrap_or(change.data);
    }
    store.ticket_inserts.insert(row.into_active_model().reset_all(), change).await.map_err(taken_external_id)?;
    Ok(view)
}

/// A validated-later ticket, as both the API and ingestion build it.
#[derive(Debug, Clone)]
pub struct TicketDraft {
    pub subject: String,
    pub description: String,
    pub status: Status,
    pub priority: Priority,
    pub category: String,
    pub tags: Vec<String>,
    pub source: String,
    pub external_id: Option<String>,
    pub requester_id: Option<String>,
    pub requester_email: Option<String>,
    pub assignee_id: Option<String>,
    pub metadata: Value,
    pub classification: Option<Classification>,
}

/// Validates and inserts a ticket with its event (one hand-off on SQLite, as in the group
/// commit), then commits `tx`.
pub async fn insert(mut tx: Tx, numbers: &TicketNumbers, actor_id: Option<&str>, d: TicketDraft) -> Result<Ticket> {
    let mut row = new_row(d)?;
    row.number = numbers.next(&tx.txn).await?;
    let (mut view, mut change) = created(&row, actor_id);
    if view.requester_id.is_some() {
        name_requesters(&tx.txn, std::slice::from_mut(&mut view)).await?;
        change.data = serde_json::to_value(&view).unwrap_or(change.data);
    }
    let insert = insert_statements(tx.get_database_backend(), vec![row.into_active_model().reset_all()]);
    tx.write_and_record(insert, vec![change]).await.map_err(taken_external_id)?;
    tx.commit().await?;
    Ok(view)
}

/// The row a valid draft becomes; its `number` is for the caller to take.
fn new_row(d: TicketDraft) -> Result<ticket::Model> {
    let (subject, description, category) = text_fields(&d.subject, &d.description, &d.category)?;
    let tags = validate::tags("tags", &d.tags)?;
    let metadata = validate::metadata("metadata", &d.metadata)?;
    let source = validate::required_text("source", &d.source, 64)?;
    let external_id = d.external_id.as_deref().map(|e| validate::required_text("external_id", e, 255)).transpose()?;
    let requester_email = d.requester_email.as_deref().map(|e| validate::email("requester_email", e)).transpose()?;
    let now = crate::domain::now();
    Ok(ticket::Model {
        id: crate::domain::new_id(),
        number: 0,
        subject,
        description,
        status: d.status.as_str().into(),
        priority: d.priority.as_str().into(),
        category,
        tags,
        source,
        external_id,
        requester_id: d.requester_id,
        requester_email,
        assignee_id: d.assignee_id,
        metadata,
        classification: d.classification.map(|c| c.as_str().to_string()),
        resolved_at: d.status.is_done().then_some(now),
        created_at: now,
        updated_at: now,
        version: 1,
    })
}

/// The ticket as the API shows it, and the change that records its creation.
fn created(row: &ticket::Model, actor_id: Option<&str>) -> (Ticket, Change) {
    let view = Ticket::from(row.clone());
    let mut change =
        Change::new(Kind::Ticket, Action::Created, &view.id, &view).on_ticket(&view.id, view.requester_id.as_deref());
    change.actor_id = actor_id.map(str::to_string);
    (view, change)
}

fn taken_external_id(e: Error) -> Error {
    if e.is_unique_violation() {
        Error::conflict("a ticket with this source and external_id already exists")
    } else {
        e
    }
}

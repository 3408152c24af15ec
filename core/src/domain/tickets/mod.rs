//! Tickets: who may see, open and change them.
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select, Set,
    sea_query::{Expr, ExprTrait, Func, SimpleExpr},
};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

mod create;
pub mod numbers;
mod people;

pub use create::{TicketDraft, create, insert};
pub use people::name_requesters;

use super::{
    Action, Change, Kind, Page, PageQuery, Tx,
    search::{self, SearchQuery, TicketHit},
    users::check_version,
    validate,
};
use crate::{
    auth::{AuthUser, Role},
    domain::Store,
    entity::{comment, ticket, user},
    error::{Error, Result},
    policy::{self, Subject, Viewer},
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Open,
    InProgress,
    Pending,
    Resolved,
    Closed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::InProgress => "in_progress",
            Status::Pending => "pending",
            Status::Resolved => "resolved",
            Status::Closed => "closed",
        }
    }

    pub fn is_done(self) -> bool {
        matches!(self, Status::Resolved | Status::Closed)
    }

    fn parse(s: &str) -> Status {
        serde_json::from_value(Value::from(s)).unwrap_or(Status::Open)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Low,
    Medium,
    High,
    Urgent,
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Medium => "medium",
            Priority::High => "high",
            Priority::Urgent => "urgent",
        }
    }
}

/// How a person (or a classifier) judged an alert-born ticket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Classification {
    TruePositive,
    FalsePositive,
    Uncertain,
}

impl Classification {
    pub fn as_str(self) -> &'static str {
        match self {
            Classification::TruePositive => "true_positive",
            Classification::FalsePositive => "false_positive",
            Classification::Uncertain => "uncertain",
        }
    }
}

/// A ticket, exactly as REST, Socket.IO and webhooks show it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Ticket {
    pub id: String,
    /// The short number people use (`#1042`), unique per installation.
    #[serde(default)]
    pub number: i64,
    pub subject: String,
    pub description: String,
    pub status: String,
    pub priority: String,
    pub category: String,
    pub tags: Vec<String>,
    pub source: String,
    pub external_id: Option<String>,
    pub requester_id: Option<String>,
    pub requester_email: Option<String>,
    /// The requester's name: their account's, or the name an integration sent
    /// (`metadata.requester_name`) when the requester has no account.
    #[serde(default)]
    pub requester_name: Option<String>,
    pub assignee_id: Option<String>,
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub classification: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub version: i64,
}

impl From<ticket::Model> for Ticket {
    fn from(m: ticket::Model) -> Self {
        let requester_name = m.metadata.get("requester_name").and_then(Value::as_str).map(str::to_string);
        Self {
            id: m.id,
            number: m.number,
            subject: m.subject,
            description: m.description,
            status: m.status,
            priority: m.priority,
            category: m.category,
            tags: serde_json::from_value(m.tags).unwrap_or_default(),
            source: m.source,
            external_id: m.external_id,
            requester_id: m.requester_id,
            requester_email: m.requester_email,
            requester_name,
            assignee_id: m.assignee_id,
            metadata: m.metadata,
            classification: m.classification,
            created_at: m.created_at,
            updated_at: m.updated_at,
            resolved_at: m.resolved_at,
            version: m.version,
        }
    }
}

impl Ticket {
    /// The ticket as `who` may read it ([`policy::shape`]).
    pub fn seen_by(mut self, who: &AuthUser) -> Self {
        if !who.is_staff() {
            policy::strip_sender_data(&mut self.metadata);
        }
        self
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTicket {
    /// Also accepted as `title`.
    #[serde(alias = "title")]
    #[schema(min_length = 1, max_length = 500, pattern = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$")]
    pub subject: String,
    #[serde(default)]
    #[schema(max_length = 100_000, pattern = "^[^\\u0000]*$")]
    pub description: String,
    pub status: Option<Status>,
    pub priority: Option<Priority>,
    #[schema(min_length = 1, max_length = 100, pattern = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$")]
    pub category: Option<String>,
    #[serde(default)]
    #[schema(value_type = Vec<crate::domain::validate::Tag>, max_items = 50)]
    pub tags: Vec<String>,
    /// `web`, `api` or an integration's name. Staff only.
    #[schema(min_length = 1, max_length = 64, pattern = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$")]
    pub source: Option<String>,
    #[schema(min_length = 1, max_length = 255, pattern = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$")]
    pub external_id: Option<String>,
    /// Staff only; customers always open tickets for themselves.
    #[schema(format = Uuid)]
    pub requester_id: Option<String>,
    #[schema(format = Email, max_length = 254)]
    pub requester_email: Option<String>,
    /// An active agent or admin.
    #[schema(format = Uuid)]
    pub assignee_id: Option<String>,
    #[schema(value_type = Object)]
    pub metadata: Option<Value>,
    pub classification: Option<Classification>,
}

/// A partial update. `null` clears a nullable field; an absent field is left alone.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketPatch {
    #[serde(alias = "title")]
    #[schema(min_length = 1, max_length = 500, pattern = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$")]
    pub subject: Option<String>,
    #[schema(max_length = 100_000, pattern = "^[^\\u0000]*$")]
    pub description: Option<String>,
    pub status: Option<Status>,
    pub priority: Option<Priority>,
    #[schema(min_length = 1, max_length = 100, pattern = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$")]
    pub category: Option<String>,
    #[schema(value_type = Option<Vec<crate::domain::validate::Tag>>, max_items = 50)]
    pub tags: Option<Vec<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, format = Uuid)]
    pub assignee_id: Option<Option<String>>,
    #[schema(format = Uuid)]
    pub requester_id: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Classification>)]
    pub classification: Option<Option<Classification>>,
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
pub fn double_option<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct TicketQuery {
    /// The ticket with this number (`q=#1042` asks the same).
    #[param(minimum = 0)]
    pub number: Option<i64>,
    pub status: Option<Status>,
    pub priority: Option<Priority>,
    pub assignee_id: Option<String>,
    pub requester_id: Option<String>,
    pub source: Option<String>,
    /// Full-text search over subject, description and comments (internal notes: staff only):
    /// words ANDed, `"a phrase"`, `-excluded`, `prefix*`. Matches come best first, each with a
    /// `score` and a `highlight`; the other filters still apply.
    #[param(max_length = 1000)]
    pub q: Option<String>,
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u64>,
    /// The `next_cursor` of a previous page.
    #[param(pattern = "^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})?$")]
    pub cursor: Option<String>,
}

/// `%text%` for LIKE, with LIKE's own wildcards escaped.
pub fn like_pattern(text: &str) -> String {
    let escaped = text.trim().to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{escaped}%")
}

/// `LOWER(col) LIKE pattern ESCAPE '\'`, case-insensitive on both databases.
pub fn lower_like(col: impl sea_orm::ColumnTrait, pattern: &str) -> SimpleExpr {
    Expr::expr(Func::lower(Expr::col(col))).like(sea_orm::sea_query::LikeExpr::new(pattern).escape('\\'))
}

/// The ticket, if `who` may read it. What they may not see is "not found", so nothing leaks.
pub async fn readable(db: &impl ConnectionTrait, who: &AuthUser, id: &str) -> Result<ticket::Model> {
    let found = ticket::Entity::find_by_id(id.to_string()).one(db).await?;
    match found {
        Some(t) if can_read(who, &t) => Ok(t),
        _ => Err(Error::NotFound("ticket")),
    }
}

pub fn can_read(who: &AuthUser, t: &ticket::Model) -> bool {
    policy::can_see(&who.viewer(), &Subject::Ticket { requester_id: t.requester_id.clone() })
}

/// The tickets `viewer` may see that the filters of `q` select (neither its text nor its page).
pub fn filtered(viewer: &Viewer, q: &TicketQuery) -> Select<ticket::Entity> {
    let mut query = ticket::Entity::find();
    if !viewer.role.is_staff() {
        query = query.filter(ticket::Column::RequesterId.eq(viewer.id.unwrap_or_default()));
    }
    if let Some(n) = q.number {
        query = query.filter(ticket::Column::Number.eq(n));
    }
    if let Some(s) = q.status {
        query = query.filter(ticket::Column::Status.eq(s.as_str()));
    }
    if let Some(p) = q.priority {
        query = query.filter(ticket::Column::Priority.eq(p.as_str()));
    }
    if let Some(a) = q.assignee_id.as_deref() {
        query = match a {
            "none" | "" => query.filter(ticket::Column::AssigneeId.is_null()),
            a => query.filter(ticket::Column::AssigneeId.eq(a)),
        };
    }
    if let Some(r) = q.requester_id.as_deref() {
        query = query.filter(ticket::Column::RequesterId.eq(r));
    }
    if let Some(s) = q.source.as_deref() {
        query = query.filter(ticket::Column::Source.eq(s));
    }
    query
}

/// A page of the list without a search: newest first, after the cursor. Each filter has an
/// index on (filter, id) (tests/tests/indexes.rs holds the plans to that).
pub fn list_query(viewer: &Viewer, q: &TicketQuery) -> Result<Select<ticket::Entity>> {
    let page = PageQuery { limit: q.limit, cursor: q.cursor.clone() };
    let mut query = filtered(viewer, q);
    if matches!(q.assignee_id.as_deref(), Some("none" | "")) {
        // PostgreSQL reads `IS NULL` as no equality, so only this order, the same for rows that
        // are all NULL there, lets it walk (assignee_id, id) instead of sorting.
        query = query.order_by_desc(ticket::Column::AssigneeId);
    }
    query = query.order_by_desc(ticket::Column::Id);
    if let Some(cursor) = page.cursor()? {
        query = query.filter(ticket::Column::Id.lt(cursor));
    }
    Ok(query.limit(page.limit()? + 1))
}

/// Tickets `who` may see, newest first; with a search (`q`), the matches best first
/// ([`search::tickets`]).
pub async fn list(store: &Store, who: &AuthUser, q: &TicketQuery) -> Result<Page<TicketHit>> {
    let page = PageQuery { limit: q.limit, cursor: q.cursor.clone() };
    let limit = page.limit()?;
    if q.number.is_some_and(|n| n < 0) {
        return Err(Error::validation("number", "a ticket number is 0 or more"));
    }
    if let Some(text) = q.q.as_deref() {
        match SearchQuery::parse(text)? {
            Some(search) => {
                let narrow = !who.is_staff() || q.requester_id.is_some();
                let filtered = filtered(&who.viewer(), q);
                return search::tickets(&store.db, &store.search, who, filtered, narrow, &search, &page).await;
            }
            // Only signs, no word: nothing can match.
            None if !text.trim().is_empty() => return Ok(Page::from_rows(Vec::new(), limit, |_| String::new(), |h| h)),
            None => {}
        }
    }
    let rows = list_query(&who.viewer(), q)?.all(&store.db).await?;
    Ok(Page::from_rows(rows, limit, |r| r.id.clone(), |r| TicketHit::from(Ticket::from(r).seen_by(who))))
}

async fn active_user(db: &impl ConnectionTrait, field: &str, id: &str) -> Result<user::Model> {
    let id = validate::id(field, id)?;
    user::Entity::find_by_id(id)
        .one(db)
        .await?
        .filter(|u| u.is_active)
        .ok_or_else(|| Error::validation(field, "no active user has this id"))
}

async fn check_assignee(db: &impl ConnectionTrait, id: &str) -> Result<String> {
    let u = active_user(db, "assignee_id", id).await?;
    if !Role::parse(&u.role).is_some_and(Role::is_staff) {
        return Err(Error::validation("assignee_id", "tickets can only be assigned to agents or admins"));
    }
    Ok(u.id)
}

fn text_fields(subject: &str, description: &str, category: &str) -> Result<(String, String, String)> {
    Ok((
        validate::required_text("subject", subject, 500)?,
        validate::optional_text("description", description, 100_000)?,
        validate::required_text("category", category, 100)?,
    ))
}

/// Opens a ticket. Customers open tickets for themselves; staff may open them for anyone.
/// Applies `patch` to a readable ticket. Customers may edit the text of their own tickets and
/// close or reopen them; everything else is for staff.
pub async fn update(
    store: &Store,
    who: &AuthUser,
    id: &str,
    patch: TicketPatch,
    if_match: Option<i64>,
) -> Result<Ticket> {
    let tx = Tx::begin(&store.db, &store.hooks).await?;
    let current = readable(&tx.txn, who, id).await?;
    check_version(current.version, if_match)?;
    if !who.is_staff() {
        let staff_fields = patch.priority.is_some()
            || patch.category.is_some()
            || patch.assignee_id.is_some()
            || patch.requester_id.is_some()
            || patch.metadata.is_some()
            || patch.classification.is_some();
        let status_ok = patch.status.is_none_or(|s| matches!(s, Status::Open | Status::Closed | Status::Resolved));
        if staff_fields || !status_ok {
            return Err(Error::forbidden(
                "customers may change subject, description and tags, and close or reopen their tickets",
            ));
        }
    }
    let mut am: ticket::ActiveModel = current.clone().into();
    if let Some(s) = &patch.subject {
        am.subject = Set(validate::required_text("subject", s, 500)?);
    }
    if let Some(d) = &patch.description {
        am.description = Set(validate::optional_text("description", d, 100_000)?);
    }
    if let Some(c) = &patch.category {
        am.category = Set(validate::required_text("category", c, 100)?);
    }
    if let Some(t) = &patch.tags {
        am.tags = Set(validate::tags("tags", t)?);
    }
    if let Some(p) = patch.priority {
        am.priority = Set(p.as_str().into());
    }
    if let Some(m) = &patch.metadata {
        am.metadata = Set(validate::metadata("metadata", m)?);
    }
    if let Some(c) = patch.classification {
        am.classification = Set(c.map(|c| c.as_str().to_string()));
    }
    if let Some(a) = &patch.assignee_id {
        am.assignee_id = Set(match a {
            Some(a) => Some(check_assignee(&tx.txn, a).await?),
            None => None,
        });
    }
    if let Some(r) = &patch.requester_id {
        am.requester_id = Set(Some(active_user(&tx.txn, "requester_id", r).await?.id));
    }
    if let Some(s) = patch.status {
        am.status = Set(s.as_str().into());
    }
    Ok(save(tx, Some(who.id()), current, am).await?.seen_by(who))
}

/// Writes an update guarded by the version read, records the event and commits.
pub async fn save(
    mut tx: Tx,
    actor_id: Option<&str>,
    current: ticket::Model,
    mut am: ticket::ActiveModel,
) -> Result<Ticket> {
    if !am.is_changed() {
        return Ok(current.into());
    }
    let was_done = Status::parse(&current.status).is_done();
    if let sea_orm::ActiveValue::Set(s) = &am.status {
        match (was_done, Status::parse(s).is_done()) {
            (false, true) => am.resolved_at = Set(Some(super::now())),
            (true, false) => am.resolved_at = Set(None),
            _ => {}
        }
    }
    let model = crate::domain::versioned::update::<ticket::Entity>(&tx.txn, &current.id, current.version, am).await?;
    let mut view = Ticket::from(model);
    name_requesters(&tx.txn, std::slice::from_mut(&mut view)).await?;
    let previous = Ticket::from(current);
    let mut change = Change::new(Kind::Ticket, Action::Updated, &view.id, &view)
        .on_ticket(&view.id, view.requester_id.as_deref())
        .previous(&previous);
    change.actor_id = actor_id.map(str::to_string);
    tx.record(change).await?;
    tx.commit().await?;
    Ok(view)
}

/// Deletes a ticket with its comments and attachments (staff only). The event keeps the snapshot.
pub async fn delete(store: &Store, who: &AuthUser, id: &str) -> Result<()> {
    let mut tx = Tx::begin(&store.db, &store.hooks).await?;
    let current = readable(&tx.txn, who, id).await?;
    if !who.is_staff() {
        return Err(Error::forbidden("only agents and admins may delete tickets"));
    }
    comment::Entity::delete_many().filter(comment::Column::TicketId.eq(id)).exec(&tx.txn).await?;
    let contents = super::attachments::delete_on_ticket(&tx.txn, id).await?;
    ticket::Entity::delete_by_id(id.to_string()).exec(&tx.txn).await?;
    // The snapshot is the ticket as its readers last saw it, the requester's name included.
    let mut view = Ticket::from(current);
    name_requesters(&tx.txn, std::slice::from_mut(&mut view)).await?;
    tx.record(
        Change::new(Kind::Ticket, Action::Deleted, &view.id, &view)
            .on_ticket(&view.id, view.requester_id.as_deref())
            .by(who.id()),
    )
    .await?;
    tx.commit().await?;
    // After the commit: a rollback keeps its rows, so it must keep their bytes.
    super::attachments::release_contents(store, &contents).await;
    Ok(())
}

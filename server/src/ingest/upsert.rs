//! Idempotent create-or-update on `(source, external_id)`, through the ordinary ticket path
//! ([`tickets::insert`] / [`tickets::save`]), so every ingested change is an event.
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QuerySelect, Set, Statement,
};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::{AlertState, Normalised};
use crate::{
    domain::{
        self, Tx,
        tickets::{self, Classification, Status, Ticket, TicketDraft},
        validate,
    },
    entity::{ingest_receipt, integration, ticket, user},
    error::{Error, Result},
    ingest::Context,
};

/// What one item did.
pub struct Outcome {
    pub ticket: Ticket,
    pub created: bool,
}

/// Where an item came from.
pub struct Origin<'a> {
    pub integration: &'a integration::Model,
    /// The route's source (`custom` and flexible routes: the integration's source).
    pub source: &'a str,
    /// The original payload, kept in `metadata.raw` up to the configured cap.
    pub raw: &'a Value,
    /// The sender's delivery id, for recognising a redelivery.
    pub delivery_id: Option<String>,
    /// The signed-in staff member importing through the web-client; `None` for integrations.
    pub actor_id: Option<&'a str>,
}

const ATTEMPTS: usize = 5;

/// Creates the ticket for `n`, or updates the one with the same source and external id.
pub async fn ingest(cx: Context<'_>, origin: &Origin<'_>, n: Normalised) -> Result<Outcome> {
    let source = n.source.clone().unwrap_or_else(|| origin.source.to_string());
    let source = validate::required_text("platform", &source, 64)?;
    if let Some(done) = redelivery(cx, &source, origin.delivery_id.as_deref()).await? {
        return Ok(done);
    }
    let (requester_id, requester_email) = requester(&cx.store.db, &n).await?;
    let requester = (requester_id.as_deref(), requester_email.as_deref());
    let mut attempt = 0;
    let outcome = loop {
        attempt += 1;
        let result = domain::change::retry_transient(|| upsert_once(cx, origin, &n, &source, requester)).await;
        match result {
            // A ticket created or changed outside ingestion (the API, which does not take the
            // key's lock) won the race: unique violation or version. Again, as an update.
            Err(Error::Conflict(_)) if attempt < ATTEMPTS => {
                tokio::time::sleep(std::time::Duration::from_millis(5 * attempt as u64)).await;
                continue;
            }
            other => break other?,
        }
    };
    remember(cx, &source, origin.delivery_id.as_deref(), &outcome.ticket.id).await;
    Ok(outcome)
}

/// One transaction: find the ticket of the external id, then create or update it.
async fn upsert_once(
    cx: Context<'_>,
    origin: &Origin<'_>,
    n: &Normalised,
    source: &str,
    (requester_id, requester_email): (Option<&str>, Option<&str>),
) -> Result<Outcome> {
    let tx = Tx::begin(&cx.store.db, &cx.store.hooks).await?;
    let existing = match &n.external_id {
        Some(ext) => {
            lock_key(&tx.txn, source, ext).await?;
            find(&tx.txn, source, ext).await?
        }
        None => None,
    };
    match existing {
        None => {
            let draft =
                draft(cx, origin, n, source, requester_id.map(str::to_string), requester_email.map(str::to_string));
            tickets::insert(tx, cx.store.hooks.ticket_numbers(), origin.actor_id, draft)
                .await
                .map(|ticket| Outcome { ticket, created: true })
        }
        Some(current) => update(cx, origin, n, tx, current, requester_id, requester_email)
            .await
            .map(|ticket| Outcome { ticket, created: false }),
    }
}

/// Advisory-lock class of `(source, external_id)` keys: the two-key form, a space apart from
/// the one-key event-order lock.
const KEY_LOCK_CLASS: i32 = 724_530;

/// Queues this transaction behind any other ingesting the same `(source, external_id)`, until
/// commit (PostgreSQL; SQLite's writers take turns already). Without it, concurrent deliveries
/// deadlock: one that looked before the ticket was committed inserts it while holding the
/// event-order lock, and the insert's unique check waits for another delivery that found the
/// ticket and has updated it, which in turn waits for the event-order lock. Taken before any row
/// lock, this makes each delivery look only once the one before has committed, so it finds the
/// ticket and updates it.
async fn lock_key(db: &impl ConnectionTrait, source: &str, external_id: &str) -> Result<()> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    // Two different keys sharing a hash only queue behind each other, which is harmless.
    let digest = Sha256::new().chain_update(source).chain_update([0]).chain_update(external_id.trim()).finalize();
    let key = i32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    let lock = Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_advisory_xact_lock($1, $2)",
        [KEY_LOCK_CLASS.into(), key.into()],
    );
    db.execute_raw(lock).await?;
    Ok(())
}

/// The existing ticket, locked for this transaction on PostgreSQL (`FOR UPDATE`) so an update
/// from the API meanwhile queues instead of failing the version check; SQLite's writer lock does
/// the same.
async fn find(db: &impl ConnectionTrait, source: &str, external_id: &str) -> Result<Option<ticket::Model>> {
    Ok(ticket::Entity::find()
        .filter(ticket::Column::Source.eq(source))
        .filter(ticket::Column::ExternalId.eq(external_id.trim()))
        .lock_exclusive()
        .one(db)
        .await?)
}

/// The ticket a delivery id already produced, if this is a redelivery.
async fn redelivery(cx: Context<'_>, source: &str, delivery_id: Option<&str>) -> Result<Option<Outcome>> {
    let Some(d) = delivery_id else { return Ok(None) };
    let Some(receipt) =
        ingest_receipt::Entity::find_by_id((source.to_string(), d.to_string())).one(&cx.store.db).await?
    else {
        return Ok(None);
    };
    let found = ticket::Entity::find_by_id(receipt.ticket_id).one(&cx.store.db).await?;
    Ok(found.map(|t| Outcome { ticket: t.into(), created: false }))
}

/// Records the delivery id; a concurrent duplicate's receipt already exists, which is fine.
async fn remember(cx: Context<'_>, source: &str, delivery_id: Option<&str>, ticket_id: &str) {
    let Some(d) = delivery_id else { return };
    let row = ingest_receipt::ActiveModel {
        source: Set(source.to_string()),
        delivery_id: Set(d.chars().take(255).collect()),
        ticket_id: Set(ticket_id.to_string()),
        created_at: Set(domain::now()),
    };
    if let Err(e) = row.insert(&cx.store.db).await {
        tracing::debug!(error = %e, "delivery receipt not stored");
    }
}

/// An active user with the email (or the given id) is the requester; otherwise the email is kept.
async fn requester(db: &impl ConnectionTrait, n: &Normalised) -> Result<(Option<String>, Option<String>)> {
    if let Some(id) = n.requester_id.as_deref().and_then(|i| uuid::Uuid::parse_str(i).ok())
        && let Some(u) = user::Entity::find_by_id(id.to_string()).one(db).await?.filter(|u| u.is_active)
    {
        return Ok((Some(u.id), None));
    }
    let Some(email) = n.requester_email.as_deref().and_then(|e| validate::email("requester_email", e).ok()) else {
        return Ok((None, None));
    };
    let found = user::Entity::find().filter(user::Column::Email.eq(email.clone())).one(db).await?;
    Ok(match found.filter(|u| u.is_active) {
        Some(u) => (Some(u.id), None),
        None => (None, Some(email)),
    })
}

fn truncate(s: &str, max: usize) -> String {
    s.trim().chars().take(max).collect()
}

/// The payload as kept in `metadata.raw`: whole when small, else a truncated text preview.
fn capped_raw(raw: &Value, cap: usize) -> Value {
    let text = raw.to_string();
    if text.len() <= cap {
        return raw.clone();
    }
    let mut end = cap;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    json!({ "truncated": true, "bytes": text.len(), "preview": &text[..end] })
}

fn base_metadata(cx: Context<'_>, origin: &Origin<'_>, n: &Normalised, now: DateTime<Utc>) -> Map<String, Value> {
    let mut m = n.metadata.clone();
    m.insert("integration".into(), json!({ "id": origin.integration.id, "name": origin.integration.name }));
    m.insert("raw".into(), capped_raw(origin.raw, cx.config.raw_payload_cap_bytes));
    m.insert("last_seen_at".into(), json!(now));
    if let Some(d) = &origin.delivery_id {
        m.insert("delivery_id".into(), json!(d));
    }
    // The raw copy must not push metadata over its 64 KiB limit: then only its size is kept.
    if Value::Object(m.clone()).to_string().len() > 60 * 1024 {
        m.insert("raw".into(), json!({ "truncated": true, "bytes": origin.raw.to_string().len() }));
    }
    m
}

fn draft(
    cx: Context<'_>,
    origin: &Origin<'_>,
    n: &Normalised,
    source: &str,
    requester_id: Option<String>,
    requester_email: Option<String>,
) -> TicketDraft {
    let now = domain::now();
    let mut metadata = base_metadata(cx, origin, n, now);
    metadata.insert("first_seen_at".into(), json!(now));
    metadata.insert("occurrences".into(), json!(1));
    let resolved = n.alert == Some(AlertState::Resolved);
    let classification = n.alert.map(|_| {
        let fired = n.started_at.unwrap_or(now);
        if resolved && is_flap(cx, fired, n.ended_at.unwrap_or(now)) {
            Classification::FalsePositive
        } else {
            Classification::Uncertain
        }
    });
    if let Some(t) = n.started_at {
        metadata.insert("alert_started_at".into(), json!(t));
    }
    TicketDraft {
        subject: truncate(&n.subject, 500),
        description: truncate(&n.description, 100_000),
        status: n.status.unwrap_or(if resolved { Status::Resolved } else { Status::Open }),
        priority: n.priority.unwrap_or(tickets::Priority::Medium),
        category: n.category.clone().unwrap_or_else(|| "general".into()),
        tags: n.tags.clone(),
        source: source.to_string(),
        external_id: n.external_id.as_deref().map(str::trim).map(str::to_string),
        requester_id,
        requester_email,
        assignee_id: None,
        metadata: Value::Object(metadata),
        classification,
    }
}

fn is_flap(cx: Context<'_>, fired: DateTime<Utc>, resolved: DateTime<Utc>) -> bool {
    let window = cx.config.flap_window_secs as i64;
    (resolved - fired).num_seconds() <= window
}

async fn update(
    cx: Context<'_>,
    origin: &Origin<'_>,
    n: &Normalised,
    tx: Tx,
    current: ticket::Model,
    requester_id: Option<&str>,
    requester_email: Option<&str>,
) -> Result<Ticket> {
    let now = domain::now();
    let mut am: ticket::ActiveModel = current.clone().into();
    let mut metadata = current.metadata.as_object().cloned().unwrap_or_default();
    let occurrences = metadata.get("occurrences").and_then(Value::as_i64).unwrap_or(1);
    metadata.extend(base_metadata(cx, origin, n, now));
    if n.alert != Some(AlertState::Resolved) {
        metadata.insert("occurrences".into(), json!(occurrences + 1));
    }
    let subject = truncate(&n.subject, 500);
    if !subject.is_empty() && subject != current.subject {
        am.subject = Set(subject);
    }
    let description = truncate(&n.description, 100_000);
    if !description.is_empty() && description != current.description {
        am.description = Set(description);
    }
    if let Some(p) = n.priority.filter(|p| p.as_str() != current.priority) {
        am.priority = Set(p.as_str().into());
    }
    if current.requester_id.is_none() {
        if let Some(id) = requester_id {
            am.requester_id = Set(Some(id.to_string()));
        } else if current.requester_email.is_none() && requester_email.is_some() {
            am.requester_email = Set(requester_email.map(str::to_string));
        }
    }
    let was_done = matches!(current.status.as_str(), "resolved" | "closed");
    let status = match n.alert {
        Some(AlertState::Firing) if was_done => {
            metadata.insert("alert_started_at".into(), json!(n.started_at.unwrap_or(now)));
            Some(Status::Open)
        }
        Some(AlertState::Firing) => None,
        Some(AlertState::Resolved) => Some(Status::Resolved),
        None => n.status,
    };
    if let Some(s) = status.filter(|s| s.as_str() != current.status) {
        am.status = Set(s.as_str().into());
    }
    if n.alert == Some(AlertState::Resolved) && matches!(current.classification.as_deref(), None | Some("uncertain")) {
        let fired = metadata
            .get("alert_started_at")
            .and_then(|v| serde_json::from_value::<DateTime<Utc>>(v.clone()).ok())
            .or(n.started_at)
            .unwrap_or(current.created_at);
        let c = if is_flap(cx, fired, n.ended_at.unwrap_or(now)) {
            Classification::FalsePositive
        } else {
            Classification::Uncertain
        };
        am.classification = Set(Some(c.as_str().into()));
    }
    am.metadata = Set(validate::metadata("metadata", &Value::Object(metadata))?);
    tickets::save(tx, origin.actor_id, current, am).await
}

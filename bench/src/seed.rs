//! Bulk seeding (`bench scale --seed bulk`): the tickets, comments, events and notifications of
//! a large helpdesk written straight into the database in large transactions, while the server
//! is stopped. Users and articles are the server's own (made through the API before); so is a
//! sample of tickets, which the seeder first rebuilds and compares row by row with what the
//! server wrote (ids and clocks aside): it refuses to write anything unless they agree.
//!
//! The rows are built with the server's own types: its entities, and the `Ticket` and `Comment`
//! views the API records as event data. Notifications follow the dispatcher's rules for what this
//! helpdesk holds (an agent opens a ticket for a customer, each writes a public comment, the
//! agent an internal note): admins hear of each new ticket, requester and assignee of each
//! comment they did not write and may read. The sample check covers every one of those cases.
//!
//! Left consistent for the server that starts next: ticket numbers (SQLite counts on from the
//! highest; the PostgreSQL sequence is moved), event ids (the identity sequence too), and the
//! dispatcher's cursor, moved past each batch's events in the transaction that writes their
//! notifications, as the dispatcher does, so none is dispatched twice. The full-text index is
//! the database's own doing: SQLite's triggers (comments are inserted before their ticket, so a
//! ticket is indexed once, with its comments), or on PostgreSQL, with triggers off for the load,
//! the refresh function they call, once per ticket.
use std::{collections::HashMap, sync::Arc, time::Instant};

use anyhow::{Context, Result, bail, ensure};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, IntoActiveModel, PaginatorTrait,
    QueryFilter, Statement, TransactionTrait, sea_query::Expr,
};
use serde_json::{Value, json};
use ticketwire_core::{
    domain::{self, comments::Comment, tickets::Ticket},
    entity::{comment, dispatch_cursor, event, notification, notification_preference, ticket, user},
};

use crate::plan::{self, Author};

/// Tickets per transaction.
const BATCH: usize = 2000;

/// The accounts the helpdesk was given, as the server stored them.
pub struct People {
    users: HashMap<String, user::Model>,
    admins: Vec<String>,
    /// Account ids, in the order the plan indexes them.
    customers: Vec<String>,
    agents: Vec<String>,
}

impl People {
    pub async fn load(db: &DatabaseConnection, customers: Vec<String>, agents: Vec<String>) -> Result<Self> {
        let users: HashMap<String, user::Model> =
            user::Entity::find().all(db).await?.into_iter().map(|u| (u.id.clone(), u)).collect();
        let admins = users.values().filter(|u| u.role == "admin" && u.is_active).map(|u| u.id.clone()).collect();
        // The dispatcher would tell them of every unassigned ticket; this helpdesk has none.
        let watchers = notification_preference::Entity::find()
            .filter(notification_preference::Column::NewUnassignedTickets.eq(true))
            .count(db)
            .await?;
        ensure!(
            watchers == 0,
            "someone watches unassigned tickets: the bulk seeder does not write those notifications"
        );
        Ok(Self { users, admins, customers, agents })
    }

    fn user(&self, id: &str) -> Result<&user::Model> {
        self.users.get(id).with_context(|| format!("no user {id}"))
    }
}

/// The ids and clock a ticket is written with: fresh ones in bulk, the API's for the sample.
struct Ids {
    ticket: String,
    number: i64,
    comments: Vec<String>,
    now: DateTime<Utc>,
}

impl Ids {
    fn fresh(number: i64) -> Self {
        Self {
            ticket: domain::new_id(),
            number,
            comments: (0..plan::COMMENTS).map(|_| domain::new_id()).collect(),
            now: domain::now(),
        }
    }
}

/// Ticket `i` of the plan and everything the API and the dispatcher write for it.
#[derive(Default)]
struct Rows {
    tickets: Vec<ticket::Model>,
    comments: Vec<comment::Model>,
    events: Vec<event::Model>,
    notifications: Vec<notification::Model>,
}

impl Rows {
    fn add(&mut self, people: &People, i: usize, ids: Ids, next_event: &mut i64) -> Result<()> {
        let p = plan::ticket_plan(i, &people.customers, &people.agents);
        let requester = people.user(&people.customers[p.requester])?;
        let opener = &people.agents[p.agent];
        let text = |k: &str| p.body[k].as_str().map(str::to_string);
        let status = text("status").context("status")?;
        let now = ids.now;
        let t = ticket::Model {
            id: ids.ticket,
            number: ids.number,
            subject: text("subject").context("subject")?,
            description: text("description").context("description")?,
            resolved_at: matches!(status.as_str(), "resolved" | "closed").then_some(now),
            status,
            priority: text("priority").context("priority")?,
            category: "general".into(),
            tags: json!([]),
            source: text("source").context("source")?,
            external_id: None,
            requester_id: Some(requester.id.clone()),
            requester_email: Some(requester.email.clone()),
            assignee_id: text("assignee_id"),
            metadata: json!({}),
            classification: None,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        let mut view = Ticket::from(t.clone());
        view.requester_name = Some(requester.name.clone());
        let mut ev = self.event(next_event, "ticket", &t.id, &t, opener, serde_json::to_value(&view)?, false, now);
        for admin in people.admins.iter().filter(|a| *a != opener) {
            let message = format!("New ticket '{}' from {}", t.subject, people.user(opener)?.name);
            self.notify(&ev, admin, "new_ticket", message, now);
        }
        for (j, comment_id) in ids.comments.into_iter().enumerate() {
            let (author, body) = plan::comment_plan(i * plan::COMMENTS + j);
            let author = match author {
                Author::Requester => &requester.id,
                Author::Agent => opener,
            };
            let c = comment::Model {
                id: comment_id,
                ticket_id: t.id.clone(),
                author_id: author.clone(),
                parent_id: None,
                content: body["content"].as_str().context("content")?.to_string(),
                internal: body["internal"].as_bool().unwrap_or(false),
                created_at: now,
                updated_at: now,
                version: 1,
            };
            let data = serde_json::to_value(Comment::from(c.clone()))?;
            ev = self.event(next_event, "comment", &c.id, &t, author, data, c.internal, now);
            let message = format!("New comment on your ticket '{}' by {}", t.subject, people.user(author)?.name);
            let mut told = Vec::new();
            for who in [&t.requester_id, &t.assignee_id].into_iter().flatten() {
                let person = people.user(who)?;
                let may_read = person.role != "customer" || !c.internal;
                if who != author && !told.contains(who) && person.is_active && may_read {
                    self.notify(&ev, who, "comment_on_ticket", message.clone(), now);
                    told.push(who.clone());
                }
            }
            self.comments.push(c);
        }
        self.tickets.push(t);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn event(
        &mut self,
        next: &mut i64,
        kind: &str,
        entity_id: &str,
        t: &ticket::Model,
        actor: &str,
        data: Value,
        staff_only: bool,
        now: DateTime<Utc>,
    ) -> event::Model {
        let ev = event::Model {
            id: *next,
            kind: kind.into(),
            action: "created".into(),
            entity_id: entity_id.into(),
            ticket_id: Some(t.id.clone()),
            requester_id: t.requester_id.clone(),
            owner_id: None,
            staff_only,
            actor_id: Some(actor.into()),
            data,
            previous: None,
            created_at: now,
        };
        *next += 1;
        self.events.push(ev.clone());
        ev
    }

    fn notify(&mut self, ev: &event::Model, user_id: &str, kind: &str, message: String, now: DateTime<Utc>) {
        self.notifications.push(notification::Model {
            id: domain::new_id(),
            user_id: user_id.into(),
            event_id: ev.id,
            kind: kind.into(),
            message,
            related_id: ev.entity_id.clone(),
            related_type: ev.kind.clone(),
            ticket_id: ev.ticket_id.clone(),
            actor_id: ev.actor_id.clone(),
            read: false,
            created_at: now,
        });
    }
}

/// Rebuilds the tickets `sample` (the plan's first ones, in order, written through the API and
/// dispatched) and fails unless every row the server wrote for them is the one the seeder
/// writes, but for ids and clocks.
pub async fn check_sample(db: &DatabaseConnection, people: &People, sample: &[String]) -> Result<()> {
    let api = Rows {
        tickets: ticket::Entity::find().filter(ticket::Column::Id.is_in(sample.to_vec())).all(db).await?,
        comments: comment::Entity::find().filter(comment::Column::TicketId.is_in(sample.to_vec())).all(db).await?,
        events: event::Entity::find().filter(event::Column::TicketId.is_in(sample.to_vec())).all(db).await?,
        notifications: notification::Entity::find()
            .filter(notification::Column::TicketId.is_in(sample.to_vec()))
            .all(db)
            .await?,
    };
    let mut rebuilt = Rows::default();
    let mut next_event = 0;
    for (i, id) in sample.iter().enumerate() {
        let t = api.tickets.iter().find(|t| &t.id == id).context("a sample ticket is missing")?;
        // Comments were sent concurrently: match them by content, not by order.
        let comments = (0..plan::COMMENTS)
            .map(|j| {
                let (_, body) = plan::comment_plan(i * plan::COMMENTS + j);
                let found = api.comments.iter().find(|c| c.ticket_id == t.id && body["content"] == c.content.as_str());
                found.map(|c| c.id.clone()).context("a sample comment is missing")
            })
            .collect::<Result<_>>()?;
        rebuilt.add(
            people,
            i,
            Ids { ticket: t.id.clone(), number: t.number, comments, now: t.created_at },
            &mut next_event,
        )?;
    }
    let (api, rebuilt) = (api.normalized(), rebuilt.normalized());
    for (what, a, b) in [
        ("tickets", &api.0, &rebuilt.0),
        ("comments", &api.1, &rebuilt.1),
        ("events", &api.2, &rebuilt.2),
        ("notifications", &api.3, &rebuilt.3),
    ] {
        ensure!(a.len() == b.len(), "{what}: the API wrote {}, the seeder would write {}", a.len(), b.len());
        if let Some((a, b)) = a.iter().zip(b).find(|(a, b)| a != b) {
            bail!("{what} differ:\n  API:    {a}\n  seeder: {b}");
        }
    }
    eprintln!(
        "  the seeder rebuilds the {} API-written sample tickets exactly ({} rows)",
        sample.len(),
        api.0.len() + api.1.len() + api.2.len() + api.3.len()
    );
    Ok(())
}

type Normal = (Vec<Value>, Vec<Value>, Vec<Value>, Vec<Value>);

impl Rows {
    /// Each row as JSON with what differs from one write to the next (generated ids, clocks,
    /// event ids) blanked, sorted.
    fn normalized(self) -> Normal {
        fn blank(v: &mut Value) {
            if let Value::Object(m) = v {
                for (k, x) in m.iter_mut() {
                    if k.ends_with("_at") && !x.is_null() {
                        *x = json!("<time>");
                    } else {
                        blank(x);
                    }
                }
            }
        }
        fn rows(rows: Vec<Value>, drop: &[&str]) -> Vec<Value> {
            let mut out: Vec<Value> = rows
                .into_iter()
                .map(|mut v| {
                    if let Value::Object(m) = &mut v {
                        for k in drop {
                            m.remove(*k);
                        }
                    }
                    blank(&mut v);
                    v
                })
                .collect();
            out.sort_by_key(Value::to_string);
            out
        }
        (
            rows(self.tickets.into_iter().map(ticket_json).collect(), &[]),
            rows(self.comments.into_iter().map(|c| json!(Comment::from(c))).collect(), &[]),
            rows(self.events.into_iter().map(event_json).collect(), &["id"]),
            rows(self.notifications.into_iter().map(notification_json).collect(), &["id", "event_id"]),
        )
    }
}

fn ticket_json(t: ticket::Model) -> Value {
    // Every column: the view adds requester_name, which the row does not have.
    json!({
        "id": t.id, "number": t.number, "subject": t.subject, "description": t.description,
        "status": t.status, "priority": t.priority, "category": t.category, "tags": t.tags,
        "source": t.source, "external_id": t.external_id, "requester_id": t.requester_id,
        "requester_email": t.requester_email, "assignee_id": t.assignee_id, "metadata": t.metadata,
        "classification": t.classification, "resolved_at": t.resolved_at, "created_at": t.created_at,
        "updated_at": t.updated_at, "version": t.version,
    })
}

fn event_json(e: event::Model) -> Value {
    json!({
        "id": e.id, "kind": e.kind, "action": e.action, "entity_id": e.entity_id, "ticket_id": e.ticket_id,
        "requester_id": e.requester_id, "owner_id": e.owner_id, "staff_only": e.staff_only,
        "actor_id": e.actor_id, "data": e.data, "previous": e.previous, "created_at": e.created_at,
    })
}

fn notification_json(n: notification::Model) -> Value {
    json!({
        "id": n.id, "user_id": n.user_id, "event_id": n.event_id, "type": n.kind, "message": n.message,
        "related_id": n.related_id, "related_type": n.related_type, "ticket_id": n.ticket_id,
        "actor_id": n.actor_id, "read": n.read, "created_at": n.created_at,
    })
}

/// What bulk seeding took.
pub struct Written {
    pub tickets: Vec<String>,
    pub secs: f64,
    pub rows: u64,
}

/// Writes tickets `from..to` of the plan, [`BATCH`] to a transaction. The server must be
/// stopped, its log fully dispatched.
pub async fn write(db: &DatabaseConnection, people: People, from: usize, to: usize) -> Result<Written> {
    let backend = db.get_database_backend();
    let max = |sql: &str| {
        let sql = sql.to_string();
        async move {
            let row = db.query_one_raw(Statement::from_string(backend, sql)).await?.context("no row")?;
            Ok::<i64, anyhow::Error>(row.try_get_by_index::<Option<i64>>(0)?.unwrap_or(0))
        }
    };
    let last_event = max("SELECT MAX(id) FROM events").await?;
    let cursor = dispatch_cursor::Entity::find_by_id("main".to_string()).one(db).await?.map_or(0, |c| c.last_event_id);
    ensure!(cursor == last_event, "the log is not dispatched yet (cursor {cursor}, last event {last_event})");
    let mut number = max("SELECT MAX(number) FROM tickets").await?.max(1000) + 1;
    let mut next_event = last_event + 1;

    // Rows are built on a thread of their own while the previous batch is written.
    let people = Arc::new(people);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Rows>>(2);
    let builder = {
        let people = people.clone();
        tokio::task::spawn_blocking(move || {
            for start in (from..to).step_by(BATCH) {
                let mut rows = Rows::default();
                let built = (start..(start + BATCH).min(to)).try_for_each(|i| {
                    let ids = Ids::fresh(number);
                    number += 1;
                    rows.add(&people, i, ids, &mut next_event)
                });
                if tx.blocking_send(built.map(|()| rows)).is_err() {
                    return;
                }
            }
        })
    };
    let t0 = Instant::now();
    let (mut tickets, mut rows_written) = (Vec::with_capacity(to - from), 0u64);
    let mut reported = Instant::now();
    // PostgreSQL takes two transactions at once (a backend process each); SQLite one writer.
    let writers = if backend == DbBackend::Postgres { 2 } else { 1 };
    let batches = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|rows| (rows, rx)) });
    let mut written = std::pin::pin!(
        batches
            .map(|rows| async move {
                let rows = rows?;
                let n = write_batch(db, backend, &rows).await?;
                Ok::<_, anyhow::Error>((n, rows.tickets))
            })
            .buffered(writers)
    );
    while let Some(done) = written.next().await {
        let (n, batch) = done?;
        rows_written += n;
        tickets.extend(batch.into_iter().map(|t| t.id));
        if reported.elapsed().as_secs() >= 30 {
            reported = Instant::now();
            let rate = rows_written as f64 / t0.elapsed().as_secs_f64();
            eprintln!("    bulk: {}/{} tickets ({rate:.0} rows/s)", tickets.len(), to - from);
        }
    }
    builder.await?;
    if backend == DbBackend::Postgres {
        for sql in [
            "SELECT setval('ticket_number_seq', (SELECT MAX(number) FROM tickets))",
            "SELECT setval(pg_get_serial_sequence('events', 'id'), (SELECT MAX(id) FROM events))",
        ] {
            db.execute_unprepared(sql).await?;
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    eprintln!(
        "  bulk: {} tickets, {rows_written} rows in {secs:.1}s ({:.0} rows/s)",
        tickets.len(),
        rows_written as f64 / secs
    );
    Ok(Written { tickets, secs, rows: rows_written })
}

/// One transaction: the rows, the full-text documents, the dispatcher's cursor.
async fn write_batch(db: &DatabaseConnection, backend: DbBackend, rows: &Rows) -> Result<u64> {
    let (Some(first), Some(last)) = (rows.tickets.first(), rows.tickets.last()) else {
        return Ok(0);
    };
    let txn = db.begin().await?;
    if backend == DbBackend::Postgres {
        // The search triggers would rewrite a ticket's document once per comment; the refresh
        // below writes it once. (Foreign keys and the like are triggers too: there are none.)
        txn.execute_unprepared("SET LOCAL session_replication_role = replica").await?;
    }
    let mut statements = domain::insert_statements(backend, active(&rows.comments));
    statements.extend(domain::insert_statements(backend, active(&rows.tickets)));
    statements.extend(domain::insert_statements(backend, active(&rows.events)));
    statements.extend(domain::insert_statements(backend, active(&rows.notifications)));
    for s in statements {
        txn.execute_raw(s).await?;
    }
    if backend == DbBackend::Postgres {
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            "SELECT ticketwire_ticket_search_refresh(id) FROM tickets WHERE number BETWEEN $1 AND $2",
            [first.number.into(), last.number.into()],
        ))
        .await?;
    }
    // Last, as the cursor row is locked from here to commit; never backwards, as two batches
    // may commit out of order (the server is stopped: nothing reads the log meanwhile).
    let newest = rows.events.last().map_or(0, |e| e.id);
    let moved = match backend {
        DbBackend::Postgres => Expr::cust_with_values("GREATEST(last_event_id, $1)", [newest]),
        _ => Expr::cust_with_values("MAX(last_event_id, ?)", [newest]),
    };
    dispatch_cursor::Entity::update_many()
        .col_expr(dispatch_cursor::Column::LastEventId, moved)
        .filter(dispatch_cursor::Column::Name.eq("main"))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok((rows.tickets.len() + rows.comments.len() + rows.events.len() + rows.notifications.len()) as u64)
}

fn active<M>(models: &[M]) -> Vec<<M::Entity as EntityTrait>::ActiveModel>
where
    M: IntoActiveModel<<M::Entity as EntityTrait>::ActiveModel> + sea_orm::ModelTrait + Clone,
{
    use sea_orm::ActiveModelTrait;
    models.iter().cloned().map(|m| m.into_active_model().reset_all()).collect()
}

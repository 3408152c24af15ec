//! Who is notified of what, and how it reads. Pure decisions over an event and the people involved.
use std::collections::HashMap;

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde_json::Value;

use crate::{
    auth::Role,
    domain::{Kind, preferences},
    entity::{comment, event, ticket, user},
    error::Result,
    policy::{self, Access, Now, Viewer},
};

/// One notification to create.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub user_id: String,
    pub kind: &'static str,
    pub message: String,
    pub related_id: String,
    pub related_type: &'static str,
    pub ticket_id: Option<String>,
}

fn str_field<'a>(data: &'a Value, key: &str) -> Option<&'a str> {
    data.get(key).and_then(Value::as_str)
}

/// Who a rule would notify, of what kind, saying what; before the audience checks of [`plan`].
type Candidates = Vec<(String, &'static str, String)>;

/// Decides the notifications for `ev`. The actor is never notified and nobody twice. `people`
/// remembers who is who across the events of one dispatch batch.
pub async fn plan(db: &impl ConnectionTrait, ev: &event::Model, people: &mut People) -> Result<Vec<Planned>> {
    let Some(kind) = Kind::parse(&ev.kind) else {
        return Ok(Vec::new());
    };
    let actor_name = match &ev.actor_id {
        Some(id) => people.name(db, id).await?.unwrap_or_else(|| "someone".into()),
        None => "an integration".into(),
    };
    let out = match kind {
        Kind::Ticket => ticket_candidates(db, ev, &actor_name, people).await?,
        Kind::Comment => comment_candidates(db, ev, &actor_name).await?,
        Kind::Attachment => attachment_candidates(db, ev, &actor_name).await?,
        Kind::KbArticle => kb_candidates(db, ev).await?,
        Kind::User => user_candidates(db, ev, &actor_name, people).await?,
        Kind::Webhook => return Ok(webhook_notice(ev).into_iter().collect()),
    };

    // Only active people hear anything (a deactivated user gets no notification, so no webhook
    // either), and only of what the policy lets them read as they are now.
    let candidates: Vec<String> = out.iter().map(|(id, _, _)| id.clone()).collect();
    let known = people.get(db, &candidates).await?;
    let mut seen = std::collections::HashSet::new();
    let mut planned = Vec::new();
    for (user_id, kind_name, message) in out {
        if ev.actor_id.as_deref() == Some(user_id.as_str()) || !seen.insert(user_id.clone()) {
            continue;
        }
        let Some(&Person { role, active, .. }) = known.get(&user_id) else {
            continue;
        };
        let viewer = Viewer::new(&user_id, role);
        if !active || policy::of_logged_event(&viewer, ev, Now::AsLeft) != Access::Full {
            continue;
        }
        planned.push(Planned {
            user_id,
            kind: kind_name,
            message,
            related_id: ev.entity_id.clone(),
            related_type: related_type(kind),
            ticket_id: ev.ticket_id.clone(),
        });
    }
    Ok(planned)
}

/// Admins hear of new tickets, staff who asked to of new unassigned ones; requester and
/// assignee of changes.
async fn ticket_candidates(
    db: &impl ConnectionTrait,
    ev: &event::Model,
    actor_name: &str,
    people: &mut People,
) -> Result<Candidates> {
    let (data, action) = (&ev.data, ev.action.as_str());
    let mut out = Candidates::new();
    let subject = str_field(data, "subject").unwrap_or("");
    let (kind, message) = match action {
        "created" => {
            for admin in people.active_admins(db).await? {
                out.push((admin, "new_ticket", format!("New ticket '{subject}' from {}", actor_name)));
            }
            if str_field(data, "assignee_id").is_none() {
                for who in people.watching_unassigned(db).await? {
                    out.push((
                        who,
                        "new_unassigned_ticket",
                        format!("New unassigned ticket '{subject}' from {actor_name}"),
                    ));
                }
            }
            ("", String::new())
        }
        "updated" => {
            let changed = what_changed(db, ev, people).await?;
            ("ticket_updated", format!("Ticket '{subject}' was updated by {}{}", actor_name, changed))
        }
        _ => ("ticket_deleted", format!("Ticket '{subject}' was deleted by {}", actor_name)),
    };
    if !kind.is_empty() {
        for who in ticket_people(data) {
            out.push((who, kind, message.clone()));
        }
    }
    Ok(out)
}

/// The ticket's requester and assignee, and the author of a comment replied to.
async fn comment_candidates(db: &impl ConnectionTrait, ev: &event::Model, actor_name: &str) -> Result<Candidates> {
    let (data, action) = (&ev.data, ev.action.as_str());
    let mut out = Candidates::new();
    let ticket_id = str_field(data, "ticket_id").unwrap_or("");
    let t = ticket::Entity::find_by_id(ticket_id.to_string()).one(db).await?;
    let subject = t.as_ref().map(|t| t.subject.clone()).unwrap_or_default();
    let people = t
        .as_ref()
        .map(|t| [t.requester_id.clone(), t.assignee_id.clone()].into_iter().flatten().collect())
        .unwrap_or_else(Vec::new);
    match action {
        "created" => {
            if let Some(parent_id) = str_field(data, "parent_id")
                && let Some(parent) = comment::Entity::find_by_id(parent_id.to_string()).one(db).await?
            {
                out.push((
                    parent.author_id,
                    "reply_to_comment",
                    format!("{actor_name} replied to your comment on '{subject}'"),
                ));
            }
            for who in people {
                out.push((
                    who,
                    "comment_on_ticket",
                    format!("New comment on your ticket '{subject}' by {}", actor_name),
                ));
            }
        }
        "updated" => {
            for who in people {
                out.push((who, "comment_updated", format!("A comment on '{subject}' was edited by {}", actor_name)));
            }
        }
        _ => {
            for who in people {
                out.push((who, "comment_deleted", format!("A comment on '{subject}' was deleted by {}", actor_name)));
            }
        }
    }
    Ok(out)
}

/// The ticket's requester and assignee.
async fn attachment_candidates(db: &impl ConnectionTrait, ev: &event::Model, actor_name: &str) -> Result<Candidates> {
    let (data, action) = (&ev.data, ev.action.as_str());
    let mut out = Candidates::new();
    let ticket_id = str_field(data, "ticket_id").unwrap_or("");
    let filename = str_field(data, "filename").unwrap_or("");
    if let Some(t) = ticket::Entity::find_by_id(ticket_id.to_string()).one(db).await? {
        let (kind, message) = match action {
            "created" => ("attachment_added", format!("{} attached '{filename}' to '{}'", actor_name, t.subject)),
            "updated" => ("attachment_updated", format!("{} updated '{filename}' on '{}'", actor_name, t.subject)),
            _ => ("attachment_deleted", format!("{} removed '{filename}' from '{}'", actor_name, t.subject)),
        };
        for who in [t.requester_id, t.assignee_id].into_iter().flatten() {
            out.push((who, kind, message.clone()));
        }
    }
    Ok(out)
}

/// Everyone active, when an article is first published.
async fn kb_candidates(db: &impl ConnectionTrait, ev: &event::Model) -> Result<Candidates> {
    let (data, action) = (&ev.data, ev.action.as_str());
    let mut out = Candidates::new();
    let now_published = str_field(data, "status") == Some("published");
    let was_published = ev.previous.as_ref().and_then(|p| str_field(p, "status")) == Some("published");
    if action != "deleted" && now_published && !was_published {
        let title = str_field(data, "title").unwrap_or("");
        for u in user::Entity::find().filter(user::Column::IsActive.eq(true)).all(db).await? {
            out.push((u.id, "kb_article_created", format!("New article published: '{title}'")));
        }
    }
    Ok(out)
}

/// Admins hear of new and deactivated accounts.
async fn user_candidates(
    db: &impl ConnectionTrait,
    ev: &event::Model,
    actor_name: &str,
    people: &mut People,
) -> Result<Candidates> {
    let (data, action) = (&ev.data, ev.action.as_str());
    let mut out = Candidates::new();
    let name = str_field(data, "name").unwrap_or("");
    let deactivated = action == "updated"
        && data.get("is_active") == Some(&Value::Bool(false))
        && ev.previous.as_ref().and_then(|p| p.get("is_active")) == Some(&Value::Bool(true));
    let planned = match action {
        "created" => Some((
            "user_created",
            format!(
                "New user {name} ({}) joined as {}",
                str_field(data, "email").unwrap_or(""),
                str_field(data, "role").unwrap_or("customer")
            ),
        )),
        _ if deactivated => Some(("user_deactivated", format!("User {name} was deactivated by {}", actor_name))),
        _ => None,
    };
    if let Some((kind, message)) = planned {
        // Nobody is told about their own account being made.
        for admin in people.active_admins(db).await?.into_iter().filter(|a| *a != ev.entity_id) {
            out.push((admin, kind, message.clone()));
        }
    }
    Ok(out)
}

/// A webhook test or a disabled endpoint: for its owner alone. A test is the user's own request,
/// so the "not the actor" rule does not apply.
fn webhook_notice(ev: &event::Model) -> Option<Planned> {
    let owner = ev.owner_id.as_ref()?;
    let kind = str_field(&ev.data, "type").unwrap_or("webhook_test");
    let kind = if kind == "webhook_disabled" { "webhook_disabled" } else { "webhook_test" };
    let message = str_field(&ev.data, "message").unwrap_or("Test notification for your webhook").to_string();
    Some(Planned {
        user_id: owner.clone(),
        kind,
        message,
        related_id: ev.entity_id.clone(),
        related_type: "user",
        ticket_id: None,
    })
}

fn related_type(kind: Kind) -> &'static str {
    match kind {
        Kind::Ticket => "ticket",
        Kind::Comment => "comment",
        Kind::KbArticle => "kb_article",
        Kind::Attachment => "attachment",
        Kind::User | Kind::Webhook => "user",
    }
}

fn ticket_people(data: &Value) -> Vec<String> {
    ["requester_id", "assignee_id"].iter().filter_map(|k| str_field(data, k).map(str::to_string)).collect()
}

/// " (status: Open → In progress, assigned to Agnes)" for the fields people care about, in
/// words people use.
async fn what_changed(db: &impl ConnectionTrait, ev: &event::Model, people: &mut People) -> Result<String> {
    let Some(prev) = &ev.previous else {
        return Ok(String::new());
    };
    let mut parts = Vec::new();
    for field in ["status", "priority"] {
        let (a, b) = (str_field(prev, field), str_field(&ev.data, field));
        if a != b {
            parts.push(format!("{field}: {} → {}", words(a.unwrap_or("none")), words(b.unwrap_or("none"))));
        }
    }
    if prev.get("assignee_id") != ev.data.get("assignee_id") {
        parts.push(match str_field(&ev.data, "assignee_id") {
            Some(id) => format!("assigned to {}", people.name(db, id).await?.unwrap_or_else(|| "someone".into())),
            None => "unassigned".into(),
        });
    }
    Ok(if parts.is_empty() { String::new() } else { format!(" ({})", parts.join(", ")) })
}

/// `in_progress` as people write it: "In progress".
fn words(value: &str) -> String {
    let spaced = value.replace('_', " ");
    let mut chars = spaced.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// What the rules need to know about users, read once per dispatch batch: under load a batch
/// holds many events by the same few actors about the same few people, and every lookup is a
/// round trip to the database.
#[derive(Default)]
pub struct People {
    known: HashMap<String, Option<Person>>,
    admins: Option<Vec<String>>,
    unassigned_watchers: Option<Vec<String>>,
}

#[derive(Clone)]
pub struct Person {
    name: String,
    role: Role,
    active: bool,
}

impl People {
    /// Looks up, in one query, whichever of `ids` this batch has not seen yet.
    pub async fn load(&mut self, db: &impl ConnectionTrait, ids: impl IntoIterator<Item = String>) -> Result<()> {
        let mut missing: Vec<String> = ids.into_iter().filter(|id| !self.known.contains_key(id)).collect();
        missing.sort_unstable();
        missing.dedup();
        for chunk in missing.chunks(500) {
            for u in user::Entity::find().filter(user::Column::Id.is_in(chunk.iter().cloned())).all(db).await? {
                let role = Role::parse(&u.role).unwrap_or(Role::Customer);
                self.known.insert(u.id, Some(Person { name: u.name, role, active: u.is_active }));
            }
        }
        for id in missing {
            self.known.entry(id).or_insert(None);
        }
        Ok(())
    }

    /// The users among `ids` who exist.
    async fn get(&mut self, db: &impl ConnectionTrait, ids: &[String]) -> Result<HashMap<String, Person>> {
        self.load(db, ids.iter().cloned()).await?;
        Ok(ids.iter().filter_map(|id| Some((id.clone(), self.known.get(id)?.clone()?))).collect())
    }

    async fn name(&mut self, db: &impl ConnectionTrait, id: &str) -> Result<Option<String>> {
        self.load(db, [id.to_string()]).await?;
        Ok(self.known.get(id).and_then(|p| p.as_ref()).map(|p| p.name.clone()))
    }

    /// Who asked to hear of new unassigned tickets ([`preferences`]).
    async fn watching_unassigned(&mut self, db: &impl ConnectionTrait) -> Result<Vec<String>> {
        if self.unassigned_watchers.is_none() {
            self.unassigned_watchers = Some(preferences::watching_unassigned(db).await?);
        }
        Ok(self.unassigned_watchers.clone().unwrap_or_default())
    }

    async fn active_admins(&mut self, db: &impl ConnectionTrait) -> Result<Vec<String>> {
        if self.admins.is_none() {
            let ids = user::Entity::find()
                .filter(user::Column::Role.eq(Role::Admin.as_str()))
                .filter(user::Column::IsActive.eq(true))
                .all(db)
                .await?
                .into_iter()
                .map(|u| u.id)
                .collect();
            self.admins = Some(ids);
        }
        Ok(self.admins.clone().unwrap_or_default())
    }
}

/// The people an event's data names (requester, assignee) and its actor: what [`plan`] will ask
/// [`People`] about, so a batch can load them all at once.
pub fn named_people(ev: &event::Model) -> impl Iterator<Item = String> + '_ {
    ev.actor_id.iter().cloned().chain(ticket_people(&ev.data))
}

//! The entities of a set of events as they are now, read in a few queries, so that history
//! served later (REST, replay, webhook retries) follows the present.
use std::collections::HashMap;

use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect};

use super::{Access, Now, Subject, Viewer};
use crate::entity::{attachment, comment, event, kb_article, ticket, user};

/// The present state of every entity some events name.
#[derive(Default)]
pub struct Present {
    /// A ticket's requester, by ticket id (absent: the ticket is gone).
    tickets: HashMap<String, Option<String>>,
    /// A comment's ticket and internal flag.
    comments: HashMap<String, (String, bool)>,
    /// An attachment's ticket.
    attachments: HashMap<String, String>,
    /// Whether an article is published.
    articles: HashMap<String, bool>,
    users: std::collections::HashSet<String>,
}

impl Present {
    /// Reads, in one query per kind, the entities `events` are about.
    pub async fn load<'a>(
        db: &impl ConnectionTrait,
        events: impl IntoIterator<Item = &'a event::Model>,
    ) -> Result<Self, DbErr> {
        let mut ids: HashMap<&str, Vec<String>> = HashMap::new();
        for ev in events {
            ids.entry(ev.kind.as_str()).or_default().push(ev.entity_id.clone());
        }
        let mut present = Self::default();
        let take = |ids: &mut HashMap<&str, Vec<String>>, kind: &str| {
            let mut v = ids.remove(kind).unwrap_or_default();
            v.sort_unstable();
            v.dedup();
            v
        };
        for chunk in take(&mut ids, "comment").chunks(500) {
            let rows: Vec<(String, String, bool)> = comment::Entity::find()
                .select_only()
                .columns([comment::Column::Id, comment::Column::TicketId, comment::Column::Internal])
                .filter(comment::Column::Id.is_in(chunk.iter().cloned()))
                .into_tuple()
                .all(db)
                .await?;
            present.comments.extend(rows.into_iter().map(|(id, t, internal)| (id, (t, internal))));
        }
        for chunk in take(&mut ids, "attachment").chunks(500) {
            let rows: Vec<(String, String)> = attachment::Entity::find()
                .select_only()
                .columns([attachment::Column::Id, attachment::Column::TicketId])
                .filter(attachment::Column::Id.is_in(chunk.iter().cloned()))
                .into_tuple()
                .all(db)
                .await?;
            present.attachments.extend(rows);
        }
        let mut tickets = take(&mut ids, "ticket");
        tickets.extend(present.comments.values().map(|(t, _)| t.clone()));
        tickets.extend(present.attachments.values().cloned());
        tickets.sort_unstable();
        tickets.dedup();
        for chunk in tickets.chunks(500) {
            let rows: Vec<(String, Option<String>)> = ticket::Entity::find()
                .select_only()
                .columns([ticket::Column::Id, ticket::Column::RequesterId])
                .filter(ticket::Column::Id.is_in(chunk.iter().cloned()))
                .into_tuple()
                .all(db)
                .await?;
            present.tickets.extend(rows);
        }
        for chunk in take(&mut ids, "kb_article").chunks(500) {
            let rows: Vec<(String, String)> = kb_article::Entity::find()
                .select_only()
                .columns([kb_article::Column::Id, kb_article::Column::Status])
                .filter(kb_article::Column::Id.is_in(chunk.iter().cloned()))
                .into_tuple()
                .all(db)
                .await?;
            present.articles.extend(rows.into_iter().map(|(id, status)| (id, status == "published")));
        }
        for chunk in take(&mut ids, "user").chunks(500) {
            let rows: Vec<String> = user::Entity::find()
                .select_only()
                .column(user::Column::Id)
                .filter(user::Column::Id.is_in(chunk.iter().cloned()))
                .into_tuple()
                .all(db)
                .await?;
            present.users.extend(rows);
        }
        Ok(present)
    }

    /// The entity of `ev` as it is now; `None` when it is gone.
    pub fn subject(&self, ev: &event::Model) -> Option<Subject> {
        let requester = |ticket_id: &str| self.tickets.get(ticket_id).cloned();
        Some(match ev.kind.as_str() {
            "ticket" => Subject::Ticket { requester_id: requester(&ev.entity_id)? },
            "comment" => {
                let (ticket_id, internal) = self.comments.get(&ev.entity_id)?;
                Subject::Comment { requester_id: requester(ticket_id)?, internal: *internal }
            }
            "attachment" => Subject::Attachment { requester_id: requester(self.attachments.get(&ev.entity_id)?)? },
            "kb_article" => Subject::Article { published: *self.articles.get(&ev.entity_id)? },
            "user" => self.users.get(&ev.entity_id).map(|id| Subject::User { id: id.clone() })?,
            _ => return super::subject_of(ev, &ev.data),
        })
    }

    /// What `viewer` gets of `ev` now ([`super::of_event`]). A deletion is its own present.
    pub fn access(&self, viewer: &Viewer, ev: &event::Model) -> Access {
        let now = if ev.action == "deleted" { None } else { Some(self.subject(ev)) };
        match &now {
            None => super::of_logged_event(viewer, ev, Now::AsLeft),
            Some(Some(subject)) => super::of_logged_event(viewer, ev, Now::Is(subject)),
            Some(None) => super::of_logged_event(viewer, ev, Now::Gone),
        }
    }
}

//! Who may see what: the one answer every channel asks at the moment it hands something to a
//! person (REST reads and lists, `GET /api/events`, live emits, catch-up replay, notification
//! planning and every webhook attempt).
//!
//! The answer is a pure function of the viewer as it is now and of the entity in the states
//! that matter: as the change found it, as the change left it, and as it is now. Rooms,
//! subscriptions and stored notifications only narrow who is considered; none of them grants.
//! History follows the present: an old event about something the viewer can no longer read is
//! served as a redaction, never with its content.
use serde_json::{Value, json};

pub mod presence;
mod present;

pub use present::Present;

use crate::{
    auth::{AuthUser, Role},
    entity::event,
};

/// The person something is about to be handed to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Viewer<'a> {
    /// `None` for an anonymous reader (published articles only).
    pub id: Option<&'a str>,
    pub role: Role,
}

impl<'a> Viewer<'a> {
    pub fn new(id: &'a str, role: Role) -> Self {
        Self { id: Some(id), role }
    }

    pub fn anonymous() -> Self {
        Self { id: None, role: Role::Customer }
    }

    fn is(&self, user_id: Option<&str>) -> bool {
        self.id.is_some() && self.id == user_id
    }
}

impl AuthUser {
    /// This user as the visibility policy sees them.
    pub fn viewer(&self) -> Viewer<'_> {
        Viewer::new(&self.user.id, self.role)
    }
}

/// What decides visibility of one entity in one state: only the fields the rules read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    Ticket {
        requester_id: Option<String>,
    },
    /// `requester_id` is the requester of the comment's ticket.
    Comment {
        requester_id: Option<String>,
        internal: bool,
    },
    Attachment {
        requester_id: Option<String>,
    },
    Article {
        published: bool,
    },
    User {
        id: String,
    },
    /// Private to one user (a webhook test or notice).
    Private {
        owner_id: Option<String>,
    },
}

/// How much of something a viewer gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// The entity itself (shaped by [`shape`]).
    Full,
    /// Only that it is gone from the viewer's sight: a `deleted` marker with its id.
    Redacted,
    /// Nothing at all.
    Hidden,
}

/// Whether `viewer` may read an entity in state `subject`.
pub fn can_see(viewer: &Viewer, subject: &Subject) -> bool {
    let staff = viewer.role.is_staff();
    match subject {
        Subject::Ticket { requester_id } | Subject::Attachment { requester_id } => {
            staff || viewer.is(requester_id.as_deref())
        }
        Subject::Comment { requester_id, internal } => staff || (!internal && viewer.is(requester_id.as_deref())),
        Subject::Article { published } => staff || *published,
        Subject::User { id } => viewer.role == Role::Admin || viewer.is(Some(id)),
        Subject::Private { owner_id } => viewer.is(owner_id.as_deref()),
    }
}

/// The entity at the moment of delivery, next to the event being delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Now<'a> {
    /// As the event left it: a live emit right after dispatch, or a deletion's own event.
    AsLeft,
    Is(&'a Subject),
    /// It no longer exists (an older event of something since deleted).
    Gone,
}

/// What `viewer` gets of one event. `before` is the entity as the change found it (updates
/// only), `after` as the change left it (as it was, for a deletion).
///
/// Full only when the viewer may read it both as the event left it and as it is now; redacted
/// when the viewer could read it on one side of that line (the change, or what came after,
/// took it out of sight); hidden otherwise.
pub fn of_event(viewer: &Viewer, before: Option<&Subject>, after: &Subject, now: Now) -> Access {
    let then = can_see(viewer, after);
    let still = match now {
        Now::AsLeft => true,
        Now::Is(s) => can_see(viewer, s),
        Now::Gone => false,
    };
    if then && still {
        Access::Full
    } else if then || before.is_some_and(|b| can_see(viewer, b)) {
        Access::Redacted
    } else {
        Access::Hidden
    }
}

/// The subject an event's entity was in after the change (`data`) or before it (`previous`).
pub fn subject_of(ev: &event::Model, data: &Value) -> Option<Subject> {
    let str_of = |k: &str| data.get(k).and_then(Value::as_str).map(str::to_string);
    Some(match ev.kind.as_str() {
        "ticket" => Subject::Ticket { requester_id: str_of("requester_id") },
        "comment" => Subject::Comment {
            requester_id: ev.requester_id.clone(),
            internal: data.get("internal").and_then(Value::as_bool).unwrap_or(true),
        },
        "attachment" => Subject::Attachment { requester_id: ev.requester_id.clone() },
        "kb_article" => Subject::Article { published: str_of("status").as_deref() == Some("published") },
        "user" => Subject::User { id: ev.entity_id.clone() },
        "webhook" => Subject::Private { owner_id: ev.owner_id.clone() },
        _ => return None,
    })
}

/// The subject as the change left it, and as the change found it.
pub fn subjects_of(ev: &event::Model) -> Option<(Option<Subject>, Subject)> {
    let after = subject_of(ev, &ev.data)?;
    let before = ev.previous.as_ref().and_then(|p| subject_of(ev, p));
    Some((before, after))
}

/// What `viewer` gets of `ev`, given the entity as it is now (see [`of_event`]). An event of an
/// unknown kind is nobody's.
pub fn of_logged_event(viewer: &Viewer, ev: &event::Model, now: Now) -> Access {
    match subjects_of(ev) {
        Some((before, after)) => of_event(viewer, before.as_ref(), &after, now),
        None => Access::Hidden,
    }
}

/// The entity as `viewer` may read it in full: customers do not get what integrations sent
/// (`metadata.raw` of an ingested ticket can hold the sender's private data).
pub fn shape(viewer: &Viewer, kind: &str, data: &Value) -> Value {
    if viewer.role.is_staff() || kind != "ticket" {
        return data.clone();
    }
    let mut data = data.clone();
    if let Some(meta) = data.get_mut("metadata") {
        strip_sender_data(meta);
    }
    data
}

/// Removes from a ticket's `metadata` what only staff may read: the sender's own payload.
pub fn strip_sender_data(metadata: &mut Value) {
    if let Some(meta) = metadata.as_object_mut() {
        meta.remove("raw");
    }
}

/// Whether shaping changes anything for a customer (so one payload can serve everyone).
pub fn differs_for_customers(kind: &str, data: &Value) -> bool {
    kind == "ticket" && data.get("metadata").and_then(|m| m.get("raw")).is_some()
}

/// The marker a viewer gets instead of an entity it may no longer read: its id (with the ticket
/// it hangs on, so a client can drop it from the right thread, and its version, so a client can
/// order it against later changes), nothing of its content.
pub fn redacted(ev: &event::Model) -> Value {
    let mut marker = json!({ "id": ev.entity_id, "deleted": true });
    if matches!(ev.kind.as_str(), "comment" | "attachment") {
        marker["ticket_id"] = json!(ev.ticket_id);
    }
    if let Some(version) = ev.data.get("version").and_then(Value::as_i64) {
        marker["version"] = json!(version);
    }
    marker
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: &str = "me";
    const OTHER: &str = "other";

    fn ticket(requester: &str) -> Subject {
        Subject::Ticket { requester_id: Some(requester.into()) }
    }
    fn comment(requester: &str, internal: bool) -> Subject {
        Subject::Comment { requester_id: Some(requester.into()), internal }
    }

    /// Every role against every state of every kind: who may read what.
    #[test]
    fn readability_table() {
        let subjects = [
            ("own ticket", ticket(ME)),
            ("other's ticket", ticket(OTHER)),
            ("ticket with no requester", Subject::Ticket { requester_id: None }),
            ("public comment on own ticket", comment(ME, false)),
            ("internal note on own ticket", comment(ME, true)),
            ("public comment on other's ticket", comment(OTHER, false)),
            ("attachment on own ticket", Subject::Attachment { requester_id: Some(ME.into()) }),
            ("attachment on other's ticket", Subject::Attachment { requester_id: Some(OTHER.into()) }),
            ("published article", Subject::Article { published: true }),
            ("draft article", Subject::Article { published: false }),
            ("own user", Subject::User { id: ME.into() }),
            ("other user", Subject::User { id: OTHER.into() }),
            ("own webhook notice", Subject::Private { owner_id: Some(ME.into()) }),
            ("other's webhook notice", Subject::Private { owner_id: Some(OTHER.into()) }),
        ];
        // admin, agent, customer, anonymous
        let expected: [[bool; 4]; 14] = [
            [true, true, true, false],
            [true, true, false, false],
            [true, true, false, false],
            [true, true, true, false],
            [true, true, false, false],
            [true, true, false, false],
            [true, true, true, false],
            [true, true, false, false],
            [true, true, true, true],
            [true, true, false, false],
            [true, true, true, false],
            [true, false, false, false],
            [true, true, true, false],
            [false, false, false, false],
        ];
        let viewers = [
            Viewer::new(ME, Role::Admin),
            Viewer::new(ME, Role::Agent),
            Viewer::new(ME, Role::Customer),
            Viewer::anonymous(),
        ];
        for ((name, subject), row) in subjects.iter().zip(expected) {
            for (viewer, want) in viewers.iter().zip(row) {
                assert_eq!(can_see(viewer, subject), want, "{name} for {viewer:?}");
            }
        }
    }

    /// The transitions: what a customer gets of the event that makes the change, and of an
    /// older event replayed after it.
    #[test]
    fn transitions_for_a_customer() {
        let me = Viewer::new(ME, Role::Customer);
        // A public comment made internal: the change redacts, the old event redacts too.
        assert_eq!(of_event(&me, Some(&comment(ME, false)), &comment(ME, true), Now::AsLeft), Access::Redacted);
        assert_eq!(of_event(&me, None, &comment(ME, false), Now::Is(&comment(ME, true))), Access::Redacted);
        // An internal note made public: now readable in full.
        assert_eq!(of_event(&me, Some(&comment(ME, true)), &comment(ME, false), Now::AsLeft), Access::Full);
        // An internal note written and never shown: nothing at all.
        assert_eq!(of_event(&me, None, &comment(ME, true), Now::AsLeft), Access::Hidden);
        // The ticket moved to another customer: the former requester sees it go, then nothing.
        assert_eq!(of_event(&me, Some(&ticket(ME)), &ticket(OTHER), Now::AsLeft), Access::Redacted);
        assert_eq!(of_event(&me, None, &ticket(ME), Now::Is(&ticket(OTHER))), Access::Redacted);
        assert_eq!(of_event(&me, None, &comment(OTHER, false), Now::AsLeft), Access::Hidden);
        // An article unpublished (edited in the same change): gone, the draft never shown.
        let (published, draft) = (Subject::Article { published: true }, Subject::Article { published: false });
        assert_eq!(of_event(&me, Some(&published), &draft, Now::AsLeft), Access::Redacted);
        assert_eq!(of_event(&me, None, &draft, Now::Is(&published)), Access::Hidden);
        assert_eq!(of_event(&me, None, &published, Now::Is(&draft)), Access::Redacted);
        // A deletion of something readable carries it as it was; older events of it are redacted.
        assert_eq!(of_event(&me, None, &ticket(ME), Now::AsLeft), Access::Full);
        assert_eq!(of_event(&me, None, &ticket(ME), Now::Gone), Access::Redacted);
        assert_eq!(of_event(&Viewer::new(ME, Role::Agent), None, &ticket(OTHER), Now::Gone), Access::Redacted);
    }

    #[test]
    fn a_demoted_agent_is_judged_as_the_customer_it_now_is() {
        let assigned = ticket(OTHER);
        assert_eq!(of_event(&Viewer::new(ME, Role::Agent), None, &assigned, Now::AsLeft), Access::Full);
        assert_eq!(of_event(&Viewer::new(ME, Role::Customer), None, &assigned, Now::AsLeft), Access::Hidden);
        assert_eq!(
            of_event(&Viewer::new(ME, Role::Customer), None, &comment(OTHER, true), Now::Is(&comment(OTHER, true))),
            Access::Hidden
        );
    }

    #[test]
    fn customers_never_get_what_integrations_sent() {
        let data = json!({ "id": "t", "metadata": { "raw": { "secret": 1 }, "source_url": "x" } });
        let customer = shape(&Viewer::new(ME, Role::Customer), "ticket", &data);
        assert_eq!(customer["metadata"], json!({ "source_url": "x" }));
        assert_eq!(shape(&Viewer::new(ME, Role::Agent), "ticket", &data), data);
        assert!(differs_for_customers("ticket", &data));
        assert!(!differs_for_customers("ticket", &customer));
    }
}

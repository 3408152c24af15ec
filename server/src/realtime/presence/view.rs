//! A ticket's presence as one audience sees it, what changed since it was last sent, and the
//! payloads that say so. Pure: the hub decides when, this decides what.
use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
};

use serde_json::{Value, json, value::RawValue};

use crate::{
    auth::Role,
    policy::presence::{Activity, Audience, Typing, presence_shown, typing_shown},
};

/// One connection's part in a ticket's presence.
#[derive(Clone, Copy)]
pub struct Part<'a> {
    pub user_id: &'a Arc<str>,
    pub name: &'a Arc<str>,
    pub role: Role,
    pub activity: Activity,
    pub typing: [bool; 2],
}

/// A person as an audience sees them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shown {
    pub name: Arc<str>,
    pub role: Role,
    pub activity: Activity,
}

/// Everyone on a ticket as one audience sees them, by user id, and who is typing what.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct View {
    pub people: BTreeMap<Arc<str>, Shown>,
    pub typing: BTreeSet<(Arc<str>, Typing)>,
}

/// The index of an audience's view in per-audience arrays.
pub fn slot(audience: Audience) -> usize {
    match audience {
        Audience::Staff => 0,
        Audience::Customer => 1,
    }
}

pub const KINDS: [Typing; 2] = [Typing::Public, Typing::Internal];

fn privilege(role: Role) -> u8 {
    match role {
        Role::Customer => 0,
        Role::Agent => 1,
        Role::Admin => 2,
    }
}

impl View {
    /// What `audience` sees of `parts`. A person is judged by the least of the roles their
    /// connections carry (a role change reaches nodes one by one: while they disagree, the
    /// stricter answer holds), then each connection is shown as the policy says and the
    /// strongest of those wins, so a note in one tab never hides a reply in another.
    pub fn of<'a>(audience: Audience, parts: impl Iterator<Item = Part<'a>> + Clone) -> Self {
        let mut roles: BTreeMap<&Arc<str>, Role> = BTreeMap::new();
        for p in parts.clone() {
            roles
                .entry(p.user_id)
                .and_modify(|r| *r = if privilege(p.role) < privilege(*r) { p.role } else { *r })
                .or_insert(p.role);
        }
        let mut view = View::default();
        for p in parts {
            let role = roles[p.user_id];
            let Some((shown_role, activity)) = presence_shown(audience, role, p.activity) else { continue };
            let person = view.people.entry(p.user_id.clone()).or_insert_with(|| Shown {
                name: p.name.clone(),
                role: shown_role,
                activity,
            });
            if activity > person.activity {
                person.activity = activity;
            }
            for (kind, on) in KINDS.into_iter().zip(p.typing) {
                if on && typing_shown(audience, role, kind) {
                    view.typing.insert((p.user_id.clone(), kind));
                }
            }
        }
        view
    }

    pub fn is_empty(&self) -> bool {
        self.people.is_empty() && self.typing.is_empty()
    }
}

/// What changed from `old` to `new`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Diff<'a> {
    pub joined: Vec<(&'a Arc<str>, &'a Shown)>,
    pub left: Vec<&'a Arc<str>>,
    pub changed: Vec<(&'a Arc<str>, &'a Shown)>,
    pub started: Vec<&'a (Arc<str>, Typing)>,
    pub stopped: Vec<&'a (Arc<str>, Typing)>,
}

impl<'a> Diff<'a> {
    pub fn between(old: &'a View, new: &'a View) -> Self {
        let mut d = Diff::default();
        for (id, shown) in &new.people {
            match old.people.get(id) {
                None => d.joined.push((id, shown)),
                Some(before) if before != shown => d.changed.push((id, shown)),
                Some(_) => {}
            }
        }
        d.left = old.people.keys().filter(|id| !new.people.contains_key(*id)).collect();
        d.started = new.typing.difference(&old.typing).collect();
        d.stopped = old.typing.difference(&new.typing).collect();
        d
    }

    pub fn people_changed(&self) -> bool {
        !(self.joined.is_empty() && self.left.is_empty() && self.changed.is_empty())
    }

    pub fn typing_changed(&self) -> bool {
        !(self.started.is_empty() && self.stopped.is_empty())
    }

    pub fn is_empty(&self) -> bool {
        !self.people_changed() && !self.typing_changed()
    }
}

fn viewer(id: &str, s: &Shown) -> Value {
    json!({ "user_id": id, "name": &*s.name, "role": s.role.as_str(), "state": s.activity.as_str() })
}

fn viewers(view: &View) -> Vec<Value> {
    view.people.iter().map(|(id, s)| viewer(id, s)).collect()
}

pub fn raw(v: &Value) -> Box<RawValue> {
    serde_json::value::to_raw_value(v).unwrap_or_else(|_| RawValue::from_string("null".into()).expect("valid JSON"))
}

/// `presence.snapshot`: everyone on the ticket and who is typing, as this audience sees them.
pub fn snapshot(ticket_id: &str, view: &View) -> Box<RawValue> {
    let typing: Vec<Value> =
        view.typing.iter().map(|(id, k)| json!({ "user_id": &**id, "kind": k.as_str() })).collect();
    raw(&json!({ "ticket_id": ticket_id, "viewers": viewers(view), "typing": typing }))
}

/// Who else is writing a public reply, as this audience sees them: what a `presence` ack that
/// opens a composer carries (advisory: nobody is stopped).
pub fn replying_besides(view: &View, user_id: &str) -> Vec<Value> {
    view.people
        .iter()
        .filter(|(id, s)| &***id != user_id && s.activity == Activity::Replying)
        .map(|(id, s)| viewer(id, s))
        .collect()
}

/// `presence.update`: everything that changed on the ticket for this audience since the last
/// one, in one message: who came, went or changed state, and who started or stopped typing
/// what. Every field is always there, empty when nothing of its kind changed. A starter is
/// named, as the viewers list names them.
pub fn update(ticket_id: &str, d: &Diff, view: &View) -> Box<RawValue> {
    let started: Vec<Value> = d
        .started
        .iter()
        .map(|(id, kind)| {
            let mut v = view.people.get(id).map(|s| viewer(id, s)).unwrap_or_else(|| json!({ "user_id": &**id }));
            if let Some(o) = v.as_object_mut() {
                o.remove("state");
                o.insert("kind".into(), json!(kind.as_str()));
            }
            v
        })
        .collect();
    let stopped: Vec<Value> = d.stopped.iter().map(|(id, k)| json!({ "user_id": &**id, "kind": k.as_str() })).collect();
    people_and_typing(ticket_id, d, started, stopped)
}

/// The ticket list's `presence.update`: the same message with typing always empty, since the
/// list shows who is on a ticket, never who is typing.
pub fn list_update(ticket_id: &str, d: &Diff) -> Box<RawValue> {
    people_and_typing(ticket_id, d, Vec::new(), Vec::new())
}

fn people_and_typing(ticket_id: &str, d: &Diff, started: Vec<Value>, stopped: Vec<Value>) -> Box<RawValue> {
    let list = |v: &[(&Arc<str>, &Shown)]| v.iter().map(|(id, s)| viewer(id, s)).collect::<Vec<_>>();
    let left: Vec<Value> = d.left.iter().map(|id| json!({ "user_id": &***id })).collect();
    raw(&json!({
        "ticket_id": ticket_id,
        "joined": list(&d.joined),
        "left": left,
        "changed": list(&d.changed),
        "typing_started": started,
        "typing_stopped": stopped,
    }))
}

/// `presence.list`: the staff view of every ticket someone is on, for the ticket list.
pub fn list<'a>(tickets: impl Iterator<Item = (&'a Arc<str>, &'a View)>) -> Box<RawValue> {
    let tickets: Vec<Value> = tickets
        .filter(|(_, v)| !v.people.is_empty())
        .map(|(id, v)| json!({ "ticket_id": &**id, "viewers": viewers(v) }))
        .collect();
    raw(&json!({ "tickets": tickets }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn part<'a>(id: &'a Arc<str>, name: &'a Arc<str>, role: Role, activity: Activity, typing: [bool; 2]) -> Part<'a> {
        Part { user_id: id, name, role, activity, typing }
    }

    #[test]
    fn two_tabs_are_one_person_with_the_stronger_state() {
        let (a, n) = (Arc::<str>::from("agent"), Arc::<str>::from("Agnes"));
        let parts = [
            part(&a, &n, Role::Agent, Activity::Idle, [false, false]),
            part(&a, &n, Role::Agent, Activity::Noting, [false, true]),
            part(&a, &n, Role::Agent, Activity::Replying, [false, false]),
        ];
        let staff = View::of(Audience::Staff, parts.iter().copied());
        assert_eq!(staff.people.len(), 1);
        assert_eq!(staff.people[&a].activity, Activity::Noting);
        assert!(staff.typing.contains(&(a.clone(), Typing::Internal)));
        // The requester sees the reply being written, not the note, nor its typing.
        let customer = View::of(Audience::Customer, parts.iter().copied());
        assert_eq!(customer.people[&a].activity, Activity::Replying);
        assert!(customer.typing.is_empty());
    }

    #[test]
    fn customers_see_staff_only_and_a_note_as_viewing() {
        let (a, c) = (Arc::<str>::from("admin"), Arc::<str>::from("cust"));
        let n = Arc::<str>::from("N");
        let parts = [
            part(&a, &n, Role::Admin, Activity::Noting, [true, true]),
            part(&c, &n, Role::Customer, Activity::Replying, [true, false]),
        ];
        let v = View::of(Audience::Customer, parts.iter().copied());
        assert_eq!(v.people.len(), 1);
        assert_eq!(v.people[&a], Shown { name: n.clone(), role: Role::Agent, activity: Activity::Viewing });
        assert_eq!(v.typing.iter().collect::<Vec<_>>(), vec![&(a.clone(), Typing::Public)]);
        let staff = View::of(Audience::Staff, parts.iter().copied());
        assert_eq!(staff.people.len(), 2);
        assert_eq!(staff.typing.len(), 3);
    }

    #[test]
    fn a_person_whose_connections_disagree_on_the_role_gets_the_lesser() {
        let (a, n) = (Arc::<str>::from("a"), Arc::<str>::from("N"));
        let parts = [
            part(&a, &n, Role::Agent, Activity::Noting, [false, true]),
            part(&a, &n, Role::Customer, Activity::Viewing, [false, false]),
        ];
        let v = View::of(Audience::Customer, parts.iter().copied());
        assert!(v.is_empty());
    }

    #[test]
    fn diffs_name_what_changed_only() {
        let (a, b, n) = (Arc::<str>::from("a"), Arc::<str>::from("b"), Arc::<str>::from("N"));
        let old = View::of(Audience::Staff, [part(&a, &n, Role::Agent, Activity::Viewing, [false, false])].into_iter());
        let new = View::of(
            Audience::Staff,
            [
                part(&a, &n, Role::Agent, Activity::Replying, [true, false]),
                part(&b, &n, Role::Agent, Activity::Viewing, [false, false]),
            ]
            .into_iter(),
        );
        let d = Diff::between(&old, &new);
        assert_eq!(d.joined.len(), 1);
        assert_eq!(d.changed.len(), 1);
        assert!(d.left.is_empty());
        assert_eq!(d.started.len(), 1);
        let back = Diff::between(&new, &old);
        assert_eq!(back.left, vec![&b]);
        assert_eq!(back.stopped.len(), 1);
        assert!(!Diff::between(&new, &new).people_changed());
        let payload: Value = serde_json::from_str(update("t", &d, &new).get()).unwrap();
        assert_eq!(
            payload["typing_started"][0],
            json!({ "user_id": "a", "name": "N", "role": "agent", "kind": "public" })
        );
        assert_eq!(payload["changed"][0]["state"], "replying");
        assert_eq!(payload["joined"][0]["user_id"], "b");
        assert_eq!(payload["left"], json!([]));
        assert_eq!(payload["typing_stopped"], json!([]));
        let list: Value = serde_json::from_str(list_update("t", &d).get()).unwrap();
        assert_eq!((list["typing_started"].clone(), list["typing_stopped"].clone()), (json!([]), json!([])));
        assert_eq!(list["changed"], payload["changed"]);
    }
}

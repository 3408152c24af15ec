//! Keeping presence true to the rest of the world: other nodes' batches, and the events that
//! change who may be on a ticket (a new requester, a ticket gone, a user's new role).
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use serde_json::Value;

use super::{Entry, Hub, Requester, State, Who, relay};
use crate::{auth::Role, entity::event, policy::presence::Activity};

impl Hub {
    pub(super) fn drop_ticket(&self, st: &mut State, ticket_id: &str) {
        let Some(t) = st.tickets.remove(ticket_id) else { return };
        for (_, e) in t.entries {
            if let Who::Local(_, sid) = e.who
                && let Some(socket) = st.sockets.get_mut(&sid)
            {
                socket.tickets.remove(ticket_id);
            }
        }
    }

    /// Keeps presence in step with the entities it depends on, as each event is emitted (every
    /// node emits every event): a ticket's new requester, a ticket gone, a user's new role.
    pub fn on_event(&self, ev: &event::Model) {
        let mut st = self.lock();
        match (ev.kind.as_str(), ev.action.as_str()) {
            ("ticket", "deleted") => self.drop_ticket(&mut st, &ev.entity_id),
            ("ticket", _) => {
                let State { tickets, sockets, dirty, unpublished, .. } = &mut *st;
                let Some(tid) = tickets.get_key_value(ev.entity_id.as_str()).map(|(k, _)| k.clone()) else { return };
                let Some(t) = tickets.get_mut(&tid) else { return };
                let tid = &tid;
                let requester = ev.data.get("requester_id").and_then(Value::as_str).map(str::to_string);
                // A customer who is no longer the requester is no longer on it.
                t.entries.retain(|(node, conn), e| {
                    if e.role().is_staff() || requester.as_deref() == Some(&*e.user_id) {
                        return true;
                    }
                    if let Who::Local(_, sid) = e.who {
                        if let Some(socket) = sockets.get_mut(&sid) {
                            socket.tickets.remove(tid);
                        }
                        if *node == self.node {
                            unpublished.insert((tid.clone(), conn.clone()));
                        }
                    }
                    false
                });
                t.requester = Requester::Known(requester);
                dirty.insert(tid.clone());
            }
            ("user", "updated") => {
                let role = ev.data.get("role").and_then(Value::as_str).and_then(Role::parse);
                let State { tickets, dirty, .. } = &mut *st;
                for (tid, t) in tickets.iter_mut() {
                    let mut touched = false;
                    for e in t.entries.values_mut().filter(|e| *e.user_id == *ev.entity_id) {
                        if let (Who::Remote(r), Some(role)) = (&mut e.who, role) {
                            *r = role;
                        }
                        touched = true;
                    }
                    if touched {
                        dirty.insert(tid.clone());
                    }
                }
            }
            _ => {}
        }
    }

    /// Another node's batch.
    pub(super) fn apply_remote(self: &Arc<Self>, batch: relay::Batch) {
        if *batch.node == *self.node {
            return;
        }
        let node: Arc<str> = batch.node.into();
        let now = Instant::now();
        let mut st = self.lock();
        if batch.sync {
            st.republish_all = true;
        }
        let cap =
            |ms: u64| now + Duration::from_millis(ms.min(self.config.expiry_ms.max(self.config.typing_expiry_ms)));
        for up in batch.up {
            let (Some(role), Some(activity)) = (Role::parse(&up.r), Activity::parse(&up.s)) else { continue };
            if uuid::Uuid::parse_str(&up.t).is_err() {
                continue;
            }
            let tid: Arc<str> = match st.tickets.get_key_value(up.t.as_str()) {
                Some((k, _)) => k.clone(),
                None => up.t.as_str().into(),
            };
            let t = st.tickets.entry(tid.clone()).or_default();
            let typing = up.ty.map(|ms| (ms > 0).then(|| cap(ms)));
            t.entries.insert(
                (node.clone(), up.c.into()),
                Entry {
                    user_id: up.u.into(),
                    name: up.n.into(),
                    who: Who::Remote(role),
                    activity,
                    expires: cap(up.ttl),
                    typing,
                },
            );
            st.dirty.insert(tid);
        }
        for rm in batch.rm {
            if let Some(t) = st.tickets.get_mut(rm.t.as_str())
                && t.entries.remove(&(node.clone(), Arc::<str>::from(rm.c))).is_some()
            {
                st.dirty.insert(rm.t.into());
            }
        }
    }
}

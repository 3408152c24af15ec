//! The batch: every few hundred milliseconds, what expired is dropped and each changed ticket's
//! people and typing go to this node's sockets, as a snapshot or as the difference from what
//! each audience was last sent.
use std::{
    cell::OnceCell,
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Instant,
};

use serde_json::value::RawValue;
use socketioxide::{SocketIo, adapter::Adapter};

use super::{
    Hub, Requester, SocketState, State, TicketState, Who, audience_of, relay,
    target::{Target, local_sockets},
    view::{self, Diff, View, slot},
};
use crate::{
    policy::presence::Audience,
    realtime::{Io, rooms},
};

/// Sends `s` the snapshot of `view` unless it is empty: a client that has just entered a ticket's
/// room starts from nobody, so an empty snapshot would say nothing (and every join of a quiet
/// ticket would cost a message). True when the socket now knows the view.
pub(super) fn snapshot_to<P: std::ops::Deref<Target = RawValue>>(
    s: &dyn Target,
    view: &View,
    make: impl FnOnce() -> P,
) -> bool {
    view.is_empty() || s.send("presence.snapshot", &make())
}

/// Sends a staff socket of the ticket list the staff view of every ticket someone is on, unless
/// nobody is on any. True when the socket now knows them.
pub(super) fn list_to(s: &dyn Target, tickets: &HashMap<Arc<str>, TicketState>) -> bool {
    let staff = slot(Audience::Staff);
    if tickets.values().all(|t| t.sent[staff].people.is_empty()) {
        return true;
    }
    s.send("presence.list", &view::list(tickets.iter().map(|(id, t)| (id, &t.sent[staff]))))
}

/// A payload made once per batch, when the first socket needs it.
pub(super) fn cached(cell: &OnceCell<Box<RawValue>>, make: impl FnOnce() -> Box<RawValue>) -> &RawValue {
    cell.get_or_init(make)
}

impl Hub {
    /// One batch: drops what expired, sends each changed ticket's changes to this node's
    /// sockets, and returns this node's changes for the others.
    pub(super) fn flush(self: &Arc<Self>) -> Vec<relay::Batch> {
        let now = Instant::now();
        let mut st = self.lock();
        self.expire(&mut st, now);
        match &self.io {
            Io::Local(io) => self.send_changes(io, &mut st, now),
            Io::Redis(io) => self.send_changes(io, &mut st, now),
        }
        metrics::gauge!("ticketwire_presence_entries")
            .set(st.tickets.values().map(|t| t.entries.len()).sum::<usize>() as f64);
        if self.relay.is_some() {
            self.outgoing(&mut st, now)
        } else {
            st.unpublished.clear();
            Vec::new()
        }
    }

    pub(super) fn expire(&self, st: &mut State, now: Instant) {
        let State { tickets, sockets, dirty, unpublished, .. } = st;
        for (tid, t) in tickets.iter_mut() {
            let before = t.entries.len();
            t.entries.retain(|(_, conn), e| {
                if e.expires > now {
                    return true;
                }
                if let Who::Local(_, sid) = e.who {
                    if let Some(socket) = sockets.get_mut(&sid) {
                        socket.tickets.remove(tid);
                    }
                    unpublished.insert((tid.clone(), conn.clone()));
                }
                false
            });
            let mut changed = t.entries.len() != before;
            for e in t.entries.values_mut() {
                for slot in e.typing.iter_mut() {
                    if slot.is_some_and(|at| at <= now) {
                        *slot = None;
                        changed = true;
                    }
                }
            }
            if changed {
                dirty.insert(tid.clone());
            }
        }
    }

    pub(super) fn send_changes<A: Adapter>(self: &Arc<Self>, io: &SocketIo<A>, st: &mut State, now: Instant) {
        let dirty: Vec<Arc<str>> = st.dirty.drain().collect();
        let mut wants_list = Vec::new();
        let State { tickets, sockets, .. } = st;
        for tid in dirty {
            let Some(t) = tickets.get_mut(&tid) else { continue };
            let views =
                [Audience::Staff, Audience::Customer].map(|a| View::of(a, t.entries.values().map(|e| e.part(now))));
            let diffs = [0, 1].map(|i| Diff::between(&t.sent[i], &views[i]));
            // [snapshot, presence.update, typing.update] per audience.
            let payloads: [[OnceCell<Box<RawValue>>; 3]; 2] = Default::default();
            let subject = t.requester.subject();
            let mut done = HashSet::new();
            for s in local_sockets(io, &rooms::ticket(&tid)) {
                let (Some(conn), true) = (s.conn(), s.connected()) else { continue };
                let sid = s.sid();
                done.insert(sid);
                let audience = audience_of(&conn, subject.as_ref());
                if audience.is_none() && t.requester == Requester::Unknown {
                    t.requester = Requester::Loading;
                    self.load_requester(tid.clone());
                }
                let socket = sockets.entry(sid).or_insert_with(|| SocketState::new(sid, &self.config));
                let Some(audience) = audience else {
                    socket.seen.remove(&tid);
                    continue;
                };
                let (i, p) = (slot(audience), &payloads[slot(audience)]);
                let sent = if socket.seen.get(&tid) == Some(&audience) {
                    (!diffs[i].people_changed()
                        || s.send("presence.update", cached(&p[1], || view::people_update(&tid, &diffs[i]))))
                        && (!diffs[i].typing_changed()
                            || s.send(
                                "typing.update",
                                cached(&p[2], || view::typing_update(&tid, &diffs[i], &views[i])),
                            ))
                } else {
                    snapshot_to(&*s, &views[i], || cached(&p[0], || view::snapshot(&tid, &views[i])))
                };
                if sent {
                    socket.seen.insert(tid.clone(), audience);
                } else {
                    // A packet it missed: the next change brings a whole snapshot instead.
                    socket.seen.remove(&tid);
                }
            }
            if diffs[0].people_changed() {
                let p = &payloads[0];
                for s in local_sockets(io, "tickets") {
                    let sid = s.sid();
                    if done.contains(&sid) || !s.connected() || !s.conn().is_some_and(|c| c.role().is_staff()) {
                        continue;
                    }
                    let socket = sockets.entry(sid).or_insert_with(|| SocketState::new(sid, &self.config));
                    if !socket.list_seen
                        || !s.send("presence.update", cached(&p[1], || view::people_update(&tid, &diffs[0])))
                    {
                        socket.list_seen = false;
                        wants_list.push(sid);
                    }
                }
            }
            drop(diffs);
            t.sent = views;
            if t.entries.is_empty() && t.sent.iter().all(View::is_empty) {
                tickets.remove(&tid);
            }
        }
        // After every ticket's changes: the list already holds them.
        for sid in wants_list {
            if let (Some(s), Some(socket)) = (io.get_socket(sid), sockets.get_mut(&sid)) {
                socket.list_seen = list_to(&s, tickets);
            }
        }
    }

    /// This node's entries that changed, as they are now (or ended), in messages of bounded size.
    pub(super) fn outgoing(&self, st: &mut State, now: Instant) -> Vec<relay::Batch> {
        let mut wanted: Vec<(Arc<str>, Arc<str>)> = st.unpublished.drain().collect();
        if std::mem::take(&mut st.republish_all) {
            for (tid, t) in &st.tickets {
                for (node, conn) in t.entries.keys() {
                    if *node == self.node {
                        wanted.push((tid.clone(), conn.clone()));
                    }
                }
            }
        }
        let left = |at: Instant| at.saturating_duration_since(now).as_millis() as u64;
        let mut batches: Vec<relay::Batch> = Vec::new();
        for (tid, conn) in wanted {
            if batches.last().is_none_or(|b| b.up.len() + b.rm.len() >= relay::MAX_PER_MESSAGE) {
                batches.push(relay::Batch { node: self.node.to_string(), ..Default::default() });
            }
            let batch = batches.last_mut().expect("pushed above");
            let entry = st.tickets.get(&tid).and_then(|t| t.entries.get(&(self.node.clone(), conn.clone())));
            match entry {
                Some(e) => batch.up.push(relay::Up {
                    c: conn.to_string(),
                    t: tid.to_string(),
                    u: e.user_id.to_string(),
                    n: e.name.to_string(),
                    r: e.role().as_str().into(),
                    s: e.activity.as_str().into(),
                    ttl: left(e.expires),
                    ty: e.typing.map(|t| t.map_or(0, left)),
                }),
                None => batch.rm.push(relay::Rm { c: conn.to_string(), t: tid.to_string() }),
            }
        }
        batches
    }
}
